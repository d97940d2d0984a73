/**
 * What a fuzz target is. A target is one module under tools/fuzz/targets/
 * exporting a `FuzzTarget`; the registry (targets/index.ts) lists them by
 * name, so `frontend` and `backend` plug in as two more modules.
 *
 * rust-vmm style: a case is a plain, serialisable *sequence of API calls*
 * (or, for byte-level parsers, the bytes themselves). fast-check generates
 * and shrinks it; `runCase` interprets it and throws `FuzzViolation` (or
 * anything else) when an invariant breaks. Cases must be plain data: numbers,
 * strings, booleans, BigInt, Uint8Array, arrays and objects — that is what a
 * saved fixture can hold (see serialize.ts).
 */
import type * as fc from 'fast-check';

export interface FuzzHarness<T> {
  /** Generator of one case. Must be deterministic given fast-check's seed. */
  readonly arbitrary: fc.Arbitrary<T>;
  /** Run one case; throw on any broken invariant. May be sync or async. */
  runCase(value: T): void | Promise<void>;
  /** Human rendering of a (shrunk) case, one operation per line. */
  format(value: T): string;
  /** One line of outcome counts so far (what the cases reached), printed at the end of a run. */
  coverage?(): string;
  /** Release what `setup` took (workers, sockets). Optional. */
  dispose?(): void | Promise<void>;
}

/** How a harness is built (tests compare the variants; the CLI uses the defaults). */
export interface FuzzSetupOptions {
  /**
   * Driver targets: build a new simulated machine per case instead of
   * reusing one with a checked reset (peers/world.ts WorldPool). Same cases,
   * same verdicts, slower: the reference the reuse is tested against.
   */
  freshWorlds?: boolean;
}

export interface FuzzTarget<T = unknown> {
  readonly name: string;
  /** One line for `xenpv fuzz --list`. */
  readonly summary: string;
  /** Wall-clock budget of one case; exceeding it is a failure (a hang). */
  readonly caseDeadlineMs: number;
  /**
   * Build what cases share (engines over fresh memories, a simulated
   * xenstored). Throws `FuzzPrerequisiteError` naming how to get what is
   * missing (e.g. "run npm run asbuild").
   */
  setup(opts?: FuzzSetupOptions): Promise<FuzzHarness<T>>;
}

/** An invariant a case broke. `detail` is printed under the message. */
export class FuzzViolation extends Error {
  constructor(message: string, readonly detail?: unknown) {
    super(message);
    this.name = 'FuzzViolation';
  }
}

/** Something a target needs is not built or installed. */
export class FuzzPrerequisiteError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FuzzPrerequisiteError';
  }
}

/** Assert helper for targets: throw a FuzzViolation unless `cond`. */
export function check(cond: boolean, message: string, detail?: unknown): asserts cond {
  if (!cond) throw new FuzzViolation(message, detail);
}

/** Deep equality for plain case data (numbers, bigint, strings, arrays, objects, bytes). */
export function same(a: unknown, b: unknown): boolean {
  if (Object.is(a, b)) return true;
  if (typeof a !== typeof b || a === null || b === null || typeof a !== 'object') return false;
  if (a instanceof Uint8Array || b instanceof Uint8Array) {
    if (!(a instanceof Uint8Array && b instanceof Uint8Array) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
    return true;
  }
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const ka = Object.keys(a as object);
  const kb = Object.keys(b as object);
  if (ka.length !== kb.length) return false;
  for (const k of ka) {
    if (!same((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k])) return false;
  }
  return true;
}

/** Assert two values are deep-equal, printing both when not. */
export function checkSame(actual: unknown, expected: unknown, what: string): void {
  if (!same(actual, expected)) throw new FuzzViolation(`${what} differ`, { actual, expected });
}
