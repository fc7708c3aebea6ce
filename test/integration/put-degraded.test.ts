// Issue 13, item 3: with a chunkserver down, `dfs put` stores fewer replicas than the file's
// replication. It must say so, and --min-replicas N must refuse (storing nothing) below N.
import t from 'tap';
import { randomBytesSeeded, TestCluster, waitFor } from '../helpers/cluster.js';

const CHUNK = 64 * 1024;
// No NODE_OPTIONS: the CLI starts as a user's does (test/helpers/untracked-children.mjs keeps tap's tracker out).
const QUICK = { NODE_OPTIONS: '' };

const c = await TestCluster.start({ chunkservers: 3, replication: 3, chunkSizeBytes: CHUNK, deadTimeoutMs: 1500 });
t.teardown(() => c.stop());
const dfs = (args: string[], input?: Buffer) => c.dfs(args, { input, env: QUICK });

const OLD = randomBytesSeeded(2 * CHUNK + 10, 31);
const NEW = randomBytesSeeded(3 * CHUNK + 7, 32);

t.test('with every chunkserver up, put says nothing', async (t) => {
  const r = await dfs(['put', '-', '/healthy.bin'], OLD);
  t.equal(r.code, 0);
  t.equal(r.stderr, '', 'no warning');
});

t.test('with one of three chunkservers dead', async (t) => {
  await c.kill(c.chunkservers[2]!);
  await waitFor(async () => (await c.status()).chunkservers.filter((s) => s.alive).length === 2, 15_000, 'the master to see cs3 dead');

  const put = await dfs(['put', '-', '/degraded.bin'], NEW);
  t.equal(put.code, 0, 'a degraded put still succeeds');
  t.equal(put.stderr, 'dfs: /degraded.bin stored with 2 of 3 replicas (1 chunkserver unavailable); the cluster will copy the rest\n', 'and says so, on stderr');
  t.ok((await dfs(['cat', '/degraded.bin'])).stdout.equals(NEW), 'it reads back');

  const quiet = await dfs(['put', '-q', '--min-replicas', '2', '-', '/quiet.bin'], NEW);
  t.equal(quiet.code, 0, '--min-replicas 2 is met by 2 replicas');
  t.match(quiet.stderr, /^dfs: \/quiet\.bin stored with 2 of 3 replicas/, 'the warning shows even with -q');

  const refused = await dfs(['put', '--min-replicas', '3', '-', '/strict.bin'], NEW);
  t.equal(refused.code, 1, '--min-replicas 3 fails');
  t.equal(refused.stderr.replace(/ \(request [0-9a-f]{16}\)\n$/, '\n'), 'dfs: /strict.bin was not stored: chunk 0 has 2 live replicas of 3, fewer than the 3 required (--min-replicas); start the missing chunkservers or lower --min-replicas\n', 'one line that says why');
  t.equal((await dfs(['stat', '/strict.bin'])).stderr.replace(/ \(request [0-9a-f]{16}\)\n$/, '\n'), 'dfs: /strict.bin does not exist\n', 'the path is not left behind');

  const overwrite = await dfs(['put', '-f', '--min-replicas', '3', '-', '/healthy.bin'], NEW);
  t.equal(overwrite.code, 1, 'a refused overwrite fails');
  t.ok((await dfs(['cat', '/healthy.bin'])).stdout.equals(OLD), 'and the old file is kept whole');

  const [tooMany, zero] = await Promise.all([
    dfs(['put', '-r', '2', '--min-replicas', '3', '-', '/x.bin'], NEW),
    dfs(['put', '--min-replicas', '0', '-', '/x.bin'], NEW),
  ]);
  t.equal(tooMany.code, 2, 'more than --replication is a usage error');
  t.match(tooMany.stderr, /^dfs: --min-replicas must not be more than --replication/);
  t.equal(zero.code, 2, '0 is a usage error');
  t.match(zero.stderr, /^dfs: --min-replicas must be a whole number from 1 to 16/);

  const fsck = await dfs(['fsck']);
  t.equal(fsck.code, 0, 'under-replicated is not a failure');
  // /healthy.bin has 3 chunks, each now at 2 live replicas; /degraded.bin and /quiet.bin 4 each.
  t.match(fsck.stdout.toString(), /\nThe filesystem under path '\/' is HEALTHY \(11 under-replicated chunks\)\n$/, 'the verdict counts the under-replicated chunks');
});
