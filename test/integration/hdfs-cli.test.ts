// `dfs test`, `count`, `touchz` and `checksum` (issue 18, item 4) against a real cluster, error cases included.
import t from 'tap';
import { randomBytesSeeded, runDfs, TestCluster } from '../helpers/cluster.js';

t.test('test, count, touchz, checksum', async (t) => {
  const c = await TestCluster.start({ chunkservers: 1, replication: 1, chunkSizeBytes: 256 * 1024 });
  t.teardown(() => c.stop());
  const data = randomBytesSeeded(600 * 1024, 4);
  t.equal((await c.dfs(['put', '-', '/d/a.bin'], { input: data })).code, 0, 'put /d/a.bin');
  t.equal((await c.dfs(['put', '-', '/d/e/b.bin'], { input: data })).code, 0, 'put /d/e/b.bin, the same bytes');

  t.test('test: 0 when it holds, 1 when not, nothing printed', async (t) => {
    const cases: [string, string, number][] = [
      ['-e', '/d/a.bin', 0], ['-e', '/nope', 1], ['-d', '/d', 0], ['-d', '/d/a.bin', 1], ['-f', '/d/a.bin', 0], ['-f', '/d', 1], ['-z', '/d/a.bin', 1], ['-e', '/d/a.bin/x', 1],
    ];
    for (const [flag, path, code] of cases) {
      const r = await c.dfs(['test', flag, path]);
      t.equal(r.code, code, `test ${flag} ${path} exits ${code}`);
      t.equal(r.stdout.length + r.stderr.length, 0, 'and prints nothing');
    }
    t.equal((await c.dfs(['test', '/d'])).code, 2, 'no test flag: a usage error');
    t.equal((await c.dfs(['test', '-e', '-d', '/d'])).code, 2, 'two test flags: a usage error');
    t.equal((await c.dfs(['test', '-e', 'relative'])).code, 2, 'a malformed path: a usage error');
    const down = await runDfs(['test', '-e', '/d'], { env: { DFS_MASTERS: '127.0.0.1:1' } });
    t.equal(down.code, 3, 'no master answers: 3, not "false"');
    t.match(down.stderr, /^dfs: test -e: /, 'and one line says why');
  });

  t.test('touchz: empty files; an existing empty one is fine, a non-empty one is not', async (t) => {
    t.equal((await c.dfs(['touchz', '/d/z1', '/d/z2'])).code, 0, 'touchz two paths');
    t.equal((await c.dfs(['test', '-z', '/d/z1'])).code, 0, 'z1 is a file of zero length');
    t.equal((await c.dfs(['test', '-z', '/d/z2'])).code, 0, 'so is z2');
    t.equal((await c.dfs(['touchz', '/d/z1'])).code, 0, 'again on an empty file: fine');
    const full = await c.dfs(['touchz', '/d/a.bin']);
    t.equal(full.code, 1, 'on a non-empty file: fails');
    t.match(full.stderr, /^dfs: \/d\/a\.bin exists and is not empty/);
    t.equal((await c.dfs(['touchz', '/d'])).code, 1, 'on a directory: fails');
    const orphan = await c.dfs(['touchz', '/no/such/dir/f']);
    t.equal(orphan.code, 1, 'under a missing directory: fails');
    t.notMatch(orphan.stderr, /^\s+at /m, 'one line, no stack trace');
  });

  t.test('count: directories (the path itself too), files, bytes', async (t) => {
    const r = await c.dfs(['count', '/d', '/d/e']);
    t.equal(r.code, 0);
    const rows = r.stdout.toString().trim().split('\n').map((l) => l.trim().split(/\s+/));
    t.same(rows, [['2', '4', String(2 * data.length), '/d'], ['1', '1', String(data.length), '/d/e']]);
    const json = JSON.parse((await c.dfs(['count', '--json', '/d/e'])).stdout.toString());
    t.same(json, [{ path: '/d/e', dirs: 1, files: 1, bytes: data.length }]);
    t.match((await c.dfs(['count', '-h', '/d/e'])).stdout.toString(), /600 KiB \/d\/e/);
    const missing = await c.dfs(['count', '/nope']);
    t.equal(missing.code, 1);
    t.match(missing.stderr, /\/nope does not exist/);
  });

  t.test('checksum: from the chunks, equal for equal files', async (t) => {
    const a = await c.dfs(['checksum', '/d/a.bin']);
    const b = await c.dfs(['checksum', '/d/e/b.bin']);
    t.equal(a.code, 0);
    const [pa, algo, sum] = a.stdout.toString().trim().split('\t');
    t.equal(pa, '/d/a.bin');
    t.equal(algo, `XXH64-of-3-chunks-of-${256 * 1024}`);
    t.match(sum, /^[0-9a-f]{16}$/);
    t.equal(b.stdout.toString().trim().split('\t')[2], sum, 'the same bytes, the same checksum');
    t.equal((await c.dfs(['put', '-f', '-', '/d/e/b.bin'], { input: Buffer.concat([data.subarray(0, 1000), Buffer.from('x'), data.subarray(1001)]) })).code, 0);
    const changed = JSON.parse((await c.dfs(['checksum', '--json', '/d/e/b.bin'])).stdout.toString());
    t.not(changed.checksum, sum, 'one byte changed, another checksum');
    t.equal(changed.size, data.length);
    t.equal((await c.dfs(['checksum', '/d'])).code, 1, 'a directory: fails');
    t.equal((await c.dfs(['checksum', '/nope'])).code, 1, 'a missing file: fails');
  });
});
