/**
 * Path rules (xenstore.txt): `/`-separated, characters [A-Za-z0-9-/_@], no
 * doubled or trailing slash (except the root), not empty; absolute paths
 * at most 3072 bytes, relative ones at most 2048 and taken relative to
 * /local/domain/<domid>. `@`-paths name special watches only.
 */
import { XENSTORE_ABS_PATH_MAX, XENSTORE_REL_PATH_MAX } from './wire.js';
import { XenstoreError } from './errors.js';
import type { DomId } from '../platform/types.js';

const CHARS = /^[A-Za-z0-9\-/_@]+$/;

export function domainPath(domid: DomId): string {
  return `/local/domain/${domid}`;
}

export function isSpecialPath(p: string): boolean {
  return p.startsWith('@');
}

/**
 * Validate `path` as sent by `domid`, returning the absolute form.
 * Throws XenstoreError EINVAL on any violation.
 */
export function canonicalPath(path: string, domid: DomId, opts: { allowSpecial?: boolean } = {}): string {
  if (path.length === 0) throw new XenstoreError('EINVAL', 'empty path');
  if (!CHARS.test(path)) throw new XenstoreError('EINVAL', `illegal character in path ${JSON.stringify(path)}`);
  if (isSpecialPath(path)) {
    if (!opts.allowSpecial) throw new XenstoreError('EINVAL', `special path ${path} only valid for watches`);
    if (path.length > XENSTORE_ABS_PATH_MAX) throw new XenstoreError('EINVAL', 'path too long');
    return path;
  }
  const relative = !path.startsWith('/');
  if (relative && path.length > XENSTORE_REL_PATH_MAX) throw new XenstoreError('EINVAL', 'relative path too long');
  const abs = relative ? `${domainPath(domid)}/${path}` : path;
  if (abs.length > XENSTORE_ABS_PATH_MAX) throw new XenstoreError('EINVAL', 'path too long');
  if (abs.includes('//')) throw new XenstoreError('EINVAL', `doubled slash in ${JSON.stringify(path)}`);
  if (abs.length > 1 && abs.endsWith('/')) throw new XenstoreError('EINVAL', `trailing slash in ${JSON.stringify(path)}`);
  return abs;
}

/** Segments of an absolute path; [] for "/". */
export function segments(abs: string): string[] {
  return abs === '/' ? [] : abs.slice(1).split('/');
}

export function parentPath(abs: string): string {
  const i = abs.lastIndexOf('/');
  return i <= 0 ? '/' : abs.slice(0, i);
}

/** xenstore.txt: `child` is a child of `parent` if equal, parent is /, or parent/ prefixes child. */
export function isChildOf(child: string, parent: string): boolean {
  return child === parent || parent === '/' || child.startsWith(parent + '/');
}
