// Connection liveness in the leader core (master/registry/liveness.ts): a dropped link makes a
// server suspect at once (out of placement, its replicas still counted) and dead after the grace
// unless a new link or a full report comes first; a stale link's close is ignored; a failed probe
// after a client's report makes a server suspect for a while and never dead.
import t from 'tap';
import type { RegisterRequest } from '../../common/protocol.js';
import { LeaderCore } from '../../master/leader/core.js';
import { MasterState } from '../../master/state/index.js';

const DEAD = 10_000;
const GRACE = 1500;
const T0 = 1_000_000;

function reg(id: string): RegisterRequest {
  return { id, addr: `${id}.local:7000`, capacityBytes: 1 << 30, freeBytes: 1 << 30, usedBytes: 0, activeWrites: 0, activeReads: 0, copyRateBytesPerSec: 0, chunks: [{ handle: 1, version: 1, length: 4 }] };
}

function cluster(): LeaderCore {
  const core = new LeaderCore({ deadTimeoutMs: DEAD, connectionGraceMs: GRACE, safeModeMs: 0, gcGraceMs: 0, leaseCheckIntervalMs: 1000, random: () => 0.5 }, new MasterState(), T0);
  core.becomeLeader(T0);
  for (const id of ['cs1', 'cs2', 'cs3']) core.register(reg(id), T0);
  core.connectionOpened('cs1', 1, T0);
  return core;
}

const placed = (core: LeaderCore, now: number) => {
  const r = core.place(now, 3, [], 64);
  return typeof r === 'string' ? r : r.map((s) => s.id).sort();
};

t.test('a dropped link: suspect at once, dead after the grace', async (t) => {
  const core = cluster();
  core.connectionDropped('cs1', 1, T0 + 100);
  t.ok(core.registry.isAlive('cs1'), 'alive: its replicas still count');
  t.ok(core.registry.isSuspect('cs1'), 'suspect');
  t.same(placed(core, T0 + 200), ['cs2', 'cs3'], 'not offered for a new pipeline');
  t.same(core.registry.liveReplicas(1, 1).map((r) => r.id), ['cs1', 'cs2', 'cs3'], 'its replica still live within the grace');
  core.tick(T0 + 100 + GRACE);
  t.ok(core.registry.isAlive('cs1'), 'alive at exactly the grace');
  core.tick(T0 + 101 + GRACE);
  t.notOk(core.registry.isAlive('cs1'), 'dead once the grace passed, long before the dead timeout');
  t.same(core.registry.liveReplicas(1, 1).map((r) => r.id), ['cs2', 'cs3']);
  t.ok(core.drainLog().some((e) => /did not come back within the grace/.test(e.msg)), 'logged');
});

t.test('a new link or a full report within the grace: back in service, never dead', async (t) => {
  const core = cluster();
  core.connectionDropped('cs1', 1, T0);
  core.connectionOpened('cs1', 2, T0 + 1000);
  core.tick(T0 + 5000);
  t.ok(core.registry.isAlive('cs1') && !core.registry.isSuspect('cs1'), 'reconnected: alive, not suspect');
  core.connectionDropped('cs1', 1, T0 + 5000);
  t.notOk(core.registry.isSuspect('cs1'), 'the old link\'s late close is stale news');
  core.connectionDropped('cs1', 2, T0 + 6000);
  core.register(reg('cs1'), T0 + 6500);
  core.tick(T0 + 9000);
  t.ok(core.registry.isAlive('cs1') && !core.registry.isSuspect('cs1'), 'a restart\'s full report voids the dropped link');
});

t.test('a failed probe after a client\'s report: suspect for a while, never dead', async (t) => {
  const core = cluster();
  core.probeResult('cs2', false, T0, DEAD);
  t.ok(core.registry.isSuspect('cs2'));
  t.same(placed(core, T0 + 1), ['cs1', 'cs3'], 'kept out of new pipelines');
  core.heartbeat({ ...reg('cs2'), added: [], removed: [], copyFailed: [] }, T0 + DEAD - 1);
  t.ok(core.registry.isAlive('cs2'), 'never dead while it beats');
  core.probeResult('cs2', true, T0 + DEAD - 1, DEAD);
  t.notOk(core.registry.isSuspect('cs2'), 'a probe that reaches it clears it');
  core.probeResult('cs3', false, T0 + DEAD - 1, DEAD);
  core.heartbeat({ ...reg('cs3'), added: [], removed: [], copyFailed: [] }, T0 + 2 * DEAD - 2);
  t.ok(core.registry.isSuspect('cs3'), 'held out for its time');
  core.heartbeat({ ...reg('cs3'), added: [], removed: [], copyFailed: [] }, T0 + 2 * DEAD - 1);
  t.notOk(core.registry.isSuspect('cs3'), 'the hold ends after its time');
});
