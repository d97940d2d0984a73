/**
 * A static-file request handler over a FileSystem, for node:http.
 *
 *   GET/HEAD only (405 with Allow otherwise); 400 for a path that tries to
 *   leave the file system; 404 when nothing is there; a directory without
 *   its trailing slash is redirected (301) to it; a directory serves its
 *   index.html, else a listing. Files carry Content-Type, Content-Length,
 *   Last-Modified, a strong ETag and Accept-Ranges; If-None-Match (and,
 *   without it, If-Modified-Since) give 304; Range gives 206 (one range:
 *   Content-Range; several: multipart/byteranges) or 416, and If-Range
 *   falls back to 200 when the ETag changed.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { pipeline } from 'node:stream/promises';
import { FileSystemError } from '../fs/errors.js';
import type { FileSystem, FsStats } from '../fs/types.js';
import { contentType } from './mime.js';
import { planMultipart } from './multipart.js';
import { parseRange } from './range.js';
import { requestPath } from './request-path.js';

export interface HandlerOptions {
  /** Name tried in a directory before a listing (default index.html). */
  readonly index?: string;
  /** Called with errors that became a 500 (default: none). */
  readonly onError?: (err: unknown, req: IncomingMessage) => void;
}

export type RequestHandler = (req: IncomingMessage, res: ServerResponse) => void;

export function createStaticHandler(fs: FileSystem, options: HandlerOptions = {}): RequestHandler {
  const index = options.index ?? 'index.html';
  return (req, res) => {
    handle(fs, index, req, res).catch((err) => {
      options.onError?.(err, req);
      if (!res.headersSent) sendText(res, req, 500, 'Internal Server Error');
      else res.destroy(err as Error);
    });
  };
}

async function handle(fs: FileSystem, index: string, req: IncomingMessage, res: ServerResponse): Promise<void> {
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.setHeader('Allow', 'GET, HEAD');
    return sendText(res, req, 405, 'Method Not Allowed');
  }
  const target = requestPath(req.url);
  if (!target.ok) return sendText(res, req, 400, `Bad Request: ${target.reason}`);
  const st = await statOrNull(fs, target.path);
  if (st === null) return sendText(res, req, 404, 'Not Found');
  if (st.isDirectory()) {
    if (!target.trailingSlash && target.path !== '/') {
      res.setHeader('Location', encodePath(target.path) + '/');
      return sendText(res, req, 301, 'Moved Permanently');
    }
    const indexPath = (target.path === '/' ? '' : target.path) + '/' + index;
    const ist = await statOrNull(fs, indexPath);
    if (ist !== null && ist.isFile()) return sendFile(fs, indexPath, ist, req, res);
    return sendListing(fs, target.path, req, res);
  }
  if (target.trailingSlash) return sendText(res, req, 404, 'Not Found'); // a file is not a directory
  return sendFile(fs, target.path, st, req, res);
}

async function statOrNull(fs: FileSystem, path: string): Promise<FsStats | null> {
  try {
    return await fs.stat(path);
  } catch (err) {
    if (err instanceof FileSystemError && (err.reason === 'not-found' || err.reason === 'not-a-directory' || err.reason === 'invalid-path')) return null;
    throw err;
  }
}

/** Strong validator: inode, size and mtime in hex (FAT has no inode: 0). */
export function etagOf(st: FsStats): string {
  return `"${st.ino.toString(16)}-${st.size.toString(16)}-${st.mtime.getTime().toString(16)}"`;
}

function matchesEtag(header: string | undefined, etag: string): boolean {
  if (header === undefined) return false;
  if (header.trim() === '*') return true;
  // Weak comparison (RFC 9110 8.8.3.2): W/ prefixes are ignored.
  return header.split(',').some((t) => t.trim().replace(/^W\//, '') === etag);
}

async function sendFile(fs: FileSystem, path: string, st: FsStats, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const etag = etagOf(st);
  const lastModified = new Date(Math.floor(st.mtime.getTime() / 1000) * 1000);
  res.setHeader('ETag', etag);
  res.setHeader('Last-Modified', lastModified.toUTCString());
  res.setHeader('Accept-Ranges', 'bytes');
  res.setHeader('X-Content-Type-Options', 'nosniff');
  const inm = req.headers['if-none-match'];
  const ims = req.headers['if-modified-since'];
  if (inm !== undefined ? matchesEtag(inm, etag) : ims !== undefined && !Number.isNaN(Date.parse(ims)) && lastModified.getTime() <= Date.parse(ims)) {
    res.statusCode = 304;
    res.end();
    return;
  }
  const type = contentType(path);
  res.setHeader('Content-Type', type);
  // If-Range (RFC 9110 13.1.5): ranges only if the representation is the one
  // the client holds, by strong ETag comparison; anything else (a weak or
  // stale tag, a date) gets the whole file, which is always correct.
  const ifRange = req.headers['if-range'] as string | undefined;
  const range = ifRange !== undefined && ifRange.trim() !== etag ? { kind: 'none' as const } : parseRange(req.headers.range, st.size);
  if (range.kind === 'unsatisfiable') {
    res.setHeader('Content-Range', `bytes */${st.size}`);
    res.removeHeader('Content-Type');
    return sendText(res, req, 416, 'Range Not Satisfiable');
  }
  if (range.kind === 'ranges' && range.ranges.length > 1) {
    const plan = planMultipart(range.ranges, st.size, type);
    res.statusCode = 206;
    res.setHeader('Content-Type', plan.contentType);
    res.setHeader('Content-Length', String(plan.contentLength));
    if (req.method === 'HEAD') {
      res.end();
      return;
    }
    await pipeline(plan.body((r) => fs.createReadStream(path, { start: r.start, end: r.end })), res);
    return;
  }
  let start = 0;
  let end = st.size - 1;
  if (range.kind === 'ranges') {
    ({ start, end } = range.ranges[0]!);
    res.statusCode = 206;
    res.setHeader('Content-Range', `bytes ${start}-${end}/${st.size}`);
  } else {
    res.statusCode = 200;
  }
  res.setHeader('Content-Length', String(end - start + 1));
  if (req.method === 'HEAD' || end < start) {
    res.end();
    return;
  }
  // pipeline destroys the file stream when the client goes away.
  await pipeline(fs.createReadStream(path, { start, end }), res);
}

async function sendListing(fs: FileSystem, path: string, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const names = await fs.readdir(path);
  const base = path === '/' ? '/' : encodePath(path) + '/';
  const rows: string[] = path === '/' ? [] : ['<li><a href="../">../</a></li>'];
  for (const name of names) {
    const st = await statOrNull(fs, (path === '/' ? '' : path) + '/' + name);
    const slash = st?.isDirectory() ? '/' : '';
    rows.push(`<li><a href="${base}${encodeURIComponent(name)}${slash}">${escapeHtml(name)}${slash}</a></li>`);
  }
  const title = `Index of ${escapeHtml(path)}`;
  const body = `<!doctype html>\n<html><head><meta charset="utf-8"><title>${title}</title></head>\n<body><h1>${title}</h1>\n<ul>\n${rows.join('\n')}\n</ul></body></html>\n`;
  res.statusCode = 200;
  res.setHeader('Content-Type', 'text/html; charset=utf-8');
  res.setHeader('Content-Length', String(Buffer.byteLength(body)));
  res.end(req.method === 'HEAD' ? undefined : body);
}

function sendText(res: ServerResponse, req: IncomingMessage, status: number, text: string): void {
  const body = `${text}\n`;
  res.statusCode = status;
  res.setHeader('Content-Type', 'text/plain; charset=utf-8');
  res.setHeader('Content-Length', String(Buffer.byteLength(body)));
  res.end(req.method === 'HEAD' ? undefined : body);
}

const encodePath = (p: string) => p.split('/').map(encodeURIComponent).join('/');
const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
