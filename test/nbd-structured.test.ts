/**
 * Structured replies and block status of the NBD export, checked by
 * libnbd (nbdsh, nbdinfo: it asks for structured replies by default) and,
 * for what libnbd will not send, by a raw client written here from
 * doc/proto.md ("Structured reply chunk message"). The simple-reply path
 * is checked too, with a libnbd client told not to ask.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryBlockDevice } from '../src/block/memory.js';
import type { BlockDevice } from '../src/block/types.js';
import { IoError } from '../src/errors.js';
import { ENV, nbdsh, RawNbdClient, requireNbdTools, run, serveNbd } from './support/nbd.js';

const MiB = 1 << 20;
const EINVAL = 22;
const EIO = 5;

let dir: string;
beforeAll(async () => {
  await requireNbdTools('nbdinfo', 'nbdsh');
  dir = await mkdtemp(join(tmpdir(), 'xenpv-nbd-sr-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const serve = (device: BlockDevice, name = 'disk') => serveNbd(dir, device, name);

/** A memory device whose reads fail (IoError) when they touch [badStart, badEnd) bytes. */
class FlakyDevice extends MemoryBlockDevice {
  constructor(size: number, private readonly badStart: number, private readonly badEnd: number) {
    super({ sizeBytes: size });
  }
  override read(sector: bigint, buffers: Uint8Array[]): Promise<void> {
    const start = Number(sector) * 512;
    const end = start + buffers.reduce((n, b) => n + b.length, 0);
    if (start < this.badEnd && end > this.badStart) return Promise.reject(new IoError(`medium error at byte ${this.badStart}`));
    return super.read(sector, buffers);
  }
}

/** An image with data, a 1 MiB zero run in the middle, and data again. */
async function patterned(size: number): Promise<{ dev: MemoryBlockDevice; bytes: Buffer }> {
  const bytes = randomBytes(size);
  bytes.fill(0, MiB, 2 * MiB);
  bytes.fill(0, 3 * MiB + 4096, 3 * MiB + 3 * 4096);
  const dev = new MemoryBlockDevice({ sizeBytes: size });
  await dev.write(0n, [bytes]);
  return { dev, bytes };
}

describe('NBD structured replies with libnbd', () => {
  it('are negotiated by libnbd, and reads come back whole, holes included, as data/hole chunks at their offsets', async () => {
    const { dev, bytes } = await patterned(4 * MiB);
    const { server, uri } = await serve(dev);
    try {
      const r = await nbdsh(uri, [
        "r['structured'] = h.get_structured_replies_negotiated()",
        "r['df'] = h.can_df()",
        'chunks = []',
        'def cb(subbuf, offset, status, error):',
        '    chunks.append([offset, len(subbuf), status])',
        '    return 0',
        'buf = h.pread_structured(4 * 1048576, 0, cb)',
        "r['chunks'] = sorted(chunks)",
        "r['hex'] = buf.hex()",
        "r['df_read'] = h.pread(65536, 1048576 - 4096, nbd.CMD_FLAG_DF).hex()",
      ].join('\n'));
      expect(r.structured).toBe(true);
      expect(r.df).toBe(true);
      expect(Buffer.from(r.hex as string, 'hex').equals(bytes)).toBe(true);
      expect(Buffer.from(r.df_read as string, 'hex').equals(bytes.subarray(MiB - 4096, MiB - 4096 + 65536))).toBe(true);
      const DATA = 1; // LIBNBD_READ_DATA
      const HOLE = 2; // LIBNBD_READ_HOLE
      expect(r.chunks).toEqual([
        [0, MiB, DATA],
        [MiB, MiB, HOLE],
        [2 * MiB, MiB, DATA],
        [3 * MiB, 4096, DATA],
        [3 * MiB + 4096, 2 * 4096, HOLE],
        [3 * MiB + 3 * 4096, MiB - 3 * 4096, DATA],
      ]);
    } finally {
      await server.close();
    }
  });

  it('report a device failure as an error at its offset, deliver the rest, and the export serves on', async () => {
    const dev = new FlakyDevice(4 * MiB, MiB + 512, MiB + 1024);
    await dev.write(0n, [Buffer.alloc(4 * MiB, 0x77)]);
    const { server, uri } = await serve(dev);
    try {
      const r = await nbdsh(uri, [
        'chunks = []',
        'def cb(subbuf, offset, status, error):',
        '    chunks.append([offset, len(subbuf), status, error.value])',
        '    return 0',
        "r['errno'] = err(lambda: h.pread_structured(3 * 1048576, 0, cb))",
        "r['chunks'] = sorted(chunks)",
        "r['df'] = err(lambda: h.pread(3 * 1048576, 0, nbd.CMD_FLAG_DF))",
        "r['after'] = h.pread(4096, 0) == b'\\x77' * 4096",
      ].join('\n'));
      const DATA = 1;
      const ERROR = 3; // LIBNBD_READ_ERROR
      expect(r.errno).toBe(EIO);
      expect(r.df).toBe(EIO);
      expect(r.after).toBe(true);
      // The first and third MiB arrive; the failing MiB is one error at its
      // start (libnbd hands an error chunk over with an empty buffer).
      expect((r.chunks as number[][]).map(([o, n, s, e]) => [o, n, s, e])).toEqual([
        [0, MiB, DATA, 0],
        [MiB, 0, ERROR, EIO],
        [2 * MiB, MiB, DATA, EIO],
      ]);
    } finally {
      await server.close();
    }
  });

  it('answer bad requests with the errno the spec names, as structured errors', async () => {
    const dev = new MemoryBlockDevice({ sizeBytes: 1 * MiB });
    const { server, uri } = await serve(dev);
    try {
      const r = await nbdsh(uri, [
        "r['structured'] = h.get_structured_replies_negotiated()",
        'size = h.get_size()',
        "r['read_beyond'] = err(lambda: h.pread(4096, size - 512))",
        "r['read_misaligned'] = err(lambda: h.pread(512, 1))",
        "r['read_with_fua'] = err(lambda: h.pread(512, 0, nbd.CMD_FLAG_FUA))",
        "r['write_beyond'] = err(lambda: h.pwrite(b'x' * 4096, size - 512))",
        "h.pwrite(b'\\xab' * 4096, 8192, nbd.CMD_FLAG_FUA)",
        "r['intact'] = h.pread(4096, 8192) == b'\\xab' * 4096",
      ].join('\n'));
      expect(r).toEqual({ structured: true, read_beyond: EINVAL, read_misaligned: EINVAL, read_with_fua: EINVAL, write_beyond: 28, intact: true });
    } finally {
      await server.close();
    }
  });

  it('still serve a client that does not ask for them, with simple replies', async () => {
    const { dev, bytes } = await patterned(4 * MiB);
    const { server, uri } = await serve(dev);
    try {
      const r = await nbdsh(uri, [
        "r['structured'] = h.get_structured_replies_negotiated()",
        "r['df'] = h.can_df()",
        "r['meta'] = h.can_meta_context(nbd.CONTEXT_BASE_ALLOCATION)",
        "r['hex'] = h.pread(4 * 1048576, 0).hex()",
        "r['read_beyond'] = err(lambda: h.pread(4096, h.get_size() - 512))",
        "r['df_flag'] = err(lambda: h.pread(512, 0, nbd.CMD_FLAG_DF))",
      ].join('\n'), 'h.set_request_structured_replies(False)\nh.add_meta_context(nbd.CONTEXT_BASE_ALLOCATION)');
      expect(r.structured).toBe(false);
      expect(r.df).toBe(false);
      expect(r.meta).toBe(false);
      expect(Buffer.from(r.hex as string, 'hex').equals(bytes)).toBe(true);
      expect(r.read_beyond).toBe(EINVAL);
      expect(r.df_flag).toBe(EINVAL); // DF was not offered without structured replies
    } finally {
      await server.close();
    }
  });
});

describe('NBD block status (base:allocation)', () => {
  it('is offered to nbdinfo, and maps the whole export as allocated data', async () => {
    const dev = new MemoryBlockDevice({ sizeBytes: 3 * MiB });
    const { server, uri } = await serve(dev);
    try {
      const info = JSON.parse((await run('nbdinfo', ['--json', uri], { env: ENV })).stdout);
      expect(info.exports[0].contexts).toEqual(['base:allocation']);
      expect(info.exports[0].can_df).toBe(true);
      const map = JSON.parse((await run('nbdinfo', ['--map', '--json', uri], { env: ENV })).stdout);
      expect(map).toEqual([{ offset: 0, length: 3 * MiB, type: 0, description: 'data' }]);
    } finally {
      await server.close();
    }
  });

  it('answers block_status with one extent per request (REQ_ONE honoured), and EINVAL past the end', async () => {
    const dev = new MemoryBlockDevice({ sizeBytes: 1 * MiB });
    const { server, uri } = await serve(dev);
    try {
      const r = await nbdsh(uri, [
        "r['meta'] = h.can_meta_context(nbd.CONTEXT_BASE_ALLOCATION)",
        'seen = []',
        'def cb(metacontext, offset, entries, error):',
        '    seen.append([metacontext, offset, list(entries)])',
        '    return 0',
        'h.block_status(65536, 4096, cb)',
        'h.block_status(65536, 8192, cb, nbd.CMD_FLAG_REQ_ONE)',
        "r['seen'] = seen",
        "r['beyond'] = err(lambda: h.block_status(4096, h.get_size() - 512, cb))",
      ].join('\n'), 'h.add_meta_context(nbd.CONTEXT_BASE_ALLOCATION)');
      expect(r).toEqual({
        meta: true,
        seen: [['base:allocation', 4096, [65536, 0]], ['base:allocation', 8192, [65536, 0]]],
        beyond: EINVAL,
      });
    } finally {
      await server.close();
    }
  });
});

const NBD_OPT_GO = 7;
const NBD_OPT_STRUCTURED_REPLY = 8;
const NBD_OPT_SET_META_CONTEXT = 10;
const NBD_REP_ACK = 1;
const NBD_REP_ERR_INVALID = 0x8000_0003;
const GO_DEFAULT = Buffer.from([0, 0, 0, 0, 0, 0]); // empty name, no info requests

/** Decodes an error chunk's payload: [errno, message, offset?]. */
function errorPayload(p: Buffer): [number, string, bigint | undefined] {
  const len = p.readUInt16BE(4);
  return [p.readUInt32BE(0), p.subarray(6, 6 + len).toString('utf8'), p.length === 6 + len + 8 ? p.readBigUInt64BE(6 + len) : undefined];
}

describe('NBD structured replies against a raw client', () => {
  it('refuses the option with data, and meta contexts before it, with NBD_REP_ERR_INVALID', async () => {
    const { server, path } = await serve(new MemoryBlockDevice({ sizeBytes: MiB }));
    try {
      const c = await RawNbdClient.open(path);
      expect((await c.option(NBD_OPT_STRUCTURED_REPLY, Buffer.from([1])))[0]![0]).toBe(NBD_REP_ERR_INVALID);
      const query = Buffer.alloc(4 + 0 + 4 + 4 + 15);
      query.writeUInt32BE(0, 0); // empty export name
      query.writeUInt32BE(1, 4);
      query.writeUInt32BE(15, 8);
      query.write('base:allocation', 12, 'latin1');
      expect((await c.option(NBD_OPT_SET_META_CONTEXT, query))[0]![0]).toBe(NBD_REP_ERR_INVALID);
      expect(await c.option(NBD_OPT_STRUCTURED_REPLY)).toEqual([[NBD_REP_ACK, Buffer.alloc(0)]]);
      const set = await c.option(NBD_OPT_SET_META_CONTEXT, query);
      expect(set.map(([t]) => t)).toEqual([4, NBD_REP_ACK]); // NBD_REP_META_CONTEXT, then ACK
      expect(set[0]![1].subarray(4).toString()).toBe('base:allocation');
      c.sock.destroy();
    } finally {
      await server.close();
    }
  });

  it('answers an unknown command, a read with bad flags and an unnegotiated block status with one structured error each, then serves', async () => {
    const dev = new MemoryBlockDevice({ sizeBytes: MiB });
    await dev.write(0n, [Buffer.alloc(512, 0x3c)]);
    const { server, path } = await serve(dev);
    try {
      const c = await RawNbdClient.open(path);
      await c.option(NBD_OPT_STRUCTURED_REPLY);
      const go = await c.option(NBD_OPT_GO, GO_DEFAULT);
      const exp = go.find(([t, d]) => t === 3 && d.readUInt16BE(0) === 0)![1]; // NBD_INFO_EXPORT
      expect(exp.readUInt16BE(10) & (1 << 7)).toBe(1 << 7); // NBD_FLAG_SEND_DF, only with structured replies
      for (const [type, flags, cookie] of [[99, 0, 11n], [0, 1 << 4, 12n], [7, 0, 13n]] as const) {
        c.request(type, cookie, 0n, 512, flags);
        const chunks = await c.chunks();
        expect(chunks).toHaveLength(1);
        expect(chunks[0]!.cookie).toBe(cookie);
        expect(chunks[0]!.flags).toBe(1); // NBD_REPLY_FLAG_DONE
        expect(chunks[0]!.type).toBe(0x8001); // NBD_REPLY_TYPE_ERROR
        const [errnum, message] = errorPayload(chunks[0]!.payload);
        expect(errnum).toBe(EINVAL);
        expect(message.length).toBeGreaterThan(0);
      }
      c.request(0, 14n, 0n, 8192);
      const read = await c.chunks();
      expect(read.map((ch) => [ch.type, ch.flags, ch.cookie])).toEqual([[1, 0, 14n], [2, 1, 14n]]); // data, then the hole (DONE)
      expect(read[0]!.payload.readBigUInt64BE(0)).toBe(0n);
      expect(read[0]!.payload.subarray(8).equals(Buffer.concat([Buffer.alloc(512, 0x3c), Buffer.alloc(4096 - 512)]))).toBe(true);
      expect([read[1]!.payload.readBigUInt64BE(0), read[1]!.payload.readUInt32BE(8)]).toEqual([4096n, 4096]);
      c.request(3, 15n, 0n, 0); // flush: NBD_REPLY_TYPE_NONE with DONE
      expect((await c.chunks()).map((ch) => [ch.type, ch.flags, ch.payload.length])).toEqual([[0, 1, 0]]);
      c.request(2, 16n, 0n, 0);
      c.sock.end();
    } finally {
      await server.close();
    }
  });

  it('reports a device read failure as NBD_REPLY_TYPE_ERROR_OFFSET with EIO at the failing piece', async () => {
    const { server, path } = await serve(new FlakyDevice(4 * MiB, 2 * MiB, 2 * MiB + 512));
    try {
      const c = await RawNbdClient.open(path);
      await c.option(NBD_OPT_STRUCTURED_REPLY);
      await c.option(NBD_OPT_GO, GO_DEFAULT);
      c.request(0, 21n, BigInt(MiB), 2 * MiB);
      const chunks = await c.chunks();
      expect(chunks.map((ch) => ch.type)).toEqual([2, 0x8002]); // the good MiB reads as a hole; then the error
      expect(chunks[1]!.flags).toBe(1);
      const [errnum, message, offset] = errorPayload(chunks[1]!.payload);
      expect([errnum, offset]).toEqual([EIO, BigInt(2 * MiB)]);
      expect(message).toContain('medium error');
      c.sock.destroy();
    } finally {
      await server.close();
    }
  });
});
