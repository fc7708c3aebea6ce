// The leader core takes a server's garbage at most every GARBAGE_TAKE_EVERY_MS (master/leader/core.ts):
// a chunkserver beats after every chunk it stores, and a sweep of all its replicas on each beat
// was 6 % of a busy leader's CPU. A take that filled its room is followed at once by the next.
import t from 'tap';
import type { RegisterRequest } from '../../common/protocol.js';
import { GARBAGE_TAKE_EVERY_MS, LeaderCore } from '../../master/leader/core.js';
import { MasterState } from '../../master/state/index.js';

const T0 = 1_000_000;

function reg(id: string, handles: number[]): RegisterRequest {
  return {
    id, addr: `${id}.local:7000`, capacityBytes: 1 << 30, freeBytes: 1 << 30, usedBytes: 0, activeWrites: 0, activeReads: 0, copyRateBytesPerSec: 0,
    chunks: handles.map((handle) => ({ handle, version: 1, length: 4 })),
  };
}

t.test('garbage is looked for at most once a second per server, unless the last take was full', async (t) => {
  // No file references any handle: every replica is garbage; gcGraceMs 0 so it is due at once.
  const state = new MasterState();
  state.nextHandle = 20_000;
  const core = new LeaderCore({ deadTimeoutMs: 60_000, connectionGraceMs: 1500, safeModeMs: 0, gcGraceMs: 0, leaseCheckIntervalMs: 1000, random: () => 0.5 }, state, T0);
  core.becomeLeader(T0);
  core.register(reg('cs1', [1, 2, 3]), T0);
  core.register(reg('cs2', [4]), T0);
  t.same(core.takeWork('cs1', T0).garbageDeletes, [1, 2, 3], 'the first take answers what is due');
  core.register(reg('cs1', [5, 6]), T0 + 10); // it stored more, reported with its next beat
  t.same(core.takeWork('cs1', T0 + 10).garbageDeletes, [], 'a beat 10 ms later: not looked for again');
  t.same(core.takeWork('cs2', T0 + 10).garbageDeletes, [4], 'another server has its own pace');
  t.same(core.takeWork('cs1', T0 + GARBAGE_TAKE_EVERY_MS - 1).garbageDeletes, [], 'nor just before the period ends');
  t.same(core.takeWork('cs1', T0 + 10 + GARBAGE_TAKE_EVERY_MS).garbageDeletes.sort(), [5, 6], 'a period later: taken');

  // More garbage than one reply carries (10,000 deletes): the next beat takes the rest at once.
  const many = Array.from({ length: 10_005 }, (_, i) => 1000 + i);
  core.register(reg('cs3', many), T0);
  t.equal(core.takeWork('cs3', T0).garbageDeletes.length, 10_000, 'a full reply');
  t.equal(core.takeWork('cs3', T0 + 5).garbageDeletes.length, 5, 'and the rest on the next beat, not a period later');
  t.same(core.takeWork('cs3', T0 + 10).garbageDeletes, [], 'then it waits its period again');
});
