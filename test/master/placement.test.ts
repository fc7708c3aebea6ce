// Placement: which servers get a new chunk's replicas, and in which order a reader tries replicas.
import t from 'tap';
import { chooseReplicas, type Candidate } from '../../master/placement.js';

const MB = 1 << 20;
const CHUNK = 64 * MB;

const cand = (id: string, over: Partial<Candidate> = {}): Candidate => ({
  id, capacityBytes: 100 * CHUNK, freeBytes: 50 * CHUNK, activeWrites: 0, pendingAllocations: 0, ...over,
});
const noJitter = () => 0;
/** A random() that answers the given values in turn (one call per eligible candidate). */
const seq = (...values: number[]) => {
  let i = 0;
  return () => values[i++ % values.length]!;
};

t.test('chooseReplicas: count and distinctness', async (t) => {
  const cs = ['a', 'b', 'c', 'd', 'e'].map((id) => cand(id));
  t.same(chooseReplicas(cs, 0, CHUNK, noJitter), []);
  const three = chooseReplicas(cs, 3, CHUNK, noJitter);
  t.equal(three.length, 3);
  t.equal(new Set(three).size, 3, 'distinct');
  t.ok(three.every((id) => cs.some((c) => c.id === id)), 'only candidates');
  t.same(chooseReplicas(cs.slice(0, 2), 3, CHUNK, noJitter).sort(), ['a', 'b'], 'fewer than asked when fewer exist');
  t.same(chooseReplicas([], 3, CHUNK, noJitter), []);
  // With the real Math.random the answer is still a valid choice.
  for (let i = 0; i < 50; i++) {
    const ids = chooseReplicas(cs, 3, CHUNK, Math.random);
    t.equal(new Set(ids).size, 3);
    if (ids.length !== 3) break;
  }
});

t.test('chooseReplicas: equal candidates tie-break by id; the input is not reordered', async (t) => {
  const cs = ['d', 'b', 'e', 'a', 'c'].map((id) => cand(id));
  const copy = structuredClone(cs);
  t.same(chooseReplicas(cs, 5, CHUNK, noJitter), ['a', 'b', 'c', 'd', 'e']);
  t.same(cs, copy, 'candidates untouched');
});

t.test('chooseReplicas: a server needs room for a whole chunk beyond its pending allocations', async (t) => {
  const cs = [
    cand('exact', { freeBytes: CHUNK }),
    cand('short', { freeBytes: CHUNK - 1 }),
    cand('empty', { freeBytes: 0 }),
    cand('pending', { freeBytes: 3 * CHUNK, pendingAllocations: 3 }), // 0 left after pending
    cand('pending-ok', { freeBytes: 3 * CHUNK, pendingAllocations: 2 }), // exactly 1 left
  ];
  t.same(chooseReplicas(cs, 5, CHUNK, noJitter).sort(), ['exact', 'pending-ok']);
  t.same(chooseReplicas([cand('x', { freeBytes: 10 })], 1, 11, noJitter), [], 'chunk size is what counts');
  t.same(chooseReplicas([cand('x', { freeBytes: 11 })], 1, 11, noJitter), ['x']);
});

t.test('chooseReplicas: prefers the larger free fraction, not the larger free byte count', async (t) => {
  const small = cand('small', { capacityBytes: 100 * CHUNK, freeBytes: 60 * CHUNK }); // 60 %
  const big = cand('big', { capacityBytes: 1000 * CHUNK, freeBytes: 400 * CHUNK }); // 40 %, but more bytes
  t.same(chooseReplicas([big, small], 1, CHUNK, noJitter), ['small']);
  t.same(chooseReplicas([big, small], 2, CHUNK, noJitter), ['small', 'big'], 'best first');
});

t.test('chooseReplicas: load counts against a server (5 % of free fraction per write)', async (t) => {
  const busy = cand('busy', { freeBytes: 60 * CHUNK, activeWrites: 3 }); // 0.60 - 0.15 = 0.45
  const idle = cand('idle', { freeBytes: 50 * CHUNK }); // 0.50
  t.same(chooseReplicas([busy, idle], 2, CHUNK, noJitter), ['idle', 'busy']);
  const lessBusy = cand('busy', { freeBytes: 60 * CHUNK, activeWrites: 1 }); // 0.55
  t.same(chooseReplicas([lessBusy, idle], 2, CHUNK, noJitter), ['busy', 'idle']);
  // Pending allocations count both as load and as space already spoken for.
  const pending = cand('pending', { freeBytes: 62 * CHUNK, pendingAllocations: 2 }); // (60/100) - 0.10 = 0.50
  const plain = cand('plain', { freeBytes: 51 * CHUNK }); // 0.51
  t.same(chooseReplicas([pending, plain], 2, CHUNK, noJitter), ['plain', 'pending']);
});

t.test('chooseReplicas: zero capacity scores as full, not NaN', async (t) => {
  const odd = cand('odd', { capacityBytes: 0, freeBytes: 10 * CHUNK });
  const ok1 = cand('ok1', { freeBytes: 1 * CHUNK });
  const ok2 = cand('ok2', { freeBytes: 2 * CHUNK });
  t.same(chooseReplicas([odd, ok1, ok2], 3, CHUNK, noJitter), ['ok2', 'ok1', 'odd']);
  t.same(chooseReplicas([ok1, odd, ok2], 3, CHUNK, noJitter), ['ok2', 'ok1', 'odd'], 'whatever the input order');
});

t.test('chooseReplicas: the jitter spreads near-equal servers but never beats a 2 % difference', async (t) => {
  const a = cand('a', { freeBytes: 50 * CHUNK }); // 0.50
  const b = cand('b', { freeBytes: 49 * CHUNK }); // 0.49
  t.same(chooseReplicas([a, b], 1, CHUNK, seq(0, 0)), ['a'], 'no jitter: the better one');
  t.same(chooseReplicas([a, b], 1, CHUNK, seq(0, 0.99)), ['b'], 'jitter can lift a server within 1 %');
  const c = cand('c', { freeBytes: 48 * CHUNK }); // 0.48: 2 % behind a
  t.same(chooseReplicas([a, c], 1, CHUNK, seq(0, 0.999999)), ['a'], 'a 2 % gap survives the largest jitter');
  // Over many draws both near-equal servers get picked first.
  const firsts = new Set<string>();
  const rnd = seq(0.1, 0.9, 0.8, 0.2, 0.5, 0.5);
  for (let i = 0; i < 6; i++) firsts.add(chooseReplicas([cand('x'), cand('y')], 1, CHUNK, rnd)[0]!);
  t.same([...firsts].sort(), ['x', 'y']);
});

t.test('chooseReplicas with racks: at most floor((r-1)/racks)+1 in one rack, so two racks at least', async (t) => {
  // Rack a's servers are emptier: without the rule all three replicas would go there.
  const cs = [
    cand('a1', { rack: 'a', freeBytes: 90 * CHUNK }), cand('a2', { rack: 'a', freeBytes: 89 * CHUNK }), cand('a3', { rack: 'a', freeBytes: 88 * CHUNK }),
    cand('b1', { rack: 'b', freeBytes: 20 * CHUNK }), cand('b2', { rack: 'b', freeBytes: 10 * CHUNK }),
  ];
  t.same(chooseReplicas(cs, 3, CHUNK, noJitter), ['a1', 'a2', 'b1'], 'r=3, two racks: 2 + 1, best servers within the share');
  t.same(chooseReplicas(cs, 2, CHUNK, noJitter), ['a1', 'b1'], 'r=2: one per rack');
  const three = [...cs, cand('c1', { rack: 'c', freeBytes: 5 * CHUNK })];
  t.same(chooseReplicas(three, 3, CHUNK, noJitter), ['a1', 'b1', 'c1'], 'three racks: one each');
  t.same(chooseReplicas(cs.map((c) => ({ ...c, rack: undefined })), 3, CHUNK, noJitter), ['a1', 'a2', 'a3'], 'no racks named: one default rack, placed by space alone');
});

t.test('chooseReplicas: the writer\'s rack gets the first replica (the pipeline\'s head)', async (t) => {
  const cs = [cand('a1', { rack: 'a', freeBytes: 90 * CHUNK }), cand('a2', { rack: 'a', freeBytes: 80 * CHUNK }), cand('b1', { rack: 'b', freeBytes: 10 * CHUNK }), cand('b2', { rack: 'b', freeBytes: 9 * CHUNK })];
  t.same(chooseReplicas(cs, 3, CHUNK, noJitter, { writerRack: 'b' }), ['b1', 'a1', 'a2'], 'b first, then the best within shares');
  t.same(chooseReplicas(cs, 3, CHUNK, noJitter, { writerRack: 'nowhere' }), ['a1', 'a2', 'b1'], 'an unknown rack changes nothing');
  const bFull = cs.map((c) => (c.rack === 'b' ? { ...c, freeBytes: 0 } : c));
  t.same(chooseReplicas(bFull, 2, CHUNK, noJitter, { writerRack: 'b' }), ['a1', 'a2'], 'the writer\'s rack full: elsewhere, and the rule gives way to the replicas');
});

t.test('chooseReplicas: repair counts the replicas that stay; strict never breaks the share', async (t) => {
  const cs = [cand('a3', { rack: 'a', freeBytes: 90 * CHUNK }), cand('b2', { rack: 'b', freeBytes: 10 * CHUNK })];
  t.same(chooseReplicas(cs, 1, CHUNK, noJitter, { holderRacks: ['a', 'a'], replication: 3 }), ['b2'], 'two stay in rack a: the third goes to b');
  t.same(chooseReplicas(cs, 1, CHUNK, noJitter, { holderRacks: ['a', 'b'], replication: 3 }), ['a3'], 'a and b hold one each: the best server');
  const onlyA = [cand('a3', { rack: 'a' }), cand('a4', { rack: 'a' })];
  t.same(chooseReplicas(onlyA, 1, CHUNK, noJitter, { holderRacks: ['a', 'b'], replication: 2 }), ['a3'], 'rack b has no room: a copy still goes somewhere');
  t.same(chooseReplicas(onlyA, 1, CHUNK, noJitter, { holderRacks: ['a', 'b'], replication: 2, strict: true }), [], 'strict: none rather than a pointless move');
});
