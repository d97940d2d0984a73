/**
 * `xenpv xenstored`: the simulated xenstored in the foreground, on a unix
 * socket, until SIGINT or SIGTERM.
 */
import { defineCommand, EXIT_OK } from './command.js';
import { XenstoreServer } from '../src/xenstore/server/server.js';
import { defaultSocketPath } from '../src/xenstore/transport/socket.js';
import { IoError } from '../src/errors.js';

export const main = defineCommand({
  name: 'xenstored',
  synopsis: '[--socket PATH] [--verbose]',
  description: `Run the simulated xenstored in the foreground, serving the xenstore wire
protocol (xen/io/xs_wire.h) on a unix socket until SIGINT or SIGTERM (then
exit 0). Every socket client is dom0 (privileged), as with Xen's xenstored.
Xen's own tools work against it:

  XENSTORED_PATH=PATH xenstore-write /a/b hello
  XENSTORED_PATH=PATH xenstore-ls /`,
  options: {
    socket: { type: 'string', arg: 'PATH', help: 'socket to listen on (default $XENSTORED_PATH, else $XENSTORED_RUNDIR/socket, else /var/run/xenstored/socket)' },
    verbose: { type: 'boolean', help: 'log dropped connections (protocol violations) to stderr' },
  },
}, async ({ values, signal }) => {
  const path = values.socket ?? defaultSocketPath();
  const server = new XenstoreServer({ log: values.verbose ? (m) => console.error(m) : undefined });
  try {
    await server.listen(path);
  } catch (err) {
    throw new IoError(`cannot listen on ${path}: ${(err as Error).message}`, { cause: err });
  }
  console.log(`xenstored listening on ${path}`);
  await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
  await server.close();
  console.error(`xenpv xenstored: ${String((signal.reason as Error).message)}, stopped`);
  return EXIT_OK;
});
