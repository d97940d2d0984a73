/**
 * How much of `src/` a fuzz campaign reaches: V8 precise coverage (call
 * counts, block granularity) over the compiled `dist/src/**.js` the campaign
 * runs. The campaign runs in a child process started with
 * `NODE_V8_COVERAGE=DIR` (node's own mechanism, on from the first line, so
 * modules the CLI loads before the target are counted too, and worker
 * threads write their own files); this module reads what V8 wrote there.
 *
 * Two measures, both over the files the campaign loaded:
 * - functions: a function is reached when V8 counted at least one call.
 *   (A function nested in one never called is not compiled, so V8 may not
 *   list it: it is missing from both counts, not counted as reached.)
 * - lines: a non-blank line of compiled JavaScript (comments, lone closing
 *   braces and imports left out) is reached when the innermost range holding
 *   its first character has a count > 0. tsc keeps the TypeScript's
 *   statements line for line, so this tracks `src/*.ts` closely, but it is
 *   lines of `dist/src/*.js`.
 * Files under dist/src the campaign never loaded are listed as such.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

interface Range { startOffset: number; endOffset: number; count: number }
interface FunctionCoverage { functionName: string; ranges: Range[]; isBlockCoverage: boolean }
export interface ScriptCoverage { scriptId: string; url: string; functions: FunctionCoverage[] }

export interface FileCoverage {
  /** `src/…` path of the TypeScript the file was compiled from. */
  file: string;
  functions: number;
  functionsReached: number;
  lines: number;
  linesReached: number;
  /** `name@line` (line of the compiled file) of every listed function never called. */
  unreached: string[];
}

export interface CoverageReport {
  /** What the percentages count. */
  unit: 'functions and lines of dist/src/**/*.js';
  functions: number;
  functionsReached: number;
  functionPercent: number;
  lines: number;
  linesReached: number;
  linePercent: number;
  files: FileCoverage[];
  /** `src/…` files the campaign never loaded. */
  notLoaded: string[];
}

/**
 * The scripts under `srcDir` in the coverage files V8 wrote to `v8Dir` (one
 * per process and worker). A script seen by several threads keeps, per
 * function, the highest count.
 */
export function readV8Coverage(v8Dir: string, srcDir: string): ScriptCoverage[] {
  const byUrl = new Map<string, ScriptCoverage>();
  for (const f of readdirSync(v8Dir).filter((n) => n.startsWith('coverage-') && n.endsWith('.json')).sort()) {
    const { result } = JSON.parse(readFileSync(join(v8Dir, f), 'utf8')) as { result: ScriptCoverage[] };
    for (const s of result) {
      if (!s.url.startsWith('file://') || !fileURLToPath(s.url).startsWith(srcDir + '/')) continue;
      const seen = byUrl.get(s.url);
      if (!seen) byUrl.set(s.url, s);
      else mergeInto(seen, s);
    }
  }
  return [...byUrl.values()];
}

function mergeInto(a: ScriptCoverage, b: ScriptCoverage): void {
  const key = (f: FunctionCoverage): string => `${f.ranges[0]!.startOffset}:${f.ranges[0]!.endOffset}`;
  const mine = new Map(a.functions.map((f) => [key(f), f]));
  for (const f of b.functions) {
    const m = mine.get(key(f));
    if (!m) a.functions.push(f);
    else if (f.ranges[0]!.count > m.ranges[0]!.count) m.ranges = f.ranges;
  }
}

const tsName = (srcDir: string, jsPath: string): string => join('src', relative(srcDir, jsPath)).replace(/\.js$/, '.ts');

function listJs(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...listJs(p));
    else if (e.name.endsWith('.js')) out.push(p);
  }
  return out;
}

/** Per-file and total figures from V8's script coverage (exported for tests). */
export function summarise(srcDir: string, scripts: ScriptCoverage[]): CoverageReport {
  const files: FileCoverage[] = [];
  const loaded = new Set<string>();
  for (const s of scripts) {
    const path = fileURLToPath(s.url);
    if (loaded.has(path)) continue;
    loaded.add(path);
    files.push(fileCoverage(tsName(srcDir, path), readFileSync(path, 'utf8'), s.functions));
  }
  files.sort((a, b) => a.file.localeCompare(b.file));
  const notLoaded = listJs(srcDir).filter((p) => !loaded.has(p)).map((p) => tsName(srcDir, p)).sort();
  const sum = (k: 'functions' | 'functionsReached' | 'lines' | 'linesReached'): number => files.reduce((n, f) => n + f[k], 0);
  const pct = (a: number, b: number): number => (b === 0 ? 0 : Math.round((1000 * a) / b) / 10);
  const report: CoverageReport = {
    unit: 'functions and lines of dist/src/**/*.js',
    functions: sum('functions'),
    functionsReached: sum('functionsReached'),
    functionPercent: 0,
    lines: sum('lines'),
    linesReached: sum('linesReached'),
    linePercent: 0,
    files,
    notLoaded,
  };
  report.functionPercent = pct(report.functionsReached, report.functions);
  report.linePercent = pct(report.linesReached, report.lines);
  return report;
}

function fileCoverage(file: string, text: string, fns: FunctionCoverage[]): FileCoverage {
  const lineOf = (offset: number): number => {
    let n = 1;
    for (let i = text.indexOf('\n'); i >= 0 && i < offset; i = text.indexOf('\n', i + 1)) n++;
    return n;
  };
  // The top-level function spans the whole script (offset 0): a loaded module's top level ran.
  const ranges: Range[] = [];
  let functions = 0;
  let reached = 0;
  const unreached: string[] = [];
  for (const f of fns) {
    const top = f.ranges[0]!;
    const isTop = top.startOffset === 0 && f.functionName === '';
    for (const [i, r] of f.ranges.entries()) ranges.push(isTop && i === 0 ? { ...r, count: Math.max(r.count, 1) } : r);
    if (isTop) continue;
    functions++;
    if (top.count > 0) reached++;
    else unreached.push(`${f.functionName || '(anonymous)'}@${lineOf(top.startOffset)}`);
  }
  // Innermost range wins: sort outer before inner, the last match is the innermost.
  ranges.sort((a, b) => a.startOffset - b.startOffset || b.endOffset - a.endOffset);
  let lines = 0;
  let linesReached = 0;
  let offset = 0;
  for (const line of text.split('\n')) {
    const lead = line.length - line.trimStart().length;
    const body = line.trim();
    const at = offset + lead;
    offset += line.length + 1;
    if (body === '' || body.startsWith('//') || body.startsWith('*') || body.startsWith('/*') || body === '}' || body === '});') continue;
    if (body.startsWith('import ') || body.startsWith('export {') || body.startsWith('//# sourceMappingURL')) continue;
    let count = 1;
    for (const r of ranges) {
      if (r.startOffset > at) break;
      if (at < r.endOffset) count = r.count;
    }
    lines++;
    if (count > 0) linesReached++;
  }
  return { file, functions, functionsReached: reached, lines, linesReached, unreached };
}

/** The report as text: totals, then files from least to most covered, with what they never reached. */
export function formatCoverage(target: string, r: CoverageReport, maxNames = 8): string {
  const out = [
    `coverage ${target}: ${r.functionPercent}% of functions (${r.functionsReached}/${r.functions}), ` +
      `${r.linePercent}% of lines (${r.linesReached}/${r.lines}) of the ${r.files.length} src/ files loaded; ${r.notLoaded.length} never loaded`,
  ];
  const byGap = [...r.files].sort((a, b) => a.linesReached / Math.max(a.lines, 1) - b.linesReached / Math.max(b.lines, 1));
  for (const f of byGap) {
    if (f.unreached.length === 0 && f.linesReached === f.lines) continue;
    const names = f.unreached.slice(0, maxNames).join(', ') + (f.unreached.length > maxNames ? `, … ${f.unreached.length - maxNames} more` : '');
    out.push(`  ${f.file}: ${f.functionsReached}/${f.functions} functions, ${f.linesReached}/${f.lines} lines${names ? `; never called: ${names}` : ''}`);
  }
  if (r.notLoaded.length) out.push(`  never loaded: ${r.notLoaded.join(', ')}`);
  return out.join('\n');
}
