// Paged registration reports in the leader core (master/leader/reports.ts): a report counts only
// once its final page is in, so a partial one never makes a replica look missing to repair or
// unreferenced to garbage collection; pages out of order, stale reports and a leader change make
// the server start its report over.
import t from 'tap';
import { MAX_PENDING_REPORTS } from '../../common/limits.js';
import type { RegisterRequest } from '../../common/protocol.js';
import { LeaderCore } from '../../master/leader/core.js';
import { MasterState } from '../../master/state/index.js';

const DEAD = 10_000;
const T0 = 1_000_000;

function newCore(): LeaderCore {
  const core = new LeaderCore({ deadTimeoutMs: DEAD, safeModeMs: 1000, gcGraceMs: 0, leaseCheckIntervalMs: 1000, random: () => 0.5 }, new MasterState(), T0);
  core.becomeLeader(T0);
  return core;
}

function page(id: string, handles: number[], report?: RegisterRequest['report'], addr = `${id}.local:7000`): RegisterRequest {
  return {
    id, addr, capacityBytes: 1000, freeBytes: 500, usedBytes: 500, activeWrites: 0, activeReads: 0, copyRateBytesPerSec: 0,
    ...(report ? { report } : {}), chunks: handles.map((handle) => ({ handle, version: 1, length: 4 })),
  };
}

const R = 'aaaaaaaaaaaaaaaa';

t.test('a report applies only with its final page', async (t) => {
  const core = newCore();
  t.same(core.registerPage(page('cs1', [1, 2], { id: R, page: 0, final: false }), T0), { kind: 'more' });
  t.same(core.registerPage(page('cs1', [3], { id: R, page: 1, final: false }), T0 + 1), { kind: 'more' });
  t.equal(core.registry.list().length, 0, 'no server registered from a partial report');
  t.notOk(core.registry.hasAnyReplica(1), 'no replica known from a partial report');
  t.same(core.takeWork('cs1', T0 + 2).garbageDeletes, [], 'nothing of a partial report is garbage (grace 0 here)');
  t.equal(core.registerPage(page('cs1', [4], { id: R, page: 2, final: true }), T0 + 3).kind, 'complete');
  t.same(core.registry.list().map((s) => [s.id, s.chunkCount]), [['cs1', 4]], 'every page counted once');
  for (const h of [1, 2, 3, 4]) t.ok(core.registry.hasAnyReplica(h));
});

t.test('a page sent again is taken once; a page out of order restarts the report', async (t) => {
  const core = newCore();
  core.registerPage(page('cs1', [1], { id: R, page: 0, final: false }), T0);
  t.same(core.registerPage(page('cs1', [1], { id: R, page: 0, final: false }), T0), { kind: 'more' }, 'page 0 again starts over');
  core.registerPage(page('cs1', [2], { id: R, page: 1, final: false }), T0);
  t.same(core.registerPage(page('cs1', [2], { id: R, page: 1, final: false }), T0), { kind: 'more' }, 'page 1 again (a retried call) is taken once');
  t.equal(core.registerPage(page('cs1', [3], { id: R, page: 2, final: true }), T0).kind, 'complete');
  t.equal(core.registry.list()[0]?.chunkCount, 3);

  core.registerPage(page('cs2', [10], { id: R, page: 0, final: false }), T0);
  t.equal(core.registerPage(page('cs2', [11], { id: R, page: 2, final: true }), T0).kind, 'restart', 'a skipped page restarts');
  t.equal(core.registerPage(page('cs2', [11], { id: R, page: 1, final: true }), T0).kind, 'restart', 'and the report is gone');
  core.registerPage(page('cs3', [20], { id: R, page: 0, final: false }), T0);
  t.equal(core.registerPage(page('cs3', [21], { id: 'bbbbbbbbbbbbbbbb', page: 1, final: true }), T0).kind, 'restart', 'another report id restarts');
  core.registerPage(page('cs4', [30], { id: R, page: 0, final: false }), T0);
  t.equal(core.registerPage(page('cs4', [31], { id: R, page: 1, final: true }, 'elsewhere:1'), T0).kind, 'restart', 'another address restarts');
  t.equal(core.registry.list().length, 1, 'only cs1 registered');
});

t.test('a stale report is dropped; a leader change drops every report', async (t) => {
  const core = newCore();
  core.registerPage(page('cs1', [1], { id: R, page: 0, final: false }), T0);
  t.equal(core.registerPage(page('cs1', [2], { id: R, page: 1, final: true }), T0 + DEAD + 1).kind, 'restart', 'no page for a dead timeout: dropped');
  core.registerPage(page('cs1', [1], { id: R, page: 0, final: false }), T0 + DEAD + 2);
  core.loseLeadership(T0 + DEAD + 3);
  core.becomeLeader(T0 + DEAD + 4);
  t.equal(core.registerPage(page('cs1', [2], { id: R, page: 1, final: true }), T0 + DEAD + 5).kind, 'restart', 'a new leader knows no report');
});

t.test('a known server stays alive while it sends its pages, with the replicas it had', async (t) => {
  const core = newCore();
  core.registerPage(page('cs1', [1, 2]), T0);
  core.registerPage(page('cs1', [5], { id: R, page: 0, final: false }), T0 + DEAD - 1);
  t.ok(core.registry.isAlive('cs1'));
  core.advanceTo(T0 + DEAD + 100);
  t.ok(core.registry.isAlive('cs1'), 'each page counts as a heartbeat');
  t.ok(core.registry.hasAnyReplica(1), 'the old report holds until the new one is complete');
  t.notOk(core.registry.hasAnyReplica(5));
  core.registerPage(page('cs1', [6], { id: R, page: 1, final: true }), T0 + DEAD + 200);
  t.notOk(core.registry.hasAnyReplica(1), 'then the new one replaces it');
  t.ok(core.registry.hasAnyReplica(5) && core.registry.hasAnyReplica(6));
});

t.test('reports assembled at once are bounded', async (t) => {
  const core = newCore();
  for (let i = 0; i < MAX_PENDING_REPORTS; i++) t.equal(core.registerPage(page(`cs${i}`, [i + 1], { id: R, page: 0, final: false }), T0).kind, 'more');
  t.equal(core.registerPage(page('one-more', [999], { id: R, page: 0, final: false }), T0).kind, 'busy');
  t.equal(core.registerPage(page('one-more', [999]), T0).kind, 'complete', 'an unpaged report needs no room');
});
