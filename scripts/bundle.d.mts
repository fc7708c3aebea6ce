// Types of scripts/bundle.mjs for the tests that import it (a plain .mjs: the build runs it before tsc's output exists).
import type { Metafile } from 'esbuild';

/** Bundles the dfs binary into `outfile` (default dist/cli/main.js); answers esbuild's metafile. */
export function bundle(outfile?: string): Promise<Metafile>;
