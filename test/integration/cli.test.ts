// Drives every file command of the `dfs` CLI as a user would, against one real cluster: the
// output of each, and for each way to get it wrong the exit code (1: the operation failed, 2: the
// command line is wrong) and the single `dfs: <message>` line on stderr, never a stack trace.
// Each `dfs` is a node process that takes a while to start, so commands that do not depend on
// each other run a few at a time, and the subtests share one set of files put up front.
import t from 'tap';
import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DFS, randomBytesSeeded, runDfs, TestCluster, type RunResult } from '../helpers/cluster.js';

const CHUNK = 64 * 1024;
const FAILED = 1;
const USAGE = 2;
/** Nothing listens here: a connection is refused at once. */
const NO_MASTER = '127.0.0.1:1';
/** Local time with its offset from UTC. */
const DATE = '\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d [+-]\\d{4}';
const HELP = ' (see dfs --help)';
// No NODE_OPTIONS: each `dfs` starts as a user's does (test/helpers/untracked-children.mjs keeps
// tap's tracker out).
const QUICK = { NODE_OPTIONS: '' };

/** The few assertions the helpers use (tap's subtest type, without spelling out its plugins). */
interface Asserts {
  equal(found: unknown, wanted: unknown, message: string): boolean;
  match(found: unknown, pattern: unknown, message: string): boolean;
  notMatch(found: unknown, pattern: unknown, message: string): boolean;
}

/** A command that failed: its exit code, exactly one `dfs: ...` line on stderr, nothing on stdout. */
function failed(t: Asserts, r: RunResult, code: number, message: string | RegExp, what: string): void {
  t.equal(r.code, code, `${what}: exits ${code}`);
  // A failure the server answered ends with the id it served the call under, to grep its log for.
  const said = r.stderr.replace(/ \(request [0-9a-f]{16}\)\n$/, '\n');
  if (typeof message === 'string') t.equal(said, `dfs: ${message}\n`, `${what}: says why`);
  else t.match(said, message, `${what}: says why`);
  t.match(r.stderr, /^dfs: [^\n]+\n$/, `${what}: stderr is one "dfs: ..." line`);
  t.notMatch(r.stderr, /^\s+at /m, `${what}: no stack trace`);
  t.equal(r.stdout.length, 0, `${what}: nothing on stdout`);
}

/** A command that worked: exit 0 and a quiet stderr (no progress bar without a terminal). Returns stdout. */
function ok(t: Asserts, r: RunResult, what: string): string {
  t.equal(r.code, 0, `${what}: exits 0 ${r.stderr}`);
  t.equal(r.stderr, '', `${what}: nothing on stderr`);
  return r.stdout.toString();
}

const label = (args: string[]) => `dfs ${args.map((a) => (/^[\w/.:,=-]+$/.test(a) ? a : JSON.stringify(a))).join(' ')}`;

type Run = string[] | { args: string[]; input?: Buffer | string; env?: Record<string, string>; cluster?: false };

// A generous dead timeout: a heartbeat late on a busy machine must not change what status shows.
const c = await TestCluster.start({ chunkservers: 3, chunkSizeBytes: CHUNK, deadTimeoutMs: 30_000 });
t.teardown(() => c.stop());
const local = join(c.dir, 'local');
mkdirSync(local);

/** Runs one `dfs` against the cluster. */
function dfs(args: string[]): Promise<RunResult> {
  return c.dfs(args, { env: QUICK });
}

/** Runs commands that do not depend on each other, four at a time; answers their results in order. */
async function batch(runs: Run[], width = 4): Promise<RunResult[]> {
  const results: RunResult[] = new Array(runs.length);
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(width, runs.length) }, async () => {
    while (next < runs.length) {
      const i = next++;
      const r = runs[i]!;
      const run = Array.isArray(r) ? { args: r } : r;
      const opts = { input: run.input, env: { ...QUICK, ...run.env } };
      results[i] = run.cluster === false ? await runDfs(run.args, opts) : await c.dfs(run.args, opts);
    }
  }));
  return results;
}

/** The whole namespace as `ls -R -l` shows it: to check that refused commands changed nothing. */
async function tree(): Promise<string> {
  const r = await dfs(['ls', '-R', '-l', '/']);
  if (r.code !== 0) throw new Error(`ls -R failed: ${r.stderr}`);
  return r.stdout.toString();
}

// The files every subtest starts from (put makes the directories).
const BIG = randomBytesSeeded(CHUNK + 16 * 1024, 1);
const MOVED = randomBytesSeeded(CHUNK + 100, 5);
const OLD = randomBytesSeeded(2 * CHUNK + 3, 11);
const fixtures: [string, Buffer | string][] = [
  ['/ls/a.txt', 'hello'], ['/ls/big.bin', BIG], ['/ls/sub/b.bin', '0123456789'],
  ['/mk/file', 'data'],
  ['/rm/file', 'x'], ['/rm/dir/one', '1'], ['/rm/dir/sub/two', '22'],
  ['/mv/a', MOVED], ['/mv/other', 'other'], ['/mv/dir/c', 'in dir'],
  ['/pg/f.bin', OLD],
];
const putFixtures = await batch(fixtures.map(([path, input]) => ({ args: ['put', '-', path], input })));
const notPut = putFixtures.findIndex((r) => r.code !== 0);
if (notPut >= 0) {
  await c.stop();
  throw new Error(`put ${fixtures[notPut]![0]} failed: ${putFixtures[notPut]!.stderr}`);
}

t.test('ls: plain, -l, -R, -h, --json', async (t) => {
  const [plain, file, root, rec, long, human, json, missing] = await batch([
    ['ls', '/ls/'], ['ls', '/ls/a.txt'], ['ls'], ['ls', '-R', '/ls'], ['ls', '-l', '/ls'], ['ls', '-l', '-h', '/ls'], ['ls', '--json', '/ls'], ['ls', '/ls/nope'],
  ]);
  t.equal(ok(t, plain!, 'ls'), 'a.txt\nbig.bin\nsub/\n', 'names, sorted, directories with a / (a trailing / is dropped)');
  t.equal(ok(t, file!, 'ls of a file'), 'a.txt\n', 'ls of a file shows that file');
  t.match(ok(t, root!, 'ls without a path'), /^ls\/$/m, 'ls alone lists /');
  t.equal(ok(t, rec!, 'ls -R'), '/ls/a.txt\n/ls/big.bin\n/ls/sub/\n/ls/sub/b.bin\n', 'full paths, depth first');

  const rows = ok(t, long!, 'ls -l').split('\n');
  t.match(rows[0], new RegExp(`^- r3 +5 ${DATE} a\\.txt$`), 'file row: type, replication, size, mtime, name');
  t.match(rows[1], new RegExp(`^- r3 +${BIG.length} ${DATE} big\\.bin$`));
  t.match(rows[2], new RegExp(`^d - +- ${DATE} sub/$`), 'directory row');
  t.equal(rows.length, 4, 'three rows and a final newline');
  const h = ok(t, human!, 'ls -l -h');
  t.match(h, new RegExp(`^- r3 +5 B ${DATE} a\\.txt$`, 'm'));
  t.match(h, new RegExp(`^- r3 +80\\.0 KiB ${DATE} big\\.bin$`, 'm'), '-h: sizes in KiB');

  const listing = JSON.parse(ok(t, json!, 'ls --json')) as { path: string; entries: Record<string, unknown>[] };
  t.equal(listing.path, '/ls');
  t.same(listing.entries.map((e) => e.name), ['a.txt', 'big.bin', 'sub']);
  t.match(listing.entries[1], { path: '/ls/big.bin', type: 'file', size: BIG.length, replication: 3, state: 'complete', chunkCount: 2, mtimeMs: Number });
  t.match(listing.entries[2], { path: '/ls/sub', type: 'dir' });

  failed(t, missing!, FAILED, '/ls/nope does not exist', 'ls of a missing path');
});

t.test('du: per entry, -s, -h, --json', async (t) => {
  const total = 5 + BIG.length + 10;
  const [plain, summary, human, json, summaryJson, missing] = await batch([
    ['du', '/ls'], ['du', '-s', '/ls'], ['du', '-h', '/ls'], ['du', '--json', '/ls'], ['du', '-s', '--json', '/ls'], ['du', '/ls/nope'],
  ]);
  t.equal(ok(t, plain!, 'du'), `5\t/ls/a.txt\n${BIG.length}\t/ls/big.bin\n10\t/ls/sub\n${total}\t/ls\n`, 'each entry, then the total');
  t.equal(ok(t, summary!, 'du -s'), `${total}\t/ls\n`, '-s: only the total');
  t.equal(ok(t, human!, 'du -h'), '5 B\t/ls/a.txt\n80.0 KiB\t/ls/big.bin\n10 B\t/ls/sub\n80.0 KiB\t/ls\n', '-h: human sizes');
  const counts = { path: '/ls', bytes: total, files: 3, dirs: 2, chunks: 4 };
  t.same(JSON.parse(ok(t, json!, 'du --json')), {
    ...counts, entries: [{ path: '/ls/a.txt', bytes: 5 }, { path: '/ls/big.bin', bytes: BIG.length }, { path: '/ls/sub', bytes: 10 }],
  });
  t.same(JSON.parse(ok(t, summaryJson!, 'du -s --json')), counts);
  failed(t, missing!, FAILED, '/ls/nope does not exist', 'du of a missing path');
});

t.test('stat: file and directory, text and --json', async (t) => {
  const [json, text, human, dir, dirJson, missing] = await batch([
    ['stat', '--json', '/ls/big.bin'], ['stat', '/ls/big.bin'], ['stat', '-h', '/ls/big.bin'], ['stat', '/ls/sub'], ['stat', '--json', '/ls/sub'], ['stat', '/ls/nope'],
  ]);
  const info = JSON.parse(ok(t, json!, 'stat --json')) as {
    chunks: { index: number; handle: number; version: number; length: number; checksum: string; replicas: { id: string; addr: string }[] }[];
  };
  t.match(info, { path: '/ls/big.bin', name: 'big.bin', type: 'file', size: BIG.length, replication: 3, state: 'complete', chunkCount: 2, chunkSizeBytes: CHUNK, mtimeMs: Number });
  t.same(info.chunks.map((ch) => [ch.index, ch.length]), [[0, CHUNK], [1, BIG.length - CHUNK]], 'each chunk, its length');
  for (const ch of info.chunks) {
    t.ok(Number.isSafeInteger(ch.handle) && ch.handle > 0, `chunk ${ch.index}: a handle`);
    t.ok(Number.isSafeInteger(ch.version) && ch.version >= 1, `chunk ${ch.index}: a version`);
    t.match(ch.checksum, /^[0-9a-f]{16}$/, `chunk ${ch.index}: a checksum`);
    t.equal(new Set(ch.replicas.map((r) => r.id)).size, 3, `chunk ${ch.index}: 3 replicas on distinct servers`);
    for (const r of ch.replicas) t.match(r, { id: /^cs\d$/, addr: /^127\.0\.0\.1:\d+$/ }, `chunk ${ch.index}: replica id and address`);
  }
  t.not(info.chunks[0]!.handle, info.chunks[1]!.handle, 'each chunk has its own handle');

  const lines = ok(t, text!, 'stat').split('\n');
  t.same(lines.slice(0, 6), ['path:        /ls/big.bin', 'type:        file', `size:        ${BIG.length} bytes`, 'state:       complete', 'replication: 3', `chunk size:  ${CHUNK}`]);
  t.match(lines[6], new RegExp(`^modified:    ${DATE}$`));
  t.equal(lines[7], 'chunks:      2');
  info.chunks.forEach((ch, i) => {
    const replicas = ch.replicas.map((r) => `${r.id}@${r.addr}`.replace(/\./g, '\\.')).join(', ');
    t.match(lines[8 + i], new RegExp(`^  #${i} handle ${ch.handle} v${ch.version} ${ch.length} checksum ${ch.checksum} replicas ${replicas}$`), `chunk line ${i}`);
  });
  t.equal(lines.length, 11, 'one line per chunk and a final newline');

  const h = ok(t, human!, 'stat -h');
  t.match(h, /^size: {8}80\.0 KiB$/m, '-h: size in KiB');
  t.match(h, /^chunk size: {2}64\.0 KiB$/m);
  t.match(h, / 16\.0 KiB checksum /, '-h: chunk lengths too');

  t.match(ok(t, dir!, 'stat of a directory'), new RegExp(`^path: {8}/ls/sub\ntype: {8}dir\nmodified: {4}${DATE}\n$`), 'a directory: no size, no chunks');
  const dirInfo = JSON.parse(ok(t, dirJson!, 'stat --json of a directory')) as Record<string, unknown>;
  t.match(dirInfo, { path: '/ls/sub', type: 'dir', chunkCount: 0 });
  t.notOk(dirInfo.chunks, 'a directory lists no chunks');
  failed(t, missing!, FAILED, '/ls/nope does not exist', 'stat of a missing path');
});

t.test('status: text and --json', async (t) => {
  const [text, json] = await batch([['status'], ['status', '--json']]);
  const lines = ok(t, text!, 'status').split('\n');
  t.equal(lines[0], 'masters:');
  t.match(lines[1], new RegExp(`^  m1 +${c.masters.replace(/\./g, '\\.')} +leader  term \\d+ commit \\d+ applied \\d+$`), 'the master, its role and log');
  t.match(lines[2], /^chunkservers: 3 live of 3: [\d.]+ \w+ raw, [\d.]+ \w+ free \(3 chunkservers on 1 file system, each counted once\)$/);
  for (const line of lines.slice(3, 6)) {
    t.match(line, /^ {2}cs\d +127\.0\.0\.1:\d+ +alive +capacity +[\d.]+ \w+ +free +[\d.]+ \w+ +used +[\d.]+ \w+ +chunks +\d+ +heartbeat \d+\.\ds ago$/, 'a chunkserver row');
  }
  t.match(lines[6], /^namespace: \d+ files, \d+ directories, \d+ chunks \(chunk size 64\.0 KiB, replication 3\)$/);
  t.match(lines[7], /^health: \d+ under-replicated chunks, \d+ missing chunks, \d+ over-replicated$/);
  t.match(lines[8], /^failure tolerance: any 2 servers can be lost without losing data; one live rack \(default\): losing it loses everything$/, 'every chunk on 3 servers, all in the one default rack');
  t.match(lines[9], /^repair: \d+ copies in flight, \d+ done, \d+ failed; balancing: \d+ moves in flight, \d+ done \(since this leader took over\)$/);
  t.match(lines[10], /^trash: \d+ files?, .* each kept .* after rm \(dfs trash\)$/, 'what the trash holds');
  t.equal(lines.length, 12, 'and a final newline');

  const s = JSON.parse(ok(t, json!, 'status --json')) as { masters: Record<string, unknown>[]; chunkservers: Record<string, unknown>[] };
  t.match(s, { leader: c.masters, files: Number, dirs: Number, chunks: Number, underReplicatedChunks: Number, overReplicatedChunks: Number, missingChunks: Number, chunkSizeBytes: CHUNK, defaultReplication: 3 });
  t.equal(s.masters.length, 1, 'one master');
  t.match(s.masters[0], { id: 'm1', addr: c.masters, role: 'leader', reachable: true, term: Number, commitIndex: Number, appliedIndex: Number });
  t.same(s.chunkservers.map((cs) => cs.id).sort(), ['cs1', 'cs2', 'cs3'], 'three chunkservers');
  for (const cs of s.chunkservers) {
    t.match(cs, { addr: /^127\.0\.0\.1:\d+$/, alive: true, state: 'in-service', capacityBytes: Number, freeBytes: Number, usedBytes: Number, chunkCount: Number, lastHeartbeatAgoMs: Number }, `${cs.id}: its fields`);
    const [capacity, free, used, chunks, ago] = [cs.capacityBytes, cs.freeBytes, cs.usedBytes, cs.chunkCount, cs.lastHeartbeatAgoMs] as number[];
    t.ok(capacity! > 0 && free! <= capacity!, `${cs.id}: capacity and free space`);
    t.ok(used! >= 0 && Number.isInteger(chunks) && chunks! >= 0 && ago! >= 0, `${cs.id}: use, chunk count, last heartbeat`);
  }
});

t.test('mkdir: -p, exists, parent missing, under a file', async (t) => {
  const [exists, parents, deep, two, noParent, overFile, underFile] = await batch([
    ['mkdir', '/mk'], ['mkdir', '-p', '/mk'], ['mkdir', '-p', '/mk/a/b/c'], ['mkdir', '--json', '/mk/x', '/mk/y'],
    ['mkdir', '/nope/x'], ['mkdir', '-p', '/mk/file'], ['mkdir', '-p', '/mk/file/sub/deeper'],
  ]);
  failed(t, exists!, FAILED, '/mk already exists', 'mkdir of an existing directory');
  t.equal(ok(t, parents!, 'mkdir -p of an existing directory is no error'), '', 'no output');
  ok(t, deep!, 'mkdir -p makes the parents');
  t.match(JSON.parse(ok(t, two!, 'mkdir --json of two')), [{ path: '/mk/x', name: 'x', type: 'dir' }, { path: '/mk/y', type: 'dir' }], '--json: what was made');
  failed(t, noParent!, FAILED, 'parent directory /nope does not exist (mkdir -p creates it)', 'mkdir under a missing parent');
  failed(t, overFile!, FAILED, '/mk/file already exists', 'mkdir -p over a file');
  failed(t, underFile!, FAILED, '/mk/file is a file, not a directory', 'mkdir -p under a file');

  const [listing, nope] = await batch([['ls', '-R', '-l', '/mk'], ['stat', '/nope']]);
  t.equal(ok(t, listing!, 'ls -R -l').replace(new RegExp(DATE, 'g'), 'DATE'),
    ['d -  - DATE /mk/a/', 'd -  - DATE /mk/a/b/', 'd -  - DATE /mk/a/b/c/', '- r3 4 DATE /mk/file', 'd -  - DATE /mk/x/', 'd -  - DATE /mk/y/', ''].join('\n'),
    'what was made, and the file untouched');
  failed(t, nope!, FAILED, '/nope does not exist', 'the missing parent was not made');
});

t.test('rm: -r, -f, non-empty directory', async (t) => {
  const [file, notEmpty, root, missing, forced] = await batch([
    ['rm', '/rm/file'], ['rm', '/rm/dir'], ['rm', '-r', '-f', '/'], ['rm', '/rm/missing'], ['rm', '-f', '/rm/missing', '/rm/also-missing'],
  ]);
  t.match(ok(t, file!, 'rm a file'), /^moved \/rm\/file to the trash: \/\.trash\/[^/]+\/\d{8}-\d{6}(-\d+)?\/rm\/file\n$/, 'says where in the trash it went');
  failed(t, notEmpty!, FAILED, '/rm/dir is a directory that is not empty (use -r)', 'rm of a non-empty directory without -r');
  failed(t, root!, FAILED, 'refusing to delete /', 'rm -r -f /');
  failed(t, missing!, FAILED, '/rm/missing does not exist', 'rm of a missing path');
  t.equal(ok(t, forced!, 'rm -f of missing paths'), '', 'rm -f: no error, no output');

  t.equal(ok(t, await dfs(['ls', '-R', '/rm']), 'ls -R'), '/rm/dir/\n/rm/dir/one\n/rm/dir/sub/\n/rm/dir/sub/two\n', 'the file is gone, the directory is whole');
  t.match(JSON.parse(ok(t, await dfs(['rm', '-r', '--json', '/rm/dir']), 'rm -r --json')), { files: 2, trashed: [{ path: '/rm/dir', trashPath: /^\/\.trash\/.+\/rm\/dir$/ }] }, '--json: files removed, and where they went');
  t.equal(ok(t, await dfs(['ls', '/rm']), 'ls'), '', 'the whole tree is gone');
});

t.test('mv: rename, into a directory, missing source, target exists', async (t) => {
  t.equal(ok(t, await dfs(['mv', '/mv/a', '/mv/b']), 'rename a file'), '', 'no output');
  ok(t, await dfs(['mv', '/mv/b', '/mv/dir']), 'move into a directory');
  const moved = JSON.parse(ok(t, await dfs(['mv', '--json', '/mv/dir/b', '/mv/c']), 'mv --json')) as Record<string, unknown>;
  t.match(moved, { path: '/mv/c', name: 'c', type: 'file', size: MOVED.length }, '--json: the entry at its new path');

  const refused: [string[], string, string][] = [
    [['mv', '/mv/nope', '/mv/x'], '/mv/nope does not exist', 'a missing source'],
    [['mv', '/mv/c', '/mv/other'], '/mv/other already exists', 'onto an existing file'],
    [['mv', '/mv/c', '/mv/dir'], '/mv/dir/c already exists', 'into a directory that has the name'],
    [['mv', '/mv/c', '/mv/none/c'], 'parent directory /mv/none does not exist (mkdir -p creates it)', 'under a missing parent'],
    [['mv', '/mv/dir', '/mv/dir/inner'], 'cannot move /mv/dir into itself', 'a directory into itself'],
    [['mv', '/', '/elsewhere'], 'cannot move /', 'mv /'],
  ];
  const results = await batch(refused.map(([args]) => args));
  refused.forEach(([, message, what], i) => failed(t, results[i]!, FAILED, message, `mv ${what}`));
  const [after, src] = await batch([['ls', '-R', '-l', '/mv'], ['cat', '/mv/c']]);
  t.equal(ok(t, after!, 'ls -R -l').replace(new RegExp(` ${DATE} `, 'g'), ' '),
    [`- r3 ${MOVED.length} /mv/c`, 'd -      - /mv/dir/', '- r3     6 /mv/dir/c', '- r3     5 /mv/other', ''].join('\n'),
    'renamed and moved; the refused moves changed nothing');
  t.ok(src!.stdout.equals(MOVED), 'the moved file has its bytes');
});

t.test('put and get: refusals leave everything as it was', async (t) => {
  const fresh = randomBytesSeeded(CHUNK + 9, 12);
  const oldFile = join(local, 'old.bin');
  const freshFile = join(local, 'fresh.bin');
  writeFileSync(oldFile, OLD);
  writeFileSync(freshFile, fresh);

  await t.test('put onto an existing file needs -f', async (t) => {
    const [fromFile, fromStdin] = await batch([['put', freshFile, '/pg/f.bin'], { args: ['put', '-', '/pg/f.bin'], input: fresh }]);
    failed(t, fromFile!, FAILED, '/pg/f.bin already exists; overwrite it with put -f', 'put from a file onto an existing path');
    failed(t, fromStdin!, FAILED, '/pg/f.bin already exists; overwrite it with put -f', 'put from stdin onto an existing path');
    t.ok((await dfs(['cat', '/pg/f.bin'])).stdout.equals(OLD), 'the old bytes are intact');
    const info = JSON.parse(ok(t, await dfs(['put', '-f', '--json', freshFile, '/pg/f.bin']), 'put -f --json from a local file')) as Record<string, unknown>;
    t.match(info, { path: '/pg/f.bin', size: fresh.length, state: 'complete' }, '--json: the new file');
    t.ok((await dfs(['cat', '/pg/f.bin'])).stdout.equals(fresh), 'put -f replaced the bytes');
  });

  await t.test('put into a directory, with a replication', async (t) => {
    const [into, stdinDir, r2] = await batch([['put', oldFile, '/pg'], { args: ['put', '-', '/pg'], input: 'x' }, { args: ['put', '-r', '2', '-', '/pg/r2'], input: OLD }]);
    t.equal(ok(t, into!, 'put into an existing directory'), '', 'no output');
    failed(t, stdinDir!, FAILED, '/pg is a directory; name the file to create', 'put from stdin onto a directory');
    ok(t, r2!, 'put -r 2');
    const [cat, stat] = await batch([['cat', '/pg/old.bin'], ['stat', '--json', '/pg/r2']]);
    t.ok(cat!.stdout.equals(OLD), 'it keeps the local name');
    const s = JSON.parse(stat!.stdout.toString()) as { replication: number; chunks: { replicas: unknown[] }[] };
    t.equal(s.replication, 2, 'the replication asked for');
    t.same(s.chunks.map((ch) => ch.replicas.length), [2, 2, 2], 'each chunk has 2 replicas');
  });

  await t.test('put from a local path that is missing or not a file', async (t) => {
    const missing = join(local, 'no-such-file');
    const [plain, dir, r0] = await batch([['put', '-f', missing, '/pg/new/x'], ['put', local, '/pg/dir-copy'], ['put', '-r', '0', oldFile, '/pg/r0']]);
    failed(t, plain!, FAILED, `local file ${missing} does not exist`, 'put from a missing local file');
    failed(t, dir!, FAILED, `local path ${local} is a directory (put -R uploads trees)`, 'put from a local directory');
    failed(t, r0!, USAGE, `--replication must be a whole number from 1 to 16${HELP}`, 'put -r 0');
    t.equal(ok(t, await dfs(['ls', '/pg']), 'ls'), 'f.bin\nold.bin\nr2\n', 'nothing was created, not even a parent directory');
  });

  await t.test('get: missing, a directory, an existing local file, a local directory', async (t) => {
    const out = join(local, 'out.bin');
    const kept = join(local, 'kept.txt');
    const into = join(local, 'into');
    writeFileSync(kept, 'keep me');
    mkdirSync(into);
    const [missing, dir, catDir, toFile, onto, intoDir] = await batch([
      ['get', '/pg/nope', join(local, 'nope')], ['get', '/pg', join(local, 'pg')], ['cat', '/pg'],
      ['get', '/pg/f.bin', out], ['get', '/pg/f.bin', kept], ['get', '/pg/old.bin', into],
    ]);
    failed(t, missing!, FAILED, '/pg/nope does not exist', 'get of a missing path');
    failed(t, dir!, FAILED, '/pg is a directory (get -R downloads trees)', 'get of a directory');
    failed(t, catDir!, FAILED, '/pg is a directory', 'cat of a directory');
    t.notOk(existsSync(join(local, 'nope')) || existsSync(join(local, 'pg')), 'no local file was made for them');

    t.equal(ok(t, toFile!, 'get to a local file'), '', 'no output');
    t.ok(readFileSync(out).equals(fresh), 'the bytes arrived');
    failed(t, onto!, FAILED, `local file ${kept} exists; use -f to overwrite it`, 'get onto an existing local file');
    t.equal(readFileSync(kept, 'utf8'), 'keep me', 'the local file is intact');
    ok(t, intoDir!, 'get into a local directory');
    t.ok(readFileSync(join(into, 'old.bin')).equals(OLD), 'it keeps the dfs name');

    const [forced, json] = await batch([['get', '-f', '/pg/f.bin', kept], ['get', '-f', '--json', '/pg/old.bin', into]]);
    ok(t, forced!, 'get -f');
    t.ok(readFileSync(kept).equals(fresh), 'get -f replaced the local file');
    t.same(JSON.parse(ok(t, json!, 'get -f --json')), { path: '/pg/old.bin', local: join(into, 'old.bin'), size: OLD.length }, '--json: what went where');
  });

  await t.test('get to a local path that cannot be created', async (t) => {
    const noDir = join(local, 'no-such-dir', 'x.bin');
    const underFile = join(local, 'old.bin', 'x.bin');
    const [missingDir, fileAsDir, empty] = await batch([['get', '/pg/f.bin', noDir], ['get', '/pg/f.bin', underFile], ['get', '/pg/f.bin', '']]);
    failed(t, missingDir!, FAILED, `cannot create local file ${noDir} (ENOENT: no such file or directory)`, 'get into a missing local folder');
    failed(t, fileAsDir!, FAILED, `cannot create local file ${underFile} (ENOTDIR: not a directory)`, 'get under a local file');
    failed(t, empty!, USAGE, 'local path must be a non-empty string (- for stdout)', 'get to an empty local path');
    t.same(readdirSync(local).filter((n) => n.includes('.part')), [], 'no partial download is left behind');
    t.notOk(existsSync(join(local, 'no-such-dir')), 'no local folder was made');
  });

  await t.test('cat onto a full disk fails', { skip: existsSync('/dev/full') ? false : 'no /dev/full here' }, async (t) => {
    const fd = openSync('/dev/full', 'w');
    const r = await new Promise<RunResult>((resolve, reject) => {
      const child = spawn(process.execPath, [DFS, 'cat', '/pg/f.bin'], { stdio: ['ignore', fd, 'pipe'], env: { ...process.env, ...QUICK, DFS_MASTERS: c.masters } });
      let stderr = '';
      child.stderr!.on('data', (b: Buffer) => (stderr += b));
      child.on('error', reject);
      child.on('close', (code) => resolve({ code: code ?? -1, stdout: Buffer.alloc(0), stderr }));
    }).finally(() => closeSync(fd));
    failed(t, r, FAILED, 'cannot write to stdout (ENOSPC: no space left on device)', 'dfs cat > /dev/full');
  });
});

t.test('empty files: made in one master call, refused like any put, replace a file with -f', async (t) => {
  const [made, again, over] = await batch([
    { args: ['put', '-', '/empty/e'], input: '' }, { args: ['put', '-', '/mk/file'], input: '' }, { args: ['put', '-', '/empty/full'], input: 'abc' },
  ]);
  ok(t, made!, 'put of an empty input');
  failed(t, again!, FAILED, '/mk/file already exists; overwrite it with put -f', 'an empty put onto an existing file without -f');
  ok(t, over!, 'put of a small file');
  const forced = await c.dfs(['put', '-f', '-', '/empty/full'], { input: '', env: QUICK });
  ok(t, forced, 'an empty put -f over a file');
  const [ls, cat, get, kept] = await batch([['ls', '-l', '/empty'], ['cat', '/empty/full'], ['get', '-f', '/empty/e', join(local, 'e')], ['cat', '/mk/file']]);
  const rows = ok(t, ls!, 'ls -l').split('\n');
  t.match(rows[0], new RegExp(`^- r3 +0 ${DATE} e$`), 'the empty file is complete, 0 bytes');
  t.match(rows[1], new RegExp(`^- r3 +0 ${DATE} full$`), 'the overwritten file is empty now');
  t.equal(ok(t, cat!, 'cat of the emptied file'), '', 'no bytes');
  ok(t, get!, 'get of an empty file');
  t.equal(readFileSync(join(local, 'e')).length, 0, 'an empty local file');
  t.equal(ok(t, kept!, 'cat of the file the refused put named'), 'data', 'the refused put changed nothing');
});

t.test('command line mistakes are usage errors and change nothing', async (t) => {
  const file = join(local, 'bad-src.txt');
  writeFileSync(file, 'payload');
  const before = await tree();
  const relative = `path must be absolute (start with '/'): "rel/x"`;
  const dots = (p: string) => `path may not contain '.' or '..': "${p}"`;
  const empty = 'path must be a non-empty string';
  const notEnough = (got: number, need: number) => `Not enough non-option arguments: got ${got}, need at least ${need}${HELP}`;
  const cases: [string[], string][] = [
    // bad dfs paths: each command checks before it asks the master
    [['ls', 'rel/x'], relative],
    [['mkdir', '-p', 'rel/x'], relative],
    [['rm', '-r', '-f', 'rel/x'], relative],
    [['get', 'rel/x', join(local, 'never')], relative],
    [['put', file, 'rel/x'], relative],
    [['mv', '/ls/a.txt', 'rel/x'], relative],
    [['stat', '/ls/../etc'], dots('/ls/../etc')],
    [['mkdir', '-p', '/bad/./x'], dots('/bad/./x')],
    [['cat', ''], empty],
    [['mkdir', '/bad//x'], 'path has an empty component: "/bad//x"'],
    // unknown commands and flags, missing and extra arguments
    [[], `name a command${HELP}`],
    [['frobnicate'], `Unknown argument: frobnicate${HELP}`],
    [['lss', '/'], `Did you mean ls?${HELP}`],
    [['ls', '--bogus', '/'], `Unknown argument: bogus${HELP}`],
    [['rm', '/ls/a.txt', '-z'], `Unknown argument: z${HELP}`],
    [['stat', '/ls/a.txt', '/ls'], `Unknown argument: /ls${HELP}`],
    [['put', '/bad/x'], notEnough(1, 2)],
    [['get', '/ls/a.txt'], notEnough(1, 2)],
    [['cat'], notEnough(0, 1)],
  ];
  const results = await batch(cases.map(([args]) => ({ args, input: 'stdin bytes' })));
  cases.forEach(([args, message], i) => failed(t, results[i]!, USAGE, message, label(args)));
  t.equal(await tree(), before, 'none of them changed the namespace');
  t.notOk(existsSync(join(local, 'never')), 'nor made a local file');
});

t.test('--help, top level and for each command', async (t) => {
  const commands: [string, string, string][] = [
    ['put', 'dfs put <src..> <dst>', '--replication'],
    ['get', 'dfs get <src..> <dst>', '--force'],
    ['cat', 'dfs cat <path>', '--masters'],
    ['ls', 'dfs ls [path]', '-R'],
    ['mkdir', 'dfs mkdir <paths..>', '-p'],
    ['rm', 'dfs rm <paths..>', '--force'],
    ['mv', 'dfs mv <src> <dst>', '--json'],
    ['stat', 'dfs stat <path>', '-h'],
    ['du', 'dfs du [path]', '-s'],
    ['status', 'dfs status', '--json'],
  ];
  // Help needs no cluster, and asks none.
  const env = { DFS_MASTERS: NO_MASTER };
  const [top, ...each] = await batch([['--help'], ...commands.map(([cmd]) => [cmd, '--help'])].map((args) => ({ args, env, cluster: false as const })));
  const usage = ok(t, top!, 'dfs --help');
  t.match(usage, /^dfs <command> \[options\]\n/, 'starts with the usage line');
  // put and get list their paths as one variadic (`<paths..>`); their own help says which is the destination.
  for (const [, line] of commands) t.ok(usage.includes(line.replace('<src..> <dst>', '<paths..>')), `lists ${line}`);
  for (const opt of ['--masters', '--json', '--help']) t.ok(usage.includes(opt), `shows ${opt}`);
  commands.forEach(([cmd, line, opt], i) => {
    const help = ok(t, each[i]!, `dfs ${cmd} --help`);
    t.ok(help.startsWith(`${line}\n`), `${cmd}: starts with its usage line`);
    t.ok(help.includes('Options:') && help.includes(opt), `${cmd}: lists its options (${opt})`);
  });
});

t.test('no master reachable, or malformed master addresses', async (t) => {
  const unreachable = /^dfs: cannot reach a master at 127\.0\.0\.1:1 \(.*ECONNREFUSED.*\); is the cluster running\? \(npm start, or set --masters \/ DFS_MASTERS\)\n$/;
  const missing = join(local, 'missing-with-no-master');
  const cases: [Run, number, string | RegExp][] = [
    [{ args: ['ls', '/'], env: { DFS_MASTERS: NO_MASTER } }, FAILED, unreachable],
    // The cluster is up and named in $DFS_MASTERS: --masters wins over it, and a bad one does not fall back to it.
    [['--masters', NO_MASTER, 'mkdir', '/x'], FAILED, unreachable],
    [['--masters', 'nonsense', 'ls', '/'], USAGE, `--masters: 'nonsense' is not host:port`],
    [['ls', '--masters', `${NO_MASTER},127.0.0.1:99999`, '/'], USAGE, `--masters: '127.0.0.1:99999' is not host:port`],
    [['--masters', '', 'ls'], USAGE, '--masters is empty'],
    [{ args: ['ls', '/'], env: { DFS_MASTERS: 'garbage' } }, USAGE, `DFS_MASTERS: 'garbage' is not host:port`],
    // The local file is looked at before any master is asked.
    [{ args: ['put', missing, '/x'], env: { DFS_MASTERS: NO_MASTER } }, FAILED, `local file ${missing} does not exist`],
    [['--masters', c.masters, 'status'], 0, ''],
  ];
  const results = await batch(cases.map(([run]) => (Array.isArray(run) ? run : { ...run, cluster: false as const })), 5);
  cases.forEach(([run, code, message], i) => {
    const what = Array.isArray(run) ? label(run) : `${label(run.args)} with DFS_MASTERS=${run.env?.DFS_MASTERS}`;
    if (code === 0) t.match(ok(t, results[i]!, what), /^chunkservers: 3 live of 3: /m, 'a good --masters reaches the cluster');
    else failed(t, results[i]!, code, message, what);
  });
  failed(t, await dfs(['stat', '/x']), FAILED, '/x does not exist', 'nothing reached the cluster');
});
