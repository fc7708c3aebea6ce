// Scenario (c) of issue 16: an asymmetric partition between the leader and one follower (the
// two still reach the third master, and the client reaches all) must not make the leader flap.
// Without pre-vote the cut-off follower would time out, raise its term and depose a healthy
// leader each time it got through to the others; with pre-vote and check-quorum its campaign
// is refused (the third master hears from the leader) and no term moves at all. Checked with
// the packets dropped one way, then the other way. The metadata history is checked for
// linearizability throughout.
import t from 'tap';
import { HostCluster, until } from './host-cluster.js';
import { LeaderWatch, MetadataLoad, sleep } from './workload.js';

t.setTimeout(600_000);

/** How long each one-way cut lasts: several election timeouts (10–20 ticks of 100 ms). */
const CUT_MS = 8000;

t.test('a one-way partition between the leader and a follower: no leader change, no term change', async (t) => {
  const c = await HostCluster.start({ masters: 3, chunkservers: 0 }, (m) => t.comment(m));
  t.teardown(() => c.stop());
  await until(async () => (await c.raftViews()).some((v) => v.role === 'leader'), 20_000, 'a leader');
  await MetadataLoad.prepare(c);
  const start = (await c.raftViews()).find((v) => v.role === 'leader')!;
  const leader = c.server(start.id);
  const follower = c.masters.find((m) => m.id !== leader.id)!;
  const load = new MetadataLoad(c);
  load.start(follower.addr);
  const watch = new LeaderWatch(c);
  await sleep(1500);

  // Each direction in turn: the follower's packets to the leader dropped, then the leader's to the follower.
  const directions: [string, string][] = c.bed ? [[follower.host, leader.host], [leader.host, follower.host]] : [['*', follower.host]];
  if (!c.bed) t.comment(`loopback: nothing reaches ${follower.id} (its proxy paused) while it still reaches the others: one direction only`);
  for (const [from, to] of directions) {
    if (c.bed) c.bed.dropOneWay(from, to, true);
    else follower.proxy!.set({ paused: true });
    t.comment(`dropping packets ${from} -> ${to} for ${CUT_MS} ms`);
    await sleep(CUT_MS);
    if (c.bed) c.bed.dropOneWay(from, to, false);
    else follower.proxy!.heal();
    // The follower catches up before the next cut.
    await until(async () => (await c.raftViews()).find((v) => v.id === follower.id)!.role === 'follower', 20_000, `${follower.id} to follow again`);
    await sleep(1500);
  }
  await load.stop();
  await watch.stop();

  t.comment(`leaders seen: ${watch.changes.join(' -> ')}; highest terms: ${JSON.stringify(Object.fromEntries(watch.maxTerm))}; operations: ${JSON.stringify(load.counts)}`);
  const roles = [...watch.rolesSeen.get(follower.id)!];
  t.ok(roles.some((r) => r !== 'follower'), `the cut bit: ${follower.id} lost its leader, or could not be reached (roles seen: ${roles.join(', ')})`);
  t.same(watch.changes, [`${leader.id}@${start.term}`], `one leader all along, ${leader.id} in term ${start.term}: no flapping`);
  for (const m of c.masters) t.equal(watch.maxTerm.get(m.id), start.term, `${m.id} never left term ${start.term} (pre-vote kept the cut-off follower's campaigns from raising it)`);
  t.ok(load.counts.writesOk > 0, 'writes went on through the cuts (the leader kept a majority)');
  const res = load.check();
  t.ok(res.ok, `the history of ${load.history.length} operations on ${res.keys} keys is linearizable${res.ok ? '' : `: ${res.reason}`}`);
});
