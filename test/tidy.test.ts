// Guards that keep the code's shape (issue 14, item 8). Deterministic cores take the time and
// randomness from their driver: no clock, timer or Math.random may creep into them, or the
// simulators (test/master/raft/sim.ts, test/master/leader-sim.ts) stop being reproducible.
// Add a file to CORES when it becomes a core; add a guard below as a new t.test.
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import ts from 'typescript';

const ROOT = join(import.meta.dirname, '..');

/** The .ts files below `dir` (relative to the repository), leaving out the folders named in `skip`. */
function tsFiles(dir: string, skip: string[] = []): string[] {
  return readdirSync(join(ROOT, dir)).sort().flatMap((name) => {
    const rel = `${dir}/${name}`;
    if (statSync(join(ROOT, rel)).isDirectory()) return skip.includes(rel) ? [] : tsFiles(rel, skip);
    return rel.endsWith('.ts') ? [rel] : [];
  });
}

/** Files that must be deterministic: decisions only, on the time and random source they are given. */
const CORES = [
  'master/raft/core.ts',
  'master/leader/core.ts',
  ...tsFiles('master/registry'),
  ...tsFiles('master/repair'),
  'master/placement.ts',
  ...tsFiles('master/state'),
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

/** The chunkserver's files and the client library's (cli/client.ts and cli/client-*.ts). */
function chunkserverAndClientFiles(): string[] {
  const chunkserver = readdirSync(join(ROOT, 'chunkserver'), { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.ts')).map((f) => `chunkserver/${f}`);
  const client = readdirSync(join(ROOT, 'cli')).filter((f) => /^client(-[\w-]+)?\.ts$/.test(f)).map((f) => `cli/${f}`);
  return [...chunkserver, ...client, 'common/chunk-put.ts', 'cli/cluster.ts'].sort();
}

/** Where the shape rules below hold: the master outside its Raft (which has rules of its own), the chunkserver, the client library. */
const SHAPED = [...tsFiles('master', ['master/raft']), ...chunkserverAndClientFiles()];
/** No function longer than this many lines, its signature and closing brace included. */
const MAX_FUNCTION_LINES = 70;
/** No file longer than this many lines: past it, a file holds more than one idea. */
const MAX_FILE_LINES = 450;

/** Functions of `source` (methods, arrows, accessors, constructors) longer than `max` lines, as "line name: n lines". */
export function longFunctions(source: string, max = MAX_FUNCTION_LINES): string[] {
  const sf = ts.createSourceFile('x.ts', source, ts.ScriptTarget.Latest, true);
  const out: string[] = [];
  const visit = (node: ts.Node): void => {
    if (ts.isFunctionLike(node) && 'body' in node && node.body) {
      const first = sf.getLineAndCharacterOfPosition(node.getStart(sf)).line;
      const last = sf.getLineAndCharacterOfPosition(node.getEnd()).line;
      const name = ts.isConstructorDeclaration(node) ? 'constructor' : 'name' in node && node.name ? node.name.getText(sf) : '(anonymous)';
      if (last - first + 1 > max) out.push(`${first + 1} ${name}: ${last - first + 1} lines`);
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return out;
}

/** Lines in `source` (a final newline ends the last line, it does not start another). */
export function lineCount(source: string): number {
  return source.split('\n').length - (source.endsWith('\n') ? 1 : 0);
}

t.test(`master/ (outside raft/), chunkserver/ and the client have no function over ${MAX_FUNCTION_LINES} lines and no file over ${MAX_FILE_LINES}`, async (t) => {
  t.ok(SHAPED.length >= 45, `${SHAPED.length} files checked`);
  t.notOk(SHAPED.some((f) => f.startsWith('master/raft/')), 'master/raft is left to its own rules');
  for (const file of SHAPED) {
    const source = readFileSync(join(ROOT, file), 'utf8');
    t.same(longFunctions(source), [], `${file}: functions of at most ${MAX_FUNCTION_LINES} lines`);
    t.ok(lineCount(source) <= MAX_FILE_LINES, `${file}: ${lineCount(source)} lines, at most ${MAX_FILE_LINES}`);
  }
});

t.test('the shape guards bite', async (t) => {
  const body = (n: number) => Array.from({ length: n }, (_, i) => `  x += ${i};`).join('\n');
  // 2 lines of signature and brace around the body: 68 lines of body is a 70-line function.
  t.same(longFunctions(`function ok(x: number) {\n${body(68)}\n}\n`), [], 'a function of exactly the limit passes');
  t.same(longFunctions(`function tooLong(x: number) {\n${body(69)}\n}\n`), ['1 tooLong: 71 lines']);
  t.same(longFunctions(`class A {\n  m(x: number) {\n${body(69)}\n  }\n}\n`), ['2 m: 71 lines'], 'methods count');
  t.same(longFunctions(`const f = (x: number) => {\n${body(69)}\n};\n`), ['1 (anonymous): 71 lines'], 'arrow functions count');
  t.same(longFunctions(`class B {\n  constructor(x: number) {\n${body(69)}\n  }\n}\n`), ['2 constructor: 71 lines'], 'constructors count');
  t.same(longFunctions('function* g() {\n  yield 1;\n}\n', 2), ['1 g: 3 lines'], 'generators count');
  t.equal(lineCount('a\nb\n'), 2);
  t.equal(lineCount('a\nb'), 2);
  t.ok(lineCount(`${body(451)}\n`) > MAX_FILE_LINES, 'a file past the limit is seen as one');
});

/** The source without its comments (strings kept: a route literal is a string). */
function withoutComments(source: string): string {
  return source.replace(/\/\*[\s\S]*?\*\//g, (c) => c.replace(/[^\n]/g, ' ')).replace(/(^|[^:])\/\/.*$/gm, '$1');
}

/** Lines of `source` that spell a route path (`/v1/...`, `/metrics`, `/ui/`) in code, as "line: text". */
export function routeLiterals(source: string): string[] {
  const out: string[] = [];
  withoutComments(source).split('\n').forEach((line, i) => {
    if (/\/v1\/|['"`]\/(metrics|ui\/)/.test(line)) out.push(`${i + 1}: ${line.trim()}`);
  });
  return out;
}

/** Where route paths may be written: the wire contract, and nowhere else outside the tests. */
const CONTRACT_DIR = 'common/contract';
/**
 * The Raft stream's path, spelt in master/raft, which imports nothing of the project;
 * test/common/contract.test.ts holds it equal to the contract's.
 */
const RAFT_STREAM_FILE = 'master/raft/stream-transport.ts';

t.test('no route path is written outside the wire contract (common/contract/): servers mount and clients call through its entries', async (t) => {
  const files = ['common', 'master', 'chunkserver', 'cli', 's3', 'scripts'].flatMap((d) => tsFiles(d)).filter((f) => !f.startsWith(`${CONTRACT_DIR}/`) && f !== RAFT_STREAM_FILE);
  t.ok(files.length >= 100, `${files.length} files checked`);
  for (const file of files) t.same(routeLiterals(readFileSync(join(ROOT, file), 'utf8')), [], `${file} names routes through common/contract/`);
});

/** The one file of cli/ that may load the server roles: it runs `dfs master`, `dfs chunkserver`. */
const ROLE_DISPATCHER = 'cli/server-commands.ts';

/** The modules `source` imports (statically or with import()) from master/ or chunkserver/. */
export function roleImports(source: string): string[] {
  return [...withoutComments(source).matchAll(/(?:from\s+|import\s*\(\s*)['"]((?:\.\.\/)+(?:master|chunkserver)\/[^'"]*)['"]/g)].map((m) => m[1]!);
}

t.test('cli/ holds the client: only the role dispatcher loads master/ or chunkserver/', async (t) => {
  const files = tsFiles('cli');
  t.ok(files.includes(ROLE_DISPATCHER), `${ROLE_DISPATCHER} is there`);
  for (const file of files) {
    if (file === ROLE_DISPATCHER) continue;
    t.same(roleImports(readFileSync(join(ROOT, file), 'utf8')), [], `${file} imports no server role`);
  }
});

t.test('the contract guards bite', async (t) => {
  t.same(routeLiterals("app.post('/v1/fs/mkdir', h);\n// see /v1/fs/mkdir\nconst u = `${a}/v1/chunks/${h}`;"), ["1: app.post('/v1/fs/mkdir', h);", '3: const u = `${a}/v1/chunks/${h}`;']);
  t.same(routeLiterals("fetch('http://x/metrics');\napp.get('/metrics', f);"), ["2: app.get('/metrics', f);"], 'a URL with a host is not a route literal; a bare path is');
  t.same(roleImports("import { a } from '../master/main.js';\nconst m = await import('../chunkserver/main.js');\nimport { b } from '../common/x.js';"), ['../master/main.js', '../chunkserver/main.js']);
});
