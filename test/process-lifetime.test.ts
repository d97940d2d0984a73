/**
 * Process lifetime: nothing the library keeps in the background (domain
 * workers, MessagePorts, xenstored's socket, Atomics.waitAsync loops,
 * timers) keeps a process alive once the user's own work is done, while a
 * pending call does. Regression: a script that forgot sim.stop() never
 * exited. Oracle: a child node process, its exit status and its output.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const dir = mkdtempSync(join(tmpdir(), 'xenpv-lifetime-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const entry = pathToFileURL(join(import.meta.dirname, '..', 'dist', 'index.js')).href;

/** Run `body` as an ES module in a child node; it must exit by itself within 20 s. */
function runScript(name: string, body: string): { status: number | null; stdout: string; stderr: string; ms: number } {
  const file = join(dir, `${name}.mjs`);
  writeFileSync(file, `import { Simulation } from ${JSON.stringify(entry)};\n${body}\n`);
  const t0 = Date.now();
  const r = spawnSync(process.execPath, [file], { encoding: 'utf8', timeout: 20_000, killSignal: 'SIGKILL' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr, ms: Date.now() - t0 };
}

const IO = `
const data = new Uint8Array(8192).map((_, i) => (i * 7) & 0xff);
await dev.write(16n, [data]);
const back = new Uint8Array(8192);
await dev.read(16n, [back]);
console.log(back.every((b, i) => b === data[i]) ? 'verified' : 'MISMATCH');
`;

describe('process lifetime', () => {
  it('a script that attaches, does I/O and forgets sim.stop() and disconnect() exits by itself with status 0', () => {
    const r = runScript('forget-stop', `
const sim = await Simulation.start();
const disk = await sim.createDisk({ sizeBytes: 1 << 20 });
const dev = await sim.attach(disk);
${IO}`);
    expect(r.stderr).toBe('');
    expect(r.stdout.trim()).toBe('verified');
    expect(r.status).toBe(0);
    expect(r.ms).toBeLessThan(15_000);
  });

  it('the same with a file disk, a xenstored socket and a backend restart', () => {
    const r = runScript('forget-stop-socket', `
const sim = await Simulation.start({ xenstoreSocket: ${JSON.stringify(join(dir, 'xs.sock'))} });
const disk = await sim.createDisk({ sizeBytes: 1 << 20, path: ${JSON.stringify(join(dir, 'disk.img'))} });
const dev = await sim.attach(disk);
await sim.restartBackend(disk);
${IO}`);
    expect(r.stderr).toBe('');
    expect(r.stdout.trim()).toBe('verified');
    expect(r.status).toBe(0);
  });

  it('a pending read keeps the process alive until it completes, across a backend that is down for a while', () => {
    // The backend is killed, and restarted only from a timer the script
    // unrefs: the read must hold the process open by itself meanwhile.
    const r = runScript('pending-read', `
const sim = await Simulation.start();
const disk = await sim.createDisk({ sizeBytes: 1 << 20 });
const dev = await sim.attach(disk);
await sim.killBackend(disk);
setTimeout(() => void sim.restartBackend(disk), 300).unref();
const back = new Uint8Array(512);
await dev.read(0n, [back]);
console.log('read done');
`);
    expect(r.stderr).toBe('');
    expect(r.stdout.trim()).toBe('read done');
    expect(r.status).toBe(0);
  });
});
