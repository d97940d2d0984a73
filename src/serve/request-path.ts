/**
 * From a request target to a path inside the file system, refusing every
 * way out of it. The target is split on '/' BEFORE percent-decoding, so an
 * encoded slash (%2F) can never make a new component; then each component
 * is decoded and refused if it is '.', '..', or holds '/', '\', or NUL.
 * Nothing is normalised away: a path a client sends with '..' is refused,
 * not resolved (curl --path-as-is shows it).
 */
export type RequestPath =
  | { readonly ok: true; readonly path: string; readonly trailingSlash: boolean }
  | { readonly ok: false; readonly reason: string };

export function requestPath(target: string | undefined): RequestPath {
  if (target === undefined || !target.startsWith('/')) return { ok: false, reason: 'the request target is not an absolute path' };
  const q = target.search(/[?#]/);
  const raw = q === -1 ? target : target.slice(0, q);
  const parts: string[] = [];
  for (const seg of raw.split('/')) {
    if (seg === '') continue;
    let name: string;
    try {
      name = decodeURIComponent(seg);
    } catch {
      return { ok: false, reason: 'bad percent-encoding' };
    }
    if (name === '.' || name === '..') return { ok: false, reason: "'.' or '..' in the path" };
    if (/[/\\\0]/.test(name)) return { ok: false, reason: 'a path component holds a slash, backslash or NUL' };
    parts.push(name);
  }
  return { ok: true, path: '/' + parts.join('/'), trailingSlash: raw.endsWith('/') };
}
