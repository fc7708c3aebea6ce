import type { CopyOrder } from '../common/protocol.js';
import type { Registry } from './registry.js';
import type { MasterState } from './state.js';

export interface RepairLimits {
  /** Copies one server takes part in at once, as source or target: repair must not starve clients. */
  perServerCopies: number;
  /** Copies in flight across the cluster. */
  maxInFlight: number;
  /** A copy not reported done by then is taken as failed and planned again. */
  copyTimeoutMs: number;
  /**
   * Balancing starts when a server's use (bytes held / capacity) differs from the cluster's
   * mean by more than this share of the mean (HDFS's balancer uses 10 points of capacity; a
   * share of the mean also works for small clusters on one shared disk). 0 turns balancing off.
   */
  balanceThreshold: number;
  /** Balancing moves in flight at once: low, so moving data never competes much with clients or repair. */
  maxMovesInFlight: number;
}

export const REPAIR_DEFAULTS: RepairLimits = { perServerCopies: 2, maxInFlight: 64, copyTimeoutMs: 120_000, balanceThreshold: 0.1, maxMovesInFlight: 4 };

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

interface Wanted { replication: number; version: number; length: number; chunkSizeBytes: number }

/** Every chunk of a finished file, with what its file wants: the chunks repair and balancing look after. */
function finishedChunks(state: MasterState): Map<number, Wanted> {
  const wanted = new Map<number, Wanted>();
  for (const [, node] of state.walk('/', state.root)) {
    if (node.type !== 'file' || node.state !== 'complete') continue;
    for (const h of node.chunks) {
      const version = state.chunks.versionOf(h);
      if (version !== undefined) wanted.set(h, { replication: node.replication, version, length: state.chunks.lengthOf(h)!, chunkSizeBytes: node.chunkSizeBytes });
    }
  }
  return wanted;
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
 * confirmed, so no chunk ever has fewer replicas than it should.
 */
export class RepairScheduler {
  private readonly inFlight = new Map<number, InFlight[]>();
  private readonly orders = new Map<string, CopyOrder[]>();
  private readonly deletes = new Map<string, number[]>();
  /** Handles with a delete queued on some server (at most one at a time: one surplus replica per scan). */
  private readonly deleting = new Set<number>();
  copiesOrdered = 0;
  copiesDone = 0;
  copiesFailed = 0;
  bytesCopied = 0;
  movesDone = 0;
  lastScanMs = 0;
  last: RepairScan = { underReplicated: 0, missing: 0, ordered: 0, moves: 0, inFlight: 0, surplusDeletes: 0, decommissionRemaining: {} };

  constructor(private readonly registry: Registry, private readonly limits: RepairLimits = REPAIR_DEFAULTS, private readonly now: () => number = Date.now) {}

  get inFlightCount(): number {
    let n = 0;
    for (const list of this.inFlight.values()) n += list.length;
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
   */
  takeFor(serverId: string, maxDeletes = Infinity): { copies: CopyOrder[]; deletes: number[] } {
    const copies = this.orders.get(serverId) ?? [];
    const queued = this.deletes.get(serverId) ?? [];
    const deletes = queued.slice(0, Math.max(0, maxDeletes));
    this.orders.delete(serverId);
    if (deletes.length < queued.length) this.deletes.set(serverId, queued.slice(deletes.length));
    else this.deletes.delete(serverId);
    for (const h of deletes) {
      this.deleting.delete(h);
      this.registry.removeReplica(serverId, h);
    }
    return { copies, deletes };
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

  scan(state: MasterState): RepairScan {
    const now = this.now();
    this.lastScanMs = now;
    const decom = state.decommissioning;
    const wanted = finishedChunks(state);
    this.settle(state, wanted, now, decom);

    const load = new Map<string, number>();
    const bump = (id: string) => load.set(id, (load.get(id) ?? 0) + 1);
    for (const list of this.inFlight.values()) for (const f of list) {
      bump(f.source);
      bump(f.target);
    }

    const scan: RepairScan = { underReplicated: 0, missing: 0, ordered: 0, moves: 0, inFlight: 0, surplusDeletes: 0, decommissionRemaining: {} };
    for (const id of decom) scan.decommissionRemaining[id] = 0;
    const candidates: { handle: number; version: number; length: number; checksum: string; live: { id: string; addr: string }[]; good: number; need: number; chunkSizeBytes: number }[] = [];
    const surplus: { handle: number; good: { id: string }[] }[] = [];
    for (const [h, w] of wanted) {
      const live = this.registry.liveReplicas(h, w.version);
      const good = live.filter((r) => !decom.has(r.id));
      const pending = this.inFlight.get(h)?.length ?? 0;
      if (good.length < w.replication) {
        // A draining server that died still counts its replicas: it is not safe to remove.
        for (const id of this.registry.holders(h, w.version)) if (decom.has(id)) scan.decommissionRemaining[id]!++;
      } else this.registry.clearCorrupt(h);
      if (live.length === 0) {
        scan.missing++;
        continue;
      }
      if (good.length < w.replication) {
        scan.underReplicated++;
        const need = w.replication - good.length - pending;
        if (need > 0) candidates.push({ ...state.chunks.get(h)!, live, good: good.length, need, chunkSizeBytes: w.chunkSizeBytes });
      } else if (good.length > w.replication && pending === 0 && !this.deleteQueued(h)) {
        surplus.push({ handle: h, good });
      }
    }
    // Corrupt reports of chunks that no longer exist (their file was deleted) are history.
    for (const h of this.registry.corruptHandles()) if (!state.chunks.has(h)) this.registry.clearCorrupt(h);

    // Use per server walks every replica: only when trimming or balancing needs it.
    const balancing = this.limits.balanceThreshold > 0;
    const util = surplus.length > 0 || balancing ? this.utilisation(wanted, decom) : new Map<string, number>();
    for (const c of surplus) {
      // One surplus replica per scan and chunk, from the fullest disk (then the server holding the
      // most, as servers sharing a disk report the same free space): reports confirm it before the next.
      const fullest = [...c.good].sort((a, b) => this.registry.freeRatio(a.id) - this.registry.freeRatio(b.id)
        || (util.get(b.id) ?? 0) - (util.get(a.id) ?? 0) || (a.id < b.id ? -1 : 1))[0]!;
      this.queueDelete(fullest.id, c.handle);
      scan.surplusDeletes++;
    }

    // Most urgent first: a chunk with one good replica left before one with two.
    candidates.sort((a, b) => a.good - b.good || a.handle - b.handle);
    // Balancing waits while repair has work under way or waiting for a free slot: moves would
    // take disk and network from the copies that matter. (A chunk that cannot be placed at all,
    // say replication above the live server count, does not hold balancing back.)
    let waitingForSlots = 0;
    let repairing = 0;
    for (const list of this.inFlight.values()) if (list.some((f) => !f.moveFrom)) repairing++;
    for (const c of candidates) {
      for (let k = 0; k < c.need; k++) {
        if (this.inFlightCount >= this.limits.maxInFlight) {
          waitingForSlots++;
          break;
        }
        // Any live replica can be the source, a decommissioning one included (HDFS prefers those).
        const source = c.live
          .filter((r) => (load.get(r.id) ?? 0) < this.limits.perServerCopies)
          .sort((a, b) => (load.get(a.id) ?? 0) - (load.get(b.id) ?? 0))[0];
        if (!source) {
          waitingForSlots++;
          break;
        }
        const busy = [...load].filter(([, n]) => n >= this.limits.perServerCopies).map(([id]) => id);
        // Not a server about to delete this very chunk (a surplus delete queued before it fell short).
        const deleting = this.deleteQueued(c.handle) ? [...this.deletes].filter(([, hs]) => hs.includes(c.handle)).map(([id]) => id) : [];
        const exclude = [...c.live.map((r) => r.id), ...(this.inFlight.get(c.handle) ?? []).map((f) => f.target), ...busy, ...deleting, ...decom];
        const [target] = this.registry.place(1, exclude, c.chunkSizeBytes);
        if (!target) {
          if (busy.length > 0) waitingForSlots++;
          break;
        }
        this.order(c.handle, { target: target.id, source: source.id, startedMs: now }, { handle: c.handle, version: c.version, length: c.length, checksum: c.checksum, source: source.addr });
        bump(source.id);
        bump(target.id);
        scan.ordered++;
        repairing++;
      }
    }
    // Balancing only when repair has nothing left to plan: a missing replica matters more than an even disk.
    if (balancing && waitingForSlots === 0 && repairing === 0) scan.moves = this.planMoves(state, wanted, util, load, now);
    scan.inFlight = this.inFlightCount;
    this.last = scan;
    return scan;
  }

  /** Settles copies in flight: done once the target reports the replica, failed after a timeout. */
  private settle(state: MasterState, wanted: Map<number, Wanted>, now: number, decom: ReadonlySet<string>): void {
    for (const [h, list] of this.inFlight) {
      const rec = state.chunks.get(h);
      const live = rec ? this.registry.liveReplicas(h, rec.version) : [];
      const liveIds = new Set(live.map((r) => r.id));
      const rest = list.filter((f) => {
        if (liveIds.has(f.target)) {
          this.copiesDone++;
          this.bytesCopied += rec!.length;
          if (f.moveFrom) this.finishMove(wanted.get(h)?.replication, h, f.moveFrom, live, decom);
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

  /** A move's copy arrived: drop the replica it replaces, if the chunk keeps its replication without it. */
  private finishMove(replication: number | undefined, handle: number, from: string, live: { id: string }[], decom: ReadonlySet<string>): void {
    this.movesDone++;
    const goodElsewhere = live.filter((r) => r.id !== from && !decom.has(r.id)).length;
    if (replication === undefined || !live.some((r) => r.id === from) || goodElsewhere < replication) return;
    this.queueDelete(from, handle);
  }

  /**
   * Use of each live server outside decommissioning, as bytes of finished files' replicas held
   * (moves in flight counted as done) over capacity. Bytes held come from the chunk table, not
   * from reported disk use: servers sharing one disk (a local cluster) still differ.
   */
  private utilisation(wanted: Map<number, Wanted>, decom: ReadonlySet<string>): Map<string, number> {
    const bytes = new Map<string, number>();
    const capacity = new Map<string, number>();
    for (const s of this.registry.liveServers()) {
      if (decom.has(s.id) || s.capacityBytes <= 0) continue;
      bytes.set(s.id, 0);
      capacity.set(s.id, s.capacityBytes);
    }
    // One pass over every replica rather than one per server.
    this.registry.forEachReplica((h, id, version) => {
      const held = bytes.get(id);
      const w = held === undefined ? undefined : wanted.get(h);
      if (w && version === w.version) bytes.set(id, held! + w.length);
    });
    return new Map([...bytes].map(([id, b]) => [id, b / capacity.get(id)!]));
  }

  /**
   * Balancing: while the fullest server is above the mean by more than the threshold (or the
   * emptiest below it), order a copy of one of its chunks to the emptiest, to be followed by a
   * delete of the original. Each move must leave the source at least as full as the target, so
   * moves never oscillate.
   */
  private planMoves(state: MasterState, wanted: Map<number, Wanted>, util: Map<string, number>, load: Map<string, number>, now: number): number {
    const servers = this.registry.liveServers().filter((s) => util.has(s.id));
    if (servers.length < 2 || this.limits.balanceThreshold <= 0) return 0;
    const cap = new Map(servers.map((s) => [s.id, s.capacityBytes]));
    const bytes = new Map(servers.map((s) => [s.id, util.get(s.id)! * s.capacityBytes]));
    for (const [h, list] of this.inFlight) for (const f of list) {
      if (!f.moveFrom) continue;
      const len = wanted.get(h)?.length ?? 0;
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
      const move = this.pickMove(state, byUse, wanted, over, under, room, (src, dst, len) => (bytes.get(src)! - len) / cap.get(src)! >= (bytes.get(dst)! + len) / cap.get(dst)!);
      if (!move) break;
      const { source, target, chunk } = move;
      const len = chunk.length;
      this.order(chunk.handle, { target, source, startedMs: now, moveFrom: source }, { ...chunk, source: this.registry.addrOf(source)! });
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
  private pickMove(
    state: MasterState, byUse: string[], wanted: Map<number, Wanted>,
    over: (id: string) => boolean, under: (id: string) => boolean, room: (id: string, len: number) => boolean,
    improves: (source: string, target: string, len: number) => boolean,
  ): { source: string; target: string; chunk: Omit<CopyOrder, 'source'> } | undefined {
    for (let i = 0; i < byUse.length; i++) {
      const source = byUse[i]!;
      for (let j = byUse.length - 1; j > i; j--) {
        const target = byUse[j]!;
        if (!over(source) && !under(target)) continue;
        const chunk = this.pickMovable(state, source, target, wanted, (len) => room(target, len) && improves(source, target, len));
        if (chunk) return { source, target, chunk };
      }
    }
    return undefined;
  }

  /** A healthy current-version chunk on `source` that `target` lacks, with nothing in flight or queued for it. */
  private pickMovable(
    state: MasterState, source: string, target: string, wanted: Map<number, Wanted>, fits: (len: number) => boolean,
  ): Omit<CopyOrder, 'source'> | undefined {
    for (const h of this.registry.handlesOn(source)) {
      const w = wanted.get(h);
      if (!w || this.inFlight.has(h) || this.deleteQueued(h) || !fits(w.length)) continue;
      const live = this.registry.liveReplicas(h, w.version);
      // The source must hold the current version (an old one awaits garbage collection and cannot serve the copy).
      if (!live.some((r) => r.id === source) || live.some((r) => r.id === target)) continue;
      if (live.filter((r) => !state.decommissioning.has(r.id)).length < w.replication) continue;
      return state.chunks.get(h)!;
    }
    return undefined;
  }

  private order(handle: number, flight: InFlight, order: CopyOrder): void {
    // A target that caps its copy traffic (--copy-rate) shares the cap among the copies it runs:
    // allow what the cap costs on top of the usual time, or the copy is planned twice.
    const rate = this.registry.copyRateOf(flight.target);
    const cappedMs = rate > 0 ? Math.ceil((order.length * this.limits.perServerCopies * 1000) / rate) : 0;
    flight.deadlineMs = flight.startedMs + this.limits.copyTimeoutMs + cappedMs;
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

  private deleteQueued(handle: number): boolean {
    return this.deleting.has(handle);
  }

  private queueDelete(serverId: string, handle: number): void {
    this.registry.removeReplica(serverId, handle);
    this.push(this.deletes, serverId, handle);
    this.deleting.add(handle);
  }

  private push<T>(map: Map<string, T[]>, key: string, value: T): void {
    const list = map.get(key) ?? [];
    list.push(value);
    map.set(key, list);
  }
}
