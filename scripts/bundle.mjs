// The second half of `npm run build` (after tsc): the `dfs` binary as one file. Every `dfs`
// process (a CLI command, and each master, chunkserver and gateway, which are `dfs` subcommands)
// otherwise spends most of its start loading ~300 ES modules one by one (zod alone is 222 files);
// one file parses once. esbuild bundles from the sources (tsc has type-checked them) and writes
// over tsc's module form of dist/cli/main.js, so the path that `bin`, `npm start`, the tests, the
// scripts and the unit files run stays the same, and a plain `tsc` (which rewrites that file)
// never leaves an old bundle behind: it gives the module form back, slower but the same program.
// The library (`exports` ".": dist/cli/index.js) stays tsc's modules: it is imported, not run.
//
// What a bundle changes, and why it still holds (docs/ARCHITECTURE.md, "Build"):
// - import.meta.url is dist/cli/main.js's, as it was for cli/main.ts: package.json is two folders
//   up, `dfs cluster` starts its roles with this file, and the master finds its page under
//   master/ui/ two folders up (master/dashboard.ts looks there).
// - CommonJS dependencies (express, pino, undici, prom-client) call `require` for Node's own
//   modules: the banner gives the ES module one.
// - The roles stay lazy: esbuild keeps `await import('../master/main.js')` a deferred init, so a
//   CLI command runs none of the master's module code (it still parses it: one file).
// - yargs reads its translations from files beside it, which a bundle has not: cli/main.ts turns
//   locale detection off, so the bundle and the modules both speak English.
import { build } from 'esbuild';
import { chmodSync, rmSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));

/** Bundles cli/main.ts into `outfile` (relative to the repository root); gives esbuild's metafile (what went in, what it imports). */
export async function bundle(outfile = 'dist/cli/main.js') {
  const result = await build({
    absWorkingDir: root,
    entryPoints: ['cli/main.ts'],
    outfile,
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'esm',
    // Whitespace and syntax only: a smaller file parses faster; names stay, for the rare stack
    // trace. No source map: users never see a stack trace, and a linked map is read by whatever
    // looks for maps (tap's process tracker in the tests, --enable-source-maps): 2 MB to parse.
    minifyWhitespace: true,
    minifySyntax: true,
    legalComments: 'none',
    banner: { js: "import { createRequire as __dfsCreateRequire } from 'node:module'; const require = __dfsCreateRequire(import.meta.url);" },
    logLevel: 'warning',
    metafile: true,
  });
  // tsc's map of the module form it wrote there: it would describe another file.
  rmSync(resolve(root, `${outfile}.map`), { force: true });
  // The package's bin: `npx dfs` in a clone runs it as a program (npm sets the mode only when it
  // installs a package; a clone's build is not installed), and it starts with a #! line.
  chmodSync(resolve(root, outfile), 0o755);
  return result.metafile;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  await bundle(process.argv[2]);
}
