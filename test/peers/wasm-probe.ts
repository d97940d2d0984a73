/**
 * A hand-assembled Wasm module importing a shared memory, with
 * `store(addr, value)` (i32.store) and `load(addr) -> i32` (i32.load):
 * proves that *Wasm* stores and loads hit mapped pages. Independent of the
 * project's AssemblyScript build.
 */
function leb(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n !== 0) b |= 0x80;
    out.push(b);
  } while (n !== 0);
  return out;
}

function section(id: number, body: number[]): number[] {
  return [id, ...leb(body.length), ...body];
}

const str = (s: string): number[] => [s.length, ...Buffer.from(s, 'ascii')];

export interface WasmProbe {
  store(addr: number, value: number): void;
  load(addr: number): number;
}

export function wasmProbe(memory: WebAssembly.Memory): WasmProbe {
  const pages = memory.buffer.byteLength / 65536;
  const types = section(1, [2, 0x60, 2, 0x7f, 0x7f, 0, 0x60, 1, 0x7f, 1, 0x7f]);
  // import env.memory: memory, flags 3 = shared + has max
  const imports = section(2, [1, ...str('env'), ...str('memory'), 0x02, 0x03, ...leb(pages), ...leb(pages)]);
  const funcs = section(3, [2, 0, 1]);
  const exports = section(7, [2, ...str('store'), 0x00, 0, ...str('load'), 0x00, 1]);
  const storeBody = [0, 0x20, 0, 0x20, 1, 0x36, 2, 0, 0x0b]; // local.get 0; local.get 1; i32.store align=2 off=0
  const loadBody = [0, 0x20, 0, 0x28, 2, 0, 0x0b]; // local.get 0; i32.load
  const code = section(10, [2, ...leb(storeBody.length), ...storeBody, ...leb(loadBody.length), ...loadBody]);
  const bytes = new Uint8Array([0x00, 0x61, 0x73, 0x6d, 1, 0, 0, 0, ...types, ...imports, ...funcs, ...exports, ...code]);
  const inst = new WebAssembly.Instance(new WebAssembly.Module(bytes), { env: { memory } });
  const e = inst.exports as unknown as { store(a: number, v: number): void; load(a: number): number };
  return { store: (a, v) => e.store(a, v), load: (a) => e.load(a) >>> 0 };
}
