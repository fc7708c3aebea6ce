// RepairScheduler: the leader's re-replication planner. Every test builds a real MasterState
// through apply() (create → allocate → complete) and a real Registry with an injected clock
// (servers register with chunk reports; heartbeats change liveness and report added/removed
// replicas), then checks which copies and deletes scan() queues and takeFor() hands out.
import t from 'tap';
import type { CopyOrder, HeartbeatRequest, RegisterRequest } from '../../common/protocol.js';
import type { Command } from '../../master/commands.js';
import { Registry } from '../../master/registry.js';
import { REPAIR_DEFAULTS, RepairScheduler, type RepairLimits } from '../../master/repair.js';
import { MasterState } from '../../master/state.js';

const DEAD = 10_000; // registry dead timeout (ms)
const CHUNK = 4; // bytes per chunk in these tests
const LAST = 3; // length of each file's last chunk (so a length taken from elsewhere shows)
const CAPACITY = 1000 * CHUNK;
const T0 = 1_000_000;

const checksumOf = (h: number): string => `xxh-${h}`;

interface Work { copies: CopyOrder[]; deletes: number[] }

/** A master's view of a small cluster: replicated state, registry and repair scheduler on one clock. */
class Cluster {
  readonly clock = { now: T0 };
  readonly registry = new Registry(DEAD, () => this.clock.now);
  readonly state = new MasterState();
  readonly repair: RepairScheduler;
  readonly limits: RepairLimits;
  private readonly free = new Map<string, number>();
  private seq = 0;

  /** Balancing is off unless a test turns it on: most tests leave servers uneven on purpose. */
  constructor(limits: Partial<RepairLimits> = {}) {
    this.limits = { ...REPAIR_DEFAULTS, balanceThreshold: 0, ...limits };
    this.repair = new RepairScheduler(this.registry, this.limits, () => this.clock.now);
  }

  static addr(id: string): string {
    return `${id}.local:7000`;
  }

  get ids(): string[] {
    return [...this.free.keys()].sort();
  }

  /** Registers (or re-registers) `id` with a full report of `handles`. */
  register(id: string, handles: number[] = [], opts: { freeBytes?: number; version?: number } = {}): void {
    const freeBytes = opts.freeBytes ?? this.free.get(id) ?? CAPACITY / 2;
    this.free.set(id, freeBytes);
    const req: RegisterRequest = {
      id, addr: Cluster.addr(id), capacityBytes: CAPACITY, freeBytes, usedBytes: CAPACITY - freeBytes, activeWrites: 0, activeReads: 0,
      chunks: handles.map((handle) => ({ handle, version: opts.version ?? 1, length: CHUNK })),
    };
    this.registry.register(req);
  }

  /** A heartbeat from `id` (the registry part only: work is collected with take()). */
  beat(id: string, opts: { added?: number[]; removed?: number[]; freeBytes?: number; version?: number } = {}): void {
    const freeBytes = opts.freeBytes ?? this.free.get(id)!;
    this.free.set(id, freeBytes);
    const req: HeartbeatRequest = {
      id, addr: Cluster.addr(id), capacityBytes: CAPACITY, freeBytes, usedBytes: CAPACITY - freeBytes, activeWrites: 0, activeReads: 0,
      added: (opts.added ?? []).map((handle) => ({ handle, version: opts.version ?? 1, length: CHUNK })),
      removed: opts.removed ?? [], copyFailed: [],
    };
    if (!this.registry.heartbeat(req)) throw new Error(`heartbeat from ${id} refused`);
  }

  /** Moves the clock on; the servers in `beating` heartbeat at the new time, the others stay silent. */
  advance(ms: number, beating: string[]): void {
    this.clock.now += ms;
    for (const id of beating) this.beat(id);
  }

  private apply(cmd: Command): unknown {
    const r = this.state.apply(cmd);
    if (!r.ok) throw new Error(`${cmd.op} failed: ${r.code}: ${r.message}`);
    return r.value;
  }

  /** Starts a write and allocates `chunks` chunks without completing it. */
  startWrite(path: string, chunks: number, replication = 3): { writeId: string; handles: number[] } {
    const writeId = `w${++this.seq}`;
    const nowMs = this.clock.now;
    this.apply({ op: 'create', path, overwrite: true, parents: true, replication, chunkSizeBytes: CHUNK, writeId, leaseMs: 3_600_000, nowMs });
    const handles: number[] = [];
    for (let i = 0; i < chunks; i++) handles.push((this.apply({ op: 'allocate', writeId, index: i, nowMs }) as { handle: number }).handle);
    return { writeId, handles };
  }

  completeWrite(writeId: string, handles: number[]): void {
    const chunks = handles.map((handle, i) => ({ handle, length: i === handles.length - 1 ? LAST : CHUNK, checksum: checksumOf(handle) }));
    this.apply({ op: 'complete', writeId, length: chunks.reduce((a, c) => a + c.length, 0), chunks, nowMs: this.clock.now });
  }

  /** A complete file of `chunks` chunks; returns its handles. */
  file(path: string, chunks: number, replication = 3): number[] {
    const { writeId, handles } = this.startWrite(path, chunks, replication);
    this.completeWrite(writeId, handles);
    return handles;
  }

  scan() {
    return this.repair.scan(this.state);
  }

  /** Collects every registered server's work, as their heartbeats would. */
  takeAll(): Map<string, Work> {
    const out = new Map<string, Work>();
    for (const id of this.ids) out.set(id, this.repair.takeFor(id));
    return out;
  }

  live(h: number): string[] {
    return this.registry.liveReplicas(h, this.state.chunks.get(h)!.version).map((r) => r.id);
  }

  idOfAddr(addr: string): string | undefined {
    return this.ids.find((id) => Cluster.addr(id) === addr);
  }
}

/** All copy orders in a takeAll() result, with the server that got each. */
const copiesIn = (work: Map<string, Work>): { target: string; order: CopyOrder }[] =>
  [...work].flatMap(([target, w]) => w.copies.map((order) => ({ target, order })));
const deletesIn = (work: Map<string, Work>): { server: string; handle: number }[] =>
  [...work].flatMap(([server, w]) => w.deletes.map((handle) => ({ server, handle })));

const servers = (n: number): string[] => Array.from({ length: n }, (_, i) => `s${i + 1}`);

// ======================================================================================

t.test('a fresh scheduler and a healthy cluster: nothing to do', async (t) => {
  const c = new Cluster();
  t.same(c.repair.last, { underReplicated: 0, missing: 0, ordered: 0, moves: 0, inFlight: 0, surplusDeletes: 0, decommissionRemaining: {} }, 'last scan starts empty');
  t.same(c.repair.takeFor('s1'), { copies: [], deletes: [] }, 'nothing queued for anyone');
  const [a, b] = c.file('/d/f', 2);
  for (const id of servers(4)) c.register(id, id === 's4' ? [] : [a!, b!]);
  const scan = c.scan();
  t.same(scan, { underReplicated: 0, missing: 0, ordered: 0, moves: 0, inFlight: 0, surplusDeletes: 0, decommissionRemaining: {} }, 'fully replicated: no work');
  t.same(c.repair.last, scan, 'last is the latest scan');
  const work = c.takeAll();
  t.same(deletesIn(work), [], 'no deletes');
  t.same(copiesIn(work), [], 'no copies');
  t.equal(c.repair.copiesOrdered + c.repair.copiesDone + c.repair.copiesFailed, 0, 'counters untouched');
});

t.test('2 of 3 live replicas: exactly one copy, to a live non-holder, from a live holder, described by the chunk table', async (t) => {
  const c = new Cluster();
  const handles = c.file('/dir/sub/f', 2); // nested: the namespace walk must reach it
  const h = handles[1]!; // the last chunk: length LAST, not CHUNK
  c.register('s1', handles);
  c.register('s2', handles);
  c.register('s3', handles); // will die: its replicas stop counting
  c.register('s4', [handles[0]!]);
  c.register('s5');
  c.register('s6');
  c.advance(DEAD + 1, ['s1', 's2', 's4', 's5', 's6']);
  t.notOk(c.registry.isAlive('s3'), 's3 is dead');

  const scan = c.scan();
  t.same(scan, { underReplicated: 1, missing: 0, ordered: 1, inFlight: 1, surplusDeletes: 0, moves: 0, decommissionRemaining: {} }, 'one chunk short of one replica: one copy');
  t.same(c.repair.last, scan);
  t.equal(c.repair.copiesOrdered, 1);
  t.equal(c.repair.inFlightCount, 1);

  const work = c.takeAll();
  const copies = copiesIn(work);
  t.equal(copies.length, 1, 'exactly one order in all queues');
  const { target, order } = copies[0]!;
  t.ok(['s4', 's5', 's6'].includes(target), `target ${target} is a live server that does not hold the chunk`);
  t.ok(['s1.local:7000', 's2.local:7000'].includes(order.source), `source ${order.source} is a live holder's address`);
  const rec = c.state.chunks.get(h)!;
  t.same(order, { handle: h, version: rec.version, length: LAST, checksum: checksumOf(h), source: order.source }, 'handle, version, length and checksum from the chunk table');
  t.equal(rec.length, LAST);
  t.same(deletesIn(work), [], 'no deletes');
  t.same(c.repair.takeFor(target), { copies: [], deletes: [] }, 'a second take finds nothing: orders are handed out once');

  const again = c.scan();
  t.equal(again.ordered, 0, 'the copy in flight covers the missing replica: not ordered again');
  t.equal(again.underReplicated, 1, 'still under-replicated until the target reports it');
  t.equal(again.inFlight, 1);
  t.equal(c.repair.copiesOrdered, 1);
  t.same(copiesIn(c.takeAll()), []);
});

t.test('1 of 3 live replicas: two copies, to two different servers', async (t) => {
  const c = new Cluster({ perServerCopies: 4 });
  const [h] = c.file('/f', 1);
  c.register('s1', [h!]);
  for (const id of ['s2', 's3', 's4']) c.register(id);
  const scan = c.scan();
  t.equal(scan.ordered, 2);
  const copies = copiesIn(c.takeAll());
  t.equal(copies.length, 2);
  t.equal(new Set(copies.map((x) => x.target)).size, 2, 'two distinct targets');
  for (const { target, order } of copies) {
    t.not(target, 's1', 'never the holder itself');
    t.equal(order.source, 's1.local:7000', 'the only live replica is the source');
  }
});

t.test('the version comes from the chunk table; replicas at another version are not sources', async (t) => {
  const c = new Cluster();
  const [h] = c.file('/f', 1);
  c.state.chunks.get(h!)!.version = 2; // as an append would do (the table is the authority)
  c.register('s1', [h!], { version: 2 });
  c.register('s2', [h!], { version: 2 });
  c.register('s3', [h!], { version: 1 }); // stale
  const scan = c.scan();
  t.equal(scan.underReplicated, 1, 'the stale replica does not count');
  t.equal(scan.ordered, 1);
  const [copy] = copiesIn(c.takeAll());
  t.equal(copy?.order.version, 2, 'the order carries the table version');
  t.ok(['s1.local:7000', 's2.local:7000'].includes(copy!.order.source), 'the source holds the current version');
});

t.test('no server can take the copy: nothing is ordered or counted', async (t) => {
  const c = new Cluster();
  const [h] = c.file('/f', 1);
  c.register('s1', [h!]);
  c.register('s2', [h!]);
  c.register('s3', [], { freeBytes: CHUNK - 1 }); // no room for one chunk
  const scan = c.scan();
  t.same(scan, { underReplicated: 1, missing: 0, ordered: 0, inFlight: 0, surplusDeletes: 0, moves: 0, decommissionRemaining: {} });
  t.equal(c.repair.copiesOrdered, 0);
  t.same(copiesIn(c.takeAll()), []);
  c.register('s4');
  t.equal(c.scan().ordered, 1, 'ordered once a server with room appears');
  t.same(copiesIn(c.takeAll()).map((x) => x.target), ['s4']);
});

t.test('priority: with few cluster-wide slots, chunks with one live replica take them all', async (t) => {
  const c = new Cluster({ perServerCopies: 100, maxInFlight: 4 });
  // Lower handles have 2 live replicas: a handle-ordered plan would pick them first.
  const [two1, two2, one1, one2] = c.file('/f', 4);
  c.register('s1', [two1!, two2!, one1!]);
  c.register('s2', [two1!, two2!, one2!]);
  for (const id of servers(8).slice(2)) c.register(id);
  const scan = c.scan();
  t.equal(scan.underReplicated, 4);
  t.equal(scan.ordered, 4, 'the cluster-wide limit is used up');
  const handles = copiesIn(c.takeAll()).map((x) => x.order.handle).sort((a, b) => a - b);
  t.same(handles, [one1, one1, one2, one2], 'all four copies go to the chunks with a single replica');
  t.equal(c.repair.inFlightCount, 4);
});

t.test('priority: a busy shared source goes to the chunk with fewer replicas', async (t) => {
  // s1 can take part in one copy. h1 (2 replicas: s1, s2) sorts first by handle, h2 (1 replica: s1)
  // is more urgent: it must get s1, and h1 makes do with s2. s2 is full, so it can only be a
  // source (were it h2's target, h1 would rightly have no free source left).
  const c = new Cluster({ perServerCopies: 1 });
  const [h1, h2] = c.file('/f', 2);
  c.register('s1', [h1!, h2!]);
  c.register('s2', [h1!], { freeBytes: CHUNK - 1 });
  for (const id of ['s3', 's4', 's5', 's6']) c.register(id);
  const scan = c.scan();
  const copies = copiesIn(c.takeAll());
  const forH2 = copies.filter((x) => x.order.handle === h2);
  t.equal(forH2.length, 1, 'the single-replica chunk gets a copy');
  t.equal(forH2[0]?.order.source, 's1.local:7000', 'from its only replica');
  const forH1 = copies.filter((x) => x.order.handle === h1);
  t.equal(forH1.length, 1, 'the two-replica chunk still gets one, from the other holder');
  t.equal(forH1[0]?.order.source, 's2.local:7000');
  t.equal(scan.ordered, 2);
  t.not(forH1[0]?.target, forH2[0]?.target, 'each target takes part in one copy');
});

t.test('priority: with a single slot the single-replica chunk wins', async (t) => {
  const c = new Cluster({ maxInFlight: 1 });
  const files = ['/a', '/b', '/c'].map((p) => c.file(p, 1)[0]!);
  const [twoA, one, twoB] = files;
  c.register('s1', [twoA!, one!, twoB!]);
  c.register('s2', [twoA!, twoB!]);
  c.register('s3');
  c.register('s4');
  c.scan();
  t.same(copiesIn(c.takeAll()).map((x) => x.order.handle), [one], 'only the most urgent chunk');
});

t.test('limits: per-server and cluster-wide, held over many scans until every chunk is repaired', async (t) => {
  for (const limits of [{ perServerCopies: 1, maxInFlight: 64 }, { perServerCopies: 2, maxInFlight: 3 }, { perServerCopies: 3, maxInFlight: 5 }]) {
    await t.test(`perServerCopies ${limits.perServerCopies}, maxInFlight ${limits.maxInFlight}`, async (t) => {
      const c = new Cluster(limits);
      const ids = servers(8);
      const handles = c.file('/big', 12);
      // Chunk i lives on 1 or 2 servers, spread round-robin.
      const holders = new Map<string, number[]>(ids.map((id) => [id, []]));
      handles.forEach((h, i) => {
        holders.get(ids[i % 8]!)!.push(h);
        if (i % 3 !== 0) holders.get(ids[(i + 3) % 8]!)!.push(h);
      });
      for (const id of ids) c.register(id, holders.get(id)!);

      const missingReplicas = handles.reduce((a, h) => a + 3 - c.live(h).length, 0);
      t.equal(missingReplicas, 16, '4 chunks short of 2 replicas, 8 short of 1');

      const outstanding: { handle: number; target: string; source: string }[] = [];
      let rounds = 0;
      let maxSeen = 0;
      let badSource = 0;
      let badTarget = 0;
      let overServer = 0;
      let overCluster = 0;
      let countMismatch = 0;
      for (; rounds < 100; rounds++) {
        const scan = c.scan();
        for (const { target, order } of copiesIn(c.takeAll())) {
          const source = c.idOfAddr(order.source)!;
          if (!c.live(order.handle).includes(source)) badSource++;
          if (c.live(order.handle).includes(target) || target === source) badTarget++;
          outstanding.push({ handle: order.handle, target, source });
        }
        const load = new Map<string, number>();
        for (const o of outstanding) for (const id of [o.source, o.target]) load.set(id, (load.get(id) ?? 0) + 1);
        if (Math.max(0, ...load.values()) > limits.perServerCopies) overServer++;
        if (outstanding.length > limits.maxInFlight) overCluster++;
        if (c.repair.inFlightCount !== outstanding.length || scan.inFlight !== outstanding.length) countMismatch++;
        maxSeen = Math.max(maxSeen, outstanding.length);
        if (scan.underReplicated === 0 && outstanding.length === 0) break;
        // The older half of the copies in flight finish before the next scan.
        for (const o of outstanding.splice(0, Math.ceil(outstanding.length / 2))) c.beat(o.target, { added: [o.handle] });
      }
      t.equal(badSource, 0, 'every source held a live replica');
      t.equal(badTarget, 0, 'no target held one');
      t.equal(overServer, 0, `no server ever in more than ${limits.perServerCopies} copies`);
      t.equal(overCluster, 0, `never more than ${limits.maxInFlight} copies in flight`);
      t.equal(countMismatch, 0, 'inFlightCount and scan.inFlight match the orders handed out');
      t.ok(maxSeen > 0 && maxSeen <= limits.maxInFlight, `at most ${maxSeen} in flight`);
      t.ok(rounds < 100, `converged in ${rounds} rounds`);
      for (const h of handles) t.equal(c.live(h).length, 3, `chunk ${h} has 3 live replicas`);
      t.equal(c.repair.copiesOrdered, missingReplicas, 'one copy per missing replica, none wasted');
      t.equal(c.repair.copiesDone, c.repair.copiesOrdered, 'every copy counted done');
      t.equal(c.repair.copiesFailed, 0);
    });
  }
});

t.test('limits: the cluster-wide cap is used up exactly when there is enough work', async (t) => {
  const c = new Cluster({ perServerCopies: 100, maxInFlight: 5 });
  const handles = c.file('/f', 10);
  c.register('s1', handles);
  c.register('s2', handles);
  for (const id of ['s3', 's4', 's5']) c.register(id);
  const scan = c.scan();
  t.equal(scan.underReplicated, 10);
  t.equal(scan.ordered, 5);
  t.equal(c.repair.inFlightCount, 5);
  t.equal(copiesIn(c.takeAll()).length, 5);
  t.equal(c.scan().ordered, 0, 'nothing more while the cap is reached');
});

t.test('limits: a server busy with copies is neither source nor target', async (t) => {
  const c = new Cluster({ perServerCopies: 2 });
  const handles = c.file('/f', 6);
  c.register('s1', handles); // the only holder: at most 2 copies from it at once
  for (const id of ['s2', 's3', 's4', 's5', 's6']) c.register(id);
  t.equal(c.scan().ordered, 2, 'two copies from s1, the only source');
  const copies = copiesIn(c.takeAll());
  t.ok(copies.every((x) => x.order.source === 's1.local:7000'));
  t.equal(c.scan().ordered, 0, 's1 is busy: nothing more');
  // A copy lands: the new replica can be a source too, and s1 has a slot again.
  c.beat(copies[0]!.target, { added: [copies[0]!.order.handle] });
  const scan = c.scan();
  t.equal(c.repair.copiesDone, 1);
  t.ok(scan.ordered >= 1, `more copies ordered (${scan.ordered})`);
  const next = copiesIn(c.takeAll());
  const busyTarget = copies[1]!.target; // still receiving one copy (load 1 of 2)
  const asTarget = next.filter((x) => x.target === busyTarget).length;
  t.ok(asTarget <= 1, 'a server already receiving one copy receives at most one more');
  const bySource = new Map<string, number>();
  for (const x of next) bySource.set(x.order.source, (bySource.get(x.order.source) ?? 0) + 1);
  t.ok((bySource.get('s1.local:7000') ?? 0) <= 1, 's1 (one copy still in flight) is the source of at most one more');
});

t.test('a copy the target reports is done, and is not ordered again', async (t) => {
  const c = new Cluster();
  const [h] = c.file('/f', 1);
  for (const id of ['s1', 's2']) c.register(id, [h!]);
  for (const id of ['s3', 's4']) c.register(id);
  c.scan();
  const [copy] = copiesIn(c.takeAll());
  t.ok(copy, 'a copy was ordered');
  c.scan();
  t.equal(c.repair.copiesDone, 0, 'nothing done before the report');
  c.beat(copy!.target, { added: [h!] });
  const scan = c.scan();
  t.same(scan, { underReplicated: 0, missing: 0, ordered: 0, moves: 0, inFlight: 0, surplusDeletes: 0, decommissionRemaining: {} }, 'settled: fully replicated, nothing in flight');
  t.equal(c.repair.copiesDone, 1);
  t.equal(c.repair.copiesFailed, 0);
  t.equal(c.repair.inFlightCount, 0);
  c.scan();
  t.equal(c.repair.copiesDone, 1, 'counted once');
  t.equal(c.repair.copiesOrdered, 1, 'never ordered again');
  t.same(copiesIn(c.takeAll()), []);
});

t.test('a replica reported by some other server does not settle the copy', async (t) => {
  const c = new Cluster();
  const [h] = c.file('/f', 1);
  for (const id of ['s1', 's2']) c.register(id, [h!]);
  for (const id of ['s3', 's4']) c.register(id);
  c.scan();
  const [copy] = copiesIn(c.takeAll());
  const other = copy!.target === 's3' ? 's4' : 's3';
  c.beat(other, { added: [h!] }); // e.g. a pipeline leftover turned up there
  const scan = c.scan();
  t.equal(c.repair.copiesDone, 0, 'only the ordered target settles the copy');
  t.equal(scan.inFlight, 1, 'the copy stays in flight');
  t.equal(scan.underReplicated, 0, 'the chunk itself is fine');
});

t.test('onCopyFailed: counted once, and the chunk is planned again', async (t) => {
  const c = new Cluster();
  const [h, other] = c.file('/f', 2);
  for (const id of ['s1', 's2']) c.register(id, [h!, other!]);
  c.register('s3', [other!]);
  c.register('s4');
  c.scan();
  const [copy] = copiesIn(c.takeAll());
  t.equal(copy?.order.handle, h);
  c.repair.onCopyFailed('s1', [h!]);
  t.equal(c.repair.copiesFailed, 0, 'a report from a server that is not the target changes nothing');
  c.repair.onCopyFailed(copy!.target, [999, other!]);
  t.equal(c.repair.copiesFailed, 0, 'handles with no copy in flight to it change nothing');
  t.equal(c.repair.inFlightCount, 1);
  c.repair.onCopyFailed(copy!.target, [h!, h!]);
  t.equal(c.repair.copiesFailed, 1, 'the failure is counted once');
  t.equal(c.repair.inFlightCount, 0, 'no longer in flight');
  const scan = c.scan();
  t.equal(scan.ordered, 1, 'planned again');
  t.equal(c.repair.copiesOrdered, 2);
  t.equal(copiesIn(c.takeAll()).length, 1);
  t.equal(c.repair.copiesDone, 0);
});

t.test('a copy not reported within copyTimeoutMs fails and is planned again', async (t) => {
  const TIMEOUT = 5_000; // below the dead timeout: every server stays alive
  const c = new Cluster({ copyTimeoutMs: TIMEOUT });
  const [h] = c.file('/f', 1);
  for (const id of ['s1', 's2']) c.register(id, [h!]);
  for (const id of ['s3', 's4']) c.register(id);
  c.scan();
  t.equal(copiesIn(c.takeAll()).length, 1);
  c.advance(TIMEOUT - 1, c.ids);
  let scan = c.scan();
  t.equal(c.repair.copiesFailed, 0, 'not yet timed out');
  t.equal(scan.ordered, 0);
  t.equal(scan.inFlight, 1);
  c.advance(2, c.ids);
  scan = c.scan();
  t.equal(c.repair.copiesFailed, 1, 'timed out: failed');
  t.equal(scan.ordered, 1, 'and ordered again in the same scan');
  t.equal(scan.inFlight, 1);
  t.equal(c.repair.copiesOrdered, 2);
  t.equal(copiesIn(c.takeAll()).length, 1);
});

t.test('a copy to a server that died fails and goes elsewhere', async (t) => {
  const c = new Cluster(); // default copy timeout (120 s) is far beyond the dead timeout
  const [h] = c.file('/f', 1);
  for (const id of ['s1', 's2']) c.register(id, [h!]);
  for (const id of ['s3', 's4', 's5']) c.register(id);
  c.scan();
  const [copy] = copiesIn(c.takeAll());
  const target = copy!.target;
  c.advance(DEAD, c.ids.filter((id) => id !== target));
  t.equal(c.scan().ordered, 0, 'silent for exactly the dead timeout: still alive, still in flight');
  t.equal(c.repair.copiesFailed, 0);
  c.advance(1, c.ids.filter((id) => id !== target));
  t.notOk(c.registry.isAlive(target));
  const scan = c.scan();
  t.equal(c.repair.copiesFailed, 1, 'the dead target fails the copy');
  t.equal(scan.ordered, 1, 'planned again');
  const [next] = copiesIn(c.takeAll());
  t.ok(next && next.target !== target, `the new target (${next?.target}) is not the dead server`);
});

t.test('an order declared failed is withdrawn, not delivered when its target returns', async (t) => {
  // s3 is the only possible target; it dies before collecting the order. The copy is counted
  // failed and re-planned to s4 (registered later); the old order must not still wait for s3.
  const c = new Cluster({ perServerCopies: 1 });
  const [h] = c.file('/f', 1);
  for (const id of ['s1', 's2']) c.register(id, [h!]);
  c.register('s3');
  t.equal(c.scan().ordered, 1, 'a copy ordered to s3, not collected');
  c.advance(DEAD + 1, ['s1', 's2']);
  c.register('s4');
  const scan = c.scan();
  t.equal(c.repair.copiesFailed, 1, 'the copy to the dead server failed');
  t.equal(scan.ordered, 1, 'and was ordered elsewhere');
  t.same(c.repair.takeFor('s4').copies.map((o) => o.handle), [h], 'to s4');
  t.equal(c.repair.inFlightCount, 1, 'one copy tracked');
  c.beat('s3'); // it comes back and collects its work
  const stale = c.repair.takeFor('s3').copies.filter((o) => o.handle === h);
  t.same(stale, [], 'no order for a copy already given up');
});

t.test('a chunk with no live replica is missing and gets no order', async (t) => {
  const c = new Cluster();
  const [lost, dead, fine] = c.file('/f', 3);
  c.register('s1', [fine!]);
  c.register('s2', [fine!, dead!]);
  c.register('s3', [fine!]);
  c.register('s4');
  c.register('s5', [dead!]);
  c.advance(DEAD + 1, ['s1', 's3', 's4', 's5']);
  c.beat('s5', { removed: [dead!] }); // its copy of `dead` is gone; the other is on dead s2
  const scan = c.scan();
  t.same(scan, { underReplicated: 1, missing: 2, ordered: 1, inFlight: 1, surplusDeletes: 0, moves: 0, decommissionRemaining: {} }, 'lost and dead are missing; fine lost its s2 replica');
  const copies = copiesIn(c.takeAll());
  t.same(copies.map((x) => x.order.handle), [fine], 'no order for a chunk nobody can serve');
  t.notOk(c.registry.hasAnyReplica(lost!));
});

t.test('chunks of files still being written are ignored', async (t) => {
  const c = new Cluster();
  const { handles: writing } = c.startWrite('/new', 2);
  const old = c.file('/old', 1);
  const { writeId, handles: replacement } = c.startWrite('/old', 1); // overwrite in progress: /old still readable
  t.equal(c.state.lookup('/old')?.type, 'file');
  c.register('s1', [...writing, ...old, ...replacement]);
  for (const id of ['s2', 's3', 's4']) c.register(id);
  let scan = c.scan();
  t.same(scan, { underReplicated: 1, missing: 0, ordered: 2, inFlight: 2, surplusDeletes: 0, moves: 0, decommissionRemaining: {} }, 'only the complete file counts: its one replica needs two copies');
  let copies = copiesIn(c.takeAll());
  t.same(copies.map((x) => x.order.handle), [old[0], old[0]], 'both orders are for the complete file');
  // Once the overwrite completes, its chunk is the file's, and repair looks after it.
  c.completeWrite(writeId, replacement);
  scan = c.scan();
  t.equal(c.repair.copiesFailed, 2, 'copies of the replaced chunk (gone from the table) end as failed');
  t.equal(scan.underReplicated, 1, 'the new /old chunk is now under-replicated');
  copies = copiesIn(c.takeAll());
  t.same(copies.map((x) => x.order.handle), [replacement[0], replacement[0]], 'orders now name the new chunk');
});

t.test('surplus: 4 live replicas of a replication-3 chunk lose one, on the fullest server', async (t) => {
  const c = new Cluster();
  const [h, keep] = c.file('/f', 2);
  c.register('s1', [h!, keep!], { freeBytes: 500 * CHUNK });
  c.register('s2', [h!, keep!], { freeBytes: 200 * CHUNK }); // the fullest
  c.register('s3', [h!, keep!], { freeBytes: 800 * CHUNK });
  c.register('s4', [h!], { freeBytes: 300 * CHUNK });
  let scan = c.scan();
  t.same(scan, { underReplicated: 0, missing: 0, ordered: 0, inFlight: 0, surplusDeletes: 1, moves: 0, decommissionRemaining: {} }, 'one surplus delete, no copies');
  t.same(c.live(h!), ['s1', 's3', 's4'], 'the registry no longer lists the doomed replica');
  t.same(c.live(keep!), ['s1', 's2', 's3'], 'other chunks untouched');

  scan = c.scan();
  t.equal(scan.surplusDeletes, 0, 'no second delete');
  // s2 re-registers before collecting the delete: its full report lists h again.
  c.register('s2', [h!, keep!]);
  t.equal(c.live(h!).length, 4);
  scan = c.scan();
  t.equal(scan.surplusDeletes, 0, 'no second delete for a handle whose delete is still queued');
  t.equal(scan.ordered, 0);

  const work = c.takeAll();
  t.same(deletesIn(work), [{ server: 's2', handle: h }], 'exactly one delete, for s2');
  t.same(copiesIn(work), []);
  t.same(c.repair.takeFor('s2'), { copies: [], deletes: [] }, 'handed out once');
  t.equal(c.repair.copiesOrdered, 0);
});

t.test('surplus: one delete per scan until collected; then the next fullest', async (t) => {
  const c = new Cluster();
  const [h] = c.file('/f', 1);
  const free = { s1: 900, s2: 100, s3: 700, s4: 200, s5: 600 };
  for (const [id, f] of Object.entries(free)) c.register(id, [h!], { freeBytes: f * CHUNK });
  t.equal(c.scan().surplusDeletes, 1);
  t.equal(c.scan().surplusDeletes, 0, 'a delete for the handle is queued: wait for it to be collected');
  t.equal(c.live(h!).length, 4);
  t.same(deletesIn(c.takeAll()), [{ server: 's2', handle: h }]);
  c.beat('s2', { removed: [h!] });
  t.equal(c.scan().surplusDeletes, 1, 'after collection, the next surplus replica');
  t.same(deletesIn(c.takeAll()), [{ server: 's4', handle: h }], 'from the next fullest server');
  t.equal(c.scan().surplusDeletes, 0, 'replication reached');
  t.same(c.live(h!), ['s1', 's3', 's5']);
});

t.test('surplus: equally full servers are broken by id; dead replicas are not candidates', async (t) => {
  const c = new Cluster();
  const [h] = c.file('/f', 1);
  c.register('s0', [h!], { freeBytes: 10 * CHUNK }); // fullest, but will be dead
  for (const id of ['s4', 's2', 's3', 's1']) c.register(id, [h!], { freeBytes: 400 * CHUNK });
  c.advance(DEAD + 1, ['s1', 's2', 's3', 's4']);
  t.equal(c.scan().surplusDeletes, 1);
  t.same(deletesIn(c.takeAll()), [{ server: 's1', handle: h }]);
});

t.test('surplus: not while a copy of the chunk is in flight', async (t) => {
  const c = new Cluster();
  const [h] = c.file('/f', 1);
  for (const id of ['s1', 's2']) c.register(id, [h!]);
  c.register('s3', [h!]);
  c.register('s4');
  c.register('s5');
  c.advance(DEAD + 1, ['s1', 's2', 's4', 's5']); // s3 dead
  t.equal(c.scan().ordered, 1);
  const [copy] = copiesIn(c.takeAll());
  c.beat('s3'); // s3 comes back: 3 live + 1 in flight
  let scan = c.scan();
  t.equal(scan.surplusDeletes, 0, 'no delete while the copy is pending');
  t.equal(scan.inFlight, 1);
  c.beat(copy!.target, { added: [h!] }); // the copy lands: 4 live, nothing pending
  scan = c.scan();
  t.equal(c.repair.copiesDone, 1);
  t.equal(scan.surplusDeletes, 1, 'now one surplus replica goes');
  t.equal(c.live(h!).length, 3);
});

t.test('a copy is never ordered to a server told to delete the same chunk', async (t) => {
  // s4 (the fullest) is told to drop a surplus replica. Before its next heartbeat collects that,
  // s1 reports it lost its replica (and is itself full). The chunk is now short of one replica,
  // and s4 is the only server with room that is not listed as a holder.
  const c = new Cluster();
  const [h] = c.file('/f', 1);
  c.register('s1', [h!], { freeBytes: 600 * CHUNK });
  c.register('s2', [h!], { freeBytes: 700 * CHUNK });
  c.register('s3', [h!], { freeBytes: 800 * CHUNK });
  c.register('s4', [h!], { freeBytes: 100 * CHUNK });
  t.equal(c.scan().surplusDeletes, 1);
  c.beat('s1', { removed: [h!], freeBytes: 0 });
  const scan = c.scan();
  t.equal(scan.underReplicated, 1, 's2 and s3 are left');
  const w4 = c.repair.takeFor('s4');
  t.same(w4.deletes, [h], 's4 still gets its delete');
  const both = w4.copies.some((o) => o.handle === h) && w4.deletes.includes(h);
  // The chunkserver drops a copy order for a chunk it holds, then deletes it: the chunk stays
  // at 2 replicas until the copy times out (120 s by default).
  t.notOk(both, 'not both a copy and a delete of one chunk for one server');
});

t.test('clear() forgets orders, deletes and copies in flight', async (t) => {
  const c = new Cluster();
  const [short] = c.file('/a', 1);
  const [surplus] = c.file('/b', 1);
  c.register('s1', [short!, surplus!], { freeBytes: 100 * CHUNK });
  c.register('s2', [short!, surplus!]);
  c.register('s3', [surplus!]);
  c.register('s4', [surplus!]);
  const scan = c.scan();
  t.equal(scan.ordered, 1);
  t.equal(scan.surplusDeletes, 1);
  t.equal(c.repair.inFlightCount, 1);
  c.repair.clear();
  t.equal(c.repair.inFlightCount, 0, 'no copies in flight');
  t.same(copiesIn(c.takeAll()), [], 'no copy orders waiting');
  t.same(deletesIn(c.takeAll()), [], 'no deletes waiting');
  const after = c.scan();
  t.equal(after.ordered, 1, 'the forgotten copy is planned afresh');
  t.equal(after.inFlight, 1);
  t.equal(copiesIn(c.takeAll()).length, 1);
  // The copy ordered before clear() is no longer tracked: a failure report for it changes nothing.
  const failedBefore = c.repair.copiesFailed;
  c.repair.clear();
  c.repair.onCopyFailed('s3', [short!]);
  c.repair.onCopyFailed('s4', [short!]);
  t.equal(c.repair.copiesFailed, failedBefore, 'a failure of a forgotten copy is not counted');
});
