/**
 * Run the compiled CLI (`node bin/xenpv.js ...`, after `npm run build`) as a
 * user does, asynchronously (a test may serve it from this process), and
 * time it.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const BIN = join(ROOT, 'bin/xenpv.js');

export interface CliRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  ms: number;
}

export function requireBuild(): void {
  if (!existsSync(join(ROOT, 'dist/tools/cli.js'))) throw new Error('dist/ is missing: run `npm run build` (npm test builds first)');
}

export function runCli(
  args: string[],
  opts: { env?: NodeJS.ProcessEnv; cwd?: string; bin?: string; timeoutMs?: number; onStderr?: (all: string) => void; onStdout?: (all: string, kill: (s: NodeJS.Signals) => void) => void; onStart?: (kill: (s: NodeJS.Signals) => void) => void } = {},
): Promise<CliRun> {
  requireBuild();
  const t0 = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [opts.bin ?? BIN, ...args], {
      cwd: opts.cwd ?? ROOT,
      env: { ...process.env, ...opts.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    const kill = (s: NodeJS.Signals): void => void child.kill(s);
    opts.onStart?.(kill);
    child.stdout.on('data', (d) => { stdout += d; opts.onStdout?.(stdout, kill); });
    child.stderr.on('data', (d) => { stderr += d; opts.onStderr?.(stderr); });
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`xenpv ${args.join(' ')}: no exit within ${opts.timeoutMs ?? 60_000} ms\n${stderr}`)); }, opts.timeoutMs ?? 60_000);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, ms: Date.now() - t0 });
    });
  });
}
