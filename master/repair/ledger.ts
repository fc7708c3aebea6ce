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
  target: string; source: string; startedMs: number; moveFrom?: string; deadlineMs?: number; reqId?: string;
  /** The chunk's version when ordered (set by order()): an append since then makes the copy stale, so it is failed at once. */
  version?: number;
}

/**
 * A decision worth one log line (copy ordered, done, failed; chunk lost): the leader core keeps
 * it for its driver to log (master/leader/core.ts), as it does its own.
 */
export type RepairEvent = (level: 'info' | 'warn', msg: string, fields: Record<string, unknown>) => void;

/** Chunks remembered as lost (each logged once); past this, more are counted by scans but not named. */
const MAX_LOST_NOTED = 10_000;

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
  /** Chunks with no live replica, logged when first found so (and again when a replica is back). */
  private readonly lost = new Set<number>();
  /** Names this leadership's copies: `copy-<prefix>-<n>` (the leader's term: unique in the cluster's life). */
  private decisionPrefix = 'e0';
  private decisions = 0;
  copiesOrdered = 0;
  copiesDone = 0;
  copiesFailed = 0;
  bytesCopied = 0;
  movesDone = 0;

  constructor(private readonly registry: Registry, private readonly limits: RepairLimits, private readonly emit: RepairEvent = () => undefined) {}

  /** A new leadership names its copies afresh (see decisionPrefix). */
  nameDecisions(prefix: string): void {
    this.decisionPrefix = prefix;
    this.decisions = 0;
  }

  /** A scan found `handle` with no live replica: logged once, until a replica is back (noteFound). */
  noteLost(handle: number, version: number): void {
    if (this.lost.has(handle) || this.lost.size >= MAX_LOST_NOTED) return;
    this.lost.add(handle);
    this.emit('warn', 'chunk lost: no live replica', { handle, version });
  }

  /** A scan found `handle` with a live replica: if it was lost, say it is back. */
  noteFound(handle: number, live: number): void {
    if (this.lost.delete(handle)) this.emit('info', 'chunk found again: a replica is back', { handle, live });
  }

  /** Lost chunks whose file is gone are history (no line: the delete says it). */
  forgetLostOutside(state: MasterState): void {
    for (const h of this.lost) if (!state.chunks.has(h)) this.lost.delete(h);
  }

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

  /** Servers with copy orders waiting for their heartbeat to collect them. */
  serversWithOrders(): string[] {
    return [...this.orders].filter(([, list]) => list.length > 0).map(([id]) => id);
  }

  get movesInFlight(): number {
    let n = 0;
    for (const list of this.inFlight.values()) for (const f of list) if (f.moveFrom) n++;
    return n;
  }

  /** Copies in flight per server: into it (its target) and out of it (its source). */
  copiesByServer(): Map<string, { in: number; out: number }> {
    const by = new Map<string, { in: number; out: number }>();
    const of = (id: string) => by.get(id) ?? by.set(id, { in: 0, out: 0 }).get(id)!;
    for (const list of this.inFlight.values()) for (const f of list) {
      of(f.target).in++;
      of(f.source).out++;
    }
    return by;
  }

  /** Whether `handle` has a copy in flight to `serverId` (its report settles it). */
  awaits(serverId: string, handle: number): boolean {
    return this.inFlight.get(handle)?.some((f) => f.target === serverId) ?? false;
  }

  /** Forgets everything (leadership lost or gained: locations are relearned from reports). */
  clear(): void {
    this.lost.clear();
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
      this.emit('info', 'copy withdrawn: its target registered again before taking it', { reqId: o.reqId, handle: o.handle, target: serverId });
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
      for (const o of copies) {
        this.dropInFlight(o.handle, serverId);
        this.emit('info', 'copy withdrawn: its target started draining', { reqId: o.reqId, handle: o.handle, target: serverId });
      }
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
    // In service only, as the scan counted (replicate.ts, settled): a server that went suspect
    // since (held restarting) must not make the delete look safe.
    const good = this.registry.liveReplicas(handle, q.version).filter((r) => r.id !== q.server && !state.decommissioning.has(r.id) && !this.registry.isSuspect(r.id)).length;
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
      for (const f of list) if (f.target === serverId) this.emit('warn', 'copy failed: its target reported it failed', { reqId: f.reqId, handle: h, source: f.source, target: f.target });
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
          this.emit('info', 'copy done', { reqId: f.reqId, handle: h, source: f.source, target: f.target, bytes: rec!.length, ms: now - f.startedMs });
          if (f.moveFrom) this.finishMove(wanted.get(h), rec!.version, h, f.moveFrom, live, decom);
          return false;
        }
        const reversioned = rec !== undefined && f.version !== undefined && f.version !== rec.version;
        if (now > (f.deadlineMs ?? f.startedMs + this.limits.copyTimeoutMs) || !rec || reversioned || !this.registry.isAlive(f.target)) {
          this.copiesFailed++;
          const why = !rec ? 'its chunk was deleted' : reversioned ? 'its chunk was appended to' : !this.registry.isAlive(f.target) ? 'its target died' : 'no report within its time';
          this.emit('warn', `copy failed: ${why}`, { reqId: f.reqId, handle: h, source: f.source, target: f.target });
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
    const reqId = `copy-${this.decisionPrefix}-${++this.decisions}`;
    const order: PlannedCopy = { ...chunk, timeoutMs: this.limits.copyTimeoutMs + cappedMs, reqId };
    flight.deadlineMs = flight.startedMs + order.timeoutMs + this.limits.copyReportSlackMs;
    flight.reqId = reqId;
    flight.version = chunk.version;
    this.emit('info', flight.moveFrom ? 'copy ordered (balancing move)' : 'copy ordered', { reqId, handle, source: flight.source, target: flight.target, bytes: chunk.length, timeoutMs: order.timeoutMs });
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
