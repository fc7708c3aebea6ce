// A file's last chunk heals under a steady record append (HDFS's "replace a datanode on
// failure", at the append's open): every append gives the last chunk a new version, so a repair
// copy made while appends run is out of date when it lands, and the chunk would stay short of
// replicas for as long as its writers keep appending, one restart away from having none. The
// leader lets repair copy the chunk before it opens the next append (master/service/namespace.ts,
// healTail). Real processes: a chunkserver is killed while two clients append records, comes back,
// and the last chunk must get all three replicas back while the appends go on.
import t from 'tap';
import { join } from 'node:path';
import { ADMIN_TOKEN, ROOT, TestCluster, waitFor } from '../helpers/cluster.js';

const dfsPackage = (await import(join(ROOT, 'dist', 'cli', 'index.js'))) as typeof import('../../cli/index.js');
const { DfsClient } = dfsPackage;

t.setTimeout(300_000);
// Chunks big enough that the records of this test never fill one: the last chunk stays the same.
const CHUNK = 8 * 1024 * 1024;
const cluster = await TestCluster.start({ chunkservers: 3, chunkSizeBytes: CHUNK, replication: 3 });
t.teardown(() => cluster.stop());
const clients = [0, 1].map(() => new DfsClient(cluster.masters.split(','), { token: ADMIN_TOKEN }));

interface Acked { offset: number; id: string; data: string }

t.test('the last chunk of a file under record appends gets its lost replica back while the appends go on', async (t) => {
  t.equal((await cluster.dfs(['mkdir', '/heal'])).code, 0);
  t.equal((await cluster.dfs(['put', '-', '/heal/log'], { input: '' })).code, 0);
  const acked: Acked[] = [];
  const failures: string[] = [];
  let stop = false;
  const MAX_RECORDS = 2000; // a bound, whatever happens
  const writers = clients.map(async (c, w) => {
    for (let i = 0; !stop && i < MAX_RECORDS; i++) {
      const data = `w${w}:${i}:` + 'r'.repeat(200);
      try {
        const r = await c.recordAppend('/heal/log', Buffer.from(data));
        acked.push({ offset: r.offset, id: r.id, data });
      } catch (err) {
        failures.push((err as Error).message);
        return;
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  });
  t.teardown(() => void (stop = true));
  // On a failure, what the processes said about copies and the heal.
  t.teardown(() => {
    if (t.passing()) return;
    const lines = [...cluster.masterProcs, ...cluster.chunkservers].flatMap((p) => (p?.output ?? []).filter((l) => /cop(y|ied)|last chunk|registered|deleted/.test(l)).map((l) => `${p!.id}: ${l}`));
    console.error(lines.slice(-60).join('\n'));
  });
  const more = async (n: number, what: string): Promise<void> => {
    const target = acked.length + n;
    await waitFor(async () => acked.length >= target || failures.length > 0, 60_000, `${n} more records ${what}`);
    t.same(failures, [], `no record append failed (${what})`);
  };
  await more(10, 'at the start');
  const replicasOfLast = async (): Promise<number> => {
    const st = await clients[0]!.stat('/heal/log', true);
    return st.chunks!.at(-1)!.replicas.length;
  };
  t.equal(await replicasOfLast(), 3, 'the last chunk starts with 3 replicas');

  await cluster.kill(cluster.chunkservers[0]!, 'SIGKILL');
  await cluster.waitForLive(2, 60_000);
  await more(10, 'with cs1 down');
  t.equal(await replicasOfLast(), 2, 'the appends went on with 2 replicas: the one cs1 holds is out of date');

  await cluster.startChunkserver(0);
  await cluster.waitForLive(3, 60_000);
  const backAt = acked.length;
  const backMs = performance.now();
  await waitFor(async () => (await replicasOfLast()) === 3 || failures.length > 0, 60_000, 'the last chunk back at 3 replicas');
  t.comment(`healed ${Math.round(performance.now() - backMs)} ms after cs1 was back, ${acked.length - backAt} records later`);
  t.same(failures, [], 'no record append failed while the chunk healed');
  await more(10, 'after the heal');
  // A pipeline that fails on one replica (a timeout on a loaded machine) re-versions the chunk
  // without it; the next append heals it again, so it is back at 3 soon, appends going on.
  await waitFor(async () => (await replicasOfLast()) === 3 || failures.length > 0, 30_000, 'the last chunk at 3 replicas again after more appends');
  t.same(failures, [], 'the last chunk is at 3 replicas after 10 more records, and no record append failed');
  t.ok(acked.length > backAt, `appends went on: ${acked.length - backAt} records since cs1 came back`);
  stop = true;
  await Promise.all(writers);

  // Every acknowledged record reads back at its offset, intact.
  const read = new Map<string, { offset: number; data: string }>();
  for await (const r of clients[0]!.readRecords('/heal/log')) read.set(r.id, { offset: r.offset, data: r.data.toString() });
  const bad = acked.filter((a) => read.get(a.id)?.offset !== a.offset || read.get(a.id)?.data !== a.data);
  t.same(bad, [], `all ${acked.length} acknowledged records read back at their offsets`);
});

