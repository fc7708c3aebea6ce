// Issue 16's "add and remove a chunkserver under a put/get load", with real processes on
// 127.0.0.1: while a writer puts files and a reader reads acknowledged ones back, a 4th
// chunkserver registers (new writes use it), and one of the first three is decommissioned (its
// replicas are copied elsewhere while the load runs). Afterwards the drained server is killed
// with -9 and the nemesis checks run without it: every acknowledged file reads back byte-exact,
// no read ever saw other bytes, fsck is healthy, and the new server holds data. Bounded: at most
// 300 small files; each step waits for more acknowledged writes or for the drain, never a time.
import t from 'tap';
import { DfsClient } from '../../cli/client.js';
import { PutGetLoad } from '../../scripts/bench/load.js';
import { ADMIN_TOKEN, TestCluster, waitFor } from '../helpers/cluster.js';

t.setTimeout(600_000);

t.test('a chunkserver added and one decommissioned under load: data moves, nothing is lost', async (t) => {
  const c = await TestCluster.start({ masters: 1, chunkservers: 3, replication: 2, chunkSizeBytes: 256 * 1024 });
  t.teardown(() => c.stop());
  const client = new DfsClient(c.masterAddresses, { token: ADMIN_TOKEN });
  const load = new PutGetLoad(client, { root: '/load', fileBytes: 600 * 1024, replication: 2, maxFiles: 300, pauseMs: 30 });
  load.start();
  await load.progress(10, 60_000);

  // A new chunkserver joins under load; new writes may use it at once.
  await c.startChunkserver(3);
  await c.waitForLive(4);
  await load.progress(10, 60_000);

  // cs1 drains under load: its replicas are copied to the others, new chunks avoid it.
  const drain = await c.dfs(['decommission', '-w', 'cs1', '--timeout', '150'], { timeoutMs: 170_000 });
  t.equal(drain.code, 0, drain.stderr);
  t.match(drain.stdout.toString(), /cs1 is decommissioned/);
  await load.progress(5, 60_000);
  await load.stop();

  // The drained server goes for good (kill -9): nothing may depend on it any more.
  await c.kill(c.chunkservers[0]!);
  t.comment(`client view: ${JSON.stringify(load.stats)}`);
  t.same(load.wrongReads, [], 'no read returned other bytes than were acknowledged');
  const v = await load.verifyAll();
  t.ok(v.checked >= 25, `${v.checked} acknowledged files`);
  t.same(v.bad, [], 'every acknowledged file reads back byte-exact without the drained server');
  t.equal(load.stats.writes.failed, 0, `no put failed (${load.stats.writes.errors.join('; ')})`);
  const fsck = await c.dfs(['fsck']);
  t.equal(fsck.code, 0, fsck.stdout.toString());
  t.match(fsck.stdout.toString(), /is HEALTHY\n$/, 'fsck: every chunk has its replicas without cs1');
  await waitFor(async () => ((await c.status()).chunkservers.find((s) => s.id === 'cs4')?.chunkCount ?? 0) > 0, 30_000, 'cs4 to hold chunks');
  t.pass('the new server holds chunks (written to it, or moved there from cs1)');
  if (t.passing() === false) t.comment(c.problems().join('\n'));
});
