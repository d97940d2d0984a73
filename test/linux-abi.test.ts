/**
 * The addon's /dev/xen ABI (src/native/xen-dev.cc) against gcc's reading of
 * the installed headers (test/golden/xen-ioctl.c), and each request number
 * against _IOC(_IOC_NONE, type, nr, size) rebuilt here from the type letter
 * and number written in the headers: a wrong header or struct in the addon,
 * or a wrong struct in the golden program, shows up as a mismatch.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { xenDevAbi, GNTALLOC_FLAG_WRITABLE, UNMAP_NOTIFY_CLEAR_BYTE, UNMAP_NOTIFY_SEND_EVENT } from '../src/native/xen-dev.js';

const SOURCE = join(dirname(fileURLToPath(import.meta.url)), 'golden', 'xen-ioctl.c');
const HEADERS = ['evtchn.h', 'gntalloc.h', 'gntdev.h'].map((h) => `/usr/include/xen/sys/${h}`);
const INSTALL = 'apt-get install libxen-dev gcc (bash tools/install-system-deps.sh)';

function golden(): Record<string, number> {
  for (const h of HEADERS) if (!existsSync(h)) throw new Error(`${h} is missing: ${INSTALL}`);
  const dir = mkdtempSync(join(tmpdir(), 'xenpv-ioctl-'));
  try {
    const exe = join(dir, 'xen-ioctl');
    try {
      execFileSync('gcc', ['-std=gnu11', '-Wall', '-Werror', '-o', exe, SOURCE], { stdio: 'pipe' });
    } catch (err) {
      throw new Error(`compiling ${SOURCE} failed (${INSTALL}): ${String((err as { stderr?: Buffer }).stderr ?? err)}`);
    }
    return JSON.parse(execFileSync(exe, { encoding: 'utf8' })) as Record<string, number>;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** asm-generic/ioctl.h on x86: nr 8 bits @0, type 8 @8, size 14 @16, dir 2 @30; _IOC_NONE = 0. */
const ioc = (type: string, nr: number, size: number): number => ((size << 16) | (type.charCodeAt(0) << 8) | nr) >>> 0;

/** Type letter, number and argument struct, as written in the headers. */
const REQUESTS: Record<string, [string, number, string | null]> = {
  IOCTL_EVTCHN_BIND_INTERDOMAIN: ['E', 1, 'sizeof_ioctl_evtchn_bind_interdomain'],
  IOCTL_EVTCHN_BIND_UNBOUND_PORT: ['E', 2, 'sizeof_ioctl_evtchn_bind_unbound_port'],
  IOCTL_EVTCHN_UNBIND: ['E', 3, null], // struct { unsigned int port; }: 4 bytes
  IOCTL_EVTCHN_NOTIFY: ['E', 4, null],
  IOCTL_EVTCHN_RESET: ['E', 5, null],
  IOCTL_GNTALLOC_ALLOC_GREF: ['G', 5, 'sizeof_ioctl_gntalloc_alloc_gref'],
  IOCTL_GNTALLOC_DEALLOC_GREF: ['G', 6, 'sizeof_ioctl_gntalloc_dealloc_gref'],
  IOCTL_GNTALLOC_SET_UNMAP_NOTIFY: ['G', 7, 'sizeof_ioctl_gntalloc_unmap_notify'],
  IOCTL_GNTDEV_MAP_GRANT_REF: ['G', 0, 'sizeof_ioctl_gntdev_map_grant_ref'],
  IOCTL_GNTDEV_UNMAP_GRANT_REF: ['G', 1, 'sizeof_ioctl_gntdev_unmap_grant_ref'],
};
const FIXED_SIZE: Record<string, number> = { IOCTL_EVTCHN_UNBIND: 4, IOCTL_EVTCHN_NOTIFY: 4, IOCTL_EVTCHN_RESET: 0 };

describe('xen-dev ABI', () => {
  let c: Record<string, number>;
  let addon: Record<string, number>;
  beforeAll(() => {
    c = golden();
    addon = xenDevAbi();
  });

  it('reports exactly the names the golden program prints', () => {
    expect(Object.keys(addon).sort()).toEqual(Object.keys(c).sort());
    expect(Object.keys(c).length).toBeGreaterThanOrEqual(29);
  });

  it('agrees with gcc on every request number, size and offset', () => {
    for (const name of Object.keys(c)) expect({ name, value: addon[name] }).toEqual({ name, value: c[name] });
  });

  it('builds each request number as _IOC(_IOC_NONE, type, nr, sizeof(arg)) from the headers', () => {
    for (const [name, [type, nr, sizeName]] of Object.entries(REQUESTS)) {
      const size = sizeName === null ? FIXED_SIZE[name]! : c[sizeName]!;
      expect({ name, value: c[name] }).toEqual({ name, value: ioc(type, nr, size) });
    }
  });

  it('lays out the variable-length structs as xen-dev.ts draws them', () => {
    expect(c).toMatchObject({
      sizeof_ioctl_gntalloc_alloc_gref: 24,
      offsetof_ioctl_gntalloc_alloc_gref_domid: 0,
      offsetof_ioctl_gntalloc_alloc_gref_flags: 2,
      offsetof_ioctl_gntalloc_alloc_gref_count: 4,
      offsetof_ioctl_gntalloc_alloc_gref_index: 8,
      offsetof_ioctl_gntalloc_alloc_gref_gref_ids: 16,
      sizeof_ioctl_gntdev_grant_ref: 8,
      sizeof_ioctl_gntdev_map_grant_ref: 24,
      offsetof_ioctl_gntdev_map_grant_ref_index: 8,
      offsetof_ioctl_gntdev_map_grant_ref_refs: 16,
      sizeof_evtchn_port_t: 4,
    });
  });

  it('exports the flag values the headers define', () => {
    expect(GNTALLOC_FLAG_WRITABLE).toBe(c['GNTALLOC_FLAG_WRITABLE']);
    expect(UNMAP_NOTIFY_CLEAR_BYTE).toBe(c['UNMAP_NOTIFY_CLEAR_BYTE']);
    expect(UNMAP_NOTIFY_SEND_EVENT).toBe(c['UNMAP_NOTIFY_SEND_EVENT']);
  });
});
