/**
 * JSON with the two value kinds fuzz cases carry that JSON lacks: BigInt
 * (u64 ids and sectors) and Uint8Array (byte-level cases). Tagged objects
 * keep a saved case human-readable:
 *
 *   123n            -> {"$bigint":"123"}
 *   Uint8Array[1,2] -> {"$bytes":"0102"}
 *   undefined       -> {"$undefined":true}   (inside arrays; object keys are dropped)
 */

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

function encode(v: unknown): Json {
  if (typeof v === 'bigint') return { $bigint: v.toString() };
  if (v instanceof Uint8Array) return { $bytes: Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('hex') };
  if (v === undefined) return { $undefined: true };
  if (v === null || typeof v === 'boolean' || typeof v === 'string') return v;
  if (typeof v === 'number') {
    if (Number.isFinite(v) && !Object.is(v, -0)) return v;
    return { $number: Object.is(v, -0) ? '-0' : String(v) };
  }
  if (Array.isArray(v)) return v.map(encode);
  if (typeof v === 'object') {
    const out: { [k: string]: Json } = {};
    for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
      if (x !== undefined) out[k] = encode(x);
    }
    return out;
  }
  throw new TypeError(`cannot serialise a ${typeof v}`);
}

function decode(v: Json): unknown {
  if (Array.isArray(v)) return v.map(decode);
  if (v !== null && typeof v === 'object') {
    if (typeof v.$bigint === 'string') return BigInt(v.$bigint);
    if (typeof v.$bytes === 'string') return new Uint8Array(Buffer.from(v.$bytes, 'hex'));
    if (v.$undefined === true) return undefined;
    if (typeof v.$number === 'string') return Number(v.$number);
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) out[k] = decode(x);
    return out;
  }
  return v;
}

/** Serialise a fuzz value (BigInt and byte arrays included) to pretty JSON. */
export function toJson(value: unknown, indent = 2): string {
  return JSON.stringify(encode(value), null, indent);
}

/** Parse what `toJson` wrote back into the original value. */
export function fromJson(text: string): unknown {
  return decode(JSON.parse(text) as Json);
}

/** The tagged JSON tree (for embedding a value inside a larger record). */
export const toTagged = encode;
export const fromTagged = (v: unknown): unknown => decode(v as Json);
