// The leader's decisions as log lines (master/leader/core.ts, master/repair/ledger.ts): each one
// said once, as one structured event the driver logs; a copy's events and its order carry one id.
import t from 'tap';
import type { HeartbeatRequest, RegisterRequest } from '../../common/protocol.js';
import type { Command } from '../../master/commands.js';
import { LeaderCore, type LeaderLogEvent } from '../../master/leader/core.js';
import { MasterState } from '../../master/state/index.js';

const DEAD = 1000;
const T0 = 1_000_000;
const CHUNK = 4;

function stateWithFile(): { state: MasterState; handle: number } {
  const state = new MasterState();
  const apply = (cmd: Command) => {
    const r = state.apply(cmd);
    if (!r.ok) throw new Error(`${cmd.op}: ${r.message}`);
    return r.value;
  };
  apply({ op: 'create', path: '/f', overwrite: true, parents: true, replication: 3, chunkSizeBytes: CHUNK, writeId: 'w00000001', leaseMs: 60_000, nowMs: T0 });
  const { handle } = apply({ op: 'allocate', writeId: 'w00000001', index: 0, nowMs: T0 }) as { handle: number };
  apply({ op: 'complete', writeId: 'w00000001', length: CHUNK, chunks: [{ handle, length: CHUNK, checksum: '0123456789abcdef' }], nowMs: T0 });
  return { state, handle };
}

const stats = { capacityBytes: 1 << 20, freeBytes: 1 << 20, usedBytes: 0, activeWrites: 0, activeReads: 0, copyRateBytesPerSec: 0 };
const reg = (id: string, handles: number[]): RegisterRequest => ({ id, addr: `${id}.local:7000`, ...stats, chunks: handles.map((handle) => ({ handle, version: 1, length: CHUNK })) });
const beat = (id: string, o: { added?: number[]; copyFailed?: number[] } = {}): HeartbeatRequest => ({
  id, addr: `${id}.local:7000`, ...stats, added: (o.added ?? []).map((handle) => ({ handle, version: 1, length: CHUNK })), removed: [], copyFailed: o.copyFailed ?? [],
});

/** A leader of term 7 with cs1-cs3 holding the file's chunk and cs4 empty; safe mode over. */
function leader(holders = ['cs1', 'cs2', 'cs3']): { core: LeaderCore; handle: number; events: LeaderLogEvent[] } {
  const { state, handle } = stateWithFile();
  const core = new LeaderCore({ deadTimeoutMs: DEAD, safeModeMs: 500, gcGraceMs: 0, leaseCheckIntervalMs: 1000, random: () => 0.5 }, state, T0);
  core.becomeLeader(T0, 7);
  for (const id of ['cs1', 'cs2', 'cs3', 'cs4']) core.register(reg(id, holders.includes(id) ? [handle] : []), T0);
  core.inSafeMode(T0 + 1);
  return { core, handle, events: core.drainLog() };
}

function scan(core: LeaderCore, now: number): void {
  const steps = core.startScan(now);
  if (!steps) throw new Error(`no scan due at ${now}`);
  let r = steps.next();
  while (!r.done) r = steps.next();
  core.finishScan(now, r.value);
}

const named = (events: LeaderLogEvent[], re: RegExp) => events.filter((e) => re.test(e.msg));

t.test('leadership, safe mode and a death are each one line', async (t) => {
  const { core, events } = leader();
  t.equal(named(events, /^became leader; safe mode entered/).length, 1, 'became leader, entering safe mode');
  t.match(named(events, /^became leader/)[0]!.fields, { term: 7 });
  t.equal(named(events, /^safe mode left: every chunk has a reported replica$/).length, 1, 'safe mode left, with why');
  core.inSafeMode(T0 + 2);
  for (const now of [T0 + 600, T0 + 1200]) for (const id of ['cs1', 'cs2', 'cs4']) core.heartbeat(beat(id), now);
  core.tick(T0 + 1200);
  core.tick(T0 + 1300);
  let later = core.drainLog();
  t.equal(named(later, /^safe mode left/).length, 0, 'safe mode left is said once');
  const dead = named(later, /^chunkserver dead/);
  t.equal(dead.length, 1, 'cs3 is said dead once, however many ticks see it dead');
  t.match(dead[0]!.fields, { server: 'cs3', deadTimeoutMs: DEAD });
  core.heartbeat(beat('cs3'), T0 + 1400);
  core.tick(T0 + 1400);
  later = core.drainLog();
  t.same(named(later, /^chunkserver back/).map((e) => e.fields.server), ['cs3'], 'and back once it heartbeats again');
  core.loseLeadership(T0 + 1500, 'm2.local:9400');
  t.same(named(core.drainLog(), /^stepped down/).map((e) => e.fields.leader), ['m2.local:9400'], 'stepping down is one line naming the new leader');
  core.loseLeadership(T0 + 1600, 'm3.local:9400');
  t.same(core.drainLog().map((e) => e.msg), ['leader changed'], 'a follower hearing of another change does not step down again');
});

t.test('a copy: ordered, its order and done carry one id', async (t) => {
  const { core, handle } = leader();
  const now = T0 + DEAD + 500;
  for (const id of ['cs1', 'cs2', 'cs4']) core.heartbeat(beat(id), now);
  core.tick(now);
  scan(core, now);
  const ordered = named(core.drainLog(), /^copy ordered$/);
  t.equal(ordered.length, 1, 'one copy ordered');
  t.match(ordered[0]!.fields, { reqId: 'copy-t7-1', handle, target: 'cs4' }, 'named after the term, with the chunk and target');
  const work = core.takeWork('cs4', now);
  t.equal(work.copies[0]?.reqId, 'copy-t7-1', 'the order the target collects carries the same id');
  core.heartbeat(beat('cs4', { added: [handle] }), now + 50);
  scan(core, now + 200);
  const after = core.drainLog();
  const done = named(after, /^copy done$/);
  t.equal(done.length, 1, 'done once');
  t.match(done[0]!.fields, { reqId: 'copy-t7-1', handle, target: 'cs4' });
  t.equal(named(after, /^copy failed/).length, 0, 'not also failed');
});

t.test('a copy the target reports failed is one line with its id', async (t) => {
  const { core, handle } = leader();
  const now = T0 + DEAD + 500;
  for (const id of ['cs1', 'cs2', 'cs4']) core.heartbeat(beat(id), now);
  scan(core, now);
  core.drainLog();
  t.equal(core.takeWork('cs4', now).copies.length, 1);
  core.heartbeat(beat('cs4', { copyFailed: [handle] }), now + 50);
  const failed = named(core.drainLog(), /^copy failed/);
  t.equal(failed.length, 1);
  t.match(failed[0]!.fields, { reqId: 'copy-t7-1', handle, target: 'cs4' });
});

t.test('a chunk with no live replica is said lost once, and found again once', async (t) => {
  const { core, handle } = leader(['cs1']);
  let now = T0 + DEAD + 500;
  for (const id of ['cs2', 'cs3', 'cs4']) core.heartbeat(beat(id), now);
  scan(core, now);
  now += 1100;
  for (const id of ['cs2', 'cs3', 'cs4']) core.heartbeat(beat(id), now);
  scan(core, now);
  const events = core.drainLog();
  const lost = named(events, /^chunk lost/);
  t.equal(lost.length, 1, 'two scans, one line');
  t.match(lost[0]!.fields, { handle });
  core.register(reg('cs1', [handle]), now + 10);
  now += 1100;
  for (const id of ['cs1', 'cs2', 'cs3', 'cs4']) core.heartbeat(beat(id), now);
  scan(core, now);
  t.equal(named(core.drainLog(), /^chunk found again/).length, 1, 'found again when its server is back');
});
