// Issue 13, item 7: a trailing slash on a destination means "a directory" (into it if it
// exists, else NOT_FOUND / NOT_A_DIRECTORY, and nothing is made), as cp(1) and `hdfs dfs` take
// it; and `rm a b c` goes on past a path it cannot remove, reports each, and exits 1.
import t from 'tap';
import { mkdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { TestCluster, type RunResult } from '../helpers/cluster.js';

// No NODE_OPTIONS: the CLI starts as a user's does (test/helpers/untracked-children.mjs keeps tap's tracker out).
const QUICK = { NODE_OPTIONS: '' };

const c = await TestCluster.start({ chunkservers: 1, replication: 1, chunkSizeBytes: 64 * 1024, deadTimeoutMs: 30_000 });
t.teardown(() => c.stop());
const dfs = (args: string[], input?: string) => c.dfs(args, { input, env: QUICK });
const local = join(c.dir, 'local');
mkdirSync(local);
const small = join(local, 'small.txt');
writeFileSync(small, 'small\n');

/** Exit 1 and exactly `message` as one `dfs:` line on stderr. */
function refused(t: { equal(found: unknown, wanted: unknown, message: string): boolean }, r: RunResult, message: string, what: string): void {
  t.equal(r.code, 1, `${what}: exits 1`);
  t.equal(r.stderr.replace(/ \(request [0-9a-f]{16}\)\n$/, '\n'), `dfs: ${message}\n`, `${what}: says why`); // less the request id a server's refusal names
}

/** The namespace as `ls -R` shows it. */
async function tree(): Promise<string> {
  return (await dfs(['ls', '-R', '/'])).stdout.toString();
}

t.before(async () => {
  for (const args of [['mkdir', '/dir'], ['put', '-', '/file.txt'], ['put', '-', '/empty.txt'], ['put', '-', '/stdin.txt']]) {
    const r = await dfs(args, 'x');
    if (r.code !== 0) throw new Error(`dfs ${args.join(' ')}: ${r.stderr}`);
  }
});

t.test('put: a trailing slash needs an existing directory', async (t) => {
  const before = await tree();
  const [missing, onFile, fromStdin] = await Promise.all([
    dfs(['put', small, '/newdir/']),
    dfs(['put', small, '/file.txt/']),
    dfs(['put', '-', '/dir/'], 'data'),
  ]);
  refused(t, missing, 'directory /newdir does not exist (mkdir -p creates it)', 'put into a missing directory');
  refused(t, onFile, '/file.txt is not a directory', 'put into a file');
  refused(t, fromStdin, '/dir is a directory; name the file to create', 'put - into a directory');
  t.equal(await tree(), before, 'nothing was made');

  const into = await dfs(['put', small, '/dir/']);
  t.equal(into.code, 0, into.stderr);
  t.equal((await dfs(['cat', '/dir/small.txt'])).stdout.toString(), 'small\n', 'into an existing directory, with the local name');
});

t.test('mv: a trailing slash needs an existing directory', async (t) => {
  const before = await tree();
  const [missing, onFile, self] = await Promise.all([
    dfs(['mv', '/empty.txt', '/nodir/']),
    dfs(['mv', '/empty.txt', '/file.txt/']),
    dfs(['mv', '/empty.txt', '/empty.txt/']),
  ]);
  refused(t, missing, 'directory /nodir does not exist', 'mv into a missing directory');
  refused(t, onFile, '/file.txt is not a directory', 'mv into a file');
  refused(t, self, '/empty.txt is not a directory', 'mv a file onto itself as a directory');
  t.equal(await tree(), before, 'nothing moved');

  const into = await dfs(['mv', '/empty.txt', '/dir/']);
  t.equal(into.code, 0, into.stderr);
  t.match(await tree(), /^\/dir\/empty\.txt$/m, 'into an existing directory, with its name');
  t.notMatch(await tree(), /^\/empty\.txt$/m);
});

t.test('get: a local path with a trailing slash needs an existing directory', async (t) => {
  const [missing, onFile] = await Promise.all([
    dfs(['get', '/stdin.txt', join(local, 'nolocal') + '/']),
    dfs(['get', '/stdin.txt', small + '/']),
  ]);
  refused(t, missing, `local directory ${join(local, 'nolocal')}/ does not exist`, 'get into a missing local directory');
  refused(t, onFile, `local path ${small}/ is not a directory`, 'get into a local file');
  t.notOk(existsSync(join(local, 'nolocal')), 'nothing was made');
  const into = await dfs(['get', '/stdin.txt', local + '/']);
  t.equal(into.code, 0, into.stderr);
  t.equal(readFileSync(join(local, 'stdin.txt'), 'utf8'), 'x', 'into the directory, with the dfs name');
});

t.test('rm of several paths goes on past the ones it cannot remove', async (t) => {
  for (const p of ['/rm/a', '/rm/b', '/rm/c']) t.equal((await dfs(['put', '-', p], 'x')).code, 0);
  t.equal((await dfs(['mkdir', '-p', '/rm/full/sub'])).code, 0);
  const r = await dfs(['rm', '/rm/a', '/rm/missing', '/rm/b', '/rm/full', '/rm/also-missing', '/rm/c']);
  t.equal(r.code, 1, 'exits 1');
  t.equal(r.stderr, [
    'dfs: /rm/missing does not exist',
    'dfs: /rm/full is a directory that is not empty (use -r)',
    'dfs: /rm/also-missing does not exist',
    '',
  ].join('\n'), 'one line for each path it could not remove, in order');
  t.equal((await dfs(['ls', '-R', '/rm'])).stdout.toString(), '/rm/full/\n/rm/full/sub/\n', 'the others are removed');

  const json = await dfs(['rm', '--json', '-r', '/rm/nope', '/rm/full']);
  t.equal(json.code, 1);
  t.equal(json.stderr.replace(/ \(request [0-9a-f]{16}\)\n$/, '\n'), 'dfs: /rm/nope does not exist\n');
  t.match(JSON.parse(json.stdout.toString()), { files: 0, trashed: [{ path: '/rm/full', trashPath: /^\/\.trash\/.+\/rm\/full$/ }] }, '--json still says what was removed');

  const usage = await dfs(['rm', '/dir/small.txt', 'rel/x']);
  t.equal(usage.code, 2, 'a malformed path is a usage error');
  t.equal((await dfs(['stat', '/dir/small.txt'])).code, 0, '... found before anything is removed');
});
