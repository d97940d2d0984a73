#!/usr/bin/env node
// Thin launcher: the CLI lives in tools/cli.ts, compiled to dist/tools/cli.js.
import('../dist/tools/cli.js').then((m) => m.main(process.argv.slice(2))).then(
  (code) => { process.exitCode = code ?? 0; },
  (err) => { console.error(err?.stack ?? String(err)); process.exitCode = 1; },
);
