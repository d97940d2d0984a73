import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createConnection, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  connectForeignEventChannels,
  ForeignEventChannels,
  ForeignEvtchnListener,
  ForeignPortState,
} from '../src/sim/evtchn-socket.js';
import { ForeignEvtchnError } from '../src/native/errors.js';
import { buildPeers, PEERS_BIN } from './peers/build-peers.js';

const tick = (ms = 20): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Independent encoder of the 12-byte wire message, from the documented layout. */
function msg(op: number, port: number, arg: number): Buffer {
  const b = Buffer.alloc(12);
  b.writeUInt32LE(op, 0); b.writeUInt32LE(port, 4); b.writeUInt32LE(arg, 8);
  return b;
}

async function until(cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await tick(5);
  }
}

describe('ForeignEventChannels over a unix socket', () => {
  let dir: string;
  let listener: ForeignEvtchnListener;
  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'xenpv-evtchn-'));
    listener = await ForeignEvtchnListener.listen(join(dir, 'evtchn.sock'));
  });
  afterEach(async () => {
    await listener.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function pair(): Promise<[ForeignEventChannels, ForeignEventChannels]> {
    const accepted = listener.accept(0, 5);
    const b = await connectForeignEventChannels(listener.path, 5, 0);
    return [await accepted, b];
  }

  it('binds, notifies both ways, and closes like EVTCHNOP_*', async () => {
    const [dom0, domU] = await pair();
    const p = dom0.allocUnbound(5);
    expect(dom0.portState(p)).toBe(ForeignPortState.Unbound);
    const q = domU.bindInterdomain(0, p);
    await dom0.waitBound(p);
    expect(dom0.remotePortOf(p)).toBe(q);
    const got0: number[] = [];
    const gotU: number[] = [];
    dom0.setHandler(p, (port) => got0.push(port));
    domU.setHandler(q, (port) => gotU.push(port));
    domU.notify(q);
    dom0.notify(p);
    await until(() => got0.length === 1 && gotU.length === 1);
    expect(got0).toEqual([p]);
    expect(gotU).toEqual([q]);
    domU.close(q);
    await until(() => dom0.portState(p) === ForeignPortState.Unbound);
    dom0.notify(p); // unbound: dropped silently, as EVTCHNOP_send
    expect(domU.openPorts()).toEqual([]);
    dom0.dispose();
    domU.dispose();
  });

  it('holds events while masked and delivers once on unmask; no handler means pending', async () => {
    const [dom0, domU] = await pair();
    const p = dom0.allocUnbound(5);
    const q = domU.bindInterdomain(0, p);
    await dom0.waitBound(p);
    // A second channel on the same link: the link is one ordered stream, so
    // once its event is delivered the three SENDs before it have arrived.
    const fence = dom0.allocUnbound(5);
    const fenceQ = domU.bindInterdomain(0, fence);
    await dom0.waitBound(fence);
    let fenced = false;
    dom0.setHandler(fence, () => { fenced = true; });
    const got: number[] = [];
    dom0.mask(p);
    dom0.setHandler(p, (port) => got.push(port));
    domU.notify(q); domU.notify(q); domU.notify(q);
    domU.notify(fenceQ);
    await until(() => fenced);
    expect(got).toEqual([]);
    dom0.unmask(p);
    await until(() => got.length > 0);
    await tick(20);
    expect(got).toEqual([p]); // one pending bit, one delivery
    dom0.setHandler(p, null);
    domU.notify(q);
    await tick(30);
    const later: number[] = [];
    dom0.setHandler(p, (port) => later.push(port));
    await until(() => later.length === 1);
    dom0.dispose(); domU.dispose();
  });

  it('peer death: every port becomes unbound, onPeerGone fires, no handler after dispose', async () => {
    const [dom0, domU] = await pair();
    const p = dom0.allocUnbound(5);
    domU.bindInterdomain(0, p);
    await dom0.waitBound(p);
    const gone: string[] = [];
    dom0.onPeerGone((r) => gone.push(r));
    let calls = 0;
    dom0.setHandler(p, () => { calls++; });
    domU.dispose();
    await until(() => gone.length === 1);
    expect(dom0.connected).toBe(false);
    expect(dom0.portState(p)).toBe(ForeignPortState.Unbound);
    expect(() => dom0.notify(p)).not.toThrow();
    expect(() => dom0.bindInterdomain(5, 1)).toThrow(ForeignEvtchnError);
    dom0.dispose();
    expect(dom0.openPorts()).toEqual([]);
    expect(calls).toBe(0);
    expect(() => dom0.allocUnbound(5)).toThrow(ForeignEvtchnError);
  });

  it('waitBound rejects when the link dies before the peer binds', async () => {
    const [dom0, domU] = await pair();
    const p = dom0.allocUnbound(5);
    const w = dom0.waitBound(p, 5000);
    domU.dispose();
    await expect(w).rejects.toBeInstanceOf(ForeignEvtchnError);
    dom0.dispose();
  });

  it('refuses another remote domain, unknown ports, bad remote ports', async () => {
    const [dom0, domU] = await pair();
    expect(() => dom0.allocUnbound(7)).toThrow(ForeignEvtchnError);
    expect(() => dom0.notify(42)).toThrow(ForeignEvtchnError);
    expect(() => domU.bindInterdomain(0, 0)).toThrow(ForeignEvtchnError);
    expect(() => domU.bindInterdomain(0, 1.5)).toThrow(ForeignEvtchnError);
    dom0.dispose(); domU.dispose();
  });

  it('a hostile peer: bogus binds are answered with CLOSE, sends to unknown ports ignored, garbage ends the link', async () => {
    const accepted = listener.accept(0, 5);
    const raw: Socket = createConnection(listener.path);
    await new Promise((r) => raw.once('connect', r));
    const dom0 = await accepted;
    const p = dom0.allocUnbound(5);
    let calls = 0;
    dom0.setHandler(p, () => { calls++; });
    const replies: Buffer[] = [];
    raw.on('data', (d: Buffer) => replies.push(d));
    raw.write(msg(1, 999, 3)); // bind to a port we never allocated
    raw.write(msg(2, p, 0)); // send before binding: dropped
    raw.write(msg(2, 12345, 0)); // unknown port
    await until(() => replies.length > 0);
    expect(Buffer.concat(replies).subarray(0, 12)).toEqual(msg(3, 3, 0));
    expect(calls).toBe(0);
    raw.write(msg(1, p, 9)); // proper bind, split across two writes
    await until(() => dom0.remotePortOf(p) === 9);
    const split = msg(2, p, 0);
    raw.write(split.subarray(0, 5));
    await tick(10);
    raw.write(split.subarray(5));
    await until(() => calls === 1);
    raw.write(msg(77, p, 0)); // unknown op: the link is cut, we survive
    await until(() => !dom0.connected);
    expect(dom0.portState(p)).toBe(ForeignPortState.Unbound);
    raw.destroy();
    dom0.dispose();
  });

  describe('across processes (C peer test/peers/evtchn-echo.c)', () => {
    beforeAll(() => buildPeers());

    it('ping-pongs N events with a C process, then sees its close and its exit', async () => {
      const N = 200;
      const accepted = listener.accept(0, 5);
      const dom0Port = 1;
      const child = spawn(join(PEERS_BIN, 'evtchn-echo'), [listener.path, String(dom0Port), String(N)], { stdio: ['ignore', 'pipe', 'pipe'] });
      const exit = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
      const dom0 = await accepted;
      const p = dom0.allocUnbound(5);
      expect(p).toBe(dom0Port);
      await dom0.waitBound(p);
      let echoes = 0;
      let wake: (() => void) | undefined;
      dom0.setHandler(p, () => { echoes++; wake?.(); });
      for (let i = 0; i < N; i++) {
        const got = new Promise<void>((r) => { wake = r; });
        dom0.notify(p);
        await got;
      }
      expect(echoes).toBe(N);
      expect(await exit).toBe(0);
      await until(() => !dom0.connected);
      expect(dom0.portState(p)).toBe(ForeignPortState.Unbound);
      dom0.dispose();
    });

    it('a killed C peer leaves us with unbound ports and no crash', async () => {
      const accepted = listener.accept(0, 5);
      const child = spawn(join(PEERS_BIN, 'evtchn-echo'), [listener.path, '1', '1000000'], { stdio: 'ignore' });
      const dom0 = await accepted;
      const p = dom0.allocUnbound(5);
      await dom0.waitBound(p);
      const gone = new Promise<string>((r) => dom0.onPeerGone(r));
      child.kill('SIGKILL');
      await gone;
      expect(dom0.portState(p)).toBe(ForeignPortState.Unbound);
      dom0.notify(p);
      dom0.dispose();
    });
  });
});
