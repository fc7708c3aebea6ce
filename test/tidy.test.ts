// Guards that keep the code's shape (issue 14, item 8). Deterministic cores take the time and
// randomness from their driver: no clock, timer or Math.random may creep into them, or the
// simulators (test/master/raft/sim.ts, test/master/leader-sim.ts) stop being reproducible.
// Add a file to CORES when it becomes a core; add a guard below as a new t.test.
import { readdirSync, readFileSync } from 'node:fs';
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

// ---- Shape of the chunkserver and the client library (issue 14, item 3) ----
// One idea per file and short functions: a file over MAX_FILE_LINES or a function over
// MAX_FUNCTION_LINES is split along its seams, not given an exception here.

const MAX_FILE_LINES = 450;
const MAX_FUNCTION_LINES = 70;

/** The chunkserver's files and the client library's (cli/client.ts and cli/client-*.ts). */
function chunkserverAndClientFiles(): string[] {
  const chunkserver = readdirSync(join(ROOT, 'chunkserver'), { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.ts')).map((f) => `chunkserver/${f}`);
  const client = readdirSync(join(ROOT, 'cli')).filter((f) => /^client(-[\w-]+)?\.ts$/.test(f)).map((f) => `cli/${f}`);
  return [...chunkserver, ...client, 'common/chunk-put.ts', 'cli/cluster.ts'].sort();
}

/** Starts of functions, methods, constructors and arrow functions whose body opens on the same line. */
const FUNCTION_START = /(\bfunction\b[^(]*\(|=>\s*\{\s*$|^\s*(?:(?:private|protected|public|static|readonly|async|get|set)\s+)*(?!(?:if|for|while|switch|catch|return|await|else|new|typeof)\b)[\w$]+\s*(?:<[^>]*>)?\s*\([^;]*\)\s*(?::\s*[^=;]+)?\{\s*$)/;

/** Functions of `source` longer than `max` lines, as "line: N lines" (line of the start; braces matched on the code alone). */
export function longFunctions(source: string, max: number): string[] {
  const lines = codeOnly(source).split('\n');
  const out: string[] = [];
  lines.forEach((line, start) => {
    if (!FUNCTION_START.test(line) || !line.trimEnd().endsWith('{')) return;
    let depth = 0;
    for (let i = start; i < lines.length; i++) {
      for (const ch of lines[i]!) {
        if (ch === '{') depth++;
        else if (ch === '}') depth--;
      }
      if (depth <= 0) {
        const n = i - start + 1;
        if (n > max) out.push(`${start + 1}: ${n} lines`);
        return;
      }
    }
  });
  return out;
}

t.test('chunkserver and client files hold one idea each: no file over 450 lines, no function over 70', async (t) => {
  const files = chunkserverAndClientFiles();
  t.ok(files.length >= 15, `${files.length} files checked`);
  for (const file of files) {
    const source = readFileSync(join(ROOT, file), 'utf8');
    const n = source.split('\n').length;
    t.ok(n <= MAX_FILE_LINES, `${file}: ${n} lines (at most ${MAX_FILE_LINES})`);
    t.same(longFunctions(source, MAX_FUNCTION_LINES), [], `${file}: no function over ${MAX_FUNCTION_LINES} lines`);
  }
});

t.test('the function-length guard bites', async (t) => {
  const body = (n: number) => Array.from({ length: n }, (_, i) => `  const x${i} = ${i};`).join('\n');
  t.same(longFunctions(`function f(a: number): void {\n${body(2)}\n}`, 4), [], 'a short function passes');
  t.same(longFunctions(`function f(a: number): void {\n${body(5)}\n}`, 4), ['1: 7 lines']);
  t.same(longFunctions(`class A {\n  private async m(x: string): Promise<void> {\n${body(5)}\n  }\n}`, 4), ['2: 7 lines'], 'methods count');
  t.same(longFunctions(`const f = async () => {\n${body(5)}\n};`, 4), ['1: 7 lines'], 'arrow functions count');
  t.same(longFunctions(`function f() {\n  if (a) {\n${body(5)}\n  }\n}`, 6), ['1: 9 lines'], 'a block inside is part of its function, and no function itself');
  t.same(longFunctions(`function f() {\n  const s = '{{{';\n${body(1)}\n}`, 4), [], 'braces in strings do not count');
});
