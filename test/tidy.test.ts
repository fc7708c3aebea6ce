// Guards that keep the code's shape (issue 14, item 8). Deterministic cores take the time and
// randomness from their driver: no clock, timer or Math.random may creep into them, or the
// simulators (test/master/raft/sim.ts, test/master/leader-sim.ts) stop being reproducible.
// Add a file to CORES when it becomes a core; add a guard below as a new t.test.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';

const ROOT = join(import.meta.dirname, '..');

/** Files that must be deterministic: decisions only, on the time and random source they are given. */
const CORES = [
  'master/raft/core.ts',
  'master/leader/core.ts',
  'master/registry.ts',
  'master/repair.ts',
  'master/placement.ts',
  'master/state.ts',
];

/** What only a driver may touch: the machine's clocks, timers and randomness. */
const FORBIDDEN: [RegExp, string][] = [
  [/\bDate\.now\s*\(/, 'Date.now()'],
  [/\bnew Date\s*\(\s*\)/, 'new Date()'],
  [/\bperformance\.now\s*\(/, 'performance.now()'],
  [/\bprocess\.hrtime\b/, 'process.hrtime'],
  [/\bMath\.random\b/, 'Math.random'],
  [/\bset(Timeout|Interval|Immediate)\s*\(/, 'a timer'],
  [/\bqueueMicrotask\s*\(/, 'queueMicrotask'],
];

/** The source without its comments (which may name what the code must not use) and string contents. */
export function codeOnly(source: string): string {
  return source
    .replace(/\/\*[\s\S]*?\*\//g, (c) => c.replace(/[^\n]/g, ' '))
    .replace(/(^|[^:])\/\/.*$/gm, '$1')
    .replace(/'(?:[^'\\\n]|\\.)*'|"(?:[^"\\\n]|\\.)*"/g, "''");
}

/** Lines of `source` that use something FORBIDDEN, as "line: what". */
export function forbiddenUses(source: string): string[] {
  const out: string[] = [];
  codeOnly(source).split('\n').forEach((line, i) => {
    for (const [re, what] of FORBIDDEN) if (re.test(line)) out.push(`${i + 1}: ${what}`);
  });
  return out;
}

t.test('deterministic cores read no clock, set no timer and draw no random number', async (t) => {
  for (const file of CORES) {
    t.same(forbiddenUses(readFileSync(join(ROOT, file), 'utf8')), [], `${file} takes time and randomness from its driver`);
  }
});

t.test('the guard itself bites', async (t) => {
  t.same(forbiddenUses('const a = Date.now();\nconst b = 1;\nsetTimeout(f, 1);'), ['1: Date.now()', '3: a timer']);
  t.same(forbiddenUses('// Date.now() is for drivers\n/* Math.random */ const s = "setInterval(";'), [], 'comments and strings do not count');
  t.same(forbiddenUses('const r = opts.random ?? Math.random;'), ['1: Math.random']);
});
