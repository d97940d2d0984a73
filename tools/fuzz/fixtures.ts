/**
 * Saved cases: test/fixtures/fuzz/<target>/<name>.json. A record holds
 * everything needed to replay it without the generator that found it (the
 * shrunk value itself), plus the seed and path to re-run the search.
 *
 * ```json
 * { "target": "ring", "seed": 42, "path": "17:3:0", "error": "…",
 *   "foundAt": "2026-…", "case": <tagged value, see serialize.ts> }
 * ```
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { fromTagged, toJson, toTagged } from './serialize.js';

export interface FixtureRecord {
  target: string;
  seed: number;
  path: string;
  error: string;
  foundAt: string;
  /** Free text: what the case shows (filled in by hand for kept regressions). */
  note?: string;
  case: unknown;
}

/** The repository root: the nearest ancestor holding package.json named xenpv. */
export function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg)) {
      try {
        if ((JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === 'xenpv') return dir;
      } catch { /* keep walking */ }
    }
    const up = dirname(dir);
    if (up === dir) return process.cwd();
    dir = up;
  }
}

export function fixturesDir(target?: string): string {
  const base = resolve(repoRoot(), 'test/fixtures/fuzz');
  return target ? join(base, target) : base;
}

/** Write a shrunk case; returns the file path. Same case, same file name. */
export function saveFixture(rec: Omit<FixtureRecord, 'foundAt'>, dir = fixturesDir(rec.target)): string {
  const tagged = toTagged(rec.case);
  const hash = createHash('sha1').update(JSON.stringify(tagged)).digest('hex').slice(0, 10);
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `seed${rec.seed}-${hash}.json`);
  const full: FixtureRecord = { ...rec, foundAt: new Date().toISOString(), case: rec.case };
  writeFileSync(file, toJson(full) + '\n');
  return file;
}

export function loadFixture(file: string): FixtureRecord {
  const rec = fromTagged(JSON.parse(readFileSync(file, 'utf8'))) as FixtureRecord;
  if (typeof rec.target !== 'string' || !('case' in rec)) throw new Error(`${file}: not a fuzz fixture`);
  return rec;
}

/** Every saved case, as [target, file] pairs, sorted. */
export function listFixtures(): Array<{ target: string; file: string }> {
  const base = fixturesDir();
  if (!existsSync(base)) return [];
  const out: Array<{ target: string; file: string }> = [];
  for (const target of readdirSync(base, { withFileTypes: true })) {
    if (!target.isDirectory()) continue;
    for (const f of readdirSync(join(base, target.name)).sort()) {
      if (f.endsWith('.json')) out.push({ target: target.name, file: join(base, target.name, f) });
    }
  }
  return out;
}
