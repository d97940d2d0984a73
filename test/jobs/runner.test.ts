/**
 * JobRunner against real memory devices (through the registry) and a
 * breakable device double that stands for the other side failing. What is
 * checked comes from the job contract: devices open before start, flushed
 * and disconnected after stop, restarts by policy with doubling backoff, a
 * device failure stops the job with a typed error, exit statuses.
 */
import { describe, expect, it } from 'vitest';
import { MemoryBlockDevice } from '../../src/block/memory.js';
import type { BlockDevice } from '../../src/block/types.js';
import { ProtocolError } from '../../src/errors.js';
import { JobError } from '../../src/jobs/errors.js';
import { JobExit, OutcomeKind, exitStatus } from '../../src/jobs/exit.js';
import { defineJob, restartDelay, type JobContext } from '../../src/jobs/job.js';
import { JobRunner, type DeviceOpener } from '../../src/jobs/runner.js';
import { JobState } from '../../src/jobs/state.js';

/** A memory device that counts flushes and disconnects and can be broken (the peer failing). */
class Breakable implements BlockDevice {
  readonly inner = new MemoryBlockDevice({ sizeBytes: 1 << 20 });
  flushes = 0;
  disconnects = 0;
  broken = false;
  info() { return this.inner.info(); }
  read(s: bigint, b: Uint8Array[]) { return this.broken ? Promise.reject(new ProtocolError('peer broke the ring')) : this.inner.read(s, b); }
  write(s: bigint, b: Uint8Array[]) { return this.broken ? Promise.reject(new ProtocolError('peer broke the ring')) : this.inner.write(s, b); }
  flush() { this.flushes++; return this.broken ? Promise.reject(new ProtocolError('peer broke the ring')) : this.inner.flush(); }
  discard(s: bigint, c: bigint) { return this.inner.discard(s, c); }
  disconnect() { this.disconnects++; return this.inner.disconnect(); }
  onResize(l: (i: ReturnType<BlockDevice['info']>) => void) { return this.inner.onResize(l); }
}

function opener(devs: Record<string, Breakable>): DeviceOpener {
  return async (name) => {
    const d = devs[name];
    if (!d) throw new Error(`no such test device ${name}`);
    return d;
  };
}

/** Records the states a runner goes through; `reached(s)` resolves when it enters `s`. */
function statesOf(): { list: JobState[]; onState: (s: JobState) => void; reached: (s: JobState) => Promise<void> } {
  const list: JobState[] = [];
  const waiters: Array<{ s: JobState; resolve: () => void }> = [];
  return {
    list,
    onState: (s) => {
      list.push(s);
      for (const w of waiters.filter((x) => x.s === s)) { waiters.splice(waiters.indexOf(w), 1); w.resolve(); }
    },
    reached: (s) => (list.includes(s) ? Promise.resolve() : new Promise((resolve) => waiters.push({ s, resolve }))),
  };
}

const sector = (byte: number) => new Uint8Array(512).fill(byte);

describe('JobRunner', () => {
  it('opens the declared devices through the registry, runs the job, and on stop flushes and disconnects them (exit 0)', async () => {
    let seen: JobContext | undefined;
    const job = defineJob({
      devices: { a: 'memory:1MiB', b: 'memory:64KiB' },
      async start(ctx) {
        seen = ctx;
        await ctx.devices.a!.write(0n, [sector(7)]);
      },
    });
    const st = statesOf();
    const runner = new JobRunner(job, { name: 't', onState: st.onState });
    const outcome = runner.run();
    await st.reached(JobState.Running);
    expect(seen!.devices.a!.info().sizeSectors).toBe(2048n);
    expect(seen!.devices.b!.info().sizeSectors).toBe(128n);
    const back = new Uint8Array(512);
    await seen!.devices.a!.read(0n, [back]);
    expect(back[0]).toBe(7);
    runner.stop();
    const o = await outcome;
    expect(o.kind).toBe(OutcomeKind.Requested);
    expect(exitStatus(o)).toBe(JobExit.Ok);
    expect(seen!.signal.aborted).toBe(true);
    expect(st.list).toEqual([JobState.Opening, JobState.Starting, JobState.Running, JobState.Stopping, JobState.Stopped]);
    // Disconnected by the runner: the device refuses further I/O.
    await expect(seen!.devices.a!.read(0n, [back])).rejects.toMatchObject({ code: 'disconnected' });
  });

  it('the job cannot disconnect a device it was given', async () => {
    const dev = new Breakable();
    let err: unknown;
    const st = statesOf();
    const runner = new JobRunner(defineJob({ devices: { d: 'x:y' }, async start(ctx) { err = await ctx.devices.d!.disconnect().catch((e) => e); } }), { name: 't', open: opener({ d: dev }), onState: st.onState });
    const o = runner.run();
    await st.reached(JobState.Running);
    expect(err).toMatchObject({ code: 'invalid-argument' });
    expect(dev.disconnects).toBe(0);
    runner.stop();
    await o;
    expect(dev.disconnects).toBe(1);
    expect(dev.flushes).toBe(1);
  });

  it('restarts a crashing job maxRetries times with doubling backoff, then gives up (exit 3), devices released once', async () => {
    const dev = new Breakable();
    const starts: number[] = [];
    const stops: number[] = [];
    const job = defineJob({
      devices: { d: 'x:y' },
      restart: { policy: 'on-failure', maxRetries: 3, backoffMs: 20 },
      start(ctx) { starts.push(Date.now()); if (ctx.attempt !== starts.length - 1) throw new Error('attempt numbering'); throw new Error(`boom ${ctx.attempt}`); },
      stop(ctx) { stops.push(ctx.attempt); },
    });
    const o = await new JobRunner(job, { name: 't', open: opener({ d: dev }) }).run();
    expect(starts).toHaveLength(4);
    for (let i = 1; i < 4; i++) expect(starts[i]! - starts[i - 1]!).toBeGreaterThanOrEqual(20 * 2 ** (i - 1) - 1);
    expect(stops).toEqual([0, 1, 2, 3]);
    expect(o.kind).toBe(OutcomeKind.Crashed);
    expect(o.restarts).toBe(3);
    expect(o.error).toBeInstanceOf(JobError);
    expect((o.error as JobError).reason).toBe('crashed');
    expect(o.error!.message).toContain('boom 3');
    expect(exitStatus(o)).toBe(JobExit.Crashed);
    expect([dev.flushes, dev.disconnects]).toEqual([1, 1]);
  });

  it('policy never: the first crash ends the job', async () => {
    let starts = 0;
    const job = defineJob({ devices: {}, start(ctx) { starts++; setTimeout(() => ctx.fail(new Error('later')), 5); } });
    const runner = new JobRunner(job, { name: 't' });
    const o = await runner.run();
    expect(starts).toBe(1);
    expect(o.kind).toBe(OutcomeKind.Crashed);
    expect(runner.state).toBe(JobState.Stopped);
  });

  it('a crash while running restarts; a stop during the backoff ends it as requested', async () => {
    let starts = 0;
    const job = defineJob({
      devices: {},
      restart: { policy: 'on-failure', maxRetries: 5, backoffMs: 60_000 },
      start(ctx) { starts++; queueMicrotask(() => ctx.fail('died')); },
    });
    const st = statesOf();
    const runner = new JobRunner(job, { name: 't', onState: st.onState });
    const o = runner.run();
    await st.reached(JobState.Backoff);
    runner.stop();
    const out = await o;
    expect(out.kind).toBe(OutcomeKind.Requested);
    expect(starts).toBe(1);
    expect(exitStatus(out)).toBe(JobExit.Ok);
  });

  it('a device failing under the running job stops it with a typed device-failed error naming the device (exit 4)', async () => {
    const good = new Breakable();
    const bad = new Breakable();
    let stopped = false;
    let ioErr: unknown;
    const job = defineJob({
      devices: { good: 'x:1', bad: 'x:2' },
      restart: { policy: 'on-failure', maxRetries: 9 },
      async start(ctx) {
        bad.broken = true;
        ioErr = await ctx.devices.bad!.write(0n, [sector(1)]).catch((e) => e);
      },
      stop() { stopped = true; },
    });
    const o = await new JobRunner(job, { name: 't', open: opener({ good, bad }) }).run();
    expect(ioErr).toMatchObject({ code: 'protocol' }); // the job sees the device's own error
    expect(o.kind).toBe(OutcomeKind.DeviceFailed);
    expect(o.error).toBeInstanceOf(JobError);
    expect(o.error).toMatchObject({ code: 'job', reason: 'device-failed', device: 'bad' });
    expect(exitStatus(o)).toBe(JobExit.DeviceFailed);
    expect(stopped).toBe(true);
    expect(o.restarts).toBe(0);
    // The good device is flushed; the failed one is not flushed again, both are disconnected.
    expect([good.flushes, good.disconnects, bad.flushes, bad.disconnects]).toEqual([1, 1, 0, 1]);
  });

  it('a device that cannot be opened fails the job (exit 5) after closing the ones already open', async () => {
    const first = new Breakable();
    const open: DeviceOpener = async (name, spec, o) => (name === 'first' ? first : (await import('../../src/block/registry.js')).openBlockDevice(spec, o));
    const st = statesOf();
    let started = false;
    const o = await new JobRunner(defineJob({ devices: { first: 'x:1', second: 'file:/nonexistent/dir/disk.img' }, start() { started = true; } }), { name: 't', open, onState: st.onState }).run();
    expect(started).toBe(false);
    expect(o.kind).toBe(OutcomeKind.OpenFailed);
    expect(o.error).toMatchObject({ reason: 'open-failed', device: 'second' });
    expect(exitStatus(o)).toBe(JobExit.OpenFailed);
    expect(first.disconnects).toBe(1);
    expect(st.list).toEqual([JobState.Opening, JobState.Failed]);
  });

  it('ctx.done() completes the job: stopped, devices released, exit 0', async () => {
    const dev = new Breakable();
    const o = await new JobRunner(defineJob({ devices: { d: 'x:y' }, start(ctx) { setTimeout(() => ctx.done(), 1); } }), { name: 't', open: opener({ d: dev }) }).run();
    expect(o.kind).toBe(OutcomeKind.Completed);
    expect(exitStatus(o)).toBe(JobExit.Ok);
    expect(dev.disconnects).toBe(1);
  });

  it('a stop() that hangs past the timeout is reported (exit 6) and the devices are still released', async () => {
    const dev = new Breakable();
    const job = defineJob({ devices: { d: 'x:y' }, start() {}, stop: () => new Promise<void>(() => undefined) });
    const st = statesOf();
    const runner = new JobRunner(job, { name: 't', open: opener({ d: dev }), stopTimeoutMs: 50, onState: st.onState });
    const o = runner.run();
    await st.reached(JobState.Running);
    runner.stop();
    const out = await o;
    expect(out.kind).toBe(OutcomeKind.Requested);
    expect(out.stopErrors[0]).toMatchObject({ code: 'job', reason: 'stop-failed' });
    expect(exitStatus(out)).toBe(JobExit.StopFailed);
    expect(dev.disconnects).toBe(1);
  });

  it('a stop while a device is still opening waits for it and closes it', async () => {
    const dev = new Breakable();
    let release!: () => void;
    const gate = new Promise<void>((r) => { release = r; });
    const open: DeviceOpener = async () => { await gate; return dev; };
    let started = false;
    const runner = new JobRunner(defineJob({ devices: { d: 'x:y' }, start() { started = true; } }), { name: 't', open });
    const o = runner.run();
    runner.stop();
    release();
    const out = await o;
    expect(out.kind).toBe(OutcomeKind.Requested);
    expect(started).toBe(false);
    expect(dev.disconnects).toBe(1);
  });

  it('restartDelay doubles from backoffMs, caps at maxBackoffMs, and stops after maxRetries', () => {
    const p = { policy: 'on-failure', maxRetries: 4, backoffMs: 100, maxBackoffMs: 350 } as const;
    expect([1, 2, 3, 4, 5].map((n) => restartDelay(p, n))).toEqual([100, 200, 350, 350, undefined]);
    expect(restartDelay({ policy: 'never' }, 1)).toBeUndefined();
  });

  it('refuses malformed jobs with a typed bad-module error', () => {
    const bad = [
      {},
      { devices: {}, start: 1 },
      { devices: { 'bad name': 'memory:1MiB' }, start() {} },
      { devices: { a: 'nocolon' }, start() {} },
      { devices: {}, start() {}, restart: { policy: 'always' } },
      { devices: {}, start() {}, restart: { policy: 'on-failure', maxRetries: -1 } },
      { devices: {}, start() {}, name: '../x' },
    ];
    for (const j of bad) expect(() => defineJob(j as never), JSON.stringify(j)).toThrow(expect.objectContaining({ code: 'job', reason: 'bad-module' }));
  });
});
