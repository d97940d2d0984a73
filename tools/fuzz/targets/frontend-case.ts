/**
 * `frontend` cases: a device configuration and a sequence of frontend calls
 * and hostile-backend behaviours (rust-vmm style: plain data, shrinkable).
 */
import * as fc from 'fast-check';

/** Disk of the hostile backend: 256 KiB (512 sectors), small enough to verify whole at the end. */
export const FE_DISK_SECTORS = 512;

/** How a held request is answered. */
export type Answer =
  | 'ok' //       serve it correctly (I/O, right id/op, OKAY)
  | 'error' //    right id/op, BLKIF_RSP_ERROR, no I/O
  | 'eopnotsupp'
  | 'noIo' //     right id/op, OKAY, but no I/O done (a lie)
  | 'badId' //    id replaced by `v` (maybe another in-flight id)
  | 'badOp' //    op replaced by `v & 0xff`
  | 'badStatus'; // status replaced by `v` (int16)

export type FeOp =
  | { k: 'read'; s: number; n: number }
  | { k: 'write'; s: number; n: number }
  | { k: 'flush' }
  /** Backend holds new requests (true) or serves them at once (false). */
  | { k: 'hold'; on: boolean }
  /** Answer the held request `pick % held`; publish now or leave it for a later publish. */
  | { k: 'answer'; pick: number; how: Answer; v: number; publish: boolean }
  | { k: 'publish' }
  /** Write again a copy of the response `back` answers ago, publish. */
  | { k: 'dup'; back: number }
  /** rsp_prod = rsp_prod_pvt + delta (int32), notify. */
  | { k: 'rspProd'; delta: number }
  /** Rewrite a field of the response `back` slots behind rsp_prod_pvt (published: double fetch). */
  | { k: 'rewrite'; back: number; field: 'id' | 'op' | 'status'; v: number }
  | { k: 'keep'; on: boolean }
  /** Write `byte` into every data page still kept mapped. */
  | { k: 'scribble'; byte: number }
  | { k: 'storm'; n: number }
  /** Write the backend state node (flap); `v` may be garbage. */
  | { k: 'state'; v: string }
  /** Let everything go and do the handshake again. */
  | { k: 'reconnect' }
  /** Write a nonsense value into one of the backend's keys; `kick` rewrites state=Connected (refresh). */
  | { k: 'key'; key: string; v: string; kick: boolean }
  | { k: 'tick'; n: number };

export interface FeCase {
  engine: 'wasm' | 'js';
  order: number;
  persistent: boolean;
  /** Event storm limit given to Blkfront (small so storms can reach it). */
  stormLimit: number;
  ops: FeOp[];
}

const u32 = fc.integer({ min: 0, max: 0xffff_ffff });
const range = fc.integer({ min: 1, max: 40 }).chain((n) => fc.record({ s: fc.integer({ min: 0, max: FE_DISK_SECTORS - n }), n: fc.constant(n) }));

const KEYS = ['sectors', 'sector-size', 'physical-sector-size', 'info', 'feature-flush-cache', 'feature-barrier', 'feature-discard', 'feature-persistent', 'feature-max-indirect-segments', 'max-ring-page-order', 'discard-granularity'];
const NONSENSE = fc.oneof(
  fc.constantFrom('', 'abc', '-1', '0', '1', '7', '4096', '99999999999999999999', '0x10', ' 1', '1.5', '18446744073709551616', '\u00ff'),
  fc.string({ maxLength: 12 }),
  u32.map(String),
);

const op: fc.Arbitrary<FeOp> = fc.oneof(
  { weight: 6, arbitrary: range.map((r) => ({ k: 'read' as const, ...r })) },
  { weight: 6, arbitrary: range.map((r) => ({ k: 'write' as const, ...r })) },
  { weight: 1, arbitrary: fc.constant({ k: 'flush' as const }) },
  { weight: 3, arbitrary: fc.boolean().map((on) => ({ k: 'hold' as const, on })) },
  {
    weight: 8,
    arbitrary: fc.record({
      k: fc.constant('answer' as const),
      pick: fc.nat(64),
      how: fc.oneof(
        { weight: 8, arbitrary: fc.constant('ok' as const) },
        { weight: 4, arbitrary: fc.constantFrom('error' as const, 'eopnotsupp' as const, 'noIo' as const, 'badId' as const, 'badOp' as const, 'badStatus' as const) },
      ),
      v: fc.oneof(fc.integer({ min: -3, max: 40 }), u32, fc.integer({ min: -32768, max: 32767 })),
      publish: fc.boolean(),
    }),
  },
  { weight: 2, arbitrary: fc.constant({ k: 'publish' as const }) },
  { weight: 1, arbitrary: fc.nat(4).map((back) => ({ k: 'dup' as const, back })) },
  { weight: 1, arbitrary: fc.oneof(fc.integer({ min: -40, max: 40 }), fc.integer({ min: -0x8000_0000, max: 0x7fff_ffff })).map((delta) => ({ k: 'rspProd' as const, delta })) },
  {
    weight: 1,
    arbitrary: fc.record({ k: fc.constant('rewrite' as const), back: fc.integer({ min: 1, max: 4 }), field: fc.constantFrom('id' as const, 'op' as const, 'status' as const), v: fc.oneof(fc.integer({ min: -3, max: 40 }), u32) }),
  },
  { weight: 1, arbitrary: fc.boolean().map((on) => ({ k: 'keep' as const, on })) },
  { weight: 1, arbitrary: fc.integer({ min: 0, max: 255 }).map((byte) => ({ k: 'scribble' as const, byte })) },
  { weight: 1, arbitrary: fc.integer({ min: 1, max: 60 }).map((n) => ({ k: 'storm' as const, n })) },
  { weight: 1, arbitrary: fc.oneof(fc.integer({ min: 0, max: 9 }).map(String), NONSENSE).map((v) => ({ k: 'state' as const, v })) },
  { weight: 1, arbitrary: fc.constant({ k: 'reconnect' as const }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('key' as const), key: fc.constantFrom(...KEYS), v: NONSENSE, kick: fc.boolean() }) },
  { weight: 2, arbitrary: fc.integer({ min: 1, max: 5 }).map((n) => ({ k: 'tick' as const, n })) },
);

export const feCase: fc.Arbitrary<FeCase> = fc.record({
  engine: fc.oneof({ weight: 4, arbitrary: fc.constant('wasm' as const) }, { weight: 1, arbitrary: fc.constant('js' as const) }),
  order: fc.integer({ min: 0, max: 2 }),
  persistent: fc.boolean(),
  stormLimit: fc.oneof(fc.integer({ min: 1, max: 80 }), fc.constant(100_000)),
  ops: fc.array(op, { maxLength: 30 }),
});

export function formatFeCase(c: FeCase): string {
  const head = `engine ${c.engine}, ring-page-order ${c.order}, persistent ${c.persistent}, storm limit ${c.stormLimit}`;
  return [head, ...c.ops.map((o, i) => `${String(i).padStart(3)}  ${JSON.stringify(o)}`)].join('\n');
}
