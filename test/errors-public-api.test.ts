/**
 * Every public entry point, given bad input, fails with an XenpvError
 * subclass whose `code` is one of the documented codes and whose one-line
 * message names the thing at fault. Regressions: raw Node errors (ENOENT for
 * a missing disk folder, EFBIG for a huge disk, EACCES for a bad socket
 * path), a TypeError dressed as `protocol` for `engine: 'foo'`, a worker's
 * stack inside an `io` message, a missing vbd reported as `protocol`.
 * Oracle: the README's "Errors" table, parsed here, and the package root's
 * exported classes.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as xenpv from '../src/index.js';
import {
  Abi,
  Blkback,
  Blkfront,
  blkif,
  connectXenstoreSocket,
  createEngine,
  createVbd,
  DisconnectedError,
  InvalidArgumentError,
  IoError,
  MemoryBlockDevice,
  openBlockDevice,
  openLinuxPlatform,
  ReadOnlyError,
  Simulation,
  OutOfRangeError,
  UnsupportedError,
  XenpvError,
  XenstoreClient,
  XenstoreError,
  XenstoreServer,
} from '../src/index.js';

const dir = mkdtempSync(join(tmpdir(), 'xenpv-errors-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The codes the README's "Errors" section documents: rows like "| `code` | Class | ... |". */
function documentedCodes(): Map<string, string> {
  const readme = readFileSync(join(import.meta.dirname, '..', 'README.md'), 'utf8');
  const section = readme.split(/^## Errors$/m)[1]?.split(/^## /m)[0];
  if (section === undefined) throw new Error('README.md has no "## Errors" section');
  const codes = new Map<string, string>();
  for (const m of section.matchAll(/^\| `([a-z-]+)` \| `(\w+)` \|/gm)) codes.set(m[1]!, m[2]!);
  return codes;
}
const DOCUMENTED = documentedCodes();

type Klass = abstract new (...args: never[]) => XenpvError;

/** `call` fails (throws or rejects) with `klass`, a documented `code`, and a one-line message matching `message`. */
async function fails(call: () => unknown, klass: Klass, code: string, message: RegExp): Promise<void> {
  let err: unknown;
  try {
    await call();
  } catch (e) {
    err = e;
  }
  expect(err, 'expected a failure').toBeDefined();
  expect(err).toBeInstanceOf(XenpvError);
  expect(err).toBeInstanceOf(klass);
  const e = err as XenpvError;
  expect(e.code).toBe(code);
  expect(DOCUMENTED.get(e.code), `code ${e.code} is documented in README "Errors" with its class`).toBe(e.name === 'ForeignEvtchnError' ? 'EvtchnError' : e.name);
  expect(e.message).toMatch(message);
  expect(e.message, 'one line, no stack').not.toContain('\n');
  expect(e.message).not.toMatch(/TypeError|Cannot read properties|at file:|\.js:\d+/);
}

describe('README documents every error code', () => {
  it('lists each ErrorCode once, with the class a user can instanceof from the package root', () => {
    const codes: xenpv.ErrorCode[] = [
      'disconnected', 'read-only', 'unsupported', 'out-of-range', 'invalid-argument', 'io', 'protocol',
      'xenstore', 'grant', 'evtchn', 'native', 'timeout', 'locked', 'corrupt', 'no-space', 'fs', 'job',
    ];
    expect([...DOCUMENTED.keys()].sort()).toEqual([...codes].sort());
    const root = xenpv as unknown as Record<string, unknown>;
    for (const [code, cls] of DOCUMENTED) {
      expect(typeof root[cls], `${cls} (code ${code}) is exported`).toBe('function');
      expect((root[cls] as { prototype: unknown }).prototype).toBeInstanceOf(XenpvError);
    }
  });
});

describe('Simulation with bad input', () => {
  let sim: Simulation;
  beforeAll(async () => {
    sim = await Simulation.start();
  });
  afterAll(async () => {
    await sim.stop();
  });

  it('start: bad pool, slots, grant frames, socket', async () => {
    await fails(() => Simulation.start({ poolPages: -1 }), InvalidArgumentError, 'invalid-argument', /^poolPages: /);
    await fails(() => Simulation.start({ maxDomains: 0 }), InvalidArgumentError, 'invalid-argument', /^maxDomains: /);
    await fails(() => Simulation.start({ grantFrames: 1000 }), InvalidArgumentError, 'invalid-argument', /^grantFrames: /);
    await fails(() => Simulation.start({ xenstoreSocket: '/proc/xenpv-nope/xs.sock' }), IoError, 'io', /\/proc\/xenpv-nope\/xs\.sock/);
    await fails(() => Simulation.start({ xenstoreSocket: '' }), InvalidArgumentError, 'invalid-argument', /^xenstoreSocket: /);
  });

  it('createDisk: bad size, sector size, folder, huge file, features, engine', async () => {
    await fails(() => sim.createDisk({ sizeBytes: 0 }), InvalidArgumentError, 'invalid-argument', /^sizeBytes: /);
    await fails(() => sim.createDisk({ sizeBytes: 1 << 20, sectorSize: 1000 }), InvalidArgumentError, 'invalid-argument', /^sectorSize: .*1000/);
    await fails(() => sim.createDisk({ sizeBytes: 1000 }), InvalidArgumentError, 'invalid-argument', /^sizeBytes: 1000 is not a multiple/);
    const missing = join(dir, 'no-such-folder', 'disk.img');
    await fails(() => sim.createDisk({ sizeBytes: 1 << 20, path: missing }), IoError, 'io', new RegExp(`${missing}.*ENOENT`));
    await fails(() => sim.createDisk({ sizeBytes: 1 << 20, path: dir }), InvalidArgumentError, 'invalid-argument', new RegExp(`^path: ${dir} is neither a regular file nor a block device`));
    const huge = 2 ** 53 - 512 * 1024; // far past any file system's file size limit
    await fails(() => sim.createDisk({ sizeBytes: huge, path: join(dir, 'huge.img') }), IoError, 'io', /huge\.img.*(EFBIG|EINVAL)/);
    await fails(() => sim.createDisk({ sizeBytes: 1 << 20, features: { maxIndirectSegments: -1 } }), InvalidArgumentError, 'invalid-argument', /^features\.maxIndirectSegments: /);
    await fails(() => sim.createDisk({ sizeBytes: 1 << 20, features: { bogus: 1 } as never }), InvalidArgumentError, 'invalid-argument', /^features\.bogus: /);
    await fails(() => sim.createDisk({ sizeBytes: 1 << 20, backendEngine: 'foo' as 'js' }), InvalidArgumentError, 'invalid-argument', /^backendEngine: .*foo/);
    expect(sim.hypervisor.liveDomains()).toEqual([0]);
  });

  it('attach, restartBackend, killBackend, resizeDisk: bad disk, engine, abi, options', async () => {
    const disk = await sim.createDisk({ sizeBytes: 1 << 20 });
    const stranger = { ...disk };
    await fails(() => sim.attach(stranger), InvalidArgumentError, 'invalid-argument', /^disk: disk \d+ is not a disk of this simulation/);
    await fails(() => sim.attach(undefined as never), InvalidArgumentError, 'invalid-argument', /^disk: /);
    await fails(() => sim.attach(disk, { engine: 'foo' as 'js' }), InvalidArgumentError, 'invalid-argument', /^engine: .*foo/);
    await fails(() => sim.attach(disk, { abi: 'arm' as 'x86_32-abi' }), InvalidArgumentError, 'invalid-argument', /^abi: .*arm/);
    await fails(() => sim.attach(disk, { queues: 99 }), InvalidArgumentError, 'invalid-argument', /^queues: /);
    await fails(() => sim.restartBackend(stranger), InvalidArgumentError, 'invalid-argument', /^disk: /);
    await fails(() => sim.killBackend(stranger), InvalidArgumentError, 'invalid-argument', /^disk: /);
    await fails(() => sim.resizeDisk(disk, -5), InvalidArgumentError, 'invalid-argument', /^sizeBytes: /);
  });
});

describe('BlockDevice and the registry with bad input', () => {
  it('openBlockDevice: unknown flavour, bad size, missing file, xen without Xen', async () => {
    await fails(() => openBlockDevice('bogus:x'), InvalidArgumentError, 'invalid-argument', /^spec: flavour "bogus" is not registered/);
    await fails(() => openBlockDevice('memory:lots'), InvalidArgumentError, 'invalid-argument', /lots/);
    const missing = join(dir, 'missing.img');
    await fails(() => openBlockDevice(`file:${missing}`), IoError, 'io', new RegExp(`${missing}.*ENOENT`));
    await fails(() => openBlockDevice('xen:xvda', { linux: { deviceDir: join(dir, 'no-xen') } } as never), UnsupportedError, 'unsupported', /no-xen\/evtchn is missing/);
  });

  it('BlockDevice methods: bad sector, buffer, range, read-only, after disconnect', async () => {
    const dev = await openBlockDevice('memory:1MiB');
    await fails(() => dev.read(-1n, [new Uint8Array(512)]), InvalidArgumentError, 'invalid-argument', /^sector: /);
    await fails(() => dev.read(0n, [new Uint16Array(256) as never]), InvalidArgumentError, 'invalid-argument', /^buffers/);
    await fails(() => dev.write(2048n, [new Uint8Array(512)]), OutOfRangeError, 'out-of-range', /2048/);
    await fails(() => dev.discard(0n, 0n), InvalidArgumentError, 'invalid-argument', /^count: /);
    await dev.disconnect();
    await fails(() => dev.read(0n, [new Uint8Array(512)]), DisconnectedError, 'disconnected', /disconnected/);
    const ro = new MemoryBlockDevice({ sizeBytes: 1 << 20, readOnly: true });
    await fails(() => ro.write(0n, [new Uint8Array(512)]), ReadOnlyError, 'read-only', /read-only/);
  });

  it('a Blkfront after disconnect: disconnected', async () => {
    const sim = await Simulation.start();
    try {
      const dev = await sim.attach(await sim.createDisk({ sizeBytes: 1 << 20, readOnly: true }));
      await fails(() => dev.write(0n, [new Uint8Array(512)]), ReadOnlyError, 'read-only', /read-only/);
      await dev.disconnect();
      await fails(() => dev.read(0n, [new Uint8Array(512)]), DisconnectedError, 'disconnected', /disconnected/);
    } finally {
      await sim.stop();
    }
  });
});

describe('codec, engine, drivers, xenstore, Linux platform with bad input', () => {
  it('blkif codec: bad operation, short bytes, bad abi', async () => {
    await fails(() => blkif.encodeRequest({ operation: 99 } as never), InvalidArgumentError, 'invalid-argument', /^operation: .*99/);
    await fails(() => blkif.decodeRequest(new Uint8Array(10)), InvalidArgumentError, 'invalid-argument', /^bytes: .*10/);
    await fails(() => blkif.decodeResponse(new Uint8Array(16), 'arm-abi' as never), InvalidArgumentError, 'invalid-argument', /^abi: .*arm-abi/);
  });

  it('createEngine: unknown kind, memory that is not shared', async () => {
    const mem = new WebAssembly.Memory({ initial: 1, maximum: 1, shared: true });
    await fails(() => createEngine('foo' as 'js', mem), InvalidArgumentError, 'invalid-argument', /^engine: .*foo/);
    await fails(() => createEngine('js', new WebAssembly.Memory({ initial: 1 })), InvalidArgumentError, 'invalid-argument', /^memory: /);
  });

  it('Blkfront.attach, Blkback.start, createVbd: bad options, missing vbd', async () => {
    const sim = await Simulation.start();
    try {
      const p = sim.dom0;
      const engine = createEngine('js', p.memory);
      await fails(() => Blkfront.attach(p, { engine: 'foo' as never, frontend: '/local/domain/0/device/vbd/51712' }), InvalidArgumentError, 'invalid-argument', /^engine: /);
      await fails(() => Blkfront.attach(p, { engine, frontend: 'relative' }), InvalidArgumentError, 'invalid-argument', /^frontend: /);
      await fails(() => Blkfront.attach(p, { engine, frontend: '/local/domain/0/device/vbd/4242', abi: 7 as Abi }), InvalidArgumentError, 'invalid-argument', /^abi: /);
      await fails(() => Blkfront.attach(p, { engine, frontend: '/local/domain/0/device/vbd/4242' }), InvalidArgumentError, 'invalid-argument', /^frontend: no vbd at \/local\/domain\/0\/device\/vbd\/4242/);
      const device = new MemoryBlockDevice({ sizeBytes: 1 << 20 });
      await fails(() => Blkback.start(p, { backend: 'x', device, engine }), InvalidArgumentError, 'invalid-argument', /^backend: /);
      await fails(() => Blkback.start(p, { backend: '/b', device: {} as never, engine }), InvalidArgumentError, 'invalid-argument', /^device: /);
      await fails(() => Blkback.start(p, { backend: '/b', device, engine, features: { maxQueues: 'x' as never } }), InvalidArgumentError, 'invalid-argument', /^features\.maxQueues: /);
      await fails(() => createVbd(p.xenstore, { frontendDomid: -1, backendDomid: 0, devid: 1, params: 'x' }), InvalidArgumentError, 'invalid-argument', /^frontendDomid: /);
      await fails(() => createVbd(p.xenstore, { frontendDomid: 0, backendDomid: 0, devid: 1.5, params: 'x' }), InvalidArgumentError, 'invalid-argument', /^devid: /);
      await fails(() => createVbd(p.xenstore, { frontendDomid: 0, backendDomid: 0, devid: 1, params: 5 as never }), InvalidArgumentError, 'invalid-argument', /^params: /);
    } finally {
      await sim.stop();
    }
  });

  it('XenstoreClient and XenstoreServer: missing node, bad path, bad socket', async () => {
    const server = new XenstoreServer();
    const xs = server.connect(0);
    try {
      await fails(() => xs.read('/no/such/node'), XenstoreError, 'xenstore', /ENOENT.*\/no\/such\/node|\/no\/such\/node.*ENOENT/);
      await fails(() => xs.write('', 'v'), XenstoreError, 'xenstore', /^EINVAL: XS_WRITE "" failed/);
      await fails(() => server.listen(join(dir, 'no-such-folder', 'xs.sock')), IoError, 'io', /no-such-folder\/xs\.sock/);
      await fails(() => connectXenstoreSocket(join(dir, 'nobody.sock')), DisconnectedError, 'disconnected', /nobody\.sock/);
      await fails(() => new XenstoreClient(undefined as never), InvalidArgumentError, 'invalid-argument', /^transport: /);
    } finally {
      await xs.close();
      await server.close();
    }
  });

  it('openLinuxPlatform: no Xen here is unsupported naming the device', async () => {
    await fails(() => openLinuxPlatform({ deviceDir: join(dir, 'no-xen') }), UnsupportedError, 'unsupported', /no-xen\/evtchn is missing/);
    writeFileSync(join(dir, 'file-not-dir'), '');
    await fails(() => openLinuxPlatform({ deviceDir: 5 as never }), InvalidArgumentError, 'invalid-argument', /^deviceDir: /);
  });
});
