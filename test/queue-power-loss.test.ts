/**
 * Power loss under the queue, at the device layer: CrashDevice loses power
 * after a random number of writes/flushes and then keeps any mix of the
 * unflushed writes (whole, dropped, torn, garbled). After reopening, every
 * acknowledged push is there, in order, exactly once, with nothing that
 * was never pushed; consumption acknowledged before the crash stays done.
 * The oracle is the test's own item numbering.
 */
import { describe, expect, it } from 'vitest';
import { PersistentQueue } from '../src/queue/index.js';
import { CrashDevice } from './support/crash-device.js';
import { prng } from './support/disk-model.js';

/** Item i: its index as u32, then a pattern; lengths from 4 to ~1.5 sectors. */
function item(i: number): Uint8Array {
  const len = 4 + ((i * 7919) % 760);
  const b = new Uint8Array(len);
  new DataView(b.buffer).setUint32(0, i, true);
  for (let k = 4; k < len; k++) b[k] = (i * 31 + k) & 0xff;
  return b;
}

function indexOf(b: Uint8Array): number {
  const i = new DataView(b.buffer, b.byteOffset).getUint32(0, true);
  if (!Buffer.from(b).equals(item(i))) expect.fail(`item ${i} has the wrong bytes (length ${b.length})`); // the whole item, not just its number
  return i;
}

describe('PersistentQueue on power loss (CrashDevice)', () => {
  it('keeps every acknowledged push and consumption through 300 random power cuts', async () => {
    const rnd = prng(20261201);
    let image: Uint8Array = new Uint8Array(512 * 48);
    {
      const dev = new CrashDevice(image);
      await PersistentQueue.format(dev, { dataSectors: 32n }); // 16 KiB ring: wraps often
      image = dev.liveImage(); // format flushed: live == durable
    }
    let next = 0; // index of the next item to push
    let consumed = 0; // items whose consumption was acknowledged
    let checked = 0;
    for (let run = 0; run < 300; run++) {
      const dev = new CrashDevice(image);
      const q = await PersistentQueue.open(dev);
      // What survived the previous crash: from `consumed` (or a little before it,
      // never past an acknowledged consumption) up to at least every acknowledged push.
      const survivors = await q.popMany(10_000);
      const first = survivors.length ? indexOf(survivors[0]!) : next;
      survivors.forEach((b, k) => expect(indexOf(b)).toBe(first + k));
      expect(first).toBeGreaterThanOrEqual(consumed);
      checked += survivors.length;
      consumed = first + survivors.length;
      next = Math.max(next, consumed);

      dev.dieAfter(Math.floor(rnd() * 40));
      let acked = next; // all pushes below this index were acknowledged
      let popAcked = consumed;
      const producer = (async () => {
        for (;;) {
          const batch = Array.from({ length: 1 + Math.floor(rnd() * 4) }, (_, k) => next + k);
          const oks = await Promise.all(batch.map((i) => q.push(item(i)))).catch(() => undefined);
          if (oks === undefined) return;
          const took = oks.filter(Boolean).length;
          next += took;
          acked = next;
          if (took < batch.length) await new Promise((r) => setImmediate(r));
        }
      })();
      const consumer = (async () => {
        for (;;) {
          const got = await q.popMany(1 + Math.floor(rnd() * 3)).catch(() => undefined);
          if (got === undefined) return;
          if (got.length) {
            expect(indexOf(got[0]!)).toBe(popAcked);
            popAcked += got.length;
          } else await new Promise((r) => setImmediate(r));
        }
      })();
      await Promise.all([producer, consumer]);
      expect(dev.dead).toBe(true);
      image = dev.crashImage(rnd);
      // Recheck on the next open: consumed ≤ first survivor; every push below `acked` survives
      // (survivors, or consumed before), nothing at or past `next` + in-flight exists.
      const after = await PersistentQueue.open(new CrashDevice(image));
      const items = await after.popMany(10_000);
      const lo = items.length ? indexOf(items[0]!) : undefined;
      if (lo !== undefined) {
        expect(lo).toBeGreaterThanOrEqual(popAcked);
        items.forEach((b, k) => expect(indexOf(b)).toBe(lo + k));
        expect(lo + items.length).toBeGreaterThanOrEqual(acked);
        expect(lo + items.length).toBeLessThanOrEqual(next + 4); // at most the batch in flight
      } else {
        expect(popAcked).toBeGreaterThanOrEqual(acked); // nothing left only if all acked items were consumed
      }
      consumed = popAcked;
      next = lo !== undefined ? Math.max(acked, lo + items.length) : Math.max(acked, popAcked);
    }
    expect(checked).toBeGreaterThan(300);
  }, 180_000);

  it('never returns a wrong item when the device lies about flush and drops data writes', async () => {
    // Data sectors never reach the medium, positions do: the checksums must say so.
    const dev0 = new CrashDevice(new Uint8Array(512 * 48));
    await PersistentQueue.format(dev0, { dataSectors: 32n });
    const dev = new CrashDevice(dev0.liveImage(), 512, { dropWritesAt: (off) => off >= 8 * 512 });
    const q = await PersistentQueue.open(dev);
    expect(await q.push(item(1))).toBe(true);
    const reader = await PersistentQueue.open(dev);
    await expect(reader.pop()).rejects.toMatchObject({ code: 'io' });
  });

  it('refuses pushes after a failed commit until reopened, and loses no acknowledged item', async () => {
    const dev0 = new CrashDevice(new Uint8Array(512 * 48));
    await PersistentQueue.format(dev0, { dataSectors: 32n });
    const dev = new CrashDevice(dev0.liveImage());
    const q = await PersistentQueue.open(dev);
    expect(await q.push(item(0))).toBe(true);
    dev.dieAfter(1);
    await expect(q.push(item(1))).rejects.toMatchObject({ code: 'io' });
    await expect(q.push(item(2))).rejects.toMatchObject({ code: 'io' });
    const again = await PersistentQueue.open(new CrashDevice(dev.crashImage(prng(3))));
    const items = await again.popMany(10);
    expect(items.map(indexOf)).toEqual([0]);
  });
});
