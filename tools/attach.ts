/**
 * `xenpv attach <device>`: open any device spec and print what it is
 * (geometry, features; for xen:, the blkfront stats too), then let go.
 */
import { defineCommand, EXIT_OK } from './command.js';
import { DeviceOpener, deviceStats, normaliseSpec, SIM_OPTION } from './devices.js';
import type { BlockInfo } from '../src/block/types.js';

export const main = defineCommand({
  name: 'attach',
  synopsis: '<device> [--read-only] [--sim BACKING] [--json]',
  description: `Open a device and print its info: memory:64MiB, file:/path (or a plain path),
xen:xvda / xen:51712 (real Xen through /dev/xen, or with --sim a simulated
hypervisor in this process). The device is disconnected before exit.`,
  reports: true,
  positionals: { min: 1, max: 1 },
  options: {
    'read-only': { type: 'boolean', help: 'open read-only' },
    ...SIM_OPTION,
  },
}, async ({ values, positionals, out }) => {
  const spec = normaliseSpec(positionals[0]!);
  const opener = await DeviceOpener.create(values.sim ?? []);
  try {
    const dev = await opener.open(spec, { readOnly: values['read-only'] === true });
    const info = dev.info();
    const report = { spec, sizeBytes: info.sizeSectors * BigInt(info.sectorSize), ...info, stats: deviceStats(dev) };
    out.result(report, () => describe(spec, info));
  } finally {
    await opener.close();
  }
  return EXIT_OK;
});

function describe(spec: string, info: BlockInfo): string {
  const bytes = info.sizeSectors * BigInt(info.sectorSize);
  const features = Object.entries(info.features).filter(([, v]) => v === true).map(([k]) => k);
  const indirect = (info.features as { indirectSegments?: number }).indirectSegments;
  if (indirect) features.push(`indirect (${indirect} segments)`);
  const lines = [
    `${spec}: ${bytes} bytes (${(Number(bytes) / 2 ** 20).toFixed(1)} MiB), ${info.sizeSectors} sectors of ${info.sectorSize} bytes` +
      (info.physicalSectorSize !== info.sectorSize ? ` (physical ${info.physicalSectorSize})` : ''),
    `  ${info.readWrite ? 'read-write' : 'read-only'}, ${info.media ?? 'disk'}${info.removable ? ', removable' : ''}`,
    `  features: ${features.length ? features.join(', ') : 'none'}`,
  ];
  if (info.discard) lines.push(`  discard: ${JSON.stringify(info.discard)}`);
  return lines.join('\n');
}
