/**
 * Worker threads and child processes run compiled JavaScript. Code under test
 * runs from src/*.ts (vitest) or dist/src/*.js (the package); both resolve a
 * sibling module to its compiled file under dist/src.
 */
import { existsSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { IoError } from '../errors.js';

/** The nearest ancestor of `from` that holds package.json. */
export function packageRoot(from: string): string {
  let dir = dirname(from);
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir);
    if (up === dir) throw new IoError(`no package.json above ${from}`);
    dir = up;
  }
  return dir;
}

/**
 * The compiled path of `src/<rel>.js`, given the caller's import.meta.url.
 * Fails with a hint when the build is missing.
 */
export function compiledModule(callerUrl: string, relFromSrc: string): string {
  const caller = fileURLToPath(callerUrl);
  const root = packageRoot(caller);
  const path = join(root, 'dist', 'src', relFromSrc);
  if (!existsSync(path)) {
    throw new IoError(`${relative(root, path)} is missing: run \`npm run build\` first`);
  }
  return path;
}
