#!/usr/bin/env node
// npm "install" script (also run by `npm rebuild`): build the native addon
// with node-gyp when a toolchain is there. The addon is optional: the
// simulation never needs it, only the real-Xen path and the foreign-peer
// tools do. So a failed build never fails the install; it prints what to
// install, and loading the addon later says the same (src/native/load.ts).
//
// `npm rebuild` would otherwise leave nothing behind when the toolchain went
// away since the last build: node-gyp deletes build/ first. A working addon
// is kept aside and put back if the new build fails.
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

const ADDON = join('build', 'Release', 'xenpv_native.node');
export const HINT =
  'install python3, make and g++ (Debian/Ubuntu: apt-get install python3 make g++), ' +
  'then run `npm rebuild xenpv` (inside the xenpv repository: npm run build:native)';

if (process.platform !== 'linux') {
  console.error(`xenpv: native addon skipped: it is Linux only (the simulation works without it)`);
  process.exit(0);
}

let saved;
if (existsSync(ADDON)) {
  saved = join(mkdtempSync(join(tmpdir(), 'xenpv-addon-')), 'xenpv_native.node');
  copyFileSync(ADDON, saved);
}

// npm puts its own node-gyp on PATH for lifecycle scripts.
const r = spawnSync('node-gyp', ['rebuild'], { stdio: ['ignore', 'inherit', 'inherit'], shell: true });
if (r.status === 0 && existsSync(ADDON)) {
  if (saved) rmSync(dirname(saved), { recursive: true, force: true });
  process.exit(0);
}

// Leave no half-built intermediates behind.
rmSync('build', { recursive: true, force: true });
if (saved) {
  mkdirSync(dirname(ADDON), { recursive: true });
  copyFileSync(saved, ADDON);
  rmSync(dirname(saved), { recursive: true, force: true });
  console.error(`xenpv: rebuilding the native addon failed; the previous build is kept. To rebuild: ${HINT}.`);
} else {
  console.error(
    'xenpv: the native addon (needed on real Xen only; the simulation works without it) was not built: ' +
      `${HINT}.`,
  );
}
process.exit(0);
