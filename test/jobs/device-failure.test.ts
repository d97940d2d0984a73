/**
 * A real xen: device failing under a running job: our blkfront (opened
 * through the registry) against the scriptable hostile backend of
 * tools/fuzz/peers. The backend serves correctly, then answers a request
 * with an id that is not in flight, a protocol violation after which the
 * device fails closed (test/hostile-backend.test.ts). The job must be
 * stopped, its device released, and the outcome a typed device-failed error.
 */
import { afterEach, describe, expect, it } from 'vitest';
import '../../src/blkfront/flavour.js';
import { JobError } from '../../src/jobs/errors.js';
import { JobExit, OutcomeKind, exitStatus } from '../../src/jobs/exit.js';
import { defineJob } from '../../src/jobs/job.js';
import { JobRunner } from '../../src/jobs/runner.js';
import { HostileBackend } from '../../tools/fuzz/peers/hostile-backend.js';
import { OP_WRITE, RSP_OKAY } from '../../tools/fuzz/peers/blkif-wire.js';
import { createWorld, type World } from '../../tools/fuzz/peers/world.js';

let world: World | undefined;
afterEach(async () => { await world?.stop(); world = undefined; });

describe('a xen: device failing under a running job', () => {
  it('stops the job, releases the device, and ends with device-failed naming it (exit 4)', async () => {
    world = await createWorld();
    const w = world;
    const be = new HostileBackend(w.peer, { frontendId: 0, frontend: w.paths.frontend, backend: w.paths.backend });
    let served = 0;
    be.onRequest = (r, b) => {
      if (++served <= 5) return b.serve(r);
      // Sixth request: answer an id that is not in flight.
      b.respond({ id: r.req.id + 1000n, op: OP_WRITE, status: RSP_OKAY });
      b.publish();
    };
    let writes = 0;
    let stopCalled = false;
    let lastError: unknown;
    const job = defineJob({
      devices: { disk: 'xen:xvda' },
      deviceOptions: { disk: { platform: w.dom0, backendDomid: w.peer.domid, blkfront: { persistent: false, maxRingPageOrder: 0 } } },
      restart: { policy: 'on-failure', maxRetries: 5, backoffMs: 1 },
      start(ctx) {
        void (async () => {
          while (!ctx.signal.aborted) {
            try {
              await ctx.devices.disk!.write(BigInt(writes * 8), [new Uint8Array(4096).fill(writes)]);
              writes++;
            } catch (err) {
              lastError = err;
              return;
            }
          }
        })();
      },
      stop() { stopCalled = true; },
    });
    const runner = new JobRunner(job, { name: 'victim' });
    const outcome = runner.run();
    await be.handshake();
    const o = await outcome;
    expect(writes).toBe(5);
    expect(lastError).toMatchObject({ code: 'protocol' });
    expect(stopCalled).toBe(true);
    expect(o.kind).toBe(OutcomeKind.DeviceFailed);
    expect(o.restarts).toBe(0); // a device failure is not a crash to restart from
    expect(o.error).toBeInstanceOf(JobError);
    expect(o.error).toMatchObject({ code: 'job', reason: 'device-failed', device: 'disk' });
    expect((o.error as JobError).cause).toMatchObject({ code: 'protocol' });
    expect(exitStatus(o)).toBe(JobExit.DeviceFailed);
    // Released: the disconnected blkfront holds no event-channel port.
    expect(w.dom0.evtchn.openPorts()).toEqual([]);
    expect(served).toBe(6);
  });
});
