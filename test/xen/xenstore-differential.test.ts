/**
 * Differential: the same raw xenstore command sequence, byte for byte, sent
 * to the real cxenstored (dom0's socket) and to our XenstoreServer; every
 * reply (type and payload, transaction ids normalised) and every watch event
 * must be the same. Frames are built and parsed by the test's own
 * independent codec (test/xenstore-helpers.ts), not by the code under test.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { frame, RawPeer, startServer, type RunningServer } from '../xenstore-helpers.js';
import { requireDom0, startPrivateXenstored, type PrivateXenstored } from './dom0.js';

const ROOT = '/xenpv-diff';
const REAL_SOCKET = process.env['XENSTORED_PATH'] ?? '/var/run/xenstored/socket';

// Op numbers from xen/io/xs_wire.h.
const OP = {
  DIRECTORY: 1, READ: 2, GET_PERMS: 3, WATCH: 4, UNWATCH: 5, TRANSACTION_START: 6, TRANSACTION_END: 7,
  GET_DOMAIN_PATH: 10, WRITE: 11, MKDIR: 12, RM: 13, SET_PERMS: 14, WATCH_EVENT: 15, ERROR: 16,
} as const;

/** One step: op, payload, and which transaction (by slot) it runs in; `tx: 'new'` stores a started transaction's id. */
interface Step { op: number; payload: string; tx?: number; startsTx?: number }

const z = (...parts: string[]) => parts.map((p) => `${p}\0`).join('');

const STEPS: Step[] = [
  { op: OP.RM, payload: z(ROOT) },
  { op: OP.WRITE, payload: `${ROOT}/a\0` + '1' },
  { op: OP.READ, payload: z(`${ROOT}/a`) },
  { op: OP.READ, payload: z(`${ROOT}/missing`) },
  { op: OP.MKDIR, payload: z(`${ROOT}/d`) },
  { op: OP.MKDIR, payload: z(`${ROOT}/d`) },
  { op: OP.WRITE, payload: `${ROOT}/d/e/f\0` + 'deep' },
  { op: OP.READ, payload: z(`${ROOT}/d/e`) },
  { op: OP.DIRECTORY, payload: z(`${ROOT}/d`) },
  { op: OP.GET_PERMS, payload: z(`${ROOT}/d/e`) },
  { op: OP.SET_PERMS, payload: z(`${ROOT}/d`, 'n0', 'r5') },
  { op: OP.GET_PERMS, payload: z(`${ROOT}/d`) },
  { op: OP.WRITE, payload: `${ROOT}/d/g\0` + 'inherits' },
  { op: OP.GET_PERMS, payload: z(`${ROOT}/d/g`) },
  { op: OP.GET_PERMS, payload: z(`${ROOT}/d/e`) },
  { op: OP.SET_PERMS, payload: z(`${ROOT}/d`, 'x0') },
  { op: OP.SET_PERMS, payload: z(`${ROOT}/missing`, 'n0') },
  { op: OP.WATCH, payload: z(`${ROOT}/d`, 'tok1') },
  { op: OP.WRITE, payload: `${ROOT}/d/h\0` + 'x' },
  { op: OP.RM, payload: z(`${ROOT}/d/e`) },
  { op: OP.READ, payload: z(`${ROOT}/d/e/f`) },
  { op: OP.RM, payload: z(`${ROOT}/d/nothere`) },
  { op: OP.RM, payload: z(`${ROOT}/nothere/deeper`) },
  { op: OP.UNWATCH, payload: z(`${ROOT}/d`, 'tok1') },
  { op: OP.UNWATCH, payload: z(`${ROOT}/d`, 'tok1') },
  { op: OP.WRITE, payload: `${ROOT}/d/after\0` + 'unwatched' },
  { op: OP.TRANSACTION_START, payload: z(''), startsTx: 1 },
  { op: OP.WRITE, payload: `${ROOT}/tx\0` + 'in-tx', tx: 1 },
  { op: OP.READ, payload: z(`${ROOT}/tx`) },
  { op: OP.READ, payload: z(`${ROOT}/tx`), tx: 1 },
  { op: OP.TRANSACTION_END, payload: z('T'), tx: 1 },
  { op: OP.READ, payload: z(`${ROOT}/tx`) },
  { op: OP.TRANSACTION_START, payload: z(''), startsTx: 2 },
  { op: OP.WRITE, payload: `${ROOT}/tx2\0` + 'dropped', tx: 2 },
  { op: OP.TRANSACTION_END, payload: z('F'), tx: 2 },
  { op: OP.READ, payload: z(`${ROOT}/tx2`) },
  { op: OP.TRANSACTION_END, payload: z('T'), tx: 2 },
  { op: OP.WRITE, payload: `${ROOT}/bad path\0` + 'x' },
  { op: OP.READ, payload: z(`${ROOT}/${'x'.repeat(3100)}`) },
  { op: OP.GET_DOMAIN_PATH, payload: z('5') },
  { op: OP.DIRECTORY, payload: z(ROOT) },
  { op: OP.RM, payload: z(ROOT) },
  { op: OP.READ, payload: z(ROOT) },
];

interface Answer { op: number; type: number; payload: string }

async function play(path: string): Promise<{ answers: Answer[]; events: string[] }> {
  const peer = await RawPeer.connect(path);
  const txIds = new Map<number, number>();
  const answers: Answer[] = [];
  try {
    let reqId = 100;
    for (const s of STEPS) {
      const tx = s.tx === undefined ? 0 : txIds.get(s.tx) ?? 0xdead;
      peer.send(frame(s.op, reqId++, tx, Buffer.from(s.payload, 'latin1')));
      const r = await peer.next();
      if (r === undefined) throw new Error(`${path}: connection closed at op ${s.op}`);
      let payload = r.payload;
      if (s.startsTx !== undefined && r.type === OP.TRANSACTION_START) {
        txIds.set(s.startsTx, Number(payload.replace(/\0$/, '')));
        payload = '<tx id>';
      }
      answers.push({ op: s.op, type: r.type, payload });
    }
    const events: string[] = [];
    for (;;) {
      const e = await peer.next({ events: true, timeoutMs: 500 }).catch(() => undefined);
      if (e === undefined) break;
      events.push(`${e.type} ${e.payload}`);
    }
    return { answers, events };
  } finally {
    peer.end();
  }
}

let ours: RunningServer;
let oxenstored: PrivateXenstored | undefined;
beforeAll(async () => {
  requireDom0();
  ours = await startServer();
});
afterAll(async () => { await ours?.stop(); await oxenstored?.stop(); });

function compare(name: string, real: { answers: Answer[]; events: string[] }, mine: { answers: Answer[]; events: string[] }): void {
  const rows = real.answers.map((r, i) => ({ step: i, op: r.op, real: `${r.type} ${JSON.stringify(r.payload)}`, ours: `${mine.answers[i]?.type} ${JSON.stringify(mine.answers[i]?.payload)}` }));
  const differ = rows.filter((r) => r.real !== r.ours);
  expect(differ, `replies that differ:\n${differ.map((d) => `  step ${d.step} op ${d.op}: ${name} ${d.real}, ours ${d.ours}`).join('\n')}`).toEqual([]);
  expect(mine.events).toEqual(real.events);
}

describe('our xenstored against the real ones', () => {
  it('answers the same command sequence with the same replies and watch events', async () => {
    const real = await play(REAL_SOCKET);
    const mine = await play(ours.path);
    compare('cxenstored', real, mine);
    // The sequence did exercise errors, watches and transactions on the real one.
    expect(real.answers.filter((a) => a.type === OP.ERROR).length).toBeGreaterThan(4);
    expect(real.events.length).toBeGreaterThan(2);
  });

  it('answers it as oxenstored does too', async () => {
    oxenstored = await startPrivateXenstored();
    const real = await play(oxenstored.socket);
    const mine = await play(ours.path);
    compare('oxenstored', real, mine);
  });
});
