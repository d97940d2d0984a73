/**
 * `xenpv export <device> --nbd <socket path | port>`: serve a BlockDevice
 * over NBD until SIGINT/SIGTERM, on 127.0.0.1 or a unix socket only.
 */
import { parseArgs } from 'node:util';
import { openBlockDevice } from '../src/block/registry.js';
import { NbdServer } from '../src/nbd/index.js';

const HELP = `usage: xenpv export <device> --nbd <socket path | port> [options]

Export a BlockDevice (file:/path/disk.img, memory:64MiB, xen:xvdb) over NBD
(fixed newstyle; read, write, flush, FUA, trim, write zeroes) until SIGINT or
SIGTERM. A number is a TCP port on 127.0.0.1; anything else a unix socket.

  nbdinfo nbd://127.0.0.1:PORT                  nbdinfo 'nbd+unix:///?socket=PATH'
  nbdcopy disk.img nbd://127.0.0.1:PORT         nbd-client -N NAME 127.0.0.1 PORT /dev/nbd0

options:
  --nbd WHERE       port (on 127.0.0.1) or unix socket path (required)
  --name NAME       export name (default "xenpv"; the empty name also works)
  --read-only       refuse writes and trims (NBD_FLAG_READ_ONLY)
  --verbose         log connection errors to stderr
  -h, --help        show this help`;

export async function main(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        nbd: { type: 'string' }, name: { type: 'string' }, 'read-only': { type: 'boolean' },
        verbose: { type: 'boolean' }, help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (err) {
    console.error(`xenpv export: ${(err as Error).message}\n\n${HELP}`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  if (positionals.length !== 1 || values.nbd === undefined) {
    console.error(`xenpv export: need one <device> and --nbd\n\n${HELP}`);
    return 2;
  }
  const spec = positionals[0]!;
  const where = values.nbd;
  const port = /^\d+$/.test(where) ? Number(where) : undefined;
  const name = values.name ?? 'xenpv';
  if (spec.startsWith('xen:')) await import('../src/blkfront/flavour.js'); // registers the xen flavour
  let dev;
  try {
    dev = await openBlockDevice(spec, { readOnly: values['read-only'] === true });
  } catch (err) {
    console.error(`xenpv export: ${spec}: ${(err as Error).message}`);
    return 1;
  }
  let server: NbdServer;
  try {
    server = await NbdServer.listen({
      exports: [{ name, device: dev, description: spec }],
      ...(port !== undefined ? { port } : { path: where }),
      log: values.verbose ? (m) => console.error(m) : undefined,
    });
  } catch (err) {
    console.error(`xenpv export: ${(err as Error).message}`);
    await dev.disconnect();
    return 1;
  }
  const url = port !== undefined ? `nbd://127.0.0.1:${server.port}/${name}` : `nbd+unix:///${name}?socket=${where}`;
  console.log(`exporting ${spec} (${dev.info().sizeSectors * BigInt(dev.info().sectorSize)} bytes) at ${url}`);
  const signal = await new Promise<NodeJS.Signals>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await server.close();
  await dev.disconnect();
  console.error(`xenpv export: ${signal}, stopped`);
  return 0;
}
