/**
 * Paths inside a file system: absolute, '/'-separated, no empty, '.' or
 * '..' components, no NUL or backslash. One check for every adapter, so no
 * library ever sees a path that could mean something else.
 */
import { FileSystemError } from './errors.js';

/** `'/a//b/'` → `'/a/b'`; `'/'` stays `'/'`. `invalid-path` for anything else. */
export function normalizeFsPath(path: string): string {
  if (typeof path !== 'string' || !path.startsWith('/')) {
    throw new FileSystemError('invalid-path', `${JSON.stringify(String(path)).slice(0, 80)} is not an absolute path`, { path: String(path) });
  }
  if (/[\0\\]/.test(path)) throw new FileSystemError('invalid-path', 'a path must not hold NUL or backslash', { path });
  const parts = path.split('/').filter((p) => p !== '');
  if (parts.some((p) => p === '.' || p === '..')) {
    throw new FileSystemError('invalid-path', `${JSON.stringify(path)} has a '.' or '..' component`, { path });
  }
  return '/' + parts.join('/');
}

/** Parent directory and last name of a normalised path ('/a/b' → ['/a', 'b']). */
export function splitFsPath(path: string): [string, string] {
  const i = path.lastIndexOf('/');
  return [i === 0 ? '/' : path.slice(0, i), path.slice(i + 1)];
}
