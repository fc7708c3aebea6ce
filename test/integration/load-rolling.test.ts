// Issue 16's "a rolling restart of every process, one at a time, under load, with nothing lost
// and no failed client operation", with real processes on 127.0.0.1: every master and then every
// chunkserver is stopped with SIGTERM (a leader hands over first) and started again from its
// data folder, each once the one before is back, while a writer puts files, a reader reads
// acknowledged ones back, a metadata load writes and reads replication factors, and an append
// load appends (one lease appender, two record appenders). Afterwards: every acknowledged file
// reads back byte-exact, no read saw other bytes, no client operation failed, the metadata
// history is linearizable, the appended file is exactly its acknowledged appends, and every
// acknowledged record is at its offset, intact, with nothing half there. Bounded: 6 restarts, at most 300 small
// files; each step waits for the process to be back and for more acknowledged writes.
import t from 'tap';
import { request } from 'undici';
import { DfsClient } from '../../cli/client.js';
import { AppendLoad } from '../../scripts/bench/append-load.js';
import { PutGetLoad } from '../../scripts/bench/load.js';
import { localAgent } from '../hosts/local-agent.js';
import { MetadataLoad } from '../hosts/workload.js';
import { ADMIN_TOKEN, TestCluster, waitFor } from '../helpers/cluster.js';

t.setTimeout(600_000);

async function role(addr: string): Promise<{ role: string; term: number; commitIndex: number } | undefined> {
  try {
    return (await (await request(`http://${addr}/v1/raft/status`)).body.json()) as { role: string; term: number; commitIndex: number };
  } catch {
    return undefined;
  }
}

t.test('a rolling restart of every master and chunkserver under load: nothing lost, no failed operation, history linearizable', async (t) => {
  // Default replication 3: the metadata load's files start at workload.ts's INITIAL; the put load asks for 2.
  const c = await TestCluster.start({ masters: 3, chunkservers: 3, replication: 3, chunkSizeBytes: 256 * 1024 });
  t.teardown(() => c.stop());
  const client = new DfsClient(c.masterAddresses, { token: ADMIN_TOKEN });
  const load = new PutGetLoad(client, { root: '/load', fileBytes: 600 * 1024, replication: 2, maxFiles: 300, pauseMs: 30 });
  const agent = localAgent(c.masterAddresses, ADMIN_TOKEN);
  await MetadataLoad.prepare(agent);
  const meta = new MetadataLoad(agent);
  const recordClients = [0, 1].map(() => new DfsClient(c.masterAddresses, { token: ADMIN_TOKEN }));
  const appends = new AppendLoad(client, { appendPath: '/append/file', recordPath: '/append/records', recordClients, appendBytes: 100 * 1024, maxAppends: 400, maxRecords: 1000, pauseMs: 30 });
  const progress = (n: number): Promise<unknown> => Promise.all([load.progress(n, 60_000), appends.progress(n, 60_000)]);
  await appends.start();
  load.start();
  meta.start(c.masterAddresses[0]!);
  // A failed wait below ends the test early: the loads stop then too, before the cluster does
  // (a load left running kept the test file alive until tap's timeout).
  let stopped = false;
  const stopLoads = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    await Promise.all([load.stop(), meta.stop(), appends.stop()]);
  };
  t.teardown(stopLoads);
  await progress(5);

  const restarts: string[] = [];
  for (const i of [0, 1, 2]) {
    await c.kill(c.masterProcs[i]!, 'SIGTERM');
    await c.startMaster(i);
    // Back: it follows or leads, and every master agrees on one leader again.
    await waitFor(async () => {
      const all = await Promise.all(c.masterAddresses.map(role));
      return all.every((s) => s !== undefined) && all.filter((s) => s!.role === 'leader').length === 1;
    }, 60_000, `m${i + 1} back in a group with one leader`);
    restarts.push(`m${i + 1}`);
    await progress(3);
  }
  for (const i of [0, 1, 2]) {
    await c.kill(c.chunkservers[i]!, 'SIGTERM');
    await c.startChunkserver(i);
    await c.waitForLive(3, 60_000);
    restarts.push(`cs${i + 1}`);
    await progress(3);
  }
  // The bounds above are set so that the loads normally run through every restart; say so if not.
  t.comment(`when the last restart was done: ${appends.acked.length} records (bound 2000), ${appends.appends} appends (bound 400), ${load.stats.writes.ok} puts (bound 300), metadata load ${meta.capped ? 'stopped at its bound' : 'still running'}`);
  await stopLoads();

  t.same(restarts, ['m1', 'm2', 'm3', 'cs1', 'cs2', 'cs3'], 'every process was restarted, one at a time');
  t.comment(`client view: ${JSON.stringify(load.stats)}; metadata: ${JSON.stringify(meta.counts)}`);
  t.same(load.wrongReads, [], 'no read returned other bytes than were acknowledged');
  t.equal(load.stats.writes.failed, 0, `no put failed (${load.stats.writes.errors.join('; ')})`);
  t.equal(load.stats.reads.failed, 0, `no read failed (${load.stats.reads.errors.join('; ')})`);
  t.equal(meta.counts.writesUnknown, 0, 'no metadata write failed');
  t.equal(meta.counts.readsFailed, 0, 'no metadata read failed');
  const v = await load.verifyAll();
  t.ok(v.checked >= 23, `${v.checked} acknowledged files`);
  t.same(v.bad, [], 'every acknowledged file reads back byte-exact');
  const res = meta.check();
  t.ok(res.ok, `the metadata history of ${meta.history.length} operations on ${res.keys} keys is linearizable${res.ok ? '' : `: ${res.reason}`}`);
  const a = await appends.verify();
  t.comment(`appends: ${appends.appends} acknowledged; records: ${JSON.stringify({ ...a.records, problems: a.records.problems.length })}; failures: ${appends.failures.slice(0, 5).join('; ')}`);
  t.same(appends.failures, [], 'no append or record append failed');
  t.same(a.appendProblems, [], 'the appended file is exactly the acknowledged appends: a failed one left it whole or as it was');
  t.ok(a.records.acked >= 20, `${a.records.acked} acknowledged records`);
  t.same(a.records.problems, [], 'every acknowledged record at its offset, intact; nothing half there; duplicates only of retried records');
  if (t.passing() === false) t.comment(c.problems().slice(-80).join('\n'));
});
