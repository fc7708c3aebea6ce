// Directory quotas through the real `dfs` CLI on a real cluster: a put, mkdir, mv and setrep that
// would exceed one is refused with one line and exit 1, changing nothing (a local file's put before
// a chunk is written); usage follows put and rm; racing writers cannot pass a quota together.
import t from 'tap';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { failedWithOneLine } from '../helpers/cli-checks.js';
import { randomBytesSeeded, TestCluster } from '../helpers/cluster.js';

const CHUNK = 128 * 1024;
const ALICE = { DFS_USER: 'alice' };

let c: TestCluster;
t.before(async () => {
  c = await TestCluster.start({ chunkservers: 3, chunkSizeBytes: CHUNK });
});
t.teardown(() => c?.stop());
const dfs = (args: string[], input?: Buffer) => c.dfs(args, { env: ALICE, ...(input ? { input } : {}) });
const show = async (p: string) => JSON.parse((await dfs(['quota', 'show', '--json', p])).stdout.toString()) as { files: { limit: number | null; used: number }; bytes: { limit: number | null; used: number } };

t.test('quotas: refusals with one line and exit 1 change nothing; usage follows put and rm', async (t) => {
  t.equal((await dfs(['mkdir', '/q'])).code, 0);
  t.equal((await dfs(['mkdir', '-p', '/elsewhere/x'])).code, 0);
  const set = await dfs(['quota', 'set', '/q', '--files', '3', '--bytes', String(2 * CHUNK * 2)]);
  t.equal(set.code, 0, set.stderr);
  t.equal(set.stdout.toString(), `/q  names 1/3  space 0/${4 * CHUNK}\n`, 'set shows the quota');

  const data = randomBytesSeeded(2 * CHUNK, 195);
  const fill = await dfs(['put', '-r', '2', '-', '/q/full.bin'], data);
  t.equal(fill.code, 0, `filling the space quota exactly: ${fill.stderr}`);
  t.same(await show('/q'), { path: '/q', files: { limit: 3, used: 2 }, bytes: { limit: 4 * CHUNK, used: 4 * CHUNK } }, 'usage after put: bytes × replication');
  failedWithOneLine(t, await dfs(['put', '-r', '2', '-', '/q/one-more.bin'], Buffer.from('x')), /^dfs: the space quota of \/q is \d+ bytes/m, 'a put past the space quota');
  t.equal((await dfs(['test', '-e', '/q/one-more.bin'])).code, 1, 'the refused put left no file');
  const local = join(c.dir, 'local.bin');
  writeFileSync(local, randomBytesSeeded(CHUNK, 196));
  const chunksBefore = (await c.status() as unknown as { chunks: number }).chunks;
  failedWithOneLine(t, await dfs(['put', '-r', '2', local, '/q/local.bin']), /^dfs: the space quota of \/q is \d+ bytes \(size × replication\); \d+ are used and this needs \d+ more( \(request [\w.:-]+\))?$/m, 'a put of a local file too large');
  t.equal((await c.status() as unknown as { chunks: number }).chunks, chunksBefore, 'refused at create, from the size it announced: no chunk was allocated');
  failedWithOneLine(t, await dfs(['setrep', '3', '/q/full.bin']), /^dfs: the space quota of \/q/m, 'a setrep past the space quota');
  t.equal((JSON.parse((await dfs(['stat', '--json', '/q/full.bin'])).stdout.toString()) as { replication: number }).replication, 2, 'the refused setrep changed nothing');
  t.equal((await dfs(['mkdir', '/q/a'])).code, 0, 'a third name fits');
  failedWithOneLine(t, await dfs(['mkdir', '/q/b']), /^dfs: the name quota of \/q is 3 files and directories; 3 are used and this needs 1 more( \(request [\w.:-]+\))?$/m, 'a mkdir past the name quota');
  failedWithOneLine(t, await dfs(['mv', '/elsewhere/x', '/q/']), /^dfs: the name quota of \/q/m, 'a mv into the full tree');
  t.equal((await dfs(['test', '-d', '/elsewhere/x'])).code, 0, 'the refused mv left it where it was');

  t.equal((await dfs(['rm', '/q/full.bin'])).code, 0, 'rm (to the trash)');
  t.same((await show('/q')).bytes, { limit: 4 * CHUNK, used: 0 }, 'rm frees the quota: the trash is outside it');
  t.equal((await dfs(['quota', 'show', '/q', '-h'])).stdout.toString(), '/q  names 2/3  space 0 B/512 KiB\n', 'show, human-readable');
  const clear = await dfs(['quota', 'clear', '/q']);
  t.equal(clear.stdout.toString(), '/q  names 2/none  space 0/none\n', 'clear');
  t.equal((await dfs(['mkdir', '/q/b', '/q/c'])).code, 0, 'no limit any more');
  t.equal((await dfs(['quota', 'set', '/q'])).code, 2, 'quota set with no limit is a usage error');
  failedWithOneLine(t, await dfs(['quota', 'set', '/q/a/none', '--files', '1']), /^dfs: \/q\/a\/none does not exist( \(request [\w.:-]+\))?$/m, 'a quota on a missing directory');
});

t.test('writers racing for the last room of a space quota cannot pass it together: the check is in the replicated apply', async (t) => {
  t.equal((await dfs(['mkdir', '/race'])).code, 0);
  t.equal((await dfs(['quota', 'set', '/race', '--bytes', String(2 * CHUNK)])).code, 0);
  const racers = await Promise.all([0, 1, 2, 3].map((i) => dfs(['put', '-r', '1', '-', `/race/f${i}`], randomBytesSeeded(CHUNK, 200 + i))));
  const won = racers.filter((r) => r.code === 0).length;
  t.ok(won >= 1 && won <= 2, `${won} of 4 concurrent puts fit (at most 2 can)`);
  for (const r of racers.filter((x) => x.code !== 0)) t.match(r.stderr, /^dfs: the space quota of \/race/, 'the others are refused by the quota');
  t.same((await show('/race')).bytes, { limit: 2 * CHUNK, used: won * CHUNK }, 'the usage is exactly what completed, within the limit');
});
