/**
 * Entry point of the unprivileged "describe" child (master.ts): import the
 * job module as the dropped user and print what it declares as one JSON
 * line, so the module's code never runs as root in the master.
 *
 *   stdout: {"name":..,"devices":{..},"deviceOptions":{..},"restart":{..},"mapsForeignGrants":..}  exit 0
 *           {"error":"..."}                                  exit 2
 */
import { pathToFileURL } from 'node:url';
import { jobFromModule } from './job.js';

const path = process.argv[2] ?? '';
try {
  const job = jobFromModule(await import(pathToFileURL(path).href), path);
  process.stdout.write(JSON.stringify({
    name: job.name, devices: job.devices, deviceOptions: job.deviceOptions ?? {}, restart: job.restart, mapsForeignGrants: job.mapsForeignGrants,
  }) + '\n');
} catch (err) {
  process.stdout.write(JSON.stringify({ error: (err as Error)?.message ?? String(err) }) + '\n');
  process.exitCode = 2;
}
