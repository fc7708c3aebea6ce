// Connection liveness in the leader core (master/registry/liveness.ts): a dropped link makes a
// server suspect at once (out of placement, its replicas still counted) and dead after the grace
// unless a new link or a full report comes first; a stale link's close is ignored; a failed probe
// after a client's report makes a server suspect for a while and never dead; a server that says it
// stops to restart is held (suspect, not dead, silent heartbeats forgiven) until its full report
// or the restart grace's end.
import t from 'tap';
import type { RegisterRequest } from '../../common/protocol.js';
import { LeaderCore } from '../../master/leader/core.js';
import { MasterState } from '../../master/state/index.js';

const DEAD = 10_000;
const GRACE = 1500;
const RESTART = 60_000;
const T0 = 1_000_000;

function reg(id: string): RegisterRequest {
  return { id, addr: `${id}.local:7000`, capacityBytes: 1 << 30, freeBytes: 1 << 30, usedBytes: 0, activeWrites: 0, activeReads: 0, copyRateBytesPerSec: 0, chunks: [{ handle: 1, version: 1, length: 4 }] };
}

function cluster(state = new MasterState()): LeaderCore {
  const core = new LeaderCore({ deadTimeoutMs: DEAD, connectionGraceMs: GRACE, restartGraceMs: RESTART, safeModeMs: 0, gcGraceMs: 0, leaseCheckIntervalMs: 1000, random: () => 0.5 }, state, T0);
  core.becomeLeader(T0);
  for (const id of ['cs1', 'cs2', 'cs3']) core.register(reg(id), T0);
  core.connectionOpened('cs1', 1, T0);
  return core;
}

/** The other servers keep beating while one is held (else the dead timeout takes them). */
function beat(core: LeaderCore, ids: string[], at: number): void {
  for (const id of ids) core.heartbeat({ ...reg(id), added: [], removed: [], copyFailed: [] }, at);
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

t.test('a clean stop: held restarting past the grace and the dead timeout, back with its full report, no copies', async (t) => {
  const core = cluster();
  t.ok(core.serverStopping('cs1', T0 + 100), 'the notice is taken');
  t.ok(core.registry.isSuspect('cs1'), 'suspect at once, before its link even closes');
  t.same(placed(core, T0 + 150), ['cs2', 'cs3'], 'not offered for a new pipeline');
  core.connectionDropped('cs1', 1, T0 + 200);
  for (const at of [T0 + 200 + GRACE + 1, T0 + DEAD + 1, T0 + DEAD * 3, T0 + DEAD * 5, T0 + 100 + RESTART]) {
    beat(core, ['cs2', 'cs3'], at);
    core.tick(at);
    t.ok(core.registry.isAlive('cs1') && core.registry.isSuspect('cs1'), `alive and suspect at +${at - T0} ms: past the grace and the dead timeout, within the hold`);
  }
  t.same(core.registry.liveReplicas(1, 1).map((r) => r.id), ['cs1', 'cs2', 'cs3'], 'its replica still counts: nothing to copy');
  t.match(core.registry.list().find((s) => s.id === 'cs1'), { alive: true, suspect: true, restartHeldMs: 0 }, 'status says how long it is held');
  core.connectionOpened('cs1', 2, T0 + RESTART);
  t.ok(core.registry.isSuspect('cs1'), 'its new link alone does not end the hold: its report has not come');
  core.register(reg('cs1'), T0 + RESTART + 50);
  core.tick(T0 + RESTART + 200);
  t.ok(core.registry.isAlive('cs1') && !core.registry.isSuspect('cs1'), 'its full report ends the hold: back in service');
  t.equal(core.registry.list().find((s) => s.id === 'cs1')!.restartHeldMs, undefined, 'status no longer says held');
  t.ok(core.drainLog().some((e) => /back from its restart/.test(e.msg)), 'its return is logged');
  core.connectionDropped('cs1', 2, T0 + RESTART + 300);
  core.tick(T0 + RESTART + 301 + GRACE);
  t.notOk(core.registry.isAlive('cs1'), 'a crash after the restart gets the short grace again, not the hold');
});

t.test('a clean stop never back: dead when the hold ends, and said so', async (t) => {
  const core = cluster();
  core.serverStopping('cs2', T0);
  for (let at = T0; at <= T0 + RESTART; at += DEAD / 2) beat(core, ['cs1', 'cs3'], at);
  core.tick(T0 + RESTART);
  t.ok(core.registry.isAlive('cs2'), 'alive at exactly the hold\'s end');
  beat(core, ['cs1', 'cs3'], T0 + RESTART + 1);
  core.tick(T0 + RESTART + 1);
  t.notOk(core.registry.isAlive('cs2'), 'dead once the hold passed');
  t.same(core.registry.liveReplicas(1, 1).map((r) => r.id), ['cs1', 'cs3'], 'its replica stops counting: copies are planned');
  t.ok(core.drainLog().some((e) => /not back within the restart grace/.test(e.msg)), 'logged as a restart that never came');
});

t.test('a stop notice changes nothing for an unknown or decommissioning server, a follower, or with no restart grace', async (t) => {
  const state = new MasterState();
  const core = cluster(state);
  t.notOk(core.serverStopping('cs9', T0), 'unknown server: refused');
  state.decommissioning.add('cs3');
  t.notOk(core.serverStopping('cs3', T0), 'decommissioning: it leaves for good, its copies must not wait');
  t.notOk(core.registry.isSuspect('cs3'), 'and nothing changed');
  const off = new LeaderCore({ deadTimeoutMs: DEAD, connectionGraceMs: GRACE, safeModeMs: 0, gcGraceMs: 0, leaseCheckIntervalMs: 1000, random: () => 0.5 }, new MasterState(), T0);
  off.becomeLeader(T0);
  off.register(reg('cs1'), T0);
  t.notOk(off.serverStopping('cs1', T0), 'no restart grace configured: ignored');
  off.loseLeadership(T0 + 1);
  t.notOk(off.serverStopping('cs1', T0 + 2), 'not the leader: ignored');
});

t.test('a notice from a dead server is refused: it must not bring back what the dead timeout took', async (t) => {
  const core = cluster();
  beat(core, ['cs1', 'cs3'], T0 + DEAD + 1);
  core.tick(T0 + DEAD + 1);
  t.notOk(core.registry.isAlive('cs2'), 'cs2 dead by its silence');
  t.notOk(core.serverStopping('cs2', T0 + DEAD + 2), 'its late notice is refused');
  t.notOk(core.registry.isAlive('cs2'), 'still dead: its replicas do not count again');
});

t.test('a notice that came late (the server is back, linked and beating): held, then simply in service', async (t) => {
  const core = cluster();
  t.ok(core.serverStopping('cs1', T0 + 10), 'taken: the leader cannot tell it is late');
  for (let at = T0 + 10; at <= T0 + RESTART + DEAD; at += DEAD / 2) {
    beat(core, ['cs1', 'cs2', 'cs3'], at);
    core.tick(at);
    if (at <= T0 + 10 + RESTART) t.ok(core.registry.isSuspect('cs1'), `held at +${at - T0} ms`);
  }
  t.ok(core.registry.isAlive('cs1') && !core.registry.isSuspect('cs1'), 'the hold over, its open link and its beats keep it in service: not dead');
  t.notOk(core.drainLog().some((e) => /dead/.test(e.msg)), 'never said dead');
});

t.test('back after its hold ended: link first, report later, and a crash after that is seen as one', async (t) => {
  const core = cluster();
  core.serverStopping('cs1', T0);
  core.connectionDropped('cs1', 1, T0 + 5);
  for (let at = T0; at <= T0 + RESTART + 1; at += DEAD / 2) beat(core, ['cs2', 'cs3'], at);
  core.tick(T0 + RESTART + 1);
  t.notOk(core.registry.isAlive('cs1'), 'dead at the hold\'s end');
  core.connectionOpened('cs1', 2, T0 + RESTART + 100);
  beat(core, ['cs2', 'cs3'], T0 + RESTART + 200);
  core.tick(T0 + RESTART + 200);
  core.register(reg('cs1'), T0 + RESTART + 300);
  t.ok(core.registry.isAlive('cs1') && !core.registry.isSuspect('cs1'), 'its report brings it back in service');
  core.drainLog();
  core.connectionDropped('cs1', 2, T0 + RESTART + 400);
  beat(core, ['cs2', 'cs3'], T0 + RESTART + 401 + GRACE);
  core.tick(T0 + RESTART + 401 + GRACE);
  t.notOk(core.registry.isAlive('cs1'), 'a crash now: dead after the short grace');
  t.ok(core.drainLog().some((e) => /did not come back within the grace/.test(e.msg)), 'and reported as a dropped connection (a scan is asked for), not a restart');
});
