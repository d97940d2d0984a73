/**
 * Builds and reads test/golden/xen-layout.c: the golden values of both ABIs,
 * computed by gcc from Debian's libxen-dev headers.
 *
 * - x86_64-abi: compiled and run natively; it prints JSON.
 * - x86_32-abi: `gcc -m32 -ffreestanding -S` (no i386 libc or gcc-multilib
 *   needed, nothing is linked); we read the data directives of the
 *   `golden_numbers` array and of every `golden_msg_*` object.
 * - The native build is also read from its assembly, and must agree with what
 *   the program printed: that checks the assembly reader itself.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const SOURCE = join(dirname(fileURLToPath(import.meta.url)), 'xen-layout.c');
const HEADER = '/usr/include/xen/io/blkif.h';
const INSTALL = 'apt-get install libxen-dev gcc';

export interface GoldenAbi {
  abi: 'x86_64-abi' | 'x86_32-abi';
  numbers: Record<string, number>;
  messages: Record<string, Uint8Array>;
}

export interface Golden {
  names: string[];
  x86_64: GoldenAbi;
  x86_32: GoldenAbi;
  /** The x86_64 values as read back from `gcc -S` output (reader self-check). */
  x86_64FromAssembly: GoldenAbi;
}

/** Fails (never skips) when a prerequisite is missing, saying how to install it. */
export function checkPrerequisites(): void {
  if (!existsSync(HEADER)) throw new Error(`${HEADER} is missing: ${INSTALL}`);
  try {
    execFileSync('gcc', ['--version'], { stdio: 'pipe' });
  } catch {
    throw new Error(`gcc is missing: ${INSTALL}`);
  }
}

const hexToBytes = (hex: string): Uint8Array => Uint8Array.from(hex.match(/../g) ?? [], (h) => parseInt(h, 16));

const DATA_WIDTH: Record<string, number> = { '.byte': 1, '.value': 2, '.short': 2, '.2byte': 2, '.long': 4, '.4byte': 4, '.quad': 8, '.8byte': 8 };

/** Bytes of every labelled data object in a gcc x86 assembly file. */
export function readAssemblyData(asm: string): Map<string, Uint8Array> {
  const objects = new Map<string, number[]>();
  let current: number[] | undefined;
  for (const raw of asm.split('\n')) {
    const line = raw.trim();
    const label = /^([A-Za-z_.$][\w.$]*):$/.exec(line);
    if (label) {
      current = [];
      objects.set(label[1]!, current);
      continue;
    }
    const m = /^(\.[a-z0-9]+)\s*(.*)$/.exec(line);
    if (!m || !current) continue;
    const [, directive, operand] = m as unknown as [string, string, string];
    if (directive === '.zero') {
      for (let i = 0; i < Number(operand); i++) current.push(0);
    } else if (directive in DATA_WIDTH) {
      const width = DATA_WIDTH[directive]!;
      for (const v of operand.split(',')) {
        let x = BigInt.asUintN(width * 8, BigInt(v.trim()));
        for (let i = 0; i < width; i++) {
          current.push(Number(x & 0xffn));
          x >>= 8n;
        }
      }
    } else {
      current = undefined; // any other directive ends the object
    }
  }
  return new Map([...objects].map(([k, v]) => [k, Uint8Array.from(v)]));
}

function fromAssembly(asm: string, names: string[], abi: GoldenAbi['abi']): GoldenAbi {
  const data = readAssemblyData(asm);
  const table = data.get('golden_numbers');
  if (!table || table.length !== names.length * 8) {
    throw new Error(`golden_numbers: expected ${names.length * 8} bytes, got ${table?.length}`);
  }
  const dv = new DataView(table.buffer, table.byteOffset, table.byteLength);
  const numbers: Record<string, number> = {};
  names.forEach((name, i) => (numbers[name] = Number(dv.getBigInt64(i * 8, true))));
  const messages: Record<string, Uint8Array> = {};
  for (const [label, bytes] of data) {
    if (label.startsWith('golden_msg_')) messages[label.slice('golden_msg_'.length)] = bytes;
  }
  return { abi, numbers, messages };
}

/** Compile and run the golden program in a temporary directory. */
export function buildGolden(): Golden {
  checkPrerequisites();
  const dir = mkdtempSync(join(tmpdir(), 'xenpv-golden-'));
  try {
    const cc = (args: string[]): void => {
      execFileSync('gcc', ['-std=gnu11', '-Wall', '-Werror', ...args, SOURCE], { stdio: 'pipe' });
    };
    const exe = join(dir, 'xen-layout');
    cc(['-O0', '-o', exe]);
    const printed = JSON.parse(execFileSync(exe, { encoding: 'utf8' })) as {
      abi: string;
      names: string[];
      numbers: Record<string, number>;
      messages: Record<string, string>;
    };
    if (printed.abi !== 'x86_64-abi') throw new Error(`native build is ${printed.abi}; the golden test needs an x86_64 host`);
    const x86_64: GoldenAbi = {
      abi: 'x86_64-abi',
      numbers: printed.numbers,
      messages: Object.fromEntries(Object.entries(printed.messages).map(([k, v]) => [k, hexToBytes(v)])),
    };
    cc(['-O0', '-ffreestanding', '-S', '-o', join(dir, 'x86_64.s')]);
    cc(['-O0', '-m32', '-ffreestanding', '-S', '-o', join(dir, 'x86_32.s')]);
    return {
      names: printed.names,
      x86_64,
      x86_64FromAssembly: fromAssembly(readFileSync(join(dir, 'x86_64.s'), 'utf8'), printed.names, 'x86_64-abi'),
      x86_32: fromAssembly(readFileSync(join(dir, 'x86_32.s'), 'utf8'), printed.names, 'x86_32-abi'),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
