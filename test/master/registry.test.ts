// Registry: the master's volatile view of chunkservers: liveness by heartbeat age (with an
// injected clock), replica locations from registrations and heartbeats, placement bookkeeping.
import t from 'tap';
import type { HeartbeatRequest, RegisterRequest, ReportedChunk } from '../../common/protocol.js';
import { GARBAGE_CHECKS_PER_CALL, Registry } from '../../master/registry/index.js';
import { mulberry32 } from '../helpers/rng.js';

const DEAD = 10_000;
const CHUNK = 1000;

function setup(): { reg: Registry; clock: { now: number } } {
  const clock = { now: 1_000_000 };
  return { reg: new Registry(DEAD, () => clock.now, () => Math.random()), clock };
}

const stats = { capacityBytes: 100 * CHUNK, freeBytes: 50 * CHUNK, usedBytes: 50 * CHUNK, activeWrites: 0, activeReads: 0, copyRateBytesPerSec: 0 };
const chunk = (handle: number, version = 1): ReportedChunk => ({ handle, version, length: 10 });
const reg = (id: string, chunks: ReportedChunk[] = [], over: Partial<RegisterRequest> = {}): RegisterRequest => ({
  id, addr: `${id}.local:7000`, ...stats, chunks, ...over,
});
const hb = (id: string, over: Partial<HeartbeatRequest> = {}): HeartbeatRequest => ({
  id, addr: `${id}.local:7000`, ...stats, added: [], removed: [], copyFailed: [], ...over,
});
const ids = (rs: { id: string }[]) => rs.map((r) => r.id);

t.test('liveness follows heartbeat age', async (t) => {
  const { reg: r, clock } = setup();
  t.notOk(r.isAlive('s1'), 'an unknown server is not alive');
  r.register(reg('s1'));
  r.register(reg('s2'));
  t.ok(r.isAlive('s1'));
  t.equal(r.liveCount(), 2);
  clock.now += DEAD - 1;
  t.ok(r.heartbeat(hb('s2')), 's2 heartbeats');
  clock.now += 1; // s1 silent for exactly DEAD
  t.ok(r.isAlive('s1'), 'silent for exactly the timeout: still alive');
  clock.now += 1;
  t.notOk(r.isAlive('s1'), 'silent longer than the timeout: dead');
  t.ok(r.isAlive('s2'), 'the server that heartbeat is alive');
  t.equal(r.liveCount(), 1);
  const list = r.list();
  t.same(list.map((s) => [s.id, s.alive, s.lastHeartbeatAgoMs]), [['s1', false, DEAD + 1], ['s2', true, 2]]);
  t.ok(r.heartbeat(hb('s1')), 'a dead but known server may heartbeat again');
  t.ok(r.isAlive('s1'), 'and is alive again');
  t.equal(r.liveCount(), 2);
});

t.test('heartbeats from unknown servers or a changed address are refused (re-register)', async (t) => {
  const { reg: r, clock } = setup();
  t.equal(r.heartbeat(hb('ghost')), false);
  t.same(r.list(), [], 'an unknown heartbeat registers nothing');
  r.register(reg('s1', [chunk(1)]));
  clock.now += DEAD;
  t.equal(r.heartbeat(hb('s1', { addr: 'elsewhere:7000', added: [chunk(2)] })), false);
  clock.now += 1;
  t.notOk(r.isAlive('s1'), 'a refused heartbeat does not count as one');
  t.same(r.liveReplicas(2, 1), [], 'nor are its chunks recorded');
  t.equal(r.addrOf('s1'), 's1.local:7000');
});

t.test('register and heartbeat stats show in list()', async (t) => {
  const { reg: r, clock } = setup();
  r.register(reg('b', [chunk(1), chunk(2)], { capacityBytes: 9, freeBytes: 8, usedBytes: 1, activeWrites: 2, activeReads: 3 }));
  r.register({ ...reg('a'), rack: 'r2' });
  clock.now += 5;
  t.same(r.list(), [
    { id: 'a', addr: 'a.local:7000', alive: true, suspect: false, capacityBytes: stats.capacityBytes, freeBytes: stats.freeBytes, usedBytes: stats.usedBytes, activeWrites: 0, activeReads: 0, chunkCount: 0, lastHeartbeatAgoMs: 5, rack: 'r2' },
    { id: 'b', addr: 'b.local:7000', alive: true, suspect: false, capacityBytes: 9, freeBytes: 8, usedBytes: 1, chunkCount: 2, activeWrites: 2, activeReads: 3, lastHeartbeatAgoMs: 5, rack: 'default' },
  ], 'sorted by id; a server that names no rack is in the default one');
  r.heartbeat(hb('b', { freeBytes: 7, usedBytes: 2, activeWrites: 0, activeReads: 1, added: [chunk(3)], removed: [1] }));
  t.match(r.list()[1], { id: 'b', freeBytes: 7, usedBytes: 2, activeWrites: 0, activeReads: 1, chunkCount: 2, lastHeartbeatAgoMs: 0 });
  t.equal(r.addrOf('b'), 'b.local:7000');
  t.equal(r.addrOf('nope'), undefined);
});

t.test('locations come from the registration report and heartbeat deltas', async (t) => {
  const { reg: r } = setup();
  r.register(reg('s2', [chunk(1), chunk(2)]));
  r.register(reg('s1', [chunk(1)]));
  t.same(r.liveReplicas(1, 1), [{ id: 's1', addr: 's1.local:7000' }, { id: 's2', addr: 's2.local:7000' }], 'sorted by id');
  t.same(ids(r.liveReplicas(2, 1)), ['s2']);
  t.same(r.liveReplicas(3, 1), [], 'nobody has 3');
  r.heartbeat(hb('s1', { added: [chunk(3), chunk(2)] }));
  t.same(ids(r.liveReplicas(3, 1)), ['s1']);
  t.same(ids(r.liveReplicas(2, 1)), ['s1', 's2']);
  r.heartbeat(hb('s2', { removed: [1, 2, 99] }));
  t.same(ids(r.liveReplicas(1, 1)), ['s1']);
  t.same(ids(r.liveReplicas(2, 1)), ['s1']);
  t.equal(r.list().find((s) => s.id === 's2')!.chunkCount, 0);
  r.heartbeat(hb('s1', { removed: [1] }));
  t.same(r.liveReplicas(1, 1), [], 'last replica gone');
});

t.test('version filtering: a replica older than the version asked for is stale; a later one (an append under way) counts', async (t) => {
  const { reg: r } = setup();
  r.register(reg('old', [chunk(5, 1)]));
  r.register(reg('new', [chunk(5, 2)]));
  t.same(ids(r.liveReplicas(5, 1)), ['new', 'old'], 'version 2 begins with version 1\'s bytes (appends only add)');
  t.same(ids(r.liveReplicas(5, 2)), ['new'], 'the replica at version 1 missed the append: stale');
  t.same(r.liveReplicas(5, 3), []);
  t.same(r.holders(5, 2), ['new']);
  r.heartbeat(hb('old', { added: [chunk(5, 2)] })); // it caught up
  t.same(ids(r.liveReplicas(5, 2)), ['new', 'old']);
  t.same(r.liveReplicas(5, 3), [], 'nothing is listed for a version no replica has reached');
});

t.test('dead servers’ replicas do not count, and count again when they come back', async (t) => {
  const { reg: r, clock } = setup();
  r.register(reg('s1', [chunk(1)]));
  r.register(reg('s2', [chunk(1)]));
  clock.now += DEAD;
  r.heartbeat(hb('s2'));
  clock.now += 1;
  t.same(ids(r.liveReplicas(1, 1)), ['s2']);
  r.heartbeat(hb('s1'));
  t.same(ids(r.liveReplicas(1, 1)), ['s1', 's2'], 'locations were kept while it was dead');
});

t.test('addKnownReplica and removeReplica', async (t) => {
  const { reg: r } = setup();
  r.register(reg('s1'));
  r.addKnownReplica('s1', 7, 1);
  t.same(ids(r.liveReplicas(7, 1)), ['s1']);
  t.equal(r.list()[0]!.chunkCount, 1);
  r.addKnownReplica('ghost', 7, 1);
  t.same(ids(r.liveReplicas(7, 1)), ['s1'], 'an unknown server is ignored');
  t.same(r.list().map((s) => s.id), ['s1'], 'and not created');
  r.removeReplica('s1', 7);
  t.same(r.liveReplicas(7, 1), []);
  t.equal(r.list()[0]!.chunkCount, 0);
  r.removeReplica('s1', 7); // again: a no-op
  r.removeReplica('ghost', 8);
  t.same(r.liveReplicas(7, 1), []);
});

t.test('re-registering replaces the server’s whole chunk report', async (t) => {
  const { reg: r } = setup();
  r.register(reg('s1', [chunk(1), chunk(2)]));
  r.register(reg('s2', [chunk(2)]));
  r.register(reg('s1', [chunk(3)])); // restarted with a different disk content
  t.same(r.liveReplicas(1, 1), [], 'a chunk it no longer reports is forgotten');
  t.same(ids(r.liveReplicas(2, 1)), ['s2'], 'other servers’ replicas untouched');
  t.same(ids(r.liveReplicas(3, 1)), ['s1']);
  t.equal(r.list().length, 2);
  t.same(r.takeGarbage('s1', () => undefined, 0, 100), [3]);
});

t.test('an address claimed by a new id replaces the old server', async (t) => {
  const { reg: r } = setup();
  r.register(reg('old', [chunk(1), chunk(2)], { addr: 'host:7000' }));
  r.register(reg('other', [chunk(2)], { addr: 'host:7001' }));
  r.register(reg('new', [chunk(9)], { addr: 'host:7000' }));
  t.same(r.list().map((s) => s.id), ['new', 'other']);
  t.notOk(r.isAlive('old'));
  t.same(r.liveReplicas(1, 1), [], 'the wiped server’s replicas are gone');
  t.same(ids(r.liveReplicas(2, 1)), ['other']);
  t.same(ids(r.liveReplicas(9, 1)), ['new']);
  t.same([...r.handlesOn('new')], [9], 'the new server holds nothing of the old one’s');
  t.same([...r.handlesOn('old')], []);
  t.equal(r.heartbeat(hb('old', { addr: 'host:7000' })), false, 'the old id must register again');
  t.same(r.takeGarbage('old', () => undefined, 0, 100), []);
});

t.test('takeGarbage: unreferenced replicas, after the grace period, at most limit at a time', async (t) => {
  const { reg: r, clock } = setup();
  r.register(reg('s1', [chunk(1), chunk(2), chunk(3), chunk(4)]));
  const known = new Map([[2, 1], [4, 1]]);
  const versionOf = (h: number) => known.get(h);
  t.same(r.takeGarbage('s1', versionOf, 5000, 100), [], 'first seen: the grace period starts');
  clock.now += 4999;
  t.same(r.takeGarbage('s1', versionOf, 5000, 100), [], 'not yet');
  clock.now += 1;
  t.same(r.takeGarbage('s1', versionOf, 5000, 1), [1], 'after the grace period, within the limit');
  t.same(r.takeGarbage('s1', versionOf, 5000, 100), [3], 'the rest on the next call');
  t.same(r.takeGarbage('s1', versionOf, 5000, 100), [], 'returned replicas are forgotten');
  t.same(ids(r.liveReplicas(2, 1)), ['s1'], 'referenced replicas stay');
  t.same(r.takeGarbage('nobody', versionOf, 0, 100), []);
  t.same(r.takeGarbage('s1', () => undefined, 0, 0), [], 'a limit of 0 takes nothing');
});

t.test('takeGarbage sweeps a large server over several calls, looking at a bounded number of replicas each time', async (t) => {
  const { reg: r, clock } = setup();
  const N = 3 * GARBAGE_CHECKS_PER_CALL + 1234;
  r.register(reg('s1', Array.from({ length: N }, (_, i) => chunk(i + 1))));
  // Every 7th chunk is unreferenced, and chunk 5 is referenced again later on.
  const referenced = new Set(Array.from({ length: N }, (_, i) => i + 1).filter((h) => h % 7 !== 0));
  let looked = 0;
  const versionOf = (h: number) => {
    looked++;
    return referenced.has(h) ? 1 : undefined;
  };
  const GRACE = 5000;
  const calls = (): number[][] => {
    // One sweep: calls until the cursor comes back to the start (a call that looks at fewer than the maximum).
    const out: number[][] = [];
    for (;;) {
      if (out.length === 20) {
        t.fail('a sweep did not come back to the start within 20 calls');
        return out;
      }
      looked = 0;
      out.push(r.takeGarbage('s1', versionOf, GRACE, 1_000_000));
      if (looked > GARBAGE_CHECKS_PER_CALL) t.fail(`a call looked at ${looked} replicas`);
      if (looked < GARBAGE_CHECKS_PER_CALL) return out;
    }
  };
  const first = calls();
  t.equal(first.length, 4, 'one sweep of the server takes 4 calls');
  t.same(first.flat(), [], 'first seen: the grace period starts for every garbage replica');
  referenced.add(7); // chunk 7 is referenced again before its grace period ends
  clock.now += GRACE - 1;
  t.same(calls().flat(), [], 'a sweep later, still within the grace period: nothing');
  clock.now += 1;
  const taken = calls().flat().sort((a, b) => a - b);
  const garbage = Array.from({ length: N }, (_, i) => i + 1).filter((h) => h % 7 === 0 && h !== 7);
  t.same(taken, garbage, 'after it, every garbage replica once, and not the one referenced again');
  t.same(calls().flat(), [], 'taken replicas are forgotten');
  t.equal([...r.handlesOn('s1')].length, N - garbage.length, 'and no longer counted on the server');

  // Chunk 7 becomes garbage again: its grace period starts over, not from when it was first seen.
  referenced.delete(7);
  t.same(calls().flat(), [], 'garbage again: a new grace period');
  clock.now += GRACE;
  t.same(calls().flat(), [7]);
});

t.test('takeGarbage: a replica referenced again before the grace period ends is kept', async (t) => {
  const { reg: r, clock } = setup();
  r.register(reg('s1', [chunk(7)]));
  const known = new Map<number, number>();
  t.same(r.takeGarbage('s1', (h) => known.get(h), 1000, 100), []);
  known.set(7, 1); // e.g. the write that owns it was not yet visible to a lagging leader
  clock.now += 2000;
  t.same(r.takeGarbage('s1', (h) => known.get(h), 1000, 100), [], 'referenced now: kept');
  known.delete(7);
  t.same(r.takeGarbage('s1', (h) => known.get(h), 1000, 100), [], 'garbage again: the grace period starts over');
  clock.now += 1000;
  t.same(r.takeGarbage('s1', (h) => known.get(h), 1000, 100), [7]);
});

t.test('takeGarbage: stale replicas (an older version than the chunk table) are garbage; newer ones are not', async (t) => {
  const { reg: r } = setup();
  r.register(reg('s1', [chunk(1, 1), chunk(2, 3), chunk(3, 2)]));
  const versionOf = () => 2;
  t.same(r.takeGarbage('s1', versionOf, 0, 100), [1], 'only the version-1 replica');
  t.same(r.liveReplicas(1, 2), [], 'a stale replica is never a live one');
});

t.test('corrupt reports: the replica is dropped, the report kept until cleared', async (t) => {
  const { reg: r } = setup();
  r.register(reg('s1', [chunk(5)]));
  r.register(reg('s2', [chunk(5)]));
  r.markCorrupt('s1', 5);
  t.same(ids(r.liveReplicas(5, 1)), ['s2'], 'the corrupt replica no longer counts');
  t.equal(r.corruptReports(5), 1);
  r.markCorrupt('s1', 5);
  t.equal(r.corruptReports(5), 1, 'one report per server');
  t.same(r.corruptHandles(), [5]);
  r.clearCorrupt(5);
  t.equal(r.corruptReports(5), 0);
  t.same(r.corruptHandles(), []);
});

t.test('resolve: a server by id or by address', async (t) => {
  const { reg: r } = setup();
  r.register(reg('s1'));
  t.equal(r.resolve('s1'), 's1');
  t.equal(r.resolve('s1.local:7000'), 's1');
  t.equal(r.resolve('s9'), undefined);
  t.equal(r.resolve('s9.local:7000'), undefined);
});

t.test('place: live, not excluded, with room; counts pending allocations until the next heartbeat', async (t) => {
  const { reg: r, clock } = setup();
  r.register(reg('a', [], { freeBytes: 2 * CHUNK }));
  r.register(reg('b', [], { freeBytes: 50 * CHUNK }));
  r.register(reg('dead', [], { freeBytes: 90 * CHUNK }));
  clock.now += DEAD;
  r.heartbeat(hb('a', { freeBytes: 2 * CHUNK }));
  r.heartbeat(hb('b', { freeBytes: 50 * CHUNK }));
  clock.now += 1; // 'dead' is now dead
  t.same(r.place(3, [], CHUNK).map((x) => x.id).sort(), ['a', 'b'], 'the dead server is never chosen');
  t.same(r.place(3, ['b'], CHUNK), [{ id: 'a', addr: 'a.local:7000' }], 'exclusions are honoured');
  t.same(ids(r.place(3, [], CHUNK)), ['b'], 'a has no room left once its two pending allocations are counted');
  t.same(r.place(1, ['b'], CHUNK), [], 'nothing left outside b');
  r.heartbeat(hb('a', { freeBytes: 2 * CHUNK })); // still 2 chunks free: the writes never happened
  t.same(ids(r.place(1, ['b'], CHUNK)), ['a'], 'a heartbeat resets pending allocations');
  t.same(r.place(0, [], CHUNK), []);
  t.equal(r.liveCount(), 2);
});

t.test('clear forgets every server and location', async (t) => {
  const { reg: r } = setup();
  r.register(reg('s1', [chunk(1)]));
  r.clear();
  t.same(r.list(), []);
  t.same(r.liveReplicas(1, 1), []);
  t.equal(r.liveCount(), 0);
  t.equal(r.heartbeat(hb('s1')), false, 'must register again');
});

t.test('chunks with more replicas than a block holds, and blocks given back and taken again', async (t) => {
  const { reg: r } = setup();
  const many = ['s1', 's2', 's3', 's4', 's5', 's6', 's7'];
  for (const id of many) r.register(reg(id, [chunk(1), chunk(2, 2)]));
  t.same(ids(r.liveReplicas(1, 1)), many, 'seven replicas, over three blocks');
  t.same(r.holders(2, 2), many, 'in the order they were reported');
  for (const id of ['s1', 's4', 's7']) r.removeReplica(id, 1);
  t.same(ids(r.liveReplicas(1, 1)), ['s2', 's3', 's5', 's6'], 'removed from the front, middle and end');
  t.equal(r.versionOn('s1', 1), undefined);
  t.equal(r.versionOn('s6', 1), 1);
  t.same(ids(r.liveReplicas(2, 2)), many, 'the other chunk is untouched');
  r.register(reg('s8', [chunk(3), chunk(1, 4)]));
  t.same(ids(r.liveReplicas(3, 1)), ['s8'], 'a new chunk may take a block given back');
  t.same(r.holders(1, 4), ['s8']);
  for (const id of many) r.removeReplica(id, 1);
  r.removeReplica('s8', 1);
  t.notOk(r.hasAnyReplica(1), 'all gone: the chunk is forgotten');
  t.ok(r.hasAnyReplica(2));
  t.same(r.list().map((s) => s.chunkCount), [1, 1, 1, 1, 1, 1, 1, 1], 'chunk 2 on s1-s7, chunk 3 on s8');
  r.heartbeat(hb('s1', { added: [chunk(1, 5)] }));
  t.same(ids(r.liveReplicas(1, 5)), ['s1'], 'and can come back');
});

t.test('a reported version beyond 32 bits counts as newer than any, never as a current one', async (t) => {
  const { reg: r } = setup();
  r.register(reg('s1', [chunk(1, 2 ** 40)]));
  t.same(r.liveReplicas(1, 1), []);
  t.same(r.takeGarbage('s1', () => 1, 0, 100), [], 'not garbage: newer than the chunk table');
});

t.test('locations agree with a plain model through a random history of reports', async (t) => {
  const rand = mulberry32(7);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
  const { reg: r } = setup();
  const servers = ['a', 'b', 'c', 'd', 'e', 'f'];
  const handles = Array.from({ length: 40 }, (_, i) => i + 1);
  /** server → handle → version, as the registry should see it. */
  const model = new Map<string, Map<number, number>>();
  let problems = 0;
  for (let step = 0; step < 4000; step++) {
    const id = pick(servers);
    const roll = rand();
    if (roll < 0.03 || !model.has(id)) {
      const chunks = handles.filter(() => rand() < 0.3).map((h) => chunk(h, 1 + Math.floor(rand() * 2)));
      r.register(reg(id, chunks));
      model.set(id, new Map(chunks.map((c) => [c.handle, c.version])));
    } else if (roll < 0.6) {
      const c = chunk(pick(handles), 1 + Math.floor(rand() * 2));
      r.heartbeat(hb(id, { added: [c] }));
      model.get(id)!.set(c.handle, c.version);
    } else {
      const h = pick(handles);
      r.removeReplica(id, h);
      model.get(id)!.delete(h);
    }
    for (const h of handles) {
      for (const version of [1, 2]) {
        const want = [...model].filter(([, held]) => (held.get(h) ?? 0) >= version).map(([s]) => s).sort();
        if (JSON.stringify(ids(r.liveReplicas(h, version))) !== JSON.stringify(want)) problems++;
        if (JSON.stringify([...r.holders(h, version)].sort()) !== JSON.stringify(want)) problems++;
      }
      if (r.hasAnyReplica(h) !== [...model.values()].some((held) => held.has(h))) problems++;
    }
    for (const [s, held] of model) {
      if (JSON.stringify([...r.handlesOn(s)].sort((x, y) => x - y)) !== JSON.stringify([...held.keys()].sort((x, y) => x - y))) problems++;
      if (r.list().find((e) => e.id === s)!.chunkCount !== held.size) problems++;
    }
  }
  t.equal(problems, 0, 'liveReplicas, holders, hasAnyReplica, handlesOn and chunk counts match the model at every step');
  let replicas = 0;
  r.forEachReplica((h, s, v) => {
    if (model.get(s)?.get(h) === v) replicas++;
  });
  t.equal(replicas, [...model.values()].reduce((n, held) => n + held.size, 0), 'forEachReplica visits each replica once');
});

t.test('takeGarbage never takes a handle this namespace never issued (another cluster\'s, or a master that lost its data)', async (t) => {
  const { reg: r } = setup();
  r.register(reg('s1', [chunk(1), chunk(5), chunk(9)]));
  t.same(r.takeGarbage('s1', () => undefined, 0, 100, 6), [1, 5], 'below the next handle: garbage; from it on: not this master\'s to judge');
  t.same(r.takeGarbage('s1', () => undefined, 0, 100, 6), [], 'handle 9 stays, call after call');
});
