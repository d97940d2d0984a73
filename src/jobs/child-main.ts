/** Entry point of the unprivileged job child (spawned by master.ts only). */
import { childMain } from './child.js';

childMain().then(
  (code) => { process.exitCode = code; process.disconnect?.(); },
  (err: unknown) => {
    console.error(`xenpv job child: ${(err as Error)?.stack ?? String(err)}`);
    process.exitCode = 1;
    process.disconnect?.();
  },
);
