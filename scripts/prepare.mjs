// npm's `prepare` step (npm ci, npm install in a clone, npm pack): builds dist/ as `npm run build`
// does: TypeScript, then the one-file binary (scripts/bundle.mjs).
// TypeScript is a dev dependency, so an install without them (npm ci --omit=dev) cannot build:
// then the dist/ already there is used, and with none it stops with what to do instead of
// "tsc: not found". A package made by `npm pack` ships dist/ and never runs this.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const built = existsSync(new URL('../dist/cli/main.js', import.meta.url));

/** Where a dev dependency's file is, or undefined when dev dependencies are not installed. */
function devFile(spec) {
  try {
    return createRequire(import.meta.url).resolve(spec);
  } catch {
    return undefined;
  }
}

const tsc = devFile('typescript/bin/tsc');

if (tsc) {
  const r = spawnSync(process.execPath, [tsc, '-p', 'tsconfig.json'], { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) process.exit(r.status ?? 1);
  // esbuild is a dev dependency beside TypeScript: where one is installed, so is the other.
  const { bundle } = await import('./bundle.mjs');
  await bundle();
  // tap, a dev dependency beside them, runs the tests with the plugins package.json names (tsx in
  // place of its TypeScript plugin). It rebuilds itself for them only after its first run has
  // started that run's tests with the plugins it came with (ts-node and tsx both, ~2 s more per
  // test file), and CI only ever makes first runs: so it is built here, once per install.
  const tap = devFile('tap/package.json');
  if (tap) {
    const t = spawnSync(process.execPath, [join(dirname(tap), 'dist', 'esm', 'run.mjs'), 'build'], { cwd: root, stdio: ['ignore', 'ignore', 'inherit'] });
    if (t.status !== 0) process.exit(t.status ?? 1);
  }
} else if (built) {
  console.error('dfs: using dist/ as it is: TypeScript, a dev dependency, is not installed to rebuild it');
} else {
  console.error('dfs: dist/ is not built and TypeScript, a dev dependency, is not installed to build it. Run `npm ci` (dev dependencies included) to build, then `npm prune --omit=dev` to drop them; or install a package made by `npm pack`, which ships dist/');
  process.exit(1);
}
