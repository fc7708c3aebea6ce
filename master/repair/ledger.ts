// The repair ledger: copies ordered and in flight, orders and surplus deletes waiting for their
// server's heartbeat, and the counters of what became of them.
import type { PlannedCopy } from '../../common/protocol.js';
import type { Registry } from '../registry/index.js';
import type { FileNode, MasterState } from '../state/index.js';
import { keepOf, type RepairLimits } from './limits.js';
import type { WantedChunks } from './wanted.js';

/** A surplus delete waiting for its server's heartbeat: the replica, and the file it was surplus for. */
export interface QueuedDelete { server: string; version: number; file: FileNode }

/** A copy ordered and not yet confirmed; `moveFrom` marks a balancing move (that replica goes after). */
export interface InFlight {
  target: string; source: string; startedMs: number; moveFrom?: string; deadlineMs?: number;
  /** The chunk's version when ordered (set by order()): an append since then makes the copy stale, so it is failed at once. */
  version?: number;
}

/**
 * What repair has set going and not yet seen settled. Orders wait here until the target's next
 * heartbeat collects them; a copy stays in flight until the target reports the replica or its
 * time runs out. Surplus deletes wait the same way, at most one per chunk.
 */
export class RepairLedger {
  private readonly inFlight = new Map<number, InFlight[]>();
  private readonly orders = new Map<string, PlannedCopy[]>();
  private readonly deletes = new Map<string, number[]>();
  /**
   * Handles with a delete queued on some server (at most one at a time: one surplus replica per
   * scan), with what it was queued for: takeFor checks it again before the delete goes out.
   */
  private readonly deleting = new Map<number, QueuedDelete>();
  copiesOrdered = 0;
  copiesDone = 0;
  copiesFailed = 0;
  bytesCopied = 0;
  movesDone = 0;

  constructor(private readonly registry: Registry, private readonly limits: RepairLimits) {}

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
    return good >= keepOf(this.limits, q.file);
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

  /** Settles copies in flight: done once the target reports the replica, failed after a timeout. */
  settle(state: MasterState, wanted: WantedChunks, now: number, decom: ReadonlySet<string>): void {
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
        const reversioned = rec !== undefined && f.version !== undefined && f.version !== rec.version;
        if (now > (f.deadlineMs ?? f.startedMs + this.limits.copyTimeoutMs) || !rec || reversioned || !this.registry.isAlive(f.target)) {
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
  voidDeletesOnDeadServers(): void {
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
   * Orders a copy. Its time is computed here once: the target obeys the order's timeoutMs, and
   * the master waits that plus the report slack, so it never plans a copy again while the
   * first may still be running.
   */
  order(handle: number, flight: InFlight, chunk: Omit<PlannedCopy, 'timeoutMs'>): void {
    // A target that caps its copy traffic (--copy-rate) shares the cap among the copies it runs:
    // allow what the cap costs on top of the usual time, or the copy is planned twice.
    const rate = this.registry.copyRateOf(flight.target);
    const cappedMs = rate > 0 ? Math.ceil((chunk.length * this.limits.perServerCopies * 1000) / rate) : 0;
    const order: PlannedCopy = { ...chunk, timeoutMs: this.limits.copyTimeoutMs + cappedMs };
    flight.deadlineMs = flight.startedMs + order.timeoutMs + this.limits.copyReportSlackMs;
    flight.version = chunk.version;
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

  deleteQueued(handle: number): boolean {
    return this.deleting.has(handle);
  }

  queueDelete(serverId: string, handle: number, q: QueuedDelete): void {
    this.registry.removeReplica(serverId, handle);
    this.push(this.deletes, serverId, handle);
    this.deleting.set(handle, q);
  }

  /** The copies in flight for `handle`, if any. */
  flights(handle: number): readonly InFlight[] | undefined {
    return this.inFlight.get(handle);
  }

  /** Every chunk with copies in flight, with them. */
  allFlights(): IterableIterator<[number, InFlight[]]> {
    return this.inFlight.entries();
  }

  /** The server a surplus delete of `handle` is queued for, if one is. */
  deletingOn(handle: number): string | undefined {
    return this.deleting.get(handle)?.server;
  }

  /** Copies each server takes part in now, as source or target. */
  load(): Map<string, number> {
    const load = new Map<string, number>();
    for (const list of this.inFlight.values()) for (const f of list) {
      load.set(f.source, (load.get(f.source) ?? 0) + 1);
      load.set(f.target, (load.get(f.target) ?? 0) + 1);
    }
    return load;
  }

  /** Chunks with a repair copy (not a balancing move) in flight. */
  repairingCount(): number {
    let n = 0;
    for (const list of this.inFlight.values()) if (list.some((f) => !f.moveFrom)) n++;
    return n;
  }

  private push<T>(map: Map<string, T[]>, key: string, value: T): void {
    const list = map.get(key) ?? [];
    list.push(value);
    map.set(key, list);
  }
}
