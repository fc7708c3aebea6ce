// The rack rule (master/racks.ts) as pure functions, then as repair applies it: a real Registry
// and MasterState, servers registered in racks, and the copies and deletes a scan plans.
import t from 'tap';
import { localFirst, parseRack, rackFromEnv } from '../../common/racks.js';
import type { RegisterRequest } from '../../common/protocol.js';
import type { Command } from '../../master/commands.js';
import { inFullestRacks, isMisplaced, maxPerRack, moveKeepsRule, planRackFixes, ToleranceCounter, type RackFixContext } from '../../master/racks.js';
import { Registry } from '../../master/registry/index.js';
import { REPAIR_DEFAULTS, RepairScheduler } from '../../master/repair/index.js';
import { MasterState } from '../../master/state/index.js';

const sizes = (o: Record<string, number>) => new Map(Object.entries(o));

t.test('maxPerRack: floor((r - 1) / racks) + 1, and r itself with one rack', async (t) => {
  t.equal(maxPerRack(3, 1), 3, 'one rack: no limit below r');
  t.equal(maxPerRack(3, 2), 2, 'r=3 over 2 racks: 2 + 1');
  t.equal(maxPerRack(3, 3), 1, 'r=3 over 3 racks: one each');
  t.equal(maxPerRack(2, 2), 1);
  t.equal(maxPerRack(2, 5), 1);
  t.equal(maxPerRack(1, 3), 1, 'a single replica goes anywhere');
  t.equal(maxPerRack(5, 2), 3);
  t.equal(maxPerRack(10, 3), 4);
  for (let r = 2; r <= 16; r++) for (let racks = 2; racks <= 8; racks++) {
    if (maxPerRack(r, racks) >= r) t.fail(`r=${r}, racks=${racks}: the share must leave a replica for another rack`);
  }
});

t.test('isMisplaced: too many in one rack while another rack has a server to spare', async (t) => {
  const two = sizes({ a: 3, b: 3 });
  t.equal(isMisplaced(['a', 'a', 'b'], 3, two), false, '2 + 1 over two racks keeps the rule');
  t.equal(isMisplaced(['a', 'a', 'a'], 3, two), true, 'all three in one rack');
  t.equal(isMisplaced(['a', 'a'], 2, two), true, 'r=2: one per rack');
  t.equal(isMisplaced(['a', 'b'], 2, two), false);
  t.equal(isMisplaced(['a', 'a', 'b'], 3, sizes({ a: 3, b: 3, c: 1 })), true, 'three racks: one each, and rack c has a server');
  t.equal(isMisplaced(['a', 'b', 'c'], 3, sizes({ a: 3, b: 3, c: 1 })), false);
  t.equal(isMisplaced(['a', 'a', 'a'], 3, sizes({ a: 6 })), false, 'one rack: nothing to spread over');
  t.equal(isMisplaced(['a'], 1, two), false, 'a single replica is never misplaced');
  t.equal(isMisplaced(['a', 'a', 'b', 'b'], 4, sizes({ a: 2, b: 2, c: 0 })), false, 'a rack without live servers does not count');
  // r=3 over racks of 5 and 1: the small rack takes one, so A,A,A is misplaced and A,A,B is not.
  t.equal(isMisplaced(['a', 'a', 'a'], 3, sizes({ a: 5, b: 1 })), true);
  t.equal(isMisplaced(['a', 'a', 'b'], 3, sizes({ a: 5, b: 1 })), false);
  // r=5 over racks of 5 and 1: share 3, but rack b can hold only one: 4 + 1 is the best there is.
  t.equal(isMisplaced(['a', 'a', 'a', 'a', 'b'], 5, sizes({ a: 5, b: 1 })), false, 'a rule no placement can meet is not misplaced');
});

t.test('inFullestRacks: trimming and moving take from the rack holding the most', async (t) => {
  const r = (id: string, rack: string) => ({ id, rack });
  t.same(inFullestRacks([r('1', 'a'), r('2', 'a'), r('3', 'b'), r('4', 'c')]).map((x) => x.id), ['1', '2']);
  t.same(inFullestRacks([r('1', 'a'), r('2', 'b'), r('3', 'c')]).map((x) => x.id), ['1', '2', '3'], 'one each: any');
  t.same(inFullestRacks([r('1', 'a'), r('2', 'b'), r('3', 'b'), r('4', 'a')]).map((x) => x.id), ['1', '2', '3', '4'], 'a tie: both racks');
  t.same(inFullestRacks([]), []);
});

t.test('moveKeepsRule: balancing within a rack always, across racks only if the result keeps the rule', async (t) => {
  const two = sizes({ a: 3, b: 3 });
  t.equal(moveKeepsRule(['a', 'a', 'b'], 'a', 'a', 3, two), true, 'same rack');
  t.equal(moveKeepsRule(['a', 'a', 'b'], 'a', 'b', 3, two), true, 'A,B,B is fine too');
  t.equal(moveKeepsRule(['a', 'b'], 'b', 'a', 2, two), false, 'r=2: would leave both in rack a');
  t.equal(moveKeepsRule(['a', 'b', 'c'], 'c', 'a', 3, sizes({ a: 1, b: 1, c: 1 })), false, 'three racks: would put two in a');
});

t.test('ToleranceCounter: servers = fewest live replicas - 1; a rack is safe unless some chunk lives only there', async (t) => {
  const empty = new ToleranceCounter();
  t.same(empty.result(['a', 'b']), { servers: null, racksSafe: ['a', 'b'], racksAtRisk: [] }, 'no data: nothing to lose');
  const spread = new ToleranceCounter();
  spread.add(['a', 'a', 'b']);
  spread.add(['b', 'a', 'c']);
  t.same(spread.result(['a', 'b', 'c']), { servers: 2, racksSafe: ['a', 'b', 'c'], racksAtRisk: [] });
  const risky = new ToleranceCounter();
  risky.add(['a', 'a', 'b']);
  risky.add(['a', 'a']);
  risky.add(['b']);
  risky.add(['b']);
  risky.add([]); // lost already: counted as missing elsewhere, not here
  t.same(risky.result(['b', 'a', 'c']), { servers: 0, racksSafe: ['c'], racksAtRisk: [{ rack: 'a', chunks: 1 }, { rack: 'b', chunks: 2 }] });
  const one = new ToleranceCounter();
  one.add(['default', 'default', 'default']);
  t.same(one.result(['default']), { servers: 2, racksSafe: [], racksAtRisk: [{ rack: 'default', chunks: 1 }] }, 'one rack: losing it loses everything');
});

t.test('planRackFixes: one move per chunk from the fullest rack to a rack below its share, within limits', async (t) => {
  const racks: Record<string, string> = { s1: 'a', s2: 'a', s3: 'a', s4: 'b', s5: 'b' };
  const holders: Record<number, string[]> = { 1: ['s1', 's2', 's3'], 2: ['s1', 's2'] };
  const orders: [number, string, string][] = [];
  let budget = 2;
  const ctx: RackFixContext = {
    replicas: (h) => (holders[h] ?? []).map((id) => ({ id, rack: racks[id]! })),
    canStart: () => budget > 0,
    free: (id) => id !== 's1',
    place: (c, staying, exclude) => {
      const inRack = (r: string) => staying.filter((s) => s.rack === r).length;
      return Object.keys(racks).find((id) => !exclude.includes(id) && inRack(racks[id]!) < maxPerRack(c.replication, 2));
    },
    order: (h, source, target) => {
      orders.push([h, source, target]);
      budget--;
    },
  };
  const n = planRackFixes([{ handle: 1, replication: 3, chunkSizeBytes: 4 }, { handle: 2, replication: 3, chunkSizeBytes: 4 }], ctx);
  t.equal(n, 1, 'chunk 2 is short of its replication: repair copies it first, by the rule');
  t.same(orders, [[1, 's2', 's4']], 'from a free server of rack a (s1 is busy) to rack b');
  budget = 0;
  t.equal(planRackFixes([{ handle: 1, replication: 3, chunkSizeBytes: 4 }], ctx), 0, 'no move once the limits are reached');
});

t.test('localFirst: a reader\'s own rack first, each group in the order given', async (t) => {
  const r = (id: string, rack?: string) => ({ id, rack });
  const replicas = [r('1', 'b'), r('2', 'a'), r('3', 'b'), r('4', 'a'), r('5')];
  t.same(localFirst(replicas, 'a').map((x) => x.id), ['2', '4', '1', '3', '5']);
  t.same(localFirst(replicas, undefined).map((x) => x.id), ['1', '2', '3', '4', '5'], 'no rack named: as given');
  t.same(localFirst(replicas, 'zzz').map((x) => x.id), ['1', '2', '3', '4', '5'], 'no replica there: as given');
});

t.test('rack names: letters, digits, . _ -; DFS_RACK', async (t) => {
  t.equal(parseRack('rack-1.a_b', '--rack'), 'rack-1.a_b');
  for (const bad of ['rack 1', '', 'a/b', 'x'.repeat(65), 7]) t.throws(() => parseRack(bad, '--rack'), { code: 'INVALID_ARGUMENT', message: /--rack must be a rack name/ }, JSON.stringify(bad));
  t.equal(rackFromEnv({}), undefined);
  t.equal(rackFromEnv({ DFS_RACK: '' }), undefined, 'empty: unset');
  t.equal(rackFromEnv({ DFS_RACK: 'r2' }), 'r2');
  t.throws(() => rackFromEnv({ DFS_RACK: 'r 2' }), { code: 'INVALID_ARGUMENT', message: /DFS_RACK must be a rack name/ });
});

// ---- repair with racks: a real registry, state and scheduler ----

const DEAD = 10_000;
const CHUNK = 4;
const CAPACITY = 1000 * CHUNK;

class RackCluster {
  readonly clock = { now: 1_000_000 };
  readonly registry = new Registry(DEAD, () => this.clock.now, () => 0.5);
  readonly state = new MasterState();
  readonly repair = new RepairScheduler(this.registry, { ...REPAIR_DEFAULTS, balanceThreshold: 0 }, () => this.clock.now);
  private seq = 0;

  register(id: string, rack: string, handles: number[] = []): void {
    const req: RegisterRequest = {
      id, addr: `${id}.local:7000`, capacityBytes: CAPACITY, freeBytes: CAPACITY / 2, usedBytes: CAPACITY / 2, activeWrites: 0, activeReads: 0,
      copyRateBytesPerSec: 0, rack, chunks: handles.map((handle) => ({ handle, version: 1, length: CHUNK })),
    };
    this.registry.register(req);
  }

  private apply(cmd: Command): unknown {
    const r = this.state.apply(cmd);
    if (!r.ok) throw new Error(`${cmd.op} failed: ${r.code}`);
    return r.value;
  }

  file(path: string, replication = 3): number {
    const writeId = `w${++this.seq}`;
    const nowMs = this.clock.now;
    this.apply({ op: 'create', path, overwrite: true, parents: true, replication, chunkSizeBytes: CHUNK, writeId, leaseMs: 3_600_000, nowMs });
    const { handle } = this.apply({ op: 'allocate', writeId, index: 0, nowMs }) as { handle: number };
    this.apply({ op: 'complete', writeId, length: CHUNK, chunks: [{ handle, length: CHUNK, checksum: `xxh-${handle}` }], nowMs });
    return handle;
  }

  scan() {
    return this.repair.scan(this.state);
  }

  /** Each server's copies (target, handle, source id) and deletes, as their heartbeats would collect them. */
  take(ids: string[]): { copies: [string, number, string][]; deletes: [string, number][] } {
    const copies: [string, number, string][] = [];
    const deletes: [string, number][] = [];
    for (const id of ids) {
      const w = this.repair.takeFor(id, Infinity, this.state);
      for (const o of w.copies) copies.push([id, o.handle, o.source.split('.')[0]!]);
      for (const h of w.deletes) deletes.push([id, h]);
    }
    return { copies, deletes };
  }

  rackOfEach(h: number): string[] {
    return this.registry.liveReplicas(h, 1).map((r) => this.registry.rackOf(r.id)).sort();
  }
}

t.test('placement through the registry: two racks get a chunk, the writer\'s rack first', async (t) => {
  const c = new RackCluster();
  for (const [id, rack] of [['a1', 'a'], ['a2', 'a'], ['a3', 'a'], ['b1', 'b'], ['b2', 'b']] as const) c.register(id, rack);
  for (let i = 0; i < 20; i++) {
    const placed = c.registry.place(3, [], CHUNK, { writerRack: i % 2 === 0 ? 'a' : 'b' });
    const racks = placed.map((p) => c.registry.rackOf(p.id));
    t.equal(new Set(racks).size, 2, 'both racks');
    t.ok(racks.filter((r) => r === 'a').length <= 2 && racks.filter((r) => r === 'b').length <= 2, 'at most 2 in one rack');
    t.equal(racks[0], i % 2 === 0 ? 'a' : 'b', 'the first replica (the pipeline\'s head) in the writer\'s rack');
  }
});

t.test('repair: a lost replica is copied where the rule holds; a misplaced chunk is moved (copy, then delete); surplus trimmed from the fullest rack', async (t) => {
  const c = new RackCluster();
  const lost = c.file('/lost');
  const misplaced = c.file('/misplaced');
  const surplus = c.file('/surplus');
  const all = ['a1', 'a2', 'a3', 'b1', 'b2'];
  // lost: a1, b1 (a3 died with it); misplaced: all three in rack a; surplus: a1, a2, b1, b2 (4 of 3).
  c.register('a1', 'a', [lost, misplaced, surplus]);
  c.register('a2', 'a', [misplaced, surplus]);
  c.register('a3', 'a', [misplaced]);
  c.register('b1', 'b', [lost, surplus]);
  c.register('b2', 'b', [surplus]);
  const scan = c.scan();
  t.equal(scan.underReplicated, 1);
  t.equal(scan.surplusDeletes, 1);
  t.equal(scan.moves, 1, 'one move for the misplaced chunk');
  const work = c.take(all);
  t.equal(work.copies.length, 2, 'two copies');
  const [toLost] = work.copies.filter(([, h]) => h === lost);
  t.ok(toLost && !['a1', 'b1'].includes(toLost[0]), 'the lost replica is copied to a server without it');
  const [move] = work.copies.filter(([, h]) => h === misplaced);
  t.equal(move && c.registry.rackOf(move[0]), 'b', 'the misplaced chunk is copied into rack b');
  t.equal(move && c.registry.rackOf(move[2]), 'a', 'from rack a');
  t.same(work.deletes.map(([server, h]) => [c.registry.rackOf(server), h]), [['a', surplus]], 'the surplus replica goes from rack a (2 there), not from b');
  // The copies arrive: the move's source replica in rack a is deleted on the next scan, not before.
  for (const [target, h] of work.copies) c.registry.addKnownReplica(target, h, 1);
  t.equal(c.registry.liveReplicas(misplaced, 1).length, 4, 'copy first: four replicas for a moment');
  c.scan();
  const after = c.take(all);
  t.same(after.deletes.map(([s, h]) => [c.registry.rackOf(s), h]), [['a', misplaced]], 'then one replica in rack a goes');
  t.same(c.rackOfEach(misplaced), ['a', 'a', 'b'], 'the chunk keeps the rule: 2 + 1');
  t.ok(c.rackOfEach(lost).includes('a') && c.rackOfEach(lost).includes('b'), 'the repaired chunk spans both racks');
  c.scan();
  t.same(c.take(all), { copies: [], deletes: [] }, 'settled: nothing more to do');
});
