import type { PlannedCopy } from '../common/protocol.js';
import { inFullestRacks, isMisplaced, moveKeepsRule, planRackFixes, type MisplacedChunk } from './racks.js';
import type { Registry } from './registry.js';
import type { FileNode, MasterState, Node } from './state.js';

export interface RepairLimits {
  /** Copies one server takes part in at once, as source or target: repair must not starve clients. */
  perServerCopies: number;
  /** Copies in flight across the cluster. */
  maxInFlight: number;
  /**
   * A copy's own time: the target gets it in the order (CopyOrder.timeoutMs, plus what its rate
   * cap costs) and gives up once it has passed since the order arrived.
   */
  copyTimeoutMs: number;
  /**
   * How much longer than the copy's own time the master waits for its news before taking it as
   * failed and planning it again: a heartbeat to collect the order and one to report the replica
   * (the core passes its dead timeout, at least three heartbeat intervals).
   */
  copyReportSlackMs: number;
  /**
   * Balancing starts when a server's use (bytes held / capacity) differs from the cluster's
   * mean by more than this share of the mean (HDFS's balancer uses 10 points of capacity; a
   * share of the mean also works for small clusters on one shared disk). 0 turns balancing off.
   */
  balanceThreshold: number;
  /** Balancing moves in flight at once: low, so moving data never competes much with clients or repair. */
  maxMovesInFlight: number;
  /**
   * Test only, the leader simulator's planted bug: surplus trimming counts one replica too many
   * as surplus, so it takes chunks below their replication. test/master/leader-sim.test.ts
   * checks that the simulator catches it.
   */
  unsafeSurplusOffByOne?: boolean;
}

export const REPAIR_DEFAULTS: RepairLimits = { perServerCopies: 2, maxInFlight: 64, copyTimeoutMs: 120_000, copyReportSlackMs: 0, balanceThreshold: 0.1, maxMovesInFlight: 4 };

/** A surplus delete waiting for its server's heartbeat: the replica, and the file it was surplus for. */
interface QueuedDelete { server: string; version: number; file: FileNode }

/** A copy ordered and not yet confirmed; `moveFrom` marks a balancing move (that replica goes after). */
interface InFlight { target: string; source: string; startedMs: number; moveFrom?: string; deadlineMs?: number }

export interface RepairScan {
  underReplicated: number;
  missing: number;
  /** Copies ordered in this scan. */
  ordered: number;
  /** Balancing moves ordered in this scan. */
  moves: number;
  inFlight: number;
  surplusDeletes: number;
  /** Per decommissioning server: its chunks that still lack their replication elsewhere. */
  decommissionRemaining: Record<string, number>;
}

/**
 * handle → the finished file it belongs to, for every chunk repair looks after. The file, not
 * its replication, as setrep changes a file in place, and a sliced scan decides slices after it
 * walked past the file; version and length are read from the chunk table when they are used.
 * Kept as one small Map per span of handles: one Map of a million chunks rehashes all of them
 * at once whenever it grows, tens of milliseconds in the middle of a slice. A span holds at most
 * SPAN handles, so no Map grows past that, whatever order files are walked in.
 */
class WantedChunks {
  private static readonly SPAN = 16_384;
  private readonly spans = new Map<number, Map<number, FileNode>>();

  get(handle: number): FileNode | undefined {
    return this.spans.get(Math.floor(handle / WantedChunks.SPAN))?.get(handle);
  }

  set(handle: number, file: FileNode): void {
    const k = Math.floor(handle / WantedChunks.SPAN);
    let span = this.spans.get(k);
    if (!span) this.spans.set(k, (span = new Map()));
    span.set(handle, file);
  }

  /** The Maps themselves: a scan pauses between entries, and a generator per entry would cost more than the Maps. */
  parts(): IterableIterator<Map<number, FileNode>> {
    return this.spans.values();
  }
}

/** An under-replicated chunk, as classified; what it needs is worked out again when it is ordered. */
interface Candidate { handle: number; version: number; good: number; file: FileNode }

/** Units of work (files walked, chunks checked, candidates sorted) between a scan's pause points. */
export const SCAN_STEP = 256;

/** Counts units of work; every `step`th is a point where a sliced scan may pause. */
class Work {
  private n = 0;
  constructor(readonly step: number) {}

  due(): boolean {
    return ++this.n % this.step === 0;
  }
}

/**
 * Every chunk of a finished file, with its file: the chunks repair and balancing look after.
 * Directories are walked through their Maps' own iterators, which stay valid while entries come
 * and go between slices (an entry added meanwhile may be seen or not; the next scan sees it).
 * Repair does not depend on the order, so names are not sorted: sorting a huge directory's names
 * would be one long stretch.
 */
function* finishedChunks(state: MasterState, wanted: WantedChunks, work: Work): Generator<void> {
  const dirs: Iterator<Node>[] = [state.root.children.values()];
  while (dirs.length > 0) {
    if (work.due()) yield;
    const next = dirs[dirs.length - 1]!.next();
    if (next.done) {
      dirs.pop();
      continue;
    }
    const node = next.value;
    if (node.type === 'dir') dirs.push(node.children.values());
    else if (node.state === 'complete') {
      for (const h of node.chunks) {
        if (work.due()) yield;
        if (state.chunks.has(h)) wanted.set(h, node);
      }
    }
  }
}

/**
 * `items` sorted by `cmp` (a total order) in bounded steps: runs of `step` items are sorted,
 * then merged pairwise, with a pause point every `step` items placed. Sorting hundreds of
 * thousands of candidates at once (a server died) would stall the loop for a long while.
 */
function* sortInSteps<T>(items: T[], cmp: (a: T, b: T) => number, step: number): Generator<void, T[]> {
  const n = items.length;
  let from = items;
  for (let lo = 0; lo < n; lo += step) {
    const run = from.slice(lo, lo + step).sort(cmp);
    for (let i = 0; i < run.length; i++) from[lo + i] = run[i]!;
    yield;
  }
  let to = new Array<T>(n);
  for (let width = step; width < n; width *= 2) {
    let placed = 0;
    for (let lo = 0; lo < n; lo += 2 * width) {
      const mid = Math.min(lo + width, n);
      const hi = Math.min(lo + 2 * width, n);
      let i = lo, j = mid;
      for (let k = lo; k < hi; k++) {
        to[k] = i < mid && (j >= hi || cmp(from[i]!, from[j]!) <= 0) ? from[i++]! : from[j++]!;
        if (++placed % step === 0) yield;
      }
    }
    [from, to] = [to, from];
  }
  return from;
}

/**
 * The leader's re-replication planner (volatile, like the registry). Each scan finds chunks of
 * finished files with fewer good replicas than their file's replication (replicas on a
 * decommissioning server do not count), most urgent (fewest replicas) first, and orders copies
 * from a live replica to a new server, within per-server and cluster-wide limits. Orders wait
 * here until the target's next heartbeat collects them. Chunks with more good replicas than
 * wanted (a dead server came back, replication lowered) lose one replica per scan, from the
 * fullest server. When nothing needs repair, servers whose use strays from the mean exchange
 * replicas: copy to the emptier one first, delete from the fuller one only once the copy is
 * confirmed, so no chunk ever has fewer replicas than it should. The master scans in slices of a
 * few milliseconds (scanSteps, run by master/leader/slices.ts), so that a large namespace does not stall its event loop.
 */
export class RepairScheduler {
  private readonly inFlight = new Map<number, InFlight[]>();
  private readonly orders = new Map<string, PlannedCopy[]>();
  private readonly deletes = new Map<string, number[]>();
  /**
   * Handles with a delete queued on some server (at most one at a time: one surplus replica per
   * scan), with what it was queued for: takeFor checks it again before the delete goes out.
   */
  private readonly deleting = new Map<number, QueuedDelete>();
  /** A scan is under way (scans in slices take a while): another is not started meanwhile. */
  private scanning = false;
  /** Live servers per rack outside decommissioning, as the current scan started (the rack rule's denominator). */
  private rackSizes = new Map<string, number>();
  copiesOrdered = 0;
  copiesDone = 0;
  copiesFailed = 0;
  bytesCopied = 0;
  movesDone = 0;
  lastScanMs = 0;
  last: RepairScan = { underReplicated: 0, missing: 0, ordered: 0, moves: 0, inFlight: 0, surplusDeletes: 0, decommissionRemaining: {} };

  constructor(private readonly registry: Registry, private readonly limits: RepairLimits, private readonly now: () => number) {}

  get inFlightCount(): number {
    let n = 0;
    for (const list of this.inFlight.values()) n += list.length;
    return n;
  }

  /** Copy orders waiting for their target's next heartbeat to collect them. */
  get queuedCount(): number {
    let n = 0;
    for (const list of this.orders.values()) n += list.length;
    return n;
  }

  get movesInFlight(): number {
    let n = 0;
    for (const list of this.inFlight.values()) for (const f of list) if (f.moveFrom) n++;
    return n;
  }

  /** Whether `handle` has a copy in flight to `serverId` (its report settles it). */
  awaits(serverId: string, handle: number): boolean {
    return this.inFlight.get(handle)?.some((f) => f.target === serverId) ?? false;
  }

  /** Forgets everything (leadership lost or gained: locations are relearned from reports). */
  clear(): void {
    this.inFlight.clear();
    this.orders.clear();
    this.deletes.clear();
    this.deleting.clear();
  }

  /**
   * The server re-registered (restarted, or the master asked for a full report): deletes and
   * copies queued for it and not yet collected are void. Its report puts back any replica a
   * queued delete had removed here, and that delete, run later, would go unreported; the next
   * scan plans afresh from the report.
   */
  forgetServer(serverId: string): void {
    for (const h of this.deletes.get(serverId) ?? []) this.deleting.delete(h);
    this.deletes.delete(serverId);
    for (const o of this.orders.get(serverId) ?? []) {
      const rest = (this.inFlight.get(o.handle) ?? []).filter((f) => f.target !== serverId);
      if (rest.length > 0) this.inFlight.set(o.handle, rest);
      else this.inFlight.delete(o.handle);
    }
    this.orders.delete(serverId);
  }

  /**
   * What the server should do now, collected by its heartbeat reply: every copy order, and at
   * most `maxDeletes` deletes (the rest wait for the next heartbeat). A delete handed out is
   * removed from the locations again, in case a report restored the replica meanwhile.
   *
   * Given the state, each surplus delete is checked again first: between the scan that queued
   * it and this heartbeat, another replica may have been found corrupt, died, or started
   * draining, or the file's replication raised, and the delete would then take the chunk below
   * its replication (the leader simulator's first runs found this). Such a delete is
   * dropped and the replica counted again; the next scan decides afresh. Copies ordered to a
   * server that has started draining since are withdrawn.
   */
  takeFor(serverId: string, maxDeletes = Infinity, state?: MasterState): { copies: PlannedCopy[]; deletes: number[] } {
    let copies = this.orders.get(serverId) ?? [];
    const queued = this.deletes.get(serverId) ?? [];
    const taken = queued.slice(0, Math.max(0, maxDeletes));
    this.orders.delete(serverId);
    if (state?.decommissioning.has(serverId) && copies.length > 0) {
      // It started draining since these were ordered: nothing new goes there (found by the
      // leader simulator). The copies are withdrawn, and the next scan plans them elsewhere.
      for (const o of copies) this.dropInFlight(o.handle, serverId);
      copies = [];
    }
    if (taken.length < queued.length) this.deletes.set(serverId, queued.slice(taken.length));
    else this.deletes.delete(serverId);
    const deletes: number[] = [];
    for (const h of taken) {
      const q = this.deleting.get(h);
      this.deleting.delete(h);
      if (state && q && !this.stillSurplus(state, h, q)) {
        this.registry.addKnownReplica(serverId, h, q.version);
        continue;
      }
      this.registry.removeReplica(serverId, h);
      deletes.push(h);
    }
    return { copies, deletes };
  }

  /** Whether the chunk keeps its replication without the replica `q` would delete (or is no longer the chunk it was). */
  private stillSurplus(state: MasterState, handle: number, q: QueuedDelete): boolean {
    if (state.chunks.versionOf(handle) !== q.version) return true; // deleted or re-versioned: the replica is garbage anyway
    const good = this.registry.liveReplicas(handle, q.version).filter((r) => r.id !== q.server && !state.decommissioning.has(r.id)).length;
    return good >= this.keep(q.file);
  }

  private dropInFlight(handle: number, target: string): void {
    const rest = (this.inFlight.get(handle) ?? []).filter((f) => f.target !== target);
    if (rest.length > 0) this.inFlight.set(handle, rest);
    else this.inFlight.delete(handle);
  }

  /**
   * The server no longer holds these replicas (it reported them removed, or corrupt): a delete
   * queued for them is moot, and must not be counted back by takeFor's check.
   */
  onReplicasGone(serverId: string, handles: Iterable<number>): void {
    const queued = this.deletes.get(serverId);
    if (!queued) return;
    const gone = new Set<number>();
    for (const h of handles) if (this.deleting.get(h)?.server === serverId) gone.add(h);
    if (gone.size === 0) return;
    for (const h of gone) this.deleting.delete(h);
    const rest = queued.filter((h) => !gone.has(h));
    if (rest.length > 0) this.deletes.set(serverId, rest);
    else this.deletes.delete(serverId);
  }

  /** The target reported these copies failed: plan them again on the next scan. */
  onCopyFailed(serverId: string, handles: number[]): void {
    for (const h of handles) {
      const list = this.inFlight.get(h);
      if (!list) continue;
      const rest = list.filter((f) => f.target !== serverId);
      if (rest.length !== list.length) this.copiesFailed++;
      if (rest.length > 0) this.inFlight.set(h, rest);
      else this.inFlight.delete(h);
    }
  }

  /** One scan in a single synchronous pass, for tests and measurements: the master scans in slices. */
  scan(state: MasterState): RepairScan {
    if (this.scanning) throw new Error('a repair scan is already running');
    this.scanning = true;
    try {
      const plan = this.plan(state, new Work(SCAN_STEP));
      for (;;) {
        const r = plan.next();
        if (r.done) return r.value;
      }
    } finally {
      this.scanning = false;
    }
  }

  /**
   * One scan as a generator: each yield is a point where the driver may let other work in
   * (master/leader/slices.ts runs it in slices of a few milliseconds; at a million files a scan
   * takes seconds). The namespace and the registry may change between steps, so every copy and
   * delete is checked against them as they are when it is ordered. The scan ends, ordering
   * nothing more, if the state was replaced (a snapshot installed) or `proceed` says so when it
   * resumes. Returns undefined when it ended so, or when another scan was running (one at a
   * time: the running one covers what the other would have found).
   */
  *scanSteps(getState: () => MasterState, opts: { step?: number; proceed?: () => boolean } = {}): Generator<void, RepairScan | undefined> {
    if (this.scanning) return undefined;
    this.scanning = true;
    const state = getState();
    const plan = this.plan(state, new Work(opts.step ?? SCAN_STEP));
    try {
      for (;;) {
        const r = plan.next();
        if (r.done) return r.value;
        yield;
        // The plan holds the state it started with: it may only go on while that is still the state.
        if (getState() !== state || !(opts.proceed?.() ?? true)) return undefined;
      }
    } finally {
      this.scanning = false;
    }
  }

  /** The scan itself; each yield is a point where a sliced scan may pause, never between a check and what it guards. */
  private *plan(state: MasterState, work: Work): Generator<void, RepairScan> {
    this.lastScanMs = this.now();
    const decom = state.decommissioning;
    const wanted = new WantedChunks();
    yield* finishedChunks(state, wanted, work);
    this.settle(state, wanted, this.now(), decom);
    this.voidDeletesOnDeadServers();

    const load = new Map<string, number>();
    const bump = (id: string) => load.set(id, (load.get(id) ?? 0) + 1);
    for (const list of this.inFlight.values()) for (const f of list) {
      bump(f.source);
      bump(f.target);
    }

    const scan: RepairScan = { underReplicated: 0, missing: 0, ordered: 0, moves: 0, inFlight: 0, surplusDeletes: 0, decommissionRemaining: {} };
    for (const id of decom) scan.decommissionRemaining[id] = 0;
    const candidates: Candidate[] = [];
    const surplus: Candidate[] = [];
    const misplaced: MisplacedChunk[] = []; // rack rule
    this.rackSizes = this.registry.rackSizes(decom);
    // Use of each live server outside decommissioning, as bytes of finished files' replicas held
    // over capacity (trimming and balancing go by it). Bytes held come from the chunk table, not
    // from reported disk use: servers sharing one disk (a local cluster) still differ. Summed
    // here, where each chunk's live replicas are at hand anyway.
    const measured = this.registry.liveServers().filter((s) => !decom.has(s.id) && s.capacityBytes > 0);
    const held = new Map(measured.map((s) => [s.id, 0]));
    for (const part of wanted.parts()) for (const [h, file] of part) {
      if (work.due()) yield;
      const version = state.chunks.versionOf(h);
      if (version === undefined) continue; // its file was deleted since the walk
      const live = this.registry.liveReplicas(h, version);
      const good = live.filter((r) => !decom.has(r.id));
      const length = state.chunks.lengthOf(h)!;
      for (const r of live) {
        const bytes = held.get(r.id);
        if (bytes !== undefined) held.set(r.id, bytes + length);
      }
      const pending = this.inFlight.get(h)?.length ?? 0;
      if (good.length < file.replication) {
        // A draining server that died still counts its replicas: it is not safe to remove.
        for (const id of this.registry.holders(h, version)) if (decom.has(id)) scan.decommissionRemaining[id]!++;
      } else this.registry.clearCorrupt(h);
      if (live.length === 0) {
        scan.missing++;
        continue;
      }
      if (good.length < file.replication) {
        scan.underReplicated++;
        if (file.replication - good.length - pending > 0) candidates.push({ handle: h, version, good: good.length, file });
      } else if (good.length > this.keep(file) && pending === 0 && !this.deleteQueued(h)) {
        surplus.push({ handle: h, version, good: good.length, file });
      } else if (pending === 0 && !this.deleteQueued(h) && this.rackSizes.size > 1 && isMisplaced(good.map((r) => this.registry.rackOf(r.id)), file.replication, this.rackSizes)) {
        misplaced.push({ handle: h, replication: file.replication, chunkSizeBytes: file.chunkSizeBytes }); // rack rule
      }
    }
    const util = new Map(measured.map((s) => [s.id, held.get(s.id)! / s.capacityBytes]));
    // Corrupt reports of chunks that no longer exist (their file was deleted) are history.
    for (const h of this.registry.corruptHandles()) if (!state.chunks.has(h)) this.registry.clearCorrupt(h);

    for (const c of surplus) {
      if (work.due()) yield;
      // As things are now: since it was counted, the chunk may have lost a replica or its file gained replication.
      if (state.chunks.versionOf(c.handle) !== c.version || this.inFlight.has(c.handle) || this.deleteQueued(c.handle)) continue;
      const good = this.registry.liveReplicas(c.handle, c.version).filter((r) => !decom.has(r.id));
      if (good.length <= this.keep(c.file)) continue;
      // One surplus replica per scan and chunk, from the fullest disk (then the server holding the
      // most, as servers sharing a disk report the same free space), in the racks holding the most of
      // it (rack rule): reports confirm it before the next.
      const fullest = inFullestRacks(good.map((r) => ({ ...r, rack: this.registry.rackOf(r.id) }))).sort((a, b) => this.registry.freeRatio(a.id) - this.registry.freeRatio(b.id)
        || (util.get(b.id) ?? 0) - (util.get(a.id) ?? 0) || (a.id < b.id ? -1 : 1))[0]!;
      this.queueDelete(fullest.id, c.handle, { server: fullest.id, version: c.version, file: c.file });
      scan.surplusDeletes++;
    }

    // Most urgent first: a chunk with one good replica left before one with two.
    const urgent = yield* sortInSteps(candidates, (a, b) => a.good - b.good || a.handle - b.handle, work.step);
    // Balancing waits while repair has work under way or waiting for a free slot: moves would
    // take disk and network from the copies that matter. (A chunk that cannot be placed at all,
    // say replication above the live server count, does not hold balancing back.)
    let waitingForSlots = 0;
    let repairing = 0;
    for (const list of this.inFlight.values()) if (list.some((f) => !f.moveFrom)) repairing++;
    // With every live server busy, no chunk left can have a source: the rest all wait.
    const someFree = () => this.registry.liveServers().some((s) => (load.get(s.id) ?? 0) < this.limits.perServerCopies);
    let free = someFree();
    for (const c of urgent) {
      if (work.due()) {
        yield;
        free = someFree();
      }
      if (this.inFlightCount >= this.limits.maxInFlight || !free) {
        waitingForSlots++;
        break;
      }
      // As things are now: the chunk may be gone, re-versioned or repaired since it was counted.
      if (state.chunks.versionOf(c.handle) !== c.version) continue;
      const live = this.registry.liveReplicas(c.handle, c.version);
      const need = c.file.replication - live.filter((r) => !decom.has(r.id)).length - (this.inFlight.get(c.handle)?.length ?? 0);
      if (live.length === 0 || need <= 0) continue;
      const chunk = state.chunks.get(c.handle)!;
      for (let k = 0; k < need; k++) {
        if (this.inFlightCount >= this.limits.maxInFlight) {
          waitingForSlots++;
          break;
        }
        // Any live replica can be the source, a decommissioning one included (HDFS prefers those).
        const source = live
          .filter((r) => (load.get(r.id) ?? 0) < this.limits.perServerCopies)
          .sort((a, b) => (load.get(a.id) ?? 0) - (load.get(b.id) ?? 0))[0];
        if (!source) {
          waitingForSlots++;
          break;
        }
        const busy = [...load].filter(([, n]) => n >= this.limits.perServerCopies).map(([id]) => id);
        // Not a server about to delete this very chunk (a surplus delete queued before it fell short).
        const deleting = this.deleteQueued(c.handle) ? [this.deleting.get(c.handle)!.server] : [];
        const exclude = [...live.map((r) => r.id), ...(this.inFlight.get(c.handle) ?? []).map((f) => f.target), ...busy, ...deleting, ...decom];
        const holders = [...live.filter((r) => !decom.has(r.id)).map((r) => r.id), ...(this.inFlight.get(c.handle) ?? []).map((f) => f.target)]; // rack rule
        const [target] = this.registry.place(1, exclude, c.file.chunkSizeBytes, { holders, replication: c.file.replication });
        if (!target) {
          if (busy.length > 0) waitingForSlots++;
          break;
        }
        this.order(c.handle, { target: target.id, source: source.id, startedMs: this.now() }, { ...chunk, source: source.addr });
        bump(source.id);
        bump(target.id);
        scan.ordered++;
        repairing++;
        free = someFree();
      }
    }
    if (waitingForSlots === 0) scan.moves += this.planRackFixes(state, misplaced, load); // rack rule
    // Balancing only when repair has nothing left to plan: a missing replica matters more than an even disk.
    if (this.limits.balanceThreshold > 0 && waitingForSlots === 0 && repairing === 0) scan.moves += yield* this.planMoves(state, wanted, util, load, work);
    scan.inFlight = this.inFlightCount;
    this.last = scan;
    return scan;
  }

  /** Settles copies in flight: done once the target reports the replica, failed after a timeout. */
  private settle(state: MasterState, wanted: WantedChunks, now: number, decom: ReadonlySet<string>): void {
    for (const [h, list] of this.inFlight) {
      const rec = state.chunks.get(h);
      const live = rec ? this.registry.liveReplicas(h, rec.version) : [];
      const liveIds = new Set(live.map((r) => r.id));
      const rest = list.filter((f) => {
        if (liveIds.has(f.target)) {
          this.copiesDone++;
          this.bytesCopied += rec!.length;
          if (f.moveFrom) this.finishMove(wanted.get(h), rec!.version, h, f.moveFrom, live, decom);
          return false;
        }
        if (now > (f.deadlineMs ?? f.startedMs + this.limits.copyTimeoutMs) || !rec || !this.registry.isAlive(f.target)) {
          this.copiesFailed++;
          this.withdrawOrder(f.target, h); // not collected yet: it must not run untracked later
          return false;
        }
        return true;
      });
      if (rest.length > 0) this.inFlight.set(h, rest);
      else this.inFlight.delete(h);
    }
  }

  /**
   * Deletes queued for a server that died (or vanished: a wiped server came back under a new id
   * at its address) are void. Left queued, they marked their chunks as being trimmed for good,
   * so those chunks were never trimmed or balanced again (found by the leader simulator).
   * The replica goes back into the locations: the server still holds it if it returns.
   */
  private voidDeletesOnDeadServers(): void {
    for (const [server, handles] of this.deletes) {
      if (this.registry.isAlive(server)) continue;
      for (const h of handles) {
        const q = this.deleting.get(h);
        this.deleting.delete(h);
        if (q) this.registry.addKnownReplica(server, h, q.version);
      }
      this.deletes.delete(server);
    }
  }

  /** A move's copy arrived: drop the replica it replaces, if the chunk keeps its replication without it. */
  private finishMove(file: FileNode | undefined, version: number, handle: number, from: string, live: { id: string }[], decom: ReadonlySet<string>): void {
    this.movesDone++;
    const goodElsewhere = live.filter((r) => r.id !== from && !decom.has(r.id)).length;
    if (file === undefined || !live.some((r) => r.id === from) || goodElsewhere < file.replication || this.deleteQueued(handle)) return;
    this.queueDelete(from, handle, { server: from, version, file });
  }

  /**
   * Balancing: while the fullest server is above the mean by more than the threshold (or the
   * emptiest below it), order a copy of one of its chunks to the emptiest, to be followed by a
   * delete of the original. Each move must leave the source at least as full as the target, so
   * moves never oscillate.
   */
  private *planMoves(state: MasterState, wanted: WantedChunks, util: Map<string, number>, load: Map<string, number>, work: Work): Generator<void, number> {
    const servers = this.registry.liveServers().filter((s) => util.has(s.id));
    if (servers.length < 2 || this.limits.balanceThreshold <= 0) return 0;
    const cap = new Map(servers.map((s) => [s.id, s.capacityBytes]));
    const bytes = new Map(servers.map((s) => [s.id, util.get(s.id)! * s.capacityBytes]));
    for (const [h, list] of this.inFlight) for (const f of list) {
      if (!f.moveFrom) continue;
      const len = wanted.get(h) ? state.chunks.lengthOf(h) ?? 0 : 0;
      if (bytes.has(f.target)) bytes.set(f.target, bytes.get(f.target)! + len);
      if (bytes.has(f.moveFrom)) bytes.set(f.moveFrom, bytes.get(f.moveFrom)! - len);
    }
    let totalBytes = 0, totalCap = 0;
    for (const s of servers) {
      totalBytes += bytes.get(s.id)!;
      totalCap += s.capacityBytes;
    }
    const mean = totalBytes / totalCap;
    if (mean <= 0) return 0;
    const u = (id: string) => bytes.get(id)! / cap.get(id)!;
    const free = (id: string) => (load.get(id) ?? 0) < this.limits.perServerCopies;
    const room = (id: string, len: number) => this.registry.freeBytes(id) >= len;
    const over = (id: string) => u(id) > mean * (1 + this.limits.balanceThreshold);
    const under = (id: string) => u(id) < mean * (1 - this.limits.balanceThreshold);
    let moves = 0;
    while (this.movesInFlight < this.limits.maxMovesInFlight && this.inFlightCount < this.limits.maxInFlight) {
      const byUse = servers.map((s) => s.id).filter(free).sort((a, b) => u(b) - u(a) || (a < b ? -1 : 1));
      const move = yield* this.pickMove(state, byUse, wanted, over, under, room, (src, dst, len) => (bytes.get(src)! - len) / cap.get(src)! >= (bytes.get(dst)! + len) / cap.get(dst)!, work);
      if (!move) break;
      const { source, target, chunk } = move;
      const len = chunk.length;
      this.order(chunk.handle, { target, source, startedMs: this.now(), moveFrom: source }, { ...chunk, source: this.registry.addrOf(source)! });
      bytes.set(source, bytes.get(source)! - len);
      bytes.set(target, bytes.get(target)! + len);
      load.set(source, (load.get(source) ?? 0) + 1);
      load.set(target, (load.get(target) ?? 0) + 1);
      moves++;
    }
    return moves;
  }

  /**
   * The move that does the most good: from the fullest server that has a chunk some emptier
   * server lacks (and has room for), to the emptiest such server. One of the two must be past
   * the threshold, and the move must not leave the source emptier than the target. A pair
   * with nothing to move does not stop the search: the next pair is tried.
   */
  private *pickMove(
    state: MasterState, byUse: string[], wanted: WantedChunks,
    over: (id: string) => boolean, under: (id: string) => boolean, room: (id: string, len: number) => boolean,
    improves: (source: string, target: string, len: number) => boolean, work: Work,
  ): Generator<void, { source: string; target: string; chunk: Omit<PlannedCopy, 'source' | 'timeoutMs'> } | undefined> {
    for (let i = 0; i < byUse.length; i++) {
      const source = byUse[i]!;
      for (let j = byUse.length - 1; j > i; j--) {
        const target = byUse[j]!;
        if (!over(source) && !under(target)) continue;
        const chunk = yield* this.pickMovable(state, source, target, wanted, (len) => room(target, len) && improves(source, target, len), work);
        if (chunk) return { source, target, chunk };
      }
    }
    return undefined;
  }

  /**
   * A healthy current-version chunk on `source` that `target` (alive) lacks, with nothing in
   * flight or queued for it. Its checks and the order that follows fall in one slice.
   */
  private *pickMovable(
    state: MasterState, source: string, target: string, wanted: WantedChunks, fits: (len: number) => boolean, work: Work,
  ): Generator<void, Omit<PlannedCopy, 'source' | 'timeoutMs'> | undefined> {
    for (const h of this.registry.handlesOn(source)) {
      if (work.due()) yield;
      const file = wanted.get(h);
      const version = state.chunks.versionOf(h);
      if (!file || version === undefined || this.inFlight.has(h) || this.deleteQueued(h) || !fits(state.chunks.lengthOf(h)!)) continue;
      if (!this.registry.isAlive(target)) continue;
      const live = this.registry.liveReplicas(h, version);
      // The source must hold the current version (an old one awaits garbage collection and cannot serve the copy).
      if (!live.some((r) => r.id === source) || live.some((r) => r.id === target)) continue;
      const good = live.filter((r) => !state.decommissioning.has(r.id));
      if (good.length < file.replication) continue;
      const rack = (id: string) => this.registry.rackOf(id); // rack rule: a move across racks must keep the spread
      if (!moveKeepsRule(good.map((r) => rack(r.id)), rack(source), rack(target), file.replication, this.rackSizes)) continue;
      return state.chunks.get(h)!;
    }
    return undefined;
  }

  /**
   * rack rule: one move for each misplaced chunk that limits allow (master/racks.ts decides),
   * as balancing's moves: copy first, the replica in the overfull rack deleted once it arrived.
   */
  private planRackFixes(state: MasterState, chunks: MisplacedChunk[], load: Map<string, number>): number {
    const decom = state.decommissioning;
    const busy = (id: string) => (load.get(id) ?? 0) >= this.limits.perServerCopies;
    return planRackFixes(chunks, {
      replicas: (h) => {
        const version = state.chunks.versionOf(h);
        if (version === undefined || this.inFlight.has(h) || this.deleteQueued(h)) return [];
        return this.registry.liveReplicas(h, version).filter((r) => !decom.has(r.id)).map((r) => ({ id: r.id, rack: this.registry.rackOf(r.id) }));
      },
      canStart: () => this.movesInFlight < this.limits.maxMovesInFlight && this.inFlightCount < this.limits.maxInFlight,
      free: (id) => !busy(id),
      place: (c, holders, exclude) => this.registry.place(1, [...exclude, ...decom, ...[...load.keys()].filter(busy)], c.chunkSizeBytes, {
        holders: holders.map((r) => r.id), replication: c.replication, strict: true,
      })[0]?.id,
      order: (h, source, target) => {
        this.order(h, { target, source, startedMs: this.now(), moveFrom: source }, { ...state.chunks.get(h)!, source: this.registry.addrOf(source)! });
        for (const id of [source, target]) load.set(id, (load.get(id) ?? 0) + 1);
      },
    });
  }

  /**
   * Orders a copy. Its time is computed here once: the target obeys the order's timeoutMs, and
   * the master waits that plus the report slack, so it never plans a copy again while the
   * first may still be running.
   */
  private order(handle: number, flight: InFlight, chunk: Omit<PlannedCopy, 'timeoutMs'>): void {
    // A target that caps its copy traffic (--copy-rate) shares the cap among the copies it runs:
    // allow what the cap costs on top of the usual time, or the copy is planned twice.
    const rate = this.registry.copyRateOf(flight.target);
    const cappedMs = rate > 0 ? Math.ceil((chunk.length * this.limits.perServerCopies * 1000) / rate) : 0;
    const order: PlannedCopy = { ...chunk, timeoutMs: this.limits.copyTimeoutMs + cappedMs };
    flight.deadlineMs = flight.startedMs + order.timeoutMs + this.limits.copyReportSlackMs;
    const list = this.inFlight.get(handle) ?? [];
    list.push(flight);
    this.inFlight.set(handle, list);
    this.push(this.orders, flight.target, order);
    this.copiesOrdered++;
  }

  private withdrawOrder(serverId: string, handle: number): void {
    const list = this.orders.get(serverId);
    if (!list) return;
    const rest = list.filter((o) => o.handle !== handle);
    if (rest.length > 0) this.orders.set(serverId, rest);
    else this.orders.delete(serverId);
  }

  /** Good replicas a chunk keeps when its surplus is trimmed: its file's replication. */
  private keep(file: FileNode): number {
    return this.limits.unsafeSurplusOffByOne ? file.replication - 1 : file.replication;
  }

  private deleteQueued(handle: number): boolean {
    return this.deleting.has(handle);
  }

  private queueDelete(serverId: string, handle: number, q: QueuedDelete): void {
    this.registry.removeReplica(serverId, handle);
    this.push(this.deletes, serverId, handle);
    this.deleting.set(handle, q);
  }

  private push<T>(map: Map<string, T[]>, key: string, value: T): void {
    const list = map.get(key) ?? [];
    list.push(value);
    map.set(key, list);
  }
}
