/**
 * The xenstore proxy an unprivileged job child talks through: a real
 * XenstoreClient on the child's side and our xenstored behind the proxy.
 * The child (domain 5) owns two vbds in xenstore but the proxy is told to
 * allow only one: the other device's paths, special paths and control
 * operations must come back EACCES (and be logged), while its own device's
 * paths read, write, watch and transact as with xenstored itself.
 */
import { describe, expect, it } from 'vitest';
import { XenstoreClient } from '../../src/xenstore/client.js';
import { isXenstoreError } from '../../src/xenstore/errors.js';
import { XenstoreServer } from '../../src/xenstore/server/server.js';
import { createChannelPair } from '../../src/xenstore/transport/in-process.js';
import { XsOp, nulTerminated } from '../../src/xenstore/wire.js';
import { XenstoreProxy } from '../../src/jobs/xs-proxy.js';

const DOM = 5;
const MINE = `/local/domain/${DOM}/device/vbd/51712`;
const OTHER = `/local/domain/${DOM}/device/vbd/51728`;
const BACK = `/local/domain/1/backend/vbd/${DOM}/51712`;

async function setup() {
  const xenstored = new XenstoreServer();
  const dom0 = xenstored.connect(0);
  for (const dir of [MINE, OTHER]) {
    await dom0.write(`${dir}/state`, '1');
    await dom0.setPermissions(dir, [{ domid: DOM, perm: 'n' }]);
    await dom0.setPermissions(`${dir}/state`, [{ domid: DOM, perm: 'n' }]);
  }
  await dom0.write(`${BACK}/state`, '2');
  await dom0.setPermissions(`${BACK}`, [{ domid: 1, perm: 'r' }]);
  await dom0.setPermissions(`${BACK}/state`, [{ domid: 1, perm: 'r' }]);
  const [childEnd, proxyEnd] = createChannelPair();
  const logs: string[] = [];
  const proxy = new XenstoreProxy(proxyEnd, xenstored, { domid: DOM, allow: [MINE, BACK], log: (l) => logs.push(l) });
  const child = new XenstoreClient(childEnd);
  return { xenstored, dom0, proxy, child, logs };
}

const eacces = (p: Promise<unknown>) => expect(p).rejects.toSatisfy((e) => isXenstoreError(e, 'EACCES'));

describe('xenstore proxy for a job child', () => {
  it("passes reads, writes, watches and transactions on the child's own device and its backend", async () => {
    const { child, dom0, xenstored } = await setup();
    expect(await child.read(`${MINE}/state`)).toBe('1');
    expect(await child.read('device/vbd/51712/state')).toBe('1'); // relative to /local/domain/5
    await child.write(`${MINE}/ring-ref`, '8');
    expect(await dom0.read(`${MINE}/ring-ref`)).toBe('8');
    expect(await child.read(`${BACK}/state`)).toBe('2');
    const w = await child.watch(`${BACK}/state`);
    const it = w[Symbol.asyncIterator]();
    expect((await it.next()).value).toMatchObject({ path: `${BACK}/state` }); // the immediate event
    await dom0.write(`${BACK}/state`, '4');
    expect((await it.next()).value).toMatchObject({ path: `${BACK}/state` });
    await child.transaction(async (tx) => { await tx.write(`${MINE}/event-channel`, '3'); });
    expect(await dom0.read(`${MINE}/event-channel`)).toBe('3');
    await w.unwatch();
    await xenstored.close();
  });

  it("refuses another device's paths with EACCES, writes nothing, and logs each refusal", async () => {
    const { child, dom0, proxy, logs, xenstored } = await setup();
    await eacces(child.read(`${OTHER}/state`));
    await eacces(child.write(`${OTHER}/state`, '6'));
    await eacces(child.write('device/vbd/51728/evil', 'x'));
    await eacces(child.directory(`/local/domain/${DOM}/device/vbd`));
    await eacces(child.watch(`${OTHER}`));
    await eacces(child.rm(OTHER));
    await eacces(child.read('/local/domain/0/name'));
    await eacces(child.transaction((tx) => tx.write(`${OTHER}/state`, '6')));
    expect(await dom0.read(`${OTHER}/state`)).toBe('1');
    expect(await dom0.tryRead(`${OTHER}/evil`)).toBeUndefined();
    expect(proxy.refused).toBe(8);
    expect(logs.filter((l) => l.includes(OTHER) && l.endsWith("is outside the job's devices"))).toHaveLength(6);
    expect(logs.every((l) => l.startsWith(`xenstore proxy (dom${DOM}): refused`))).toBe(true);
    // A prefix that only looks like ours (…/517120) is another device.
    await eacces(child.read(`${MINE}0/state`));
    await xenstored.close();
  });

  it('refuses special watches, control operations and other domains\' paths', async () => {
    const { child, xenstored } = await setup();
    await eacces(child.watch('@releaseDomain'));
    await eacces(child.watch('@introduceDomain'));
    await eacces(child.request(XsOp.XS_INTRODUCE, 0, nulTerminated(['9', '1', '2'])));
    await eacces(child.request(XsOp.XS_RESET_WATCHES, 0, new Uint8Array()));
    await eacces(child.request(XsOp.XS_SET_TARGET, 0, nulTerminated(['5', '0'])));
    await eacces(child.getDomainPath(0));
    expect(await child.getDomainPath(DOM)).toBe(`/local/domain/${DOM}`);
    await xenstored.close();
  });

  it("drops the child's xenstored connection and its watches when the child goes", async () => {
    const { child, xenstored } = await setup();
    const before = xenstored.stats();
    await child.watch(`${MINE}/state`);
    expect(xenstored.stats().watches).toBe(before.watches + 1);
    await child.close();
    await new Promise((r) => setTimeout(r, 0));
    const after = xenstored.stats();
    expect(after.watches).toBe(before.watches);
    expect(after.connections).toBe(before.connections - 1);
    await xenstored.close();
  });

  it('closes the connection on a framing violation (length > 4096) without forwarding it', async () => {
    const xenstored = new XenstoreServer();
    const [childEnd, proxyEnd] = createChannelPair();
    const proxy = new XenstoreProxy(proxyEnd, xenstored, { domid: DOM, allow: [MINE] });
    const closed = new Promise<void>((r) => childEnd.onClose(() => r()));
    const hdr = new Uint8Array(16);
    new DataView(hdr.buffer).setUint32(12, 5000, true);
    childEnd.send(hdr);
    await closed;
    expect(proxy.refused).toBe(0);
    await xenstored.close();
  });
});
