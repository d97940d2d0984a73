/**
 * What the HTTP tests share: curl as the independent client, and a raw TCP
 * exchange for requests curl will not send as written.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { openFileSystem } from '../../src/fs/open.js';
import { serveFileSystem, type ServeOptions } from '../../src/serve/server.js';
import type { Flavour } from './fs-flavours.js';

const run = promisify(execFile);

export interface Reply {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
}

let n = 0;
/**
 * Runs curl (paths sent as given: `--path-as-is`), its headers and body
 * written under `scratch`; returns status, headers (lower-case names, last
 * response) and body.
 */
export async function curlIn(scratch: string, target: string, ...args: string[]): Promise<Reply> {
  const hdr = join(scratch, `h${n}`);
  const body = join(scratch, `b${n++}`);
  const { stdout } = await run('curl', ['-s', '--path-as-is', '-D', hdr, '-o', body, '-w', '%{http_code}', ...args, target], { maxBuffer: 1 << 26 });
  const headers: Record<string, string> = {};
  for (const line of readFileSync(hdr, 'utf8').split('\r\n').slice(1)) {
    const i = line.indexOf(':');
    if (i > 0) headers[line.slice(0, i).toLowerCase()] = line.slice(i + 1).trim();
  }
  let data = Buffer.alloc(0);
  try {
    data = readFileSync(body);
  } catch {
    // no body written (HEAD, 304)
  }
  return { status: Number(stdout), headers, body: data };
}

/** Sends `request` on a fresh TCP connection and returns all the server sent until it closed. */
export function rawExchange(base: string, request: string): Promise<string> {
  const { hostname, port } = new URL(base);
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const sock = connect(Number(port), hostname, () => sock.write(request)); // not end(): a half-close may drop the reply
    sock.on('data', (c) => chunks.push(c));
    sock.on('error', reject);
    sock.on('close', () => resolve(Buffer.concat(chunks).toString('latin1')));
  });
}

/**
 * Opens `image` read-only on `flavour`, its file system on that, and serves
 * it (`listen`: a port or a socket); `close()` undoes all three in reverse.
 */
export async function serveImage(flavour: Flavour, image: string, listen: ServeOptions): Promise<{ address: string; close(): Promise<void> }> {
  const opened = await flavour.open(image, `${image}.work`, { readOnly: true });
  const fs = await openFileSystem(opened.dev).catch(async (err) => {
    await opened.finish();
    throw err;
  });
  const srv = await serveFileSystem(fs, listen).catch(async (err) => {
    await fs.close();
    await opened.finish();
    throw err;
  });
  return {
    address: srv.address,
    async close() {
      await srv.close();
      await fs.close();
      await opened.finish();
    },
  };
}
