/**
 * Running instances, one control socket each, in a per-user runtime folder:
 * `$XDG_RUNTIME_DIR/xenpv`, else `~/.xenpv` (created 0700, so only its user
 * can reach the sockets). `xenpv list` asks each socket for its status and
 * removes the sockets nobody answers on (the process died without cleaning
 * up); `xenpv stop NAME` asks one to stop.
 *
 * Control protocol: the client writes one JSON line, the instance answers
 * one JSON line and closes.
 *
 *   {"op":"status"}  ->  {"ok":true,"status":{name,pid,devices,state,startedAt,restarts,...}}
 *   {"op":"stop"}    ->  {"ok":true}        (then the instance stops)
 *   anything else    ->  {"ok":false,"error":"..."}
 */
import { mkdirSync, readdirSync, unlinkSync, existsSync, chmodSync, statSync } from 'node:fs';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { JobError } from './errors.js';
import { INSTANCE_NAME } from './job.js';

export interface InstanceStatus {
  readonly name: string;
  /** The process holding the control socket (the master when there is one). */
  readonly pid: number;
  /** Device name -> spec. */
  readonly devices: Readonly<Record<string, string>>;
  /** JobState value. */
  readonly state: string;
  /** ms since the epoch. */
  readonly startedAt: number;
  readonly restarts: number;
  /** The unprivileged child running the job, when a master spawned one. */
  readonly child?: { readonly pid: number; readonly uid: number; readonly gid: number };
}

const SOCKET_SUFFIX = '.sock';
const UNIX_PATH_MAX = 107;
const REPLY_LIMIT = 64 * 1024;

/** The runtime folder for this user (not created). */
export function runtimeDir(env: NodeJS.ProcessEnv = process.env): string {
  const xdg = env['XDG_RUNTIME_DIR'];
  if (xdg) return join(xdg, 'xenpv');
  return join(env['HOME'] || homedir(), '.xenpv');
}

export function socketPath(dir: string, name: string): string {
  return join(dir, name + SOCKET_SUFFIX);
}

function ensureDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  // An existing folder keeps its mode on mkdir: tighten it.
  if ((statSync(dir).mode & 0o077) !== 0) chmodSync(dir, 0o700);
}

function checkName(name: string): void {
  if (!INSTANCE_NAME.test(name)) {
    throw new JobError('bad-module', `instance name ${JSON.stringify(name)} is not [A-Za-z0-9][A-Za-z0-9_.-]* (at most 64)`);
  }
}

export interface InstanceHandlers {
  status(): InstanceStatus;
  stop(): void;
}

/** This process's control socket; close() removes it. */
export class InstanceSocket {
  private constructor(private readonly server: Server, readonly path: string) {}

  /**
   * Listen on `<dir>/<name>.sock`. A socket file left by a dead instance is
   * removed first; a live instance of the same name is JobError `name-in-use`.
   */
  static async listen(dir: string, name: string, handlers: InstanceHandlers): Promise<InstanceSocket> {
    checkName(name);
    ensureDir(dir);
    const path = socketPath(dir, name);
    if (Buffer.byteLength(path) > UNIX_PATH_MAX) {
      throw new JobError('bad-module', `control socket path ${path} is longer than ${UNIX_PATH_MAX} bytes: use a shorter name or runtime folder`);
    }
    if (existsSync(path)) {
      if ((await probe(path)) === 'live') throw new JobError('name-in-use', `an instance named ${name} is already running (${path})`);
      unlinkSafe(path);
    }
    const server = createServer((sock) => serve(sock, handlers));
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err) => reject(new JobError('name-in-use', `cannot listen on ${path}: ${err.message}`, { cause: err })));
      server.listen(path, () => resolve());
    });
    server.on('error', () => undefined);
    return new InstanceSocket(server, path);
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    unlinkSafe(this.path);
  }
}

function serve(sock: Socket, h: InstanceHandlers): void {
  let buf = '';
  sock.setEncoding('utf8');
  sock.on('error', () => undefined);
  sock.on('data', (chunk: string) => {
    buf += chunk;
    if (buf.length > REPLY_LIMIT) { sock.destroy(); return; }
    const nl = buf.indexOf('\n');
    if (nl < 0) return;
    let reply: unknown;
    let after: (() => void) | undefined;
    try {
      const req = JSON.parse(buf.slice(0, nl)) as { op?: unknown };
      if (req.op === 'status') reply = { ok: true, status: h.status() };
      else if (req.op === 'stop') { reply = { ok: true }; after = () => h.stop(); }
      else reply = { ok: false, error: `unknown op ${JSON.stringify(req.op)}` };
    } catch (err) {
      reply = { ok: false, error: `bad request: ${(err as Error).message}` };
    }
    sock.end(JSON.stringify(reply) + '\n');
    after?.();
  });
}

type Probe = 'live' | 'dead' | 'unresponsive';

/** ECONNREFUSED/ENOENT: nobody listens (dead). A listener that does not answer in time: unresponsive. */
async function probe(path: string, timeoutMs = 2000): Promise<Probe> {
  try {
    await request(path, { op: 'status' }, timeoutMs);
    return 'live';
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return code === 'ECONNREFUSED' || code === 'ENOENT' ? 'dead' : 'unresponsive';
  }
}

function request(path: string, req: object, timeoutMs: number): Promise<{ ok: boolean; status?: InstanceStatus; error?: string }> {
  return new Promise((resolve, reject) => {
    const sock = createConnection(path);
    let buf = '';
    const timer = setTimeout(() => { sock.destroy(); reject(Object.assign(new Error(`no answer on ${path} within ${timeoutMs} ms`), { code: 'ETIMEDOUT' })); }, timeoutMs);
    sock.setEncoding('utf8');
    sock.on('connect', () => sock.write(JSON.stringify(req) + '\n'));
    sock.on('data', (d: string) => { buf += d; if (buf.length > REPLY_LIMIT) sock.destroy(new Error('reply too long')); });
    sock.on('error', (err) => { clearTimeout(timer); reject(err); });
    sock.on('end', () => {
      clearTimeout(timer);
      try { resolve(JSON.parse(buf)); } catch (err) { reject(err); }
    });
  });
}

function unlinkSafe(path: string): void {
  try { unlinkSync(path); } catch { /* already gone */ }
}

export interface InstanceList {
  readonly instances: InstanceStatus[];
  /** Names whose sockets were stale and have been removed. */
  readonly cleaned: string[];
  /** Names whose socket is held open but did not answer. */
  readonly unresponsive: string[];
}

/** Every instance in `dir`, sorted by name; stale sockets removed. */
export async function listInstances(dir: string): Promise<InstanceList> {
  let names: string[];
  try {
    names = readdirSync(dir).filter((f) => f.endsWith(SOCKET_SUFFIX)).map((f) => f.slice(0, -SOCKET_SUFFIX.length)).sort();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { instances: [], cleaned: [], unresponsive: [] };
    throw err;
  }
  const out: InstanceList = { instances: [], cleaned: [], unresponsive: [] };
  await Promise.all(names.map(async (name) => {
    const path = socketPath(dir, name);
    try {
      const r = await request(path, { op: 'status' }, 2000);
      if (r.ok && r.status) out.instances.push(r.status);
      else out.unresponsive.push(name);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ECONNREFUSED' || code === 'ENOENT') { unlinkSafe(path); out.cleaned.push(name); } else out.unresponsive.push(name);
    }
  }));
  out.instances.sort((a, b) => a.name.localeCompare(b.name));
  out.cleaned.sort();
  out.unresponsive.sort();
  return out;
}

/** Ask instance `name` to stop. JobError `no-instance` if none runs (a stale socket is removed). */
export async function stopInstance(dir: string, name: string): Promise<void> {
  checkName(name);
  const path = socketPath(dir, name);
  let r;
  try {
    r = await request(path, { op: 'stop' }, 5000);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ECONNREFUSED') unlinkSafe(path);
    if (code === 'ECONNREFUSED' || code === 'ENOENT') throw new JobError('no-instance', `no instance named ${name} is running (in ${dir})`);
    throw new JobError('no-instance', `instance ${name} did not answer: ${(err as Error).message}`, { cause: err });
  }
  if (!r.ok) throw new JobError('no-instance', `instance ${name} refused to stop: ${r.error}`);
}
