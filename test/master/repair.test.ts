// RepairScheduler: the leader's re-replication planner. Every test builds a real MasterState
// through apply() (create → allocate → complete) and a real Registry with an injected clock
// (servers register with chunk reports; heartbeats change liveness and report added/removed
// replicas), then checks which copies and deletes scan() queues and takeFor() hands out.
import t from 'tap';
import type { HeartbeatRequest, PlannedCopy, RegisterRequest } from '../../common/protocol.js';
import type { Command } from '../../master/commands.js';
import { Registry } from '../../master/registry/index.js';
import { scanInSlices, type SliceOptions } from '../../master/leader/slices.js';
import { REPAIR_DEFAULTS, RepairScheduler, type RepairLimits } from '../../master/repair/index.js';
import { MasterState } from '../../master/state/index.js';

const DEAD = 10_000; // registry dead timeout (ms)
const CHUNK = 4; // bytes per chunk in these tests
const LAST = 3; // length of each file's last chunk (so a length taken from elsewhere shows)
const CAPACITY = 1000 * CHUNK;
const T0 = 1_000_000;

const checksumOf = (h: number): string => `xxh-${h}`;

interface Work { copies: PlannedCopy[]; deletes: number[] }

/** A master's view of a small cluster: replicated state, registry and repair scheduler on one clock. */
class Cluster {
  readonly clock = { now: T0 };
  readonly registry = new Registry(DEAD, () => this.clock.now, () => Math.random());
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
  register(id: string, handles: number[] = [], opts: { freeBytes?: number; version?: number; copyRateBytesPerSec?: number } = {}): void {
    const freeBytes = opts.freeBytes ?? this.free.get(id) ?? CAPACITY / 2;
    this.free.set(id, freeBytes);
    const req: RegisterRequest = {
      id, addr: Cluster.addr(id), capacityBytes: CAPACITY, freeBytes, usedBytes: CAPACITY - freeBytes, activeWrites: 0, activeReads: 0,
      copyRateBytesPerSec: opts.copyRateBytesPerSec ?? 0,
      chunks: handles.map((handle) => ({ handle, version: opts.version ?? 1, length: CHUNK })),
    };
    this.registry.register(req);
  }

  /** A heartbeat from `id` (the registry part only: work is collected with take()). */
  beat(id: string, opts: { added?: number[]; removed?: number[]; freeBytes?: number; version?: number } = {}): void {
    const freeBytes = opts.freeBytes ?? this.free.get(id)!;
    this.free.set(id, freeBytes);
    const req: HeartbeatRequest = {
      id, addr: Cluster.addr(id), capacityBytes: CAPACITY, freeBytes, usedBytes: CAPACITY - freeBytes, activeWrites: 0, activeReads: 0, copyRateBytesPerSec: 0,
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

  scanInSlices(opts: SliceOptions) {
    return scanInSlices(this.repair, () => this.state, opts);
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
const copiesIn = (work: Map<string, Work>): { target: string; order: PlannedCopy }[] =>
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
  t.same(order, { handle: h, version: rec.version, length: LAST, checksum: checksumOf(h), source: order.source, timeoutMs: c.limits.copyTimeoutMs, reqId: order.reqId }, 'handle, version, length and checksum from the chunk table, and the copy\'s time');
  t.match(order.reqId, /^copy-[A-Za-z0-9]+-\d+$/, 'and the id of the decision, for the target\'s log lines');
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
  c.state.chunks.setVersion(h!, 2); // as an append would do (the table is the authority)
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

t.test('the order carries the copy\'s time; the master waits that plus its report slack', async (t) => {
  const TIMEOUT = 5_000;
  const SLACK = 2_000;
  const c = new Cluster({ copyTimeoutMs: TIMEOUT, copyReportSlackMs: SLACK });
  const [h] = c.file('/f', 1);
  for (const id of ['s1', 's2']) c.register(id, [h!]);
  c.register('s3', [], { copyRateBytesPerSec: 1 }); // LAST bytes at 1 B/s, shared by perServerCopies copies
  c.scan();
  const [copy] = copiesIn(c.takeAll());
  const cappedMs = LAST * c.limits.perServerCopies * 1000;
  t.equal(copy?.order.timeoutMs, TIMEOUT + cappedMs, 'computed once, by the master: the base time and what the target\'s rate cap costs');
  c.advance(TIMEOUT + cappedMs + SLACK, c.ids);
  c.scan();
  t.equal(c.repair.copiesFailed, 0, 'the copy\'s own time and the slack: still in flight');
  c.advance(1, c.ids);
  c.scan();
  t.equal(c.repair.copiesFailed, 1, 'past them: failed');
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

// ======================================================================================
// Self-healing: decommissioning, replication changes, balancing moves, corrupt reports.

type Tap = Parameters<Parameters<typeof t.test>[0]>[0];

/** Applies a command to the cluster's replicated state; it must succeed. */
function commit(c: Cluster, cmd: Command): unknown {
  const r = c.state.apply(cmd);
  if (!r.ok) throw new Error(`${cmd.op} failed: ${r.code}: ${r.message}`);
  return r.value;
}
const decommission = (c: Cluster, server: string, cancel = false) => commit(c, { op: 'decommission', server, cancel });
const setrep = (c: Cluster, path: string, replication: number, recursive = false) => commit(c, { op: 'setReplication', path, replication, recursive });

t.test('decommission: replicas on a decommissioning server do not count; exactly one copy, placed elsewhere', async (t) => {
  const c = new Cluster();
  const [h] = c.file('/f', 1);
  for (const id of ['s1', 's2', 's3']) c.register(id, [h!]);
  c.register('s4');
  decommission(c, 's3');
  const scan = c.scan();
  t.same(scan, { underReplicated: 1, missing: 0, ordered: 1, inFlight: 1, surplusDeletes: 0, moves: 0, decommissionRemaining: { s3: 1 } }, 's3 does not count: one copy short');
  const work = c.takeAll();
  const copies = copiesIn(work);
  t.equal(copies.length, 1, 'exactly one copy');
  t.equal(copies[0]!.target, 's4', 'to the only server in service that lacks it');
  t.ok(['s1', 's2', 's3'].includes(c.idOfAddr(copies[0]!.order.source)!), 'from any live holder (the decommissioning one included)');
  t.same(deletesIn(work), [], 'no deletes: s3 keeps its replica while it drains');
  t.equal(c.scan().ordered, 0, 'not ordered twice');
  t.equal(c.repair.last.decommissionRemaining.s3, 1, 'still remaining until the copy is reported');

  c.beat('s4', { added: [h!] });
  const done = c.scan();
  t.same(done.decommissionRemaining, { s3: 0 }, 'once the copy is reported, s3 holds nothing that lacks replication elsewhere');
  t.equal(done.underReplicated, 0);
  t.equal(done.surplusDeletes, 0, 's1, s2, s4 good and s3 draining: 4 live replicas, no surplus');
  t.same(c.repair.last, done);
  for (let i = 0; i < 3; i++) {
    c.advance(1000, c.ids);
    const again = c.scan();
    t.equal(again.surplusDeletes + again.ordered + again.moves, 0, `scan ${i}: nothing more to do`);
    t.same(deletesIn(c.takeAll()), [], `scan ${i}: the decommissioning replica is not trimmed`);
  }
  t.same(c.live(h!), ['s1', 's2', 's3', 's4']);
});

t.test('decommission: the source may be the decommissioning server itself (the only holder)', async (t) => {
  const c = new Cluster({ perServerCopies: 4 });
  const [h] = c.file('/f', 1);
  c.register('s3', [h!]);
  for (const id of ['s1', 's2', 's4']) c.register(id);
  decommission(c, 's3');
  const scan = c.scan();
  t.equal(scan.ordered, 3, 'no good replica left: three copies');
  t.same(scan.decommissionRemaining, { s3: 1 });
  const copies = copiesIn(c.takeAll());
  t.same(copies.map((x) => x.target).sort(), ['s1', 's2', 's4'], 'one to each server in service');
  t.ok(copies.every((x) => x.order.source === Cluster.addr('s3')), 'all from s3, the only holder');
});

t.test('decommission: nothing is ever placed on a decommissioning server', async (t) => {
  // s5 and s6 are the emptiest disks, so placement would pick them first were they eligible.
  const c = new Cluster({ perServerCopies: 100, maxInFlight: 100 });
  const handles = c.file('/f', 8);
  c.register('s1', handles, { freeBytes: 300 * CHUNK });
  for (const id of ['s2', 's3', 's4']) c.register(id, [], { freeBytes: 400 * CHUNK });
  for (const id of ['s5', 's6']) c.register(id, [], { freeBytes: 990 * CHUNK });
  decommission(c, 's5');
  decommission(c, 's6');
  const targets = new Set<string>();
  for (let round = 0; round < 10; round++) {
    c.scan();
    for (const { target, order } of copiesIn(c.takeAll())) {
      targets.add(target);
      c.beat(target, { added: [order.handle] });
    }
    c.advance(1000, c.ids);
  }
  t.same([...targets].sort(), ['s2', 's3', 's4'], 'copies went only to servers in service');
  for (const h of handles) t.notOk(c.live(h).some((id) => id === 's5' || id === 's6'), `chunk ${h} nowhere near s5/s6`);
  for (const h of handles) t.equal(c.live(h).filter((id) => id !== 's5' && id !== 's6').length, 3, `chunk ${h} fully replicated`);

  // When only decommissioning servers have room, nothing is ordered.
  const d = new Cluster();
  const [x] = d.file('/x', 1);
  for (const id of ['s1', 's2']) d.register(id, [x!]);
  d.register('s3', [], { freeBytes: 990 * CHUNK });
  decommission(d, 's3');
  const scan = d.scan();
  t.equal(scan.underReplicated, 1);
  t.equal(scan.ordered, 0, 'no copy to the decommissioning server, however empty');
  t.same(copiesIn(d.takeAll()), []);
});

t.test('decommission: decommissionRemaining counts the chunks still short elsewhere, per server, and drops to 0', async (t) => {
  const c = new Cluster({ perServerCopies: 1, maxInFlight: 1 }); // one copy at a time: the count drops step by step
  const [a, b, ok3, ok4] = c.file('/f', 4);
  c.register('s1', [a!, b!, ok3!, ok4!]);
  c.register('s2', [a!, b!, ok3!, ok4!]);
  c.register('s3', [a!, b!, ok4!]); // a and b: short without s3; ok4 is on s4 too
  c.register('s4', [a!, ok3!, ok4!]); // a: short without s3 and s4 both
  c.register('s5');
  c.register('s6');
  decommission(c, 's3');
  decommission(c, 's4');
  decommission(c, 's9'); // not registered: counted with nothing
  let scan = c.scan();
  t.same(scan.decommissionRemaining, { s3: 3, s4: 3, s9: 0 }, 'each decommissioning server counts its chunks that lack good replicas elsewhere');
  t.equal(scan.underReplicated, 4, 'every chunk has only s1 and s2 good');
  const history: number[] = [scan.decommissionRemaining.s3! + scan.decommissionRemaining.s4!];
  for (let round = 0; round < 20 && (scan.decommissionRemaining.s3! > 0 || scan.decommissionRemaining.s4! > 0); round++) {
    for (const { target, order } of copiesIn(c.takeAll())) {
      t.notOk(['s3', 's4', 's9'].includes(target), `copy of ${order.handle} to ${target}, in service`);
      c.beat(target, { added: [order.handle] });
    }
    c.advance(1000, c.ids);
    scan = c.scan();
    history.push(scan.decommissionRemaining.s3! + scan.decommissionRemaining.s4!);
  }
  t.same(scan.decommissionRemaining, { s3: 0, s4: 0, s9: 0 }, 'drained');
  t.ok(history.every((n, i) => i === 0 || n <= history[i - 1]!), `never grows (${history.join(' → ')})`);
  t.equal(scan.underReplicated, 0);
  for (const h of [a, b, ok3, ok4]) t.equal(c.live(h!).filter((id) => id !== 's3' && id !== 's4').length, 3, `chunk ${h}: 3 good replicas`);
  // Cancelled servers drop out of the count.
  decommission(c, 's9', true);
  t.same(c.scan().decommissionRemaining, { s3: 0, s4: 0 });
});

t.test('decommission: a draining server\'s replicas are never trimmed as surplus', async (t) => {
  const c = new Cluster();
  const [h] = c.file('/f', 1);
  c.register('s1', [h!], { freeBytes: 500 * CHUNK });
  c.register('s2', [h!], { freeBytes: 600 * CHUNK });
  c.register('s3', [h!], { freeBytes: 700 * CHUNK });
  c.register('s4', [h!], { freeBytes: 800 * CHUNK });
  c.register('s5', [h!], { freeBytes: 1 * CHUNK }); // the fullest disk by far: first in line for a surplus delete
  decommission(c, 's5');
  const scan = c.scan();
  t.equal(scan.surplusDeletes, 1, '4 good replicas of a replication-3 chunk: one surplus');
  t.same(deletesIn(c.takeAll()), [{ server: 's1', handle: h }], 'from the fullest server in service, not from the draining s5');
  t.ok(c.live(h!).includes('s5'), 's5 keeps its replica');
  c.beat('s1', { removed: [h!] });
  t.equal(c.scan().surplusDeletes, 0, '3 good + 1 draining: nothing more');
});

t.test('decommission cancelled: the extra good replica is now surplus, and one goes', async (t) => {
  const c = new Cluster();
  const [h] = c.file('/f', 1);
  for (const id of ['s1', 's2', 's3']) c.register(id, [h!]);
  c.register('s4');
  decommission(c, 's3');
  c.scan();
  const [copy] = copiesIn(c.takeAll());
  c.beat(copy!.target, { added: [h!] });
  t.equal(c.scan().surplusDeletes, 0, 'while s3 drains, 4 live replicas are not surplus');
  decommission(c, 's3', true);
  const scan = c.scan();
  t.same(scan.decommissionRemaining, {}, 's3 is no longer counted');
  t.equal(scan.surplusDeletes, 1, '4 good replicas: one surplus delete');
  t.equal(deletesIn(c.takeAll()).length, 1, 'exactly one delete handed out');
  t.equal(c.live(h!).length, 3, 'replication kept');
  t.equal(c.scan().surplusDeletes, 0);
});

t.test('decommission: a dead draining server with the only replica of a chunk is not done', async (t) => {
  // decommissionRemaining is documented as "its chunks that still lack their replication
  // elsewhere", and status reports the server 'decommissioned' (safe to remove) at 0. A chunk
  // whose only replica is on the draining server lacks replication elsewhere whether or not the
  // server is up right now: reporting it done invites the operator to wipe the only copy.
  const c = new Cluster();
  const [only, spread] = c.file('/f', 2);
  c.register('s1', [spread!]);
  c.register('s2', [spread!]);
  c.register('s3', [only!, spread!]);
  decommission(c, 's3');
  t.same(c.scan().decommissionRemaining, { s3: 2 }, 'alive: both chunks counted');
  c.advance(DEAD + 1, ['s1', 's2']); // s3 goes silent before any copy is made
  const scan = c.scan();
  t.equal(scan.missing, 1, 'the chunk only s3 had is missing');
  t.ok((scan.decommissionRemaining.s3 ?? 0) >= 1, `s3 still holds the only replica of chunk ${only} (remaining ${scan.decommissionRemaining.s3})`);
});

t.test('setrep down: one surplus delete per chunk per scan, from the fullest disk', async (t) => {
  const c = new Cluster();
  const handles = c.file('/d/f', 3);
  const [other] = c.file('/d/g', 1);
  c.register('s1', [...handles, other!], { freeBytes: 600 * CHUNK });
  c.register('s2', [...handles, other!], { freeBytes: 100 * CHUNK }); // the fullest disk
  c.register('s3', [...handles, other!], { freeBytes: 400 * CHUNK }); // the next fullest
  c.register('s4', [], { freeBytes: 900 * CHUNK });
  t.equal(c.scan().surplusDeletes, 0, 'at replication 3: nothing');
  t.same(setrep(c, '/d/f', 1), { files: 1 });

  let scan = c.scan();
  t.equal(scan.surplusDeletes, 3, 'one delete per chunk, not two for the same one');
  t.equal(scan.ordered, 0);
  t.equal(c.scan().surplusDeletes, 0, 'a second scan before the deletes are collected: none more');
  let work = c.takeAll();
  t.same(deletesIn(work).sort((x, y) => x.handle - y.handle), handles.map((h) => ({ server: 's2', handle: h })), 'all from s2, the fullest disk');
  for (const h of handles) t.same(c.live(h), ['s1', 's3'], `chunk ${h}: s2's replica no longer counted`);
  t.same(c.live(other!), ['s1', 's2', 's3'], 'the file whose replication did not change keeps all three');

  c.beat('s2', { removed: handles });
  scan = c.scan();
  t.equal(scan.surplusDeletes, 3, 'next scan: the second surplus replica of each chunk');
  work = c.takeAll();
  t.same(deletesIn(work).map((x) => x.server), ['s3', 's3', 's3'], 'from the next fullest disk');
  c.beat('s3', { removed: handles });
  for (const h of handles) t.same(c.live(h), ['s1'], `chunk ${h} at its new replication`);
  scan = c.scan();
  t.same(scan, { underReplicated: 0, missing: 0, ordered: 0, moves: 0, inFlight: 0, surplusDeletes: 0, decommissionRemaining: {} }, 'converged');
});

t.test('setrep down: servers on one shared disk lose the replica on the one holding the most', async (t) => {
  const c = new Cluster();
  const [h] = c.file('/f', 1);
  const extra = c.file('/big', 5, 1);
  c.register('s1', [h!]);
  c.register('s2', [h!, ...extra]); // same free space (one shared disk) but more data of its own
  c.register('s3', [h!]);
  setrep(c, '/f', 2);
  t.equal(c.scan().surplusDeletes, 1);
  t.same(deletesIn(c.takeAll()), [{ server: 's2', handle: h }]);
});

t.test('setrep up: copies are ordered to reach the new replication', async (t) => {
  const c = new Cluster({ perServerCopies: 10 });
  const handles = c.file('/d/f', 2);
  for (const id of ['s1', 's2', 's3']) c.register(id, handles);
  for (const id of ['s4', 's5', 's6']) c.register(id);
  t.equal(c.scan().ordered, 0);
  t.same(setrep(c, '/d', 4, true), { files: 1 });
  let scan = c.scan();
  t.equal(scan.underReplicated, 2);
  t.equal(scan.ordered, 2, 'one copy per chunk');
  let copies = copiesIn(c.takeAll());
  t.same(copies.map((x) => x.order.handle).sort(), [...handles].sort());
  for (const { target } of copies) t.ok(['s4', 's5', 's6'].includes(target), `to a non-holder (${target})`);
  // Raised again while those copies are in flight: only the difference is ordered.
  setrep(c, '/d/f', 5);
  scan = c.scan();
  t.equal(scan.ordered, 2, 'one more per chunk, the copies in flight counted');
  copies = [...copies, ...copiesIn(c.takeAll())];
  for (const h of handles) {
    const targets = copies.filter((x) => x.order.handle === h).map((x) => x.target);
    t.equal(new Set(targets).size, 2, `chunk ${h}: two different new servers`);
  }
  for (const { target, order } of copies) c.beat(target, { added: [order.handle] });
  scan = c.scan();
  t.equal(scan.underReplicated, 0);
  for (const h of handles) t.equal(c.live(h).length, 5);
  t.equal(c.repair.copiesDone, 4);
});

t.test('setrep during a write: the completed file is repaired to the replication set meanwhile', async (t) => {
  const c = new Cluster();
  const { writeId, handles } = c.startWrite('/f', 1, 3);
  for (const id of ['s1', 's2', 's3']) c.register(id, handles);
  c.register('s4');
  setrep(c, '/f', 2);
  t.equal(c.scan().surplusDeletes, 0, 'a file being written is left alone');
  c.completeWrite(writeId, handles);
  t.equal(c.scan().surplusDeletes, 1, 'once complete, it has one replica too many');
  t.equal(c.live(handles[0]!).length, 2);
});

// ---- balancing ----

/** Bytes of finished files' chunks each live server in service holds, as the master sees it (moves in flight counted done). */
function usage(c: Cluster, inFlight: { handle: number; source: string; target: string; landed?: boolean }[] = []): Map<string, number> {
  const len = new Map<number, number>();
  for (const [, n] of c.state.walk('/', c.state.root)) if (n.type === 'file' && n.state === 'complete') for (const h of n.chunks) len.set(h, c.state.chunks.get(h)!.length);
  const bytes = new Map<string, number>();
  for (const s of c.registry.liveServers()) {
    if (c.state.decommissioning.has(s.id)) continue;
    let b = 0;
    for (const h of c.registry.handlesOn(s.id)) b += len.get(h) ?? 0;
    bytes.set(s.id, b);
  }
  for (const m of inFlight) {
    const l = len.get(m.handle) ?? 0;
    // A landed copy is already on its target; the next scan settles it and drops the source's replica.
    if (!m.landed && bytes.has(m.target)) bytes.set(m.target, bytes.get(m.target)! + l);
    if (bytes.has(m.source)) bytes.set(m.source, bytes.get(m.source)! - l);
  }
  return bytes; // every server has the same capacity in these tests: bytes order as use does
}

/** Replication each finished chunk wants. */
function wantedReplication(c: Cluster): Map<number, number> {
  const out = new Map<number, number>();
  for (const [, n] of c.state.walk('/', c.state.root)) if (n.type === 'file' && n.state === 'complete') for (const h of n.chunks) out.set(h, n.replication);
  return out;
}

interface Sim {
  rounds: number;
  converged: boolean;
  moves: { handle: number; source: string; target: string; round: number }[];
  /** Problems seen along the way; each list should stay empty. */
  belowMaster: string[];
  belowActual: string[];
  earlyDeletes: string[];
  badCopies: string[];
  overServer: string[];
  notEmptiest: string[];
  maxMovesInFlight: number;
}

/**
 * Runs the cluster to quiescence as real servers would: each round scans, hands out the work,
 * applies the deletes at once (heartbeat `removed`) and reports the copies one round later
 * (heartbeat `added` on the target), so every copy is in flight across at least one scan.
 * Along the way checks that no chunk ever has fewer replicas than its replication, neither as
 * the master sees them nor as the servers actually hold them, that a move's source is told to
 * delete only after the target reported the copy, and the copy limits.
 */
function simulate(c: Cluster, maxRounds = 400, opts: { checkEmptiest?: boolean } = {}): Sim {
  const sim: Sim = { rounds: 0, converged: false, moves: [], belowMaster: [], belowActual: [], earlyDeletes: [], badCopies: [], overServer: [], notEmptiest: [], maxMovesInFlight: 0 };
  const actual = new Map<string, Set<number>>(c.registry.liveServers().map((s) => [s.id, new Set(c.registry.handlesOn(s.id))]));
  let pending: { handle: number; source: string; target: string; round: number }[] = [];
  const reported: { handle: number; source: string; target: string }[] = [];
  let landed: { handle: number; source: string; target: string; landed: true }[] = [];
  const check = (when: string) => {
    for (const [h, r] of wantedReplication(c)) {
      const master = c.live(h).filter((id) => !c.state.decommissioning.has(id)).length;
      if (master < r) sim.belowMaster.push(`${when}: chunk ${h} has ${master} of ${r}`);
      const held = [...actual].filter(([id, hs]) => hs.has(h) && !c.state.decommissioning.has(id)).length;
      if (held < r) sim.belowActual.push(`${when}: chunk ${h} held by ${held} of ${r}`);
    }
  };
  check('start');
  for (let round = 0; round < maxRounds; round++) {
    sim.rounds = round + 1;
    const before = usage(c, [...pending, ...landed]);
    const scan = c.scan();
    sim.maxMovesInFlight = Math.max(sim.maxMovesInFlight, c.repair.movesInFlight);
    check(`round ${round} after scan`);
    const work = c.takeAll();
    const copies = copiesIn(work);
    for (const { target, order } of copies) {
      const source = c.idOfAddr(order.source)!;
      if (!actual.get(source)?.has(order.handle)) sim.badCopies.push(`round ${round}: copy of ${order.handle} from ${source}, which does not hold it`);
      if (actual.get(target)?.has(order.handle)) sim.badCopies.push(`round ${round}: copy of ${order.handle} to ${target}, which holds it`);
      if (c.state.decommissioning.has(target)) sim.badCopies.push(`round ${round}: copy of ${order.handle} to decommissioning ${target}`);
      const m = { handle: order.handle, source, target, round };
      sim.moves.push(m);
      if (opts.checkEmptiest) {
        const min = Math.min(...before.values());
        if (before.get(target) !== min) sim.notEmptiest.push(`round ${round}: move of ${order.handle} to ${target} (${before.get(target)} B) while another holds ${min} B`);
        const max = Math.max(...before.values());
        if (before.get(source) !== max) sim.notEmptiest.push(`round ${round}: move of ${order.handle} from ${source} (${before.get(source)} B) while another holds ${max} B`);
      }
    }
    pending.push(...copies.map(({ target, order }) => ({ handle: order.handle, source: c.idOfAddr(order.source)!, target, round })));
    const load = new Map<string, number>();
    for (const p of pending) for (const id of [p.source, p.target]) load.set(id, (load.get(id) ?? 0) + 1);
    for (const [id, n] of load) if (n > c.limits.perServerCopies) sim.overServer.push(`round ${round}: ${id} in ${n} copies`);

    const deletes = deletesIn(work);
    for (const { server, handle } of deletes) {
      // A delete of a replica that is not surplus must be the second half of a move reported done.
      const surplus = [...actual].filter(([id, hs]) => hs.has(handle) && !c.state.decommissioning.has(id)).length > (wantedReplication(c).get(handle) ?? 0);
      const done = reported.some((m) => m.handle === handle && m.source === server);
      if (!done && !surplus) sim.earlyDeletes.push(`round ${round}: delete of ${handle} on ${server} before a copy elsewhere was reported`);
      actual.get(server)?.delete(handle);
      c.beat(server, { removed: [handle] });
    }
    check(`round ${round} after deletes`);
    // Last round's copies land now.
    const landing = pending.filter((p) => p.round < round);
    pending = pending.filter((p) => p.round === round);
    for (const p of landing) {
      actual.get(p.target)!.add(p.handle);
      c.beat(p.target, { added: [p.handle] });
      reported.push(p);
    }
    landed = landing.map((p) => ({ ...p, landed: true }));
    if (copies.length === 0 && deletes.length === 0 && pending.length === 0 && landing.length === 0 && scan.inFlight === 0) {
      sim.converged = true;
      break;
    }
    c.advance(1000, c.ids);
  }
  return sim;
}

/** Bytes per server and how far the fullest and emptiest are from the mean, as a share of it. */
function spread(c: Cluster): { bytes: Record<string, number>; over: number; under: number } {
  const u = usage(c);
  const mean = [...u.values()].reduce((a, b) => a + b, 0) / u.size;
  return { bytes: Object.fromEntries(u), over: Math.max(...u.values()) / mean - 1, under: 1 - Math.min(...u.values()) / mean };
}

function assertSafe(t: Tap, sim: Sim, c: Cluster): void {
  t.ok(sim.converged, `converged in ${sim.rounds} rounds`);
  t.same(sim.belowMaster, [], 'no chunk ever below its replication in the master\'s view (replicas not doomed)');
  t.same(sim.belowActual, [], 'no chunk ever held by fewer servers than its replication');
  t.same(sim.earlyDeletes, [], 'a move\'s source deletes only after the target reported the copy');
  t.same(sim.badCopies, [], 'every copy from a holder to a non-holder in service');
  t.same(sim.overServer, [], `no server in more than ${c.limits.perServerCopies} copies at once`);
  t.ok(sim.maxMovesInFlight <= c.limits.maxMovesInFlight, `at most ${sim.maxMovesInFlight} moves in flight (limit ${c.limits.maxMovesInFlight})`);
  for (const [h, r] of wantedReplication(c)) {
    const good = c.live(h).filter((id) => !c.state.decommissioning.has(id)).length;
    if (good !== r) t.fail(`chunk ${h} ends with ${good} good replicas, not ${r}`);
  }
  t.equal(c.repair.inFlightCount, 0, 'nothing left in flight');
  t.equal(c.repair.copiesFailed, 0, 'no copy failed');
}


t.test('balancing: an empty server joining gets moves until every server is within the threshold, never losing a replica', async (t) => {
  const c = new Cluster({ balanceThreshold: 0.1 });
  const handles = Array.from({ length: 30 }, (_, i) => c.file(`/d/f${i}`, 2)).flat();
  for (const id of ['s1', 's2', 's3']) c.register(id, handles);
  t.equal(c.scan().moves, 0, 'three servers holding everything: balanced');
  c.register('s4');
  const sim = simulate(c);
  assertSafe(t, sim, c);
  t.ok(sim.moves.length > 0, `moves were made (${sim.moves.length})`);
  t.ok(sim.moves.every((m) => m.target === 's4'), 'every move went to the new server');
  t.equal(c.repair.movesDone, sim.moves.length, 'every move counted done');
  t.equal(sim.maxMovesInFlight, c.limits.perServerCopies, 'the new server took as many at once as its copy limit allows');
  const end = spread(c);
  t.ok(end.over <= 0.1 && end.under <= 0.1, `within 10% of the mean: ${JSON.stringify(end)}`);
  t.equal(c.scan().moves, 0, 'and then no more moves');
});

t.test('balancing: two new servers, replication 2, default limits: safe, within limits, converged', async (t) => {
  const c = new Cluster({ balanceThreshold: 0.1 });
  const handles = Array.from({ length: 40 }, (_, i) => c.file(`/f${i}`, 3, 2)).flat();
  const ids = ['s1', 's2', 's3'];
  const holders = new Map<string, number[]>(ids.map((id) => [id, []]));
  handles.forEach((h, i) => {
    holders.get(ids[i % 3]!)!.push(h);
    holders.get(ids[(i + 1) % 3]!)!.push(h);
  });
  for (const id of ids) c.register(id, holders.get(id)!);
  c.register('s4');
  c.register('s5');
  const sim = simulate(c);
  assertSafe(t, sim, c);
  t.ok(sim.maxMovesInFlight > 2 && sim.maxMovesInFlight <= c.limits.maxMovesInFlight, `several moves at once, up to the limit (${sim.maxMovesInFlight})`);
  const end = spread(c);
  t.ok(end.over <= 0.1 && end.under <= 0.1, `within 10% of the mean: ${JSON.stringify(end)}`);
});

t.test('balancing: one move at a time goes from the fullest server to the emptiest', async (t) => {
  const c = new Cluster({ balanceThreshold: 0.1, maxMovesInFlight: 1 });
  const handles = Array.from({ length: 24 }, (_, i) => c.file(`/f${i}`, 1, 2)).flat();
  // Uneven on purpose: s1 holds everything, s2 most, s3 a few, s4 nothing.
  c.register('s1', handles);
  c.register('s2', handles.slice(0, 18));
  c.register('s3', handles.slice(18));
  c.register('s4');
  const sim = simulate(c, 400, { checkEmptiest: true });
  assertSafe(t, sim, c);
  t.ok(sim.moves.length > 3, `moves were made (${sim.moves.length})`);
  t.same(sim.notEmptiest, [], 'each move from a fullest server to an emptiest one');
  t.equal(sim.maxMovesInFlight, 1);
  const end = spread(c);
  t.ok(end.over <= 0.1 && end.under <= 0.1, `within 10% of the mean: ${JSON.stringify(end)}`);
});

t.test('balancing: the delete of the source is queued only once the target reports the copy, and goes to the source', async (t) => {
  const c = new Cluster({ balanceThreshold: 0.1, maxMovesInFlight: 1 });
  const handles = Array.from({ length: 10 }, (_, i) => c.file(`/f${i}`, 1, 1)).flat();
  c.register('s1', handles);
  c.register('s2');
  const scan = c.scan();
  t.equal(scan.moves, 1, 'one move');
  t.equal(c.repair.movesInFlight, 1);
  const work = c.takeAll();
  const [move] = copiesIn(work);
  t.equal(move?.target, 's2');
  t.equal(move?.order.source, Cluster.addr('s1'));
  t.same(deletesIn(work), [], 'no delete with the copy');
  t.ok(c.repair.awaits('s2', move!.order.handle), 'the copy is awaited');
  for (let i = 0; i < 3; i++) {
    c.advance(1000, c.ids);
    const again = c.scan();
    t.equal(again.moves, 0, `scan ${i}: the one move slot is taken`);
    t.same(deletesIn(c.takeAll()), [], `scan ${i}: still no delete before the report`);
    t.same(c.live(move!.order.handle), ['s1'], 'the only replica stays');
  }
  c.beat('s2', { added: [move!.order.handle] });
  t.same(c.live(move!.order.handle), ['s1', 's2'], 'two replicas while the move finishes');
  const settled = c.scan();
  t.equal(settled.surplusDeletes, 0, 'the move\'s delete is not a surplus delete');
  t.equal(c.repair.movesDone, 1);
  const after = c.takeAll();
  t.same(deletesIn(after), [{ server: 's1', handle: move!.order.handle }], 'now the source drops its replica');
  t.same(c.live(move!.order.handle), ['s2'], 'the master counts the replica on the target only');
  t.notOk(c.repair.awaits('s2', move!.order.handle), 'no longer awaited');
  t.equal(settled.moves, 1, 'and the next move is planned in the same scan');
  t.equal(copiesIn(after).length, 1);
});

t.test('balancing: with threshold 0 nothing moves, however uneven', async (t) => {
  const c = new Cluster({ balanceThreshold: 0 });
  const handles = Array.from({ length: 20 }, (_, i) => c.file(`/f${i}`, 1, 1)).flat();
  c.register('s1', handles);
  c.register('s2');
  c.register('s3');
  for (let i = 0; i < 3; i++) {
    const scan = c.scan();
    t.equal(scan.moves, 0);
    t.same(copiesIn(c.takeAll()), []);
    c.advance(1000, c.ids);
  }
  t.equal(c.repair.movesInFlight, 0);
  t.equal(c.repair.copiesOrdered, 0);
});

t.test('balancing: a chunk that cannot be placed anywhere (replication above the server count) does not hold it back', async (t) => {
  // s1 and s2 hold many replication-2 chunks, s3 and s4 nothing of those: uneven. One chunk
  // wants 5 replicas but there are only 4 servers: its copy can never be planned, and waiting
  // for it would stop balancing for good.
  const c = new Cluster({ balanceThreshold: 0.1 });
  const many = Array.from({ length: 12 }, (_, i) => c.file(`/f${i}`, 1, 2)).flat();
  const [wide] = c.file('/wide', 1, 5);
  c.register('s1', [...many, wide!]);
  c.register('s2', [...many, wide!]);
  c.register('s3', [wide!]);
  c.register('s4', [wide!]);
  const scan = c.scan();
  t.equal(scan.underReplicated, 1);
  t.equal(scan.ordered, 0, 'nowhere to copy it');
  t.ok(scan.moves > 0, `balancing goes on (${scan.moves} moves)`);
  t.ok(copiesIn(c.takeAll()).every(({ order }) => order.handle !== wide), 'no copy of the unplaceable chunk');
});

t.test('balancing: not while repair cannot place a copy for lack of slots', async (t) => {
  const c = new Cluster({ balanceThreshold: 0.1, maxInFlight: 1 });
  const many = Array.from({ length: 12 }, (_, i) => c.file(`/f${i}`, 1, 1)).flat();
  const [a, b] = c.file('/short', 2, 2);
  c.register('s1', [...many, a!, b!]);
  c.register('s2');
  c.register('s3');
  const scan = c.scan();
  t.equal(scan.underReplicated, 2);
  t.equal(scan.ordered, 1, 'the one cluster-wide slot goes to repair');
  t.equal(scan.moves, 0, 'the other short chunk still waits: no balancing');
  t.equal(c.repair.movesInFlight, 0);
});

t.test('balancing: a decommissioning server is neither the source nor the target of a move', async (t) => {
  const c = new Cluster({ balanceThreshold: 0.1 });
  const handles = Array.from({ length: 12 }, (_, i) => c.file(`/f${i}`, 1, 1)).flat();
  c.register('s1', handles.slice(0, 6));
  c.register('s2', handles.slice(6));
  c.register('s3'); // empty, but decommissioning: not a place for moves
  decommission(c, 's3');
  t.equal(c.scan().moves, 0, 'the two servers in service are even');
  t.same(copiesIn(c.takeAll()), []);

  const d = new Cluster({ balanceThreshold: 0.1 });
  const hs = Array.from({ length: 12 }, (_, i) => d.file(`/f${i}`, 1, 2)).flat();
  d.register('s1', hs);
  d.register('s2', hs.slice(0, 6));
  d.register('s3', hs.slice(6));
  d.register('s4', hs); // the fullest, but draining: its replicas do not count, nor move
  decommission(d, 's4');
  const sim = simulate(d);
  assertSafe(t, sim, d);
  t.ok(sim.moves.every((m) => m.source !== 's4' && m.target !== 's4'), 'no move touches s4');
  t.ok(d.live(hs[0]!).includes('s4'), 's4 keeps its replicas while it drains');
});

t.test('balancing: a move whose copy fails queues no delete', async (t) => {
  const setup = () => {
    const c = new Cluster({ balanceThreshold: 0.1, maxMovesInFlight: 1, copyTimeoutMs: 5_000 });
    const handles = Array.from({ length: 10 }, (_, i) => c.file(`/f${i}`, 1, 1)).flat();
    c.register('s1', handles);
    c.register('s2');
    t.equal(c.scan().moves, 1);
    const [move] = copiesIn(c.takeAll());
    return { c, h: move!.order.handle };
  };
  const expectNoDelete = (t: Tap, c: Cluster, h: number) => {
    t.equal(c.repair.copiesFailed, 1, 'the copy is counted failed');
    t.equal(c.repair.movesDone, 0, 'not a move done');
    t.same(deletesIn(c.takeAll()), [], 'no delete of the source');
    t.same(c.live(h), ['s1'], 'the source keeps the only replica');
  };

  t.test('reported failed by the target', async (t) => {
    const { c, h } = setup();
    c.repair.onCopyFailed('s2', [h]);
    t.equal(c.repair.movesInFlight, 0);
    t.notOk(c.repair.awaits('s2', h));
    c.scan();
    expectNoDelete(t, c, h);
  });

  t.test('the target dies', async (t) => {
    const { c, h } = setup();
    c.advance(DEAD + 1, ['s1']);
    c.scan();
    expectNoDelete(t, c, h);
  });

  t.test('the copy times out; a late report afterwards still leaves exactly one replica', async (t) => {
    const { c, h } = setup();
    c.advance(5_001, c.ids);
    c.scan(); // (and plans the next move)
    t.equal(c.repair.copiesFailed, 1, 'the copy is counted failed');
    t.equal(c.repair.movesDone, 0, 'not a move done');
    t.same(deletesIn(c.takeAll()), [], 'no delete of the source');
    t.same(c.live(h), ['s1'], 'the source keeps the only replica');
    c.beat('s2', { added: [h] }); // it finished after all
    c.scan();
    const deletes = deletesIn(c.takeAll()).filter((d) => d.handle === h);
    t.equal(deletes.length, 1, 'one of the two replicas goes (as a move done or as surplus)');
    t.equal(c.live(h).length, 1, 'one replica left');
    t.notOk(c.live(h).includes(deletes[0]!.server), 'not the one told to delete');
  });

  t.test('the source dies before the copy lands: the copy counts, nothing more to delete', async (t) => {
    const { c, h } = setup();
    c.advance(DEAD + 1, ['s2']);
    c.beat('s2', { added: [h] });
    c.scan();
    t.equal(c.repair.movesDone, 1);
    t.same(deletesIn(c.takeAll()).filter((d) => d.handle === h), [], 'no delete for the dead source');
    t.same(c.live(h), ['s2']);
  });
});

t.test('balancing: a move\'s source holds the chunk at the table\'s version', async (t) => {
  // Stale replicas (an older version, awaiting garbage collection) sit in the registry's
  // per-server chunk sets. A move must copy from a replica that can serve the current version,
  // and the replica it then deletes must be one that counted.
  const c = new Cluster({ balanceThreshold: 0.1 });
  const handles = Array.from({ length: 8 }, (_, i) => c.file(`/f${i}`, 1)).flat();
  for (const h of handles) c.state.chunks.setVersion(h, 2); // as an append would do
  c.register('s1', handles, { version: 1 }); // stale everywhere: garbage, not replicas
  for (const id of ['s2', 's3', 's4']) c.register(id, handles, { version: 2 });
  c.register('s5');
  const scan = c.scan();
  t.equal(scan.underReplicated, 0, 'the current replicas are enough');
  const copies = copiesIn(c.takeAll());
  t.ok(copies.length > 0, `moves ordered (${copies.length})`);
  const bad = copies.filter(({ order }) => !c.live(order.handle).includes(c.idOfAddr(order.source)!)).map(({ order }) => `${order.handle} from ${c.idOfAddr(order.source)}`);
  t.same(bad, [], 'every move copies from a live replica at the current version');
});

t.test('balancing: a full server whose chunks the emptiest already holds does not stop balancing of the others', async (t) => {
  // Capacities differ: s4 is ten times bigger, so it is the emptiest though it holds all of
  // s1's chunks. s1 (fullest, first by id among equals) has nothing s4 lacks; s2 and s3 do.
  const c = new Cluster({ balanceThreshold: 0.1 });
  const a = Array.from({ length: 10 }, (_, i) => c.file(`/a${i}`, 1, 2)).flat();
  const b = Array.from({ length: 10 }, (_, i) => c.file(`/b${i}`, 1, 2)).flat();
  const reg = (id: string, handles: number[], capacityBytes: number) => c.registry.register({
    id, addr: Cluster.addr(id), capacityBytes, freeBytes: capacityBytes / 2, usedBytes: capacityBytes / 2, activeWrites: 0, activeReads: 0, copyRateBytesPerSec: 0,
    chunks: handles.map((handle) => ({ handle, version: 1, length: CHUNK })),
  });
  reg('s1', a, 100);
  reg('s2', b, 100);
  reg('s3', b, 100);
  reg('s4', a, 1000);
  const scan = c.scan();
  t.equal(scan.underReplicated, 0);
  t.ok(scan.moves > 0, `s2 and s3 (each 30% full, the mean about 9%) move chunks to s4 (3% full): ${scan.moves} moves`);
});

t.test('balancing: not while a chunk still has a copy unplanned (its only source busy)', async (t) => {
  // X has one replica (on s1) of three. With one copy per server, s1 can feed one copy at a
  // time: X's second copy stays unplanned. A move ordered meanwhile occupies the one server X's
  // second copy will need once its first lands, so X waits at two replicas behind balancing.
  const c = new Cluster({ balanceThreshold: 0.1, perServerCopies: 1 });
  const [x] = c.file('/x', 1, 3);
  const many = Array.from({ length: 12 }, (_, i) => c.file(`/m${i}`, 1, 1)).flat();
  c.register('s1', [x!]);
  c.register('s2', many);
  c.register('s3');
  c.register('s4');
  const scan = c.scan();
  t.equal(scan.ordered, 1, 'one copy of X: its only source takes part in one copy at a time');
  t.equal(scan.moves, 0, 'X still needs a second copy: no balancing yet');
  const [first] = copiesIn(c.takeAll()).filter((x2) => x2.order.handle === x);
  c.beat(first!.target, { added: [x!] }); // X's first copy lands; any move is still in flight
  const next = c.scan();
  t.equal(next.ordered, 1, `X (now on s1 and ${first!.target}) gets its third replica at once`);
});

// ---- corrupt reports ----

t.test('corrupt: a replica reported corrupt is replaced, and the report is cleared once the chunk is healthy', async (t) => {
  const c = new Cluster();
  const [h, other] = c.file('/f', 2);
  for (const id of ['s1', 's2', 's3']) c.register(id, [h!, other!]);
  c.register('s4');
  c.registry.markCorrupt('s2', h!);
  t.equal(c.registry.corruptReports(h!), 1);
  t.same(c.live(h!), ['s1', 's3'], 'the corrupt replica no longer counts');
  let scan = c.scan();
  t.equal(scan.underReplicated, 1);
  t.equal(scan.ordered, 1, 'repair orders a copy');
  const [copy] = copiesIn(c.takeAll());
  t.equal(copy?.order.handle, h);
  t.ok(['s1.local:7000', 's3.local:7000'].includes(copy!.order.source), 'from a good replica');
  t.equal(c.registry.corruptReports(h!), 1, 'the report stays while the chunk is short');
  scan = c.scan();
  t.equal(c.registry.corruptReports(h!), 1, 'still short (copy in flight): still reported');
  c.beat(copy!.target, { added: [h!] });
  scan = c.scan();
  t.equal(scan.underReplicated, 0);
  t.equal(c.registry.corruptReports(h!), 0, 'healthy again: the report is history');
  t.same(c.registry.corruptHandles(), []);
});

t.test('corrupt: a report on a chunk that still has its replication elsewhere is cleared by the next scan', async (t) => {
  const c = new Cluster();
  const [h] = c.file('/f', 1);
  for (const id of ['s1', 's2', 's3', 's4']) c.register(id, [h!]);
  c.registry.markCorrupt('s4', h!);
  t.equal(c.registry.corruptReports(h!), 1);
  const scan = c.scan();
  t.equal(scan.ordered + scan.surplusDeletes, 0, 'three good replicas: nothing to do');
  t.equal(c.registry.corruptReports(h!), 0);
});

t.test('corrupt: every replica corrupt: missing, and the reports are kept', async (t) => {
  const c = new Cluster();
  const [h] = c.file('/f', 1);
  for (const id of ['s1', 's2']) c.register(id, [h!]);
  c.register('s3');
  c.registry.markCorrupt('s1', h!);
  c.registry.markCorrupt('s2', h!);
  const scan = c.scan();
  t.equal(scan.missing, 1);
  t.equal(scan.ordered, 0);
  t.equal(c.registry.corruptReports(h!), 2, 'kept: they tell missing from corrupt');
  c.scan();
  t.equal(c.registry.corruptReports(h!), 2, 'and kept across scans');
});

t.test('corrupt: the report of a chunk whose file was deleted is cleared by the next scan', async (t) => {
  const c = new Cluster();
  const [h] = c.file('/d/f', 1);
  const [keep] = c.file('/g', 1);
  for (const id of ['s1', 's2', 's3']) c.register(id, [h!, keep!]);
  c.registry.markCorrupt('s1', h!);
  c.registry.markCorrupt('s2', keep!);
  commit(c, { op: 'delete', path: '/d', recursive: true, nowMs: c.clock.now });
  t.notOk(c.state.chunks.has(h!));
  c.scan();
  t.equal(c.registry.corruptReports(h!), 0, 'the deleted file\'s chunk: report cleared');
  t.equal(c.registry.corruptReports(keep!), 1, 'the live short chunk keeps its report');
  t.same(c.registry.corruptHandles(), [keep]);
});

t.test('corrupt: a report on a chunk of a file being written stays until the file is complete and healthy', async (t) => {
  const c = new Cluster();
  const { writeId, handles } = c.startWrite('/f', 1);
  for (const id of ['s1', 's2', 's3', 's4']) c.register(id, handles);
  c.registry.markCorrupt('s4', handles[0]!);
  c.scan();
  t.equal(c.registry.corruptReports(handles[0]!), 1, 'not repair\'s business yet');
  c.completeWrite(writeId, handles);
  c.scan();
  t.equal(c.registry.corruptReports(handles[0]!), 0, 'complete with three good replicas: cleared');
});

// ---- awaits ----

t.test('awaits(server, handle): true exactly while a copy of handle to that server is in flight', async (t) => {
  const c = new Cluster({ copyTimeoutMs: 5_000 });
  const [h, other] = c.file('/f', 2);
  for (const id of ['s1', 's2']) c.register(id, [h!, other!]);
  c.register('s3', [other!]);
  c.register('s4');
  c.register('s5');
  const all = () => c.ids.filter((id) => c.repair.awaits(id, h!));
  t.same(all(), [], 'nothing before a scan');
  c.scan();
  const target = c.ids.find((id) => c.repair.awaits(id, h!));
  t.ok(target && ['s3', 's4', 's5'].includes(target), `awaited on the ordered target (${target})`);
  t.same(all(), [target], 'only there');
  t.notOk(c.repair.awaits(target!, other!), 'not for a handle with nothing in flight');
  t.notOk(c.repair.awaits('s1', h!), 'not on the source');
  c.takeAll();
  t.ok(c.repair.awaits(target!, h!), 'still awaited once collected');
  c.beat(target!, { added: [h!] });
  t.ok(c.repair.awaits(target!, h!), 'still awaited when the report arrives (the heartbeat uses this to plan at once)');
  c.scan();
  t.notOk(c.repair.awaits(target!, h!), 'settled: no longer awaited');
  t.same(all(), []);

  // Failure ends it too: reported, or timed out.
  const d = new Cluster({ copyTimeoutMs: 5_000 });
  const [x] = d.file('/x', 1);
  for (const id of ['s1', 's2']) d.register(id, [x!]);
  d.register('s3');
  d.scan();
  t.ok(d.repair.awaits('s3', x!));
  d.repair.onCopyFailed('s3', [x!]);
  t.notOk(d.repair.awaits('s3', x!), 'reported failed: not awaited');
  d.scan();
  t.ok(d.repair.awaits('s3', x!), 'planned again: awaited again');
  d.advance(5_001, d.ids);
  d.scan(); // times out, and is planned again in the same scan
  t.equal(d.repair.copiesFailed, 2);
  t.ok(d.repair.awaits('s3', x!), 'awaited by the new copy');
  d.repair.clear();
  t.notOk(d.repair.awaits('s3', x!), 'clear() forgets it');

  // A balancing move is awaited like any copy.
  const e = new Cluster({ balanceThreshold: 0.1 });
  const hs = Array.from({ length: 6 }, (_, i) => e.file(`/f${i}`, 1, 1)).flat();
  e.register('s1', hs);
  e.register('s2');
  e.scan();
  const moved = hs.filter((hh) => e.repair.awaits('s2', hh));
  t.equal(moved.length, e.repair.movesInFlight, 'each move in flight is awaited on its target');
  t.ok(moved.length > 0);
});

t.test('balancing: moves in flight count as done, so later scans do not overshoot', async (t) => {
  const c = new Cluster({ balanceThreshold: 0.1, maxMovesInFlight: 20, perServerCopies: 20 });
  const handles = Array.from({ length: 10 }, (_, i) => c.file(`/f${i}`, 1, 1)).flat();
  c.register('s1', handles);
  c.register('s2');
  const first = c.scan();
  t.equal(first.moves, 5, 'half the chunks go: then both servers hold the same');
  const copies = copiesIn(c.takeAll());
  for (let i = 0; i < 3; i++) {
    c.advance(1000, c.ids);
    t.equal(c.scan().moves, 0, `scan ${i} with the moves in flight: no more`);
  }
  for (const { target, order } of copies) c.beat(target, { added: [order.handle] });
  c.scan();
  for (const { server, handle } of deletesIn(c.takeAll())) c.beat(server, { removed: [handle] });
  t.equal(c.repair.movesDone, 5);
  t.same(spread(c).bytes, { s1: 15, s2: 15 });
  t.equal(c.scan().moves, 0, 'and none back');
});

t.test('balancing: a move whose chunk needs its source by the time the copy lands keeps the source', async (t) => {
  const setup = () => {
    const c = new Cluster({ balanceThreshold: 0.1, maxMovesInFlight: 1 });
    const handles = Array.from({ length: 10 }, (_, i) => c.file(`/f${i}`, 1, 1)).flat();
    c.register('s1', handles);
    c.register('s2');
    t.equal(c.scan().moves, 1);
    const [move] = copiesIn(c.takeAll());
    t.equal(move?.target, 's2');
    const path = `/f${handles.indexOf(move!.order.handle)}`;
    return { c, h: move!.order.handle, path };
  };

  t.test('replication raised meanwhile: the move becomes the repair copy', async (t) => {
    const { c, h, path } = setup();
    setrep(c, path, 2);
    const mid = c.scan();
    t.equal(mid.ordered, 0, 'the move in flight already covers the missing replica');
    c.beat('s2', { added: [h] });
    c.scan();
    t.same(deletesIn(c.takeAll()).filter((d) => d.handle === h), [], 'no delete: both replicas are needed');
    t.same(c.live(h), ['s1', 's2']);
  });

  t.test('the target starts draining meanwhile: its copy does not count, the source stays', async (t) => {
    const { c, h } = setup();
    decommission(c, 's2');
    c.beat('s2', { added: [h] });
    c.scan();
    t.same(deletesIn(c.takeAll()).filter((d) => d.handle === h), [], 'no delete of the only good replica');
    t.ok(c.live(h).includes('s1'));
  });

  t.test('the source starts draining meanwhile: it goes once the copy lands', async (t) => {
    const { c, h } = setup();
    decommission(c, 's1');
    c.beat('s2', { added: [h] });
    c.scan();
    t.same(deletesIn(c.takeAll()).filter((d) => d.handle === h), [{ server: 's1', handle: h }], 'the good copy on s2 is enough');
    t.same(c.live(h), ['s2']);
  });
});

t.test('balancing: a move never targets a server without room for the chunk', async (t) => {
  // Use is measured as chunk bytes held over capacity, so a server whose disk is full of
  // something else (or shared with another server) looks empty. Repair's place() checks free
  // space; a move must too, or its copy fails and the same move is planned again and again.
  const c = new Cluster({ balanceThreshold: 0.1, copyTimeoutMs: 5_000 });
  const handles = Array.from({ length: 10 }, (_, i) => c.file(`/f${i}`, 1, 1)).flat();
  c.register('s1', handles);
  c.register('s2', [], { freeBytes: 0 }); // holds no chunk, has no room either
  const targets: string[] = [];
  for (let round = 0; round < 3; round++) {
    c.scan();
    targets.push(...copiesIn(c.takeAll()).map((x) => x.target));
    c.advance(5_001, c.ids); // nothing lands: the copies time out
  }
  t.comment(`move targets over three timeouts: ${targets.join(',') || 'none'}`);
  t.same(targets.filter((id) => id === 's2'), [], 'no move to the full server');
  t.equal(c.repair.copiesFailed, 0, 'so no copies fail');
});

t.test('a server that re-registers before collecting a surplus delete: the delete is void and planned afresh', async (t) => {
  const c = new Cluster();
  const [h] = c.file('/f', 1, 3);
  for (const id of servers(4)) c.register(id, [h!], { freeBytes: id === 's1' ? CAPACITY / 10 : CAPACITY / 2 });
  t.equal(c.scan().surplusDeletes, 1, 'four replicas of three: one goes');
  t.same(c.live(h!), ['s2', 's3', 's4'], 'the master stops counting the fullest server\'s replica at once');
  // s1 restarts and sends a full report (it still holds the chunk) before its next heartbeat.
  c.register('s1', [h!]);
  c.repair.forgetServer('s1');
  t.same(c.repair.takeFor('s1'), { copies: [], deletes: [] }, 'the queued delete is void: run now, it would go unreported');
  t.same(c.live(h!), ['s1', 's2', 's3', 's4'], 'the report counts the replica again');
  t.equal(c.scan().surplusDeletes, 1, 'the next scan plans the delete afresh');
  const work = c.repair.takeFor('s1');
  t.same(work.deletes, [h], 'and hands it out');
  t.same(c.live(h!), ['s2', 's3', 's4']);
});

t.test('takeFor hands out at most maxDeletes deletes; the rest wait for the next heartbeat', async (t) => {
  const c = new Cluster();
  const hs = Array.from({ length: 5 }, (_, i) => c.file(`/f${i}`, 1, 3)).flat();
  for (const id of servers(4)) c.register(id, hs, { freeBytes: id === 's1' ? CAPACITY / 10 : CAPACITY / 2 });
  t.equal(c.scan().surplusDeletes, 5, 'one surplus replica per chunk');
  const first = c.repair.takeFor('s1', 2);
  t.equal(first.deletes.length, 2, 'two now');
  const rest = c.repair.takeFor('s1', 10);
  t.equal(rest.deletes.length, 3, 'the other three next time');
  t.same([...first.deletes, ...rest.deletes].sort((a, b) => a - b), [...hs].sort((a, b) => a - b), 'each exactly once');
  t.same(c.repair.takeFor('s1', 10).deletes, [], 'nothing left');
  t.equal(c.scan().surplusDeletes, 0, 'nothing is planned twice');
});

t.test('a copy to a server that caps its copy traffic gets the time the cap costs before it counts as failed', async (t) => {
  // 1 byte/s, 4-byte chunks, 2 copies per server: the cap alone costs 8 s on top of the timeout.
  const c = new Cluster({ copyTimeoutMs: 1000 });
  const [h] = c.file('/f', 1, 3);
  c.register('s1', [h!]);
  c.register('s2', [h!]);
  c.register('s3', [], { copyRateBytesPerSec: 1 });
  t.equal(c.scan().ordered, 1, 'one copy, to the capped server (the only one without the chunk)');
  c.advance(5_000, c.ids);
  c.scan();
  t.equal(c.repair.copiesFailed, 0, 'past the plain timeout but within what the cap costs: still running');
  c.advance(5_000, c.ids);
  c.scan();
  t.equal(c.repair.copiesFailed, 1, 'past both: failed, and planned again');
});

// ---- scans in slices ----

/**
 * Slicing for tests, without real time: a pause point every `step` units of work, and a clock
 * that reads one past the budget at each, so the scan pauses at every one. `between` runs in
 * each pause (the n-th, from 1), where other work would.
 */
function everyStep(step: number, between: (n: number) => void = () => {}): SliceOptions & { pauses: () => number } {
  let tick = 0;
  let pauses = 0;
  return {
    step, sliceMs: 1, now: () => tick++, pauses: () => pauses,
    pause: async () => between(++pauses),
  };
}

/** A small deterministic generator (mulberry32), so that random clusters can be built twice alike. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = Math.imul(a ^ (a >>> 15), a | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

/** Placement jitters with Math.random: the same numbers for both scans keep their placements alike. */
function withRandom<T>(seed: number, fn: () => T): T {
  const saved = Math.random;
  Math.random = seeded(seed);
  try {
    return fn();
  } finally {
    Math.random = saved;
  }
}

/**
 * A cluster drawn from `seed`: 4 to 7 servers of different fullness, one of them dead and one
 * perhaps draining, files of 1 to 3 chunks with replication 1 to 4 (some still being written),
 * each chunk on 0 to 5 servers: missing, under-, fully and over-replicated chunks together.
 */
function randomCluster(seed: number): Cluster {
  const r = seeded(seed);
  const pick = (n: number) => Math.floor(r() * n);
  const c = new Cluster({ perServerCopies: 1 + pick(3), maxInFlight: 3 + pick(8), balanceThreshold: r() < 0.5 ? 0 : 0.1 });
  const ids = servers(4 + pick(4));
  const held = new Map(ids.map((id) => [id, [] as number[]]));
  for (let i = 0; i < 30 + pick(20); i++) {
    const path = `/d${i % 3}/f${i}`;
    const chunks = 1 + pick(3);
    const replication = 1 + pick(4);
    const handles = r() < 0.1 ? c.startWrite(path, chunks, replication).handles : c.file(path, chunks, replication);
    for (const h of handles) for (const id of ids) if (r() < 0.45) held.get(id)!.push(h);
  }
  for (const id of ids) c.register(id, held.get(id), { freeBytes: Math.floor(CAPACITY * (0.1 + 0.8 * r())) });
  c.advance(DEAD + 1, ids.slice(1)); // s1 goes silent
  if (r() < 0.5) decommission(c, ids[1 + pick(ids.length - 1)]!);
  return c;
}

/** Lands every copy handed out and carries out every delete, as the servers' next heartbeats would report. */
function carryOut(c: Cluster, work: Map<string, Work>): void {
  for (const { target, order } of copiesIn(work)) c.beat(target, { added: [order.handle] });
  for (const { server, handle } of deletesIn(work)) c.beat(server, { removed: [handle] });
}

t.test('a scan in slices orders exactly what the one-pass scan orders, round after round', async (t) => {
  const seen = { surplusDeletes: 0, moves: 0, missing: 0, decommissionRemaining: 0 };
  for (const seed of [1, 2, 3, 4, 5, 6, 7, 8]) {
    const whole = randomCluster(seed);
    const sliced = randomCluster(seed);
    for (let round = 0; round < 12; round++) {
      const expected = withRandom(seed * 100 + round, () => whole.scan());
      const opts = everyStep(2);
      const saved = Math.random;
      Math.random = seeded(seed * 100 + round);
      const got = await sliced.scanInSlices(opts).finally(() => (Math.random = saved));
      t.same(got, expected, `seed ${seed}, round ${round}: same counts`);
      seen.surplusDeletes += expected.surplusDeletes;
      seen.moves += expected.moves;
      seen.missing += expected.missing;
      seen.decommissionRemaining += Object.values(expected.decommissionRemaining).reduce((a, n) => a + n, 0);
      t.ok(opts.pauses() > 10, `seed ${seed}, round ${round}: the scan paused (${opts.pauses()} times)`);
      const want = whole.takeAll();
      const have = sliced.takeAll();
      t.same(have, want, `seed ${seed}, round ${round}: same copies and deletes, to the same servers`);
      carryOut(whole, want);
      carryOut(sliced, have);
      whole.advance(1000, whole.ids.slice(1));
      sliced.advance(1000, sliced.ids.slice(1));
    }
    t.ok(whole.repair.copiesOrdered > 0, `seed ${seed}: copies were ordered (${whole.repair.copiesOrdered})`);
  }
  for (const [what, n] of Object.entries(seen)) t.ok(n > 0, `the clusters between them had ${what} (${n})`);
});

/**
 * A cluster where /a's chunk and /b's chunk lack a replica and /c's has one too many, with
 * enough other files that a scan pauses many times; s4 and s5 have room for copies.
 */
function raceCluster(): { c: Cluster; a: number; b: number; over: number } {
  const c = new Cluster({ perServerCopies: 8 });
  const [a] = c.file('/x/a', 1);
  const [b] = c.file('/x/b', 1);
  const [over] = c.file('/x/c', 1);
  const rest = Array.from({ length: 40 }, (_, i) => c.file(`/y/f${i}`, 1)[0]!);
  c.register('s1', [a!, b!, over!, ...rest]);
  c.register('s2', [a!, b!, over!, ...rest]);
  c.register('s3', [over!, ...rest]);
  c.register('s4', [over!]);
  c.register('s5');
  return { c, a: a!, b: b!, over: over! };
}

t.test('a scan in slices: a chunk deleted, re-versioned or given more replication between slices gets no order', async (t) => {
  const dry = raceCluster();
  const dryOpts = everyStep(3);
  await dry.c.scanInSlices(dryOpts);
  const pauses = dryOpts.pauses();
  t.ok(pauses > 20, `the scan pauses ${pauses} times`);
  const undisturbed = dry.c.takeAll();
  t.same(copiesIn(undisturbed).map((x) => x.order.handle).sort((x, y) => x - y), [dry.a, dry.b], 'undisturbed: copies of /x/a and /x/b');
  t.same(deletesIn(undisturbed).map((x) => x.handle), [dry.over], 'undisturbed: a replica of /x/c dropped');
  let before = 0;
  for (let k = 1; k <= pauses; k++) {
    const { c, a, b, over } = raceCluster();
    // What the scan decided before the changes stands, as it would had the changes come just after a scan.
    let decided = { a: false, b: false, over: false };
    const scan = await c.scanInSlices(everyStep(3, (n) => {
      if (n !== k) return;
      decided = { a: c.ids.some((id) => c.repair.awaits(id, a)), b: c.ids.some((id) => c.repair.awaits(id, b)), over: c.live(over).length < 4 };
      commit(c, { op: 'delete', path: '/x/a', recursive: false, nowMs: c.clock.now });
      c.state.chunks.setVersion(b, 2);
      setrep(c, '/x/c', 4);
    }));
    if (!scan) t.fail(`changes at pause ${k}: the scan did not run to the end`);
    const work = c.takeAll();
    const copied = copiesIn(work).map((x) => x.order.handle);
    if (!decided.a && copied.includes(a)) t.fail(`changes at pause ${k}: a copy of deleted /x/a ordered`);
    if (!decided.b && copied.includes(b)) t.fail(`changes at pause ${k}: a copy of /x/b's chunk at its old version ordered`);
    if (!decided.over && deletesIn(work).some((d) => d.handle === over)) t.fail(`changes at pause ${k}: a replica of /x/c dropped though it now wants 4`);
    if (!decided.a && !decided.b && !decided.over) before++;
  }
  t.ok(before > pauses / 2, `${before} of ${pauses} pauses came before any of the three was decided: none of them got an order`);
});

t.test('a scan in slices never runs more than its budget (plus one step of work) without pausing', async (t) => {
  const c = new Cluster({ balanceThreshold: 0.1 });
  const handles = Array.from({ length: 150 }, (_, i) => c.file(`/d${i % 7}/f${i}`, 1 + (i % 2))).flat();
  // Under-replicated, over-replicated and unevenly spread: every phase has work.
  c.register('s1', handles);
  c.register('s2', handles.filter((h) => h % 3 !== 0));
  c.register('s3', handles.filter((h) => h % 5 === 0));
  c.register('s4', handles.filter((h) => h % 7 === 0));
  c.register('s5');
  // The fake clock moves only as the scan works: 0.1 ms per replica lookup.
  let clock = 0;
  const lookups = c.registry.liveReplicas.bind(c.registry);
  c.registry.liveReplicas = (h, v) => {
    clock += 0.1;
    return lookups(h, v);
  };
  const step = 4;
  const sliceMs = 2;
  let resumedAt = 0;
  let longest = 0;
  let pauses = 0;
  const scan = await c.scanInSlices({
    step, sliceMs, now: () => clock,
    pause: async () => {
      pauses++;
      longest = Math.max(longest, clock - resumedAt);
      resumedAt = clock;
    },
  });
  longest = Math.max(longest, clock - resumedAt);
  t.ok(scan && scan.ordered > 0 && scan.surplusDeletes > 0, 'the scan ordered copies and dropped surplus replicas');
  t.ok(pauses >= Math.floor(clock / (sliceMs + step * 0.1)), `${pauses} pauses over ${clock.toFixed(1)} ms of work`);
  t.ok(longest <= sliceMs + step * 0.1 + 1e-9, `the longest slice took ${longest.toFixed(1)} ms of the fake clock (budget ${sliceMs} ms)`);

  // Counted in lookups: at most one step of work between pauses, whatever the clock says.
  const d = new Cluster();
  const many = Array.from({ length: 200 }, (_, i) => d.file(`/f${i}`, 1)[0]!);
  d.register('s1', many);
  d.register('s2', many);
  d.register('s3');
  let calls = 0;
  const lookup = d.registry.liveReplicas.bind(d.registry);
  d.registry.liveReplicas = (h, v) => {
    calls++;
    return lookup(h, v);
  };
  const perSlice: number[] = [];
  let before = 0;
  await d.scanInSlices(everyStep(5, () => {
    perSlice.push(calls - before);
    before = calls;
  }));
  perSlice.push(calls - before);
  t.ok(calls >= 400, `${calls} replica lookups in all (each chunk classified, then each candidate checked again)`);
  t.ok(Math.max(...perSlice) <= 5, `at most 5 lookups between two pauses (most: ${Math.max(...perSlice)})`);
});

t.test('a scan in slices that resumes without leadership orders nothing', async (t) => {
  const dry = raceCluster();
  const dryOpts = everyStep(3);
  await dry.c.scanInSlices(dryOpts);
  t.ok(copiesIn(dry.c.takeAll()).length > 0, 'undisturbed, the scan orders copies');
  for (let k = 1; k <= dryOpts.pauses(); k++) {
    const { c } = raceCluster();
    let leader = true;
    // As MasterService does: a leadership change clears the scheduler, and the scan is told to stop.
    const scan = await c.scanInSlices({
      ...everyStep(3, (n) => {
        if (n !== k) return;
        leader = false;
        c.repair.clear();
      }),
      proceed: () => leader,
    });
    t.equal(scan, undefined, `leadership lost at pause ${k}: the scan ended early`);
    t.same(c.takeAll(), new Map(c.ids.map((id) => [id, { copies: [], deletes: [] }])), `leadership lost at pause ${k}: nothing to hand out`);
    t.same(c.repair.last, { underReplicated: 0, missing: 0, ordered: 0, moves: 0, inFlight: 0, surplusDeletes: 0, decommissionRemaining: {} }, `leadership lost at pause ${k}: no scan recorded`);
  }
  // Without the scheduler cleared, only what was ordered before the pause remains, and nothing after it.
  const { c } = raceCluster();
  let leader = true;
  const early = await c.scanInSlices({ ...everyStep(3, () => (leader = false)), proceed: () => leader });
  t.equal(early, undefined, 'stopped at its first pause');
  t.same(copiesIn(c.takeAll()), [], 'the walk had just begun: nothing ordered');
});

t.test('a scan in slices: one at a time, and none goes on over a replaced state', async (t) => {
  const { c } = raceCluster();
  let second: Promise<unknown> | undefined;
  const first = c.scanInSlices(everyStep(3, (n) => {
    if (n === 1) second = c.scanInSlices(everyStep(3));
  }));
  t.ok(await first, 'the first scan ran to the end');
  t.equal(await second, undefined, 'a scan asked for meanwhile was skipped');
  t.throws(() => withRandom(1, () => {
    void c.scanInSlices(everyStep(3));
    return c.scan();
  }), /already running/, 'nor does a one-pass scan start while one runs');

  const fresh = raceCluster();
  let state = fresh.c.state;
  const scan = await scanInSlices(fresh.c.repair, () => state, everyStep(3, (n) => {
    if (n === 5) state = MasterState.restore(state.snapshot());
  }));
  t.equal(scan, undefined, 'a snapshot installed meanwhile ends the scan');
  t.same(copiesIn(fresh.c.takeAll()), [], 'nothing ordered');
});
