/**
 * `xenpv export <device> --nbd <socket path | port>`: serve a BlockDevice
 * over NBD until SIGINT/SIGTERM, on 127.0.0.1 or a unix socket only.
 */
import { once } from 'node:events';
import { openBlockDevice } from '../src/block/registry.js';
import { NbdServer } from '../src/nbd/index.js';
import { defineCommand, EXIT_OK, usageError } from './command.js';

const SYNOPSIS = '<device> --nbd <socket path | port> [options]';

export const main = defineCommand({
  name: 'export',
  synopsis: SYNOPSIS,
  description: `Export a BlockDevice (file:/path/disk.img, memory:64MiB, xen:xvdb) over NBD
(fixed newstyle; simple or structured replies; read, write, flush, FUA,
trim, write zeroes, block status base:allocation) until SIGINT or SIGTERM. A number is a TCP port on 127.0.0.1; anything else a unix socket.

  nbdinfo nbd://127.0.0.1:PORT                  nbdinfo 'nbd+unix:///?socket=PATH'
  nbdcopy disk.img nbd://127.0.0.1:PORT         nbd-client -N NAME 127.0.0.1 PORT /dev/nbd0`,
  positionals: { min: 1, max: 1 },
  options: {
    nbd: { type: 'string', arg: 'WHERE', help: 'port (on 127.0.0.1) or unix socket path (required)' },
    name: { type: 'string', arg: 'NAME', default: 'xenpv', help: 'export name (the empty name also works)' },
    'read-only': { type: 'boolean', help: 'refuse writes and trims (NBD_FLAG_READ_ONLY)' },
    verbose: { type: 'boolean', help: 'log connection errors to stderr' },
  },
}, async ({ values, positionals, out, signal }) => {
  const spec = positionals[0]!;
  const where = values.nbd;
  if (where === undefined) throw usageError('--nbd', `required (usage: xenpv export ${SYNOPSIS})`);
  const port = /^\d+$/.test(where) ? Number(where) : undefined;
  const name = values.name;
  if (spec.startsWith('xen:')) await import('../src/blkfront/flavour.js'); // registers the xen flavour
  // A bad spec is invalid-argument (exit 2); a device that cannot be opened, exit 1.
  const dev = await openBlockDevice(spec, { readOnly: values['read-only'] === true });
  let server: NbdServer;
  try {
    server = await NbdServer.listen({
      exports: [{ name, device: dev, description: spec }],
      ...(port !== undefined ? { port } : { path: where }),
      log: values.verbose ? (m) => console.error(m) : undefined,
    });
  } catch (err) {
    await dev.disconnect();
    throw err;
  }
  const url = port !== undefined ? `nbd://127.0.0.1:${server.port}/${name}` : `nbd+unix:///${name}?socket=${where}`;
  out.data(`exporting ${spec} (${dev.info().sizeSectors * BigInt(dev.info().sectorSize)} bytes) at ${url}\n`);
  if (!signal.aborted) await once(signal, 'abort');
  await server.close();
  await dev.disconnect();
  console.error(`xenpv export: ${(signal.reason as Error).message}, stopped`);
  return EXIT_OK;
});
