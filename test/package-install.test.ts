/**
 * The packed package installs and runs in a project of its own (from the
 * local tarball, dependencies from npm's cache), as a new user would get it:
 * - the tarball holds what an install needs (binding.gyp, the addon's
 *   sources, the built Wasm, dist, bin, LICENSE) and nothing machine-specific
 *   (node-gyp intermediates, config.gypi, hard links);
 * - with a toolchain the addon is built on install, and `npm rebuild` keeps it;
 * - without one the install still succeeds, says what to install, the
 *   simulation works, and the real-Xen path fails with `native` saying the same.
 * Regression: the tarball lacked binding.gyp, so every install failed.
 * Oracles: tar's own listing, npm's exit status, and a smoke script that
 * writes and reads back through the installed package.
 */
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join, sep } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const repo = join(import.meta.dirname, '..');
const work = mkdtempSync(join(tmpdir(), 'xenpv-pack-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

/**
 * A new user's environment: without the npm_* variables of an enclosing
 * `npm test`, and without node_modules/.bin on PATH (a dev dependency
 * brings an old npm that would stand in for the user's).
 */
function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.toLowerCase().startsWith('npm_')) env[k] = v;
  env['PATH'] = (env['PATH'] ?? '').split(delimiter).filter((d) => !d.includes(`node_modules${sep}.bin`)).join(delimiter);
  return { ...env, ...extra };
}

function run(cmd: string, args: string[], cwd: string, env = cleanEnv()): SpawnSyncReturns<string> {
  return spawnSync(cmd, args, { cwd, env, encoding: 'utf8', timeout: 240_000, maxBuffer: 64 << 20 });
}

function ok(r: SpawnSyncReturns<string>, what: string): SpawnSyncReturns<string> {
  if (r.status !== 0) throw new Error(`${what} exited ${r.status} (${r.signal ?? 'no signal'}):\n${r.stdout}\n${r.stderr}`);
  return r;
}

let tarball = '';

beforeAll(() => {
  // `npm test` has just built dist/ (npm run build): pack it as it is.
  if (!existsSync(join(repo, 'dist', 'wasm', 'xenpv.wasm'))) throw new Error('dist/ is missing: run `npm run build` first');
  const r = ok(run('npm', ['pack', '--ignore-scripts', '--json', repo], work), 'npm pack');
  const [info] = JSON.parse(r.stdout) as [{ filename: string }];
  tarball = join(work, info.filename);
}, 120_000);

/** A scratch project with the tarball installed; returns npm's result. */
function installInto(name: string, env = cleanEnv()): { dir: string; npm: SpawnSyncReturns<string> } {
  const dir = join(work, name);
  mkdirSync(dir);
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: `scratch-${name}`, private: true, type: 'module' }));
  // From the local tarball; dependencies from npm's cache (the registry only for what it lacks).
  const npm = run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', '--foreground-scripts', tarball], dir, env);
  return { dir, npm };
}

const SMOKE = `
import { Simulation } from 'xenpv';
const sim = await Simulation.start();
const disk = await sim.createDisk({ sizeBytes: 4 << 20 });
const dev = await sim.attach(disk);
const data = new Uint8Array(65536).map((_, i) => (i * 31 + 7) & 0xff);
await dev.write(64n, [data]);
const back = new Uint8Array(65536);
await dev.read(64n, [back]);
await dev.disconnect();
await sim.stop();
if (!back.every((b, i) => b === data[i])) { console.log('MISMATCH'); process.exit(1); }
console.log('verified');
`;

function smoke(dir: string): void {
  writeFileSync(join(dir, 'smoke.mjs'), SMOKE);
  const r = ok(run(process.execPath, ['smoke.mjs'], dir), 'smoke test');
  expect(r.stdout.trim()).toBe('verified');
}

describe('npm pack', () => {
  it('ships binding.gyp, the addon sources, the Wasm, dist, bin and LICENSE, as regular files only', () => {
    const r = ok(spawnSync('tar', ['-tvzf', tarball], { encoding: 'utf8' }), 'tar -tv');
    const lines = r.stdout.trim().split('\n');
    const names = lines.map((l) => l.split(/\s+/).at(-1)!.replace(/^package\//, ''));
    for (const need of [
      'package.json', 'LICENSE', 'README.md', 'binding.gyp', 'src/native/addon.cc', 'src/native/xen-dev.cc',
      'src/native/throw.h', 'dist/wasm/xenpv.wasm', 'dist/index.js', 'dist/index.d.ts', 'dist/src/index.js',
      'dist/src/sim/backend-domain.js', 'bin/xenpv.js', 'tools/build/install-native.mjs',
    ]) expect(names, need).toContain(need);
    // Nothing node-gyp leaves behind, nothing with this machine's paths in it.
    expect(names.filter((n) => /^build\/|config\.gypi$|Makefile$|\.o$|\.node$|\.mk$|\.tsbuildinfo$/.test(n))).toEqual([]);
    // Every entry a regular file: npm's extraction drops hard links (and the addon was one).
    expect(lines.filter((l) => !l.startsWith('-'))).toEqual([]);
  });
});

describe('installing the tarball into an empty project', () => {
  it('with a toolchain: builds the addon on install, runs the simulation, and npm rebuild keeps the addon', () => {
    const { dir, npm } = installInto('with-toolchain');
    ok(npm, 'npm install');
    const addon = join(dir, 'node_modules', 'xenpv', 'build', 'Release', 'xenpv_native.node');
    expect(existsSync(addon), `${addon} after install`).toBe(true);
    const load = `const a = require(${JSON.stringify(addon)}); console.log(a.pageSize());`;
    expect(ok(run(process.execPath, ['-e', load], dir), 'load addon').stdout.trim()).toBe('4096');
    smoke(dir);
    ok(run('npm', ['rebuild', '--foreground-scripts'], dir), 'npm rebuild');
    expect(ok(run(process.execPath, ['-e', load], dir), 'load addon after rebuild').stdout.trim()).toBe('4096');
    smoke(dir);
  }, 600_000);

  it('without a compiler: the install succeeds and says what to install, the simulation works, real Xen fails with native', () => {
    // A C++ compiler that always fails stands in for a machine without one.
    const { dir, npm } = installInto('no-compiler', cleanEnv({ CXX: 'false', CC: 'false' }));
    ok(npm, 'npm install');
    expect(`${npm.stdout}\n${npm.stderr}`).toContain('apt-get install python3 make g++');
    expect(existsSync(join(dir, 'node_modules', 'xenpv', 'build')), 'no half-built build/ left').toBe(false);
    smoke(dir);
    // Devices that exist (plain files here) get past the "no Xen" check to the addon.
    const devs = join(dir, 'fake-dev-xen');
    mkdirSync(devs);
    for (const f of ['evtchn', 'gntalloc']) writeFileSync(join(devs, f), '');
    writeFileSync(join(dir, 'xen.mjs'), `
import { openLinuxPlatform, XenpvError } from 'xenpv';
try { await openLinuxPlatform({ deviceDir: ${JSON.stringify(devs)} }); console.log('OPENED'); }
catch (e) { console.log(JSON.stringify({ xenpv: e instanceof XenpvError, name: e.name, code: e.code, message: e.message })); }
`);
    const out = JSON.parse(ok(run(process.execPath, ['xen.mjs'], dir), 'openLinuxPlatform').stdout) as Record<string, unknown>;
    expect(out).toMatchObject({ xenpv: true, name: 'NativeError', code: 'native' });
    expect(out['message']).toMatch(/xenpv_native\.node is missing/);
    expect(out['message']).toContain('apt-get install python3 make g++');
    expect(out['message']).toContain('npm rebuild xenpv');
  }, 600_000);
});
