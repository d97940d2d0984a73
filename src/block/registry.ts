/**
 * Opening a BlockDevice by name: `<flavour>:<target>`.
 *
 *   memory:64MiB          MemoryBlockDevice of that size (units B, KiB, MiB, GiB)
 *   file:/path/disk.img   FileBlockDevice (opts.readOnly, opts.create, opts.sectorSize)
 *   xen:xvda  xen:51712   whatever opener the Xen flavour registered with
 *                         registerFlavour('xen', …); it receives the target as
 *                         the canonical decimal vdev number ('51712')
 *
 * A malformed spec, an unknown or unregistered flavour, or a bad target is
 * `invalid-argument` naming `spec`.
 */
import { InvalidArgumentError } from '../errors.js';
import { FileBlockDevice } from './file.js';
import { MemoryBlockDevice } from './memory.js';
import type { BlockDevice } from './types.js';
import { parseVdev } from './vdev.js';

export interface OpenOptions {
  /** Refuse writes and discards. */
  readonly readOnly?: boolean;
  /** Logical sector size for `memory` and `file` (default 512). */
  readonly sectorSize?: number;
  /** `file`: create the file with this size if it does not exist. */
  readonly create?: { readonly sizeBytes: number | bigint };
  /** `file`: take the image lock (default true; README "Storage rules"). */
  readonly lock?: boolean;
  /** Flavour-specific options (e.g. what the Xen flavour needs) pass through. */
  readonly [option: string]: unknown;
}

/** Opens `target` (the part after `flavour:`). */
export type FlavourOpener = (target: string, options: OpenOptions) => Promise<BlockDevice>;

const FLAVOUR_NAME = /^[a-z][a-z0-9-]{0,31}$/;
const SPEC = /^([a-z][a-z0-9-]{0,31}):([\s\S]+)$/;
const SIZE = /^([1-9][0-9]{0,15})(B|KiB|MiB|GiB)$/;
const UNIT: Record<string, bigint> = { B: 1n, KiB: 1n << 10n, MiB: 1n << 20n, GiB: 1n << 30n };

/** Normalises a target before its opener sees it; throws `invalid-argument` naming `spec`. */
const targetParsers: Record<string, (target: string) => string> = {
  xen: (target) => String(parseVdev(target, 'spec')),
};

const builtins: Record<string, FlavourOpener> = {
  memory: async (target, options) => {
    const sizeBytes = parseSize(target, 'spec');
    try {
      return new MemoryBlockDevice({ sizeBytes, sectorSize: options.sectorSize, readOnly: options.readOnly });
    } catch (err) {
      // The size came from the spec: say so.
      if (err instanceof InvalidArgumentError && err.field === 'sizeBytes') {
        throw new InvalidArgumentError('spec', `memory:${target}: ${err.message}`);
      }
      throw err;
    }
  },
  file: (target, options) =>
    FileBlockDevice.open(target, {
      readOnly: options.readOnly,
      sectorSize: options.sectorSize,
      create: options.create,
      lock: options.lock,
    }),
};

const registered = new Map<string, FlavourOpener>();

/** `64MiB` → 67108864n. Units B, KiB, MiB, GiB; `invalid-argument` naming `field` otherwise. */
export function parseSize(text: string, field = 'size'): bigint {
  const m = SIZE.exec(text);
  if (m === null) {
    throw new InvalidArgumentError(field, `${JSON.stringify(text.slice(0, 40))} is not a size like 64MiB (units B, KiB, MiB, GiB)`);
  }
  return BigInt(m[1]!) * UNIT[m[2]!]!;
}

/** Splits `flavour:target`; `invalid-argument` naming `spec` if malformed. */
export function parseSpec(spec: string): { flavour: string; target: string } {
  if (typeof spec !== 'string') throw new InvalidArgumentError('spec', `must be a string, got ${typeof spec}`);
  const m = SPEC.exec(spec);
  if (m === null) {
    throw new InvalidArgumentError('spec', `${JSON.stringify(spec.slice(0, 60))} is not <flavour>:<target> (memory:64MiB, file:/path, xen:xvda)`);
  }
  return { flavour: m[1]!, target: m[2]! };
}

/**
 * Makes `openBlockDevice('<name>:…')` call `opener`. Returns a function that
 * removes the registration. `memory` and `file` are built in and cannot be
 * replaced; registering a name twice is `invalid-argument`.
 */
export function registerFlavour(name: string, opener: FlavourOpener): () => void {
  if (typeof name !== 'string' || !FLAVOUR_NAME.test(name)) {
    throw new InvalidArgumentError('name', `${JSON.stringify(String(name))} is not a flavour name ([a-z][a-z0-9-]*)`);
  }
  if (typeof opener !== 'function') throw new InvalidArgumentError('opener', 'must be a function');
  if (name in builtins || registered.has(name)) throw new InvalidArgumentError('name', `flavour ${name} is already registered`);
  registered.set(name, opener);
  return () => {
    if (registered.get(name) === opener) registered.delete(name);
  };
}

/** Names of the flavours that can be opened now. */
export function flavours(): string[] {
  return [...Object.keys(builtins), ...registered.keys()];
}

/** Opens the device `spec` names. Rejects (never throws) with the flavour's typed errors. */
export async function openBlockDevice(spec: string, options: OpenOptions = {}): Promise<BlockDevice> {
  const { flavour, target: raw } = parseSpec(spec);
  const opener = Object.hasOwn(builtins, flavour) ? builtins[flavour] : registered.get(flavour);
  if (opener === undefined) {
    throw new InvalidArgumentError('spec', `flavour ${JSON.stringify(flavour)} is not registered (known: ${flavours().join(', ')})`);
  }
  const target = Object.hasOwn(targetParsers, flavour) ? targetParsers[flavour]!(raw) : raw;
  return opener(target, options);
}
