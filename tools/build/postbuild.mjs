// tsc compiles src/ and tools/ side by side under dist/ (rootDir "."), so the
// package root lands in dist/src/. Re-export it from dist/index.js, where
// package.json's "main" and users expect it.
import { writeFileSync } from 'node:fs';
writeFileSync('dist/index.js', "export * from './src/index.js';\n");
writeFileSync('dist/index.d.ts', "export * from './src/index.js';\n");
