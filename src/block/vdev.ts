/**
 * Xen virtual block device numbers (the `device/vbd/<N>` key), per Xen's
 * docs/misc/vbd-interface.txt (man xen-vbd-interface(7)):
 *
 *      1 << 28 | disk << 8 | partition      xvd, disks or partitions 16 onwards
 *    202 << 8  | disk << 4 | partition      xvd, disks and partitions up to 15
 *      8 << 8  | disk << 4 | partition      sd, disks and partitions up to 15
 *      3 << 8  | disk << 6 | partition      hd, disks 0..1, partitions 0..63
 *     22 << 8  | (disk-2) << 6 | partition  hd, disks 2..3, partitions 0..63
 *
 * The 1<<28 form holds disks up to (1<<20)-1 and partitions up to 255 and is
 * used only when the 202<<8 form lacks the bits.
 *
 * Names: `xvda` (disk 0, whole disk), `xvdb2` (disk 1 partition 2), `xvdtq37`
 * (disk 536 partition 37; disk letters are bijective base 26: a..z, aa..zz,
 * aaa..), `sdb3`, `hdc2`, the `d<disk>[p<partition>]` form (xvd), or the
 * number itself in canonical decimal.
 */
import { InvalidArgumentError } from '../errors.js';

export enum VdevType {
  Xvd = 'xvd',
  Sd = 'sd',
  Hd = 'hd',
}

export interface Vdev {
  readonly type: VdevType;
  readonly disk: number;
  /** 0 = the whole disk. */
  readonly partition: number;
}

export const XVD_MAJOR = 202;
export const SD_MAJOR = 8;
export const HD_MAJOR = 3; // hd disks 0..1
export const HD_MAJOR_2 = 22; // hd disks 2..3
export const VDEV_EXTENDED = 1 << 28;
/** Largest disk and partition the extended form encodes. */
export const VDEV_EXTENDED_MAX_DISK = (1 << 20) - 1;
export const VDEV_EXTENDED_MAX_PARTITION = 255;
const U32_MAX = 0xffff_ffff;

/** Bijective base-26 disk letters: 0 → a, 25 → z, 26 → aa, 536 → tq. */
export function diskLetters(disk: number): string {
  let s = '';
  let n = disk + 1;
  while (n > 0) {
    n -= 1;
    s = String.fromCharCode(97 + (n % 26)) + s;
    n = Math.floor(n / 26);
  }
  return s;
}

function lettersToDisk(letters: string): number {
  let n = 0;
  for (const c of letters) n = n * 26 + (c.charCodeAt(0) - 96);
  return n - 1;
}

/** The device number for `v`; `invalid-argument` (naming `field`) if the scheme cannot encode it. */
export function encodeVdev(v: Vdev, field = 'vdev'): number {
  const { type, disk, partition } = v;
  if (!Number.isInteger(disk) || disk < 0 || !Number.isInteger(partition) || partition < 0) {
    throw new InvalidArgumentError(field, `disk and partition must be non-negative integers, got d${disk}p${partition}`);
  }
  switch (type) {
    case VdevType.Xvd:
      if (disk <= 15 && partition <= 15) return (XVD_MAJOR << 8) | (disk << 4) | partition;
      if (disk <= VDEV_EXTENDED_MAX_DISK && partition <= VDEV_EXTENDED_MAX_PARTITION) {
        return VDEV_EXTENDED | (disk << 8) | partition;
      }
      throw new InvalidArgumentError(field, `xvd disk ${disk} partition ${partition} is beyond the extended scheme (disk < 2^20, partition < 256)`);
    case VdevType.Sd:
      if (disk <= 15 && partition <= 15) return (SD_MAJOR << 8) | (disk << 4) | partition;
      throw new InvalidArgumentError(field, `sd disk ${disk} partition ${partition}: only disks and partitions up to 15`);
    case VdevType.Hd:
      if (disk <= 3 && partition <= 63) {
        return disk <= 1 ? (HD_MAJOR << 8) | (disk << 6) | partition : (HD_MAJOR_2 << 8) | ((disk - 2) << 6) | partition;
      }
      throw new InvalidArgumentError(field, `hd disk ${disk} partition ${partition}: only disks 0..3, partitions 0..63`);
    default:
      throw new InvalidArgumentError(field, `unknown disk type ${String(type)}`);
  }
}

/** What a device number means, or undefined for deprecated/reserved numbers. */
export function decodeVdev(n: number): Vdev | undefined {
  if (!Number.isInteger(n) || n < 0 || n > U32_MAX) return undefined;
  if (n >= VDEV_EXTENDED) {
    if (n >= 2 * VDEV_EXTENDED) return undefined; // 2 << 28 onwards: reserved
    return { type: VdevType.Xvd, disk: (n >>> 8) & VDEV_EXTENDED_MAX_DISK, partition: n & 0xff };
  }
  switch (n >>> 8) {
    case XVD_MAJOR:
      return { type: VdevType.Xvd, disk: (n >>> 4) & 0xf, partition: n & 0xf };
    case SD_MAJOR:
      return { type: VdevType.Sd, disk: (n >>> 4) & 0xf, partition: n & 0xf };
    case HD_MAJOR:
      return { type: VdevType.Hd, disk: (n >>> 6) & 0x3, partition: n & 0x3f };
    case HD_MAJOR_2:
      return { type: VdevType.Hd, disk: 2 + ((n >>> 6) & 0x3), partition: n & 0x3f };
    default:
      return undefined;
  }
}

/** The conventional name (`xvda`, `xvdb2`, `sdb3`), or undefined if `n` has none. */
export function vdevName(n: number): string | undefined {
  const v = decodeVdev(n);
  if (v === undefined) return undefined;
  return `${v.type}${diskLetters(v.disk)}${v.partition === 0 ? '' : v.partition}`;
}

const NAME = /^(xvd|sd|hd)([a-z]{1,5})([1-9][0-9]{0,2})?$/;
const DP = /^d(0|[1-9][0-9]{0,6})(?:p(0|[1-9][0-9]{0,2}))?$/;
const DECIMAL = /^(0|[1-9][0-9]{0,9})$/;

/**
 * Parses a vdev name or canonical decimal number into the device number.
 * Decimal numbers (u32, no leading zeros) pass through unchanged.
 * Anything else is `invalid-argument` naming `field`.
 */
export function parseVdev(text: string, field = 'vdev'): number {
  if (typeof text !== 'string') throw new InvalidArgumentError(field, `must be a string, got ${typeof text}`);
  if (DECIMAL.test(text)) {
    const n = Number(text);
    if (n > U32_MAX) throw new InvalidArgumentError(field, `${text} does not fit in 32 bits`);
    return n;
  }
  const dp = DP.exec(text);
  if (dp !== null) {
    return encodeVdev({ type: VdevType.Xvd, disk: Number(dp[1]), partition: Number(dp[2] ?? 0) }, field);
  }
  const m = NAME.exec(text);
  if (m !== null) {
    const type = m[1] as VdevType;
    return encodeVdev({ type, disk: lettersToDisk(m[2]!), partition: Number(m[3] ?? 0) }, field);
  }
  throw new InvalidArgumentError(
    field,
    `${JSON.stringify(text.slice(0, 40))} is not a vdev (xvda, xvdb2, d1p2, sdb3, hdc2, or a decimal number)`,
  );
}
