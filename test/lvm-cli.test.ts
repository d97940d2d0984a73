/**
 * `xenpv lvm` from the command line, against a VG the LVM2 tools made on a
 * loop device; the tools check the result of each change.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LvmLab, type Loop } from './support/lvm-lab.js';

let lab: LvmLab;
let pv: Loop;

function xenpv(...args: string[]): { status: number; stdout: string; stderr: string } {
  if (!existsSync('dist/tools/cli.js')) throw new Error('dist/ is missing: run `npm run build` (npm test builds first)');
  const r = spawnSync(process.execPath, ['bin/xenpv.js', 'lvm', ...args], { encoding: 'utf8', timeout: 60_000 });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

function toolsLvs(): string[] {
  return lab.report('lvs', 'lv', '-o', 'lv_name,lv_size', 'vgcli').map((r) => `${r.lv_name}:${r.lv_size}`);
}

beforeAll(() => {
  lab = new LvmLab();
  pv = lab.attach(32);
  lab.run('pvcreate', pv.dev);
  lab.run('vgcreate', '-s', '1m', 'vgcli', pv.dev);
});

afterAll(() => lab?.close());

describe('xenpv lvm', () => {
  it('creates, extends, shrinks and removes an LV, and the tools see each change', () => {
    let r = xenpv('create', 'web', '--size', '4MiB', pv.dev);
    expect(r.status, r.stderr).toBe(0);
    expect(toolsLvs()).toEqual([`web:${4 << 20}`]);
    r = xenpv('extend', 'web', '--extents', '6', `file:${pv.dev}`);
    expect(r.status, r.stderr).toBe(0);
    expect(toolsLvs()).toEqual([`web:${6 << 20}`]);
    r = xenpv('shrink', 'web', '--size', '2MiB', pv.dev);
    expect(r.status, r.stderr).toBe(0);
    expect(toolsLvs()).toEqual([`web:${2 << 20}`]);
    r = xenpv('ls', '--json', pv.dev);
    expect(r.status, r.stderr).toBe(0);
    const listed = JSON.parse(r.stdout) as { vg: string; seqno: number; lvs: Array<{ name: string; extents: number }> };
    const seqno = Number(lab.report('vgs', 'vg', '-o', 'vg_seqno', 'vgcli')[0]!.vg_seqno);
    expect(listed).toMatchObject({ vg: 'vgcli', seqno, lvs: [{ name: 'web', extents: 2 }] });
    r = xenpv('remove', 'web', pv.dev);
    expect(r.status, r.stderr).toBe(0);
    expect(toolsLvs()).toEqual([]);
    expect(lab.tryRun('vgck', 'vgcli').status).toBe(0);
  });

  it('exits 2 with usage for bad arguments and for a device that is not a PV, 1 for a failure, one line each', () => {
    expect(xenpv('create', 'x', pv.dev).status).toBe(2); // no size
    expect(xenpv('frobnicate', pv.dev).status).toBe(2);
    expect(xenpv('ls').status).toBe(2);
    expect(xenpv('remove', 'x', '--size', '1MiB', pv.dev).status).toBe(2); // remove takes no size
    expect(xenpv('create', 'x', '--size', '3 parsecs', pv.dev).status).toBe(2);
    const big = xenpv('create', 'huge', '--size', '1GiB', pv.dev);
    expect(big.status).toBe(1);
    expect(big.stderr).toMatch(/^xenpv lvm create: VG vgcli has \d+ free extents, 1024 needed\n$/);
    // invalid-argument, as every command's bad input (tools/command.ts): exit 2.
    const notPv = xenpv('ls', 'memory:1MiB');
    expect(notPv.status).toBe(2);
    expect(notPv.stderr).toContain('xenpv lvm ls: device: not an LVM2 physical volume');
    expect(notPv.stderr).not.toMatch(/\n\s+at /);
    expect(toolsLvs()).toEqual([]); // nothing was changed by the refused commands
    expect(xenpv('--help').status).toBe(0);
    expect(xenpv('create', '--help').stdout).toContain('--extents N');
  });
});
