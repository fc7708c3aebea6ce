// Issue 16's "add and remove a master under a put/get load", with real processes on 127.0.0.1:
// while a writer puts files and a reader reads acknowledged ones back, and a metadata load
// writes and reads replication factors (one reader pinned to one master), a 4th master joins
// (`--join <member>`), is promoted, and the leader itself is removed (it hands over and stops).
// Afterwards, the nemesis checks: every acknowledged file reads back byte-exact, no read ever saw
// other bytes, and the metadata history is linearizable. Bounded: at most 300 small files, each
// step waits for a few more acknowledged writes, never for a time.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { DfsClient } from '../../cli/client.js';
import { PutGetLoad } from '../../scripts/bench/load.js';
import { localAgent } from '../hosts/local-agent.js';
import { MetadataLoad } from '../hosts/workload.js';
import { ADMIN_TOKEN, freePorts, spawnRole, TestCluster, waitFor, type Proc } from '../helpers/cluster.js';

t.setTimeout(600_000);

interface MastersReply { leader: string | null; members: { id: string; role: string }[] }

function sharedArgs(c: TestCluster): string[] {
  const base = c.masterArgs(0);
  const keep: string[] = [];
  for (let i = 0; i < base.length; i++) {
    if (['--id', '--listen', '--data', '--peers'].includes(base[i]!)) i++;
    else keep.push(base[i]!);
  }
  return keep;
}

t.test('a master added and the leader removed while a writer, a reader and a metadata load run: nothing lost, history linearizable', async (t) => {
  // Default replication 3: the metadata load's files start at workload.ts's INITIAL; the put load asks for 2.
  const c = await TestCluster.start({ masters: 3, chunkservers: 3, replication: 3, chunkSizeBytes: 256 * 1024 });
  t.teardown(() => c.stop());
  const client = new DfsClient(c.masterAddresses, { token: ADMIN_TOKEN });
  const load = new PutGetLoad(client, { root: '/load', fileBytes: 600 * 1024, replication: 2, maxFiles: 300, pauseMs: 30 });
  const agent = localAgent(c.masterAddresses, ADMIN_TOKEN);
  await MetadataLoad.prepare(agent);
  const meta = new MetadataLoad(agent);
  const list = async (): Promise<MastersReply> => (await client.master.call<MastersReply>('/v1/admin/masters'));
  const first = (await list()).leader!;
  load.start();
  // The pinned reader asks a follower that stays: it may answer NOT_LEADER, never a stale value.
  meta.start(c.masterAddresses[['m1', 'm2', 'm3'].indexOf(first) === 0 ? 1 : 0]!);
  await load.progress(5, 60_000);

  // A 4th master joins from one member's address and is promoted, under load.
  const [port4] = await freePorts(1);
  const addr4 = `127.0.0.1:${port4}`;
  const added = await c.dfs(['admin', 'masters', 'add', `m4=${addr4}`]);
  t.equal(added.code, 0, added.stderr);
  const dir4 = join(c.dir, 'm4');
  mkdirSync(dir4, { recursive: true });
  const m4: Proc = await spawnRole('master', ['--id', 'm4', '--listen', addr4, '--data', dir4, '--join', c.masterAddresses[0]!, ...sharedArgs(c)], 'master started');
  t.teardown(() => c.kill(m4).catch(() => undefined));
  await waitFor(async () => (await list().catch(() => undefined))?.members.find((m) => m.id === 'm4')?.role === 'voter', 60_000, 'm4 promoted to voter');
  await load.progress(5, 60_000);

  // The leader is removed: it hands over and stops on its own, while the load goes on.
  const leader = (await list()).leader!;
  const leaderProc = leader === 'm4' ? m4 : c.masterProcs[Number(leader.slice(1)) - 1]!;
  const exited = new Promise<number | null>((r) => leaderProc.child.once('exit', (code) => r(code)));
  const removed = await c.dfs(['admin', 'masters', 'remove', leader]);
  t.equal(removed.code, 0, removed.stderr);
  t.equal(await exited, 0, `the removed leader ${leader} stopped on its own`);
  await load.progress(5, 60_000);
  await load.stop();
  await meta.stop();

  t.comment(`client view: ${JSON.stringify(load.stats)}; metadata: ${JSON.stringify(meta.counts)}`);
  t.same(load.wrongReads, [], 'no read returned other bytes than were acknowledged');
  const v = await load.verifyAll();
  t.ok(v.checked >= 15, `${v.checked} acknowledged files`);
  t.same(v.bad, [], 'every acknowledged file reads back byte-exact');
  t.equal(load.stats.writes.failed, 0, `no put failed (${load.stats.writes.errors.join('; ')})`);
  const res = meta.check();
  t.ok(res.ok, `the metadata history of ${meta.history.length} operations on ${res.keys} keys is linearizable${res.ok ? '' : `: ${res.reason}`}`);
  const group = (await list()).members.map((m) => `${m.id}:${m.role}`).sort();
  t.same(group, ['m1', 'm2', 'm3', 'm4'].filter((id) => id !== leader).map((id) => `${id}:voter`), 'the group is the three left');
  if (t.passing() === false) t.comment([...c.problems(), ...m4.output.slice(-30)].join('\n'));
});
