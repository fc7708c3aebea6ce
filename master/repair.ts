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
}

export const REPAIR_DEFAULTS: RepairLimits = { perServerCopies: 2, maxInFlight: 64, copyTimeoutMs: 120_000 };

interface InFlight { target: string; source: string; startedMs: number }

export interface RepairScan {
  underReplicated: number;
  missing: number;
  /** Copies ordered in this scan. */
  ordered: number;
  inFlight: number;
  surplusDeletes: number;
}

/**
 * The leader's re-replication planner (volatile, like the registry). Each scan finds chunks of
 * finished files with fewer live replicas than their file's replication, most urgent (fewest
 * replicas) first, and orders copies from a live replica to a new server, within per-server and
 * cluster-wide limits. Orders wait here until the target's next heartbeat collects them. Chunks
 * with more live replicas than wanted (a dead server came back) lose one replica per scan.
 */
export class RepairScheduler {
  private readonly inFlight = new Map<number, InFlight[]>();
  private readonly orders = new Map<string, CopyOrder[]>();
  private readonly deletes = new Map<string, number[]>();
  copiesOrdered = 0;
  copiesDone = 0;
  copiesFailed = 0;
  bytesCopied = 0;
  last: RepairScan = { underReplicated: 0, missing: 0, ordered: 0, inFlight: 0, surplusDeletes: 0 };

  constructor(private readonly registry: Registry, private readonly limits: RepairLimits = REPAIR_DEFAULTS, private readonly now: () => number = Date.now) {}

  get inFlightCount(): number {
    let n = 0;
    for (const list of this.inFlight.values()) n += list.length;
    return n;
  }

  /** Forgets everything (leadership lost or gained: locations are relearned from reports). */
  clear(): void {
    this.inFlight.clear();
    this.orders.clear();
    this.deletes.clear();
  }

  /** Surplus deletes waiting for this server's next heartbeat. */
  queuedDeletes(serverId: string): number {
    return this.deletes.get(serverId)?.length ?? 0;
  }

  /** What the server should do now: collected by its heartbeat reply. */
  takeFor(serverId: string): { copies: CopyOrder[]; deletes: number[] } {
    const copies = this.orders.get(serverId) ?? [];
    const deletes = this.deletes.get(serverId) ?? [];
    this.orders.delete(serverId);
    this.deletes.delete(serverId);
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
    // Settle copies in flight: done once the target reports the replica, failed after a timeout.
    for (const [h, list] of this.inFlight) {
      const rec = state.chunks.get(h);
      const live = rec ? new Set(this.registry.liveReplicas(h, rec.version).map((r) => r.id)) : new Set<string>();
      const rest = list.filter((f) => {
        if (live.has(f.target)) {
          this.copiesDone++;
          this.bytesCopied += rec!.length;
          return false;
        }
        if (now - f.startedMs > this.limits.copyTimeoutMs || !rec || !this.registry.isAlive(f.target)) {
          this.copiesFailed++;
          this.withdrawOrder(f.target, h); // not collected yet: it must not run untracked later
          return false;
        }
        return true;
      });
      if (rest.length > 0) this.inFlight.set(h, rest);
      else this.inFlight.delete(h);
    }

    const load = new Map<string, number>();
    const bump = (id: string) => load.set(id, (load.get(id) ?? 0) + 1);
    for (const list of this.inFlight.values()) for (const f of list) {
      bump(f.source);
      bump(f.target);
    }

    const scan: RepairScan = { underReplicated: 0, missing: 0, ordered: 0, inFlight: 0, surplusDeletes: 0 };
    const candidates: { handle: number; version: number; length: number; checksum: string; live: { id: string; addr: string }[]; need: number; chunkSizeBytes: number }[] = [];
    for (const [, node] of state.walk('/', state.root)) {
      if (node.type !== 'file' || node.state !== 'complete') continue;
      for (const h of node.chunks) {
        const rec = state.chunks.get(h);
        if (!rec) continue;
        const live = this.registry.liveReplicas(h, rec.version);
        const pending = this.inFlight.get(h)?.length ?? 0;
        if (live.length === 0) {
          scan.missing++;
          continue;
        }
        if (live.length < node.replication) {
          scan.underReplicated++;
          const need = node.replication - live.length - pending;
          if (need > 0) candidates.push({ handle: h, version: rec.version, length: rec.length, checksum: rec.checksum, live, need, chunkSizeBytes: node.chunkSizeBytes });
        } else if (live.length > node.replication && pending === 0 && !this.deleteQueued(h)) {
          // One surplus replica per scan, from the fullest server; reports confirm it before the next.
          const fullest = live
            .map((r) => ({ r, free: this.registry.freeRatio(r.id) }))
            .sort((a, b) => a.free - b.free || (a.r.id < b.r.id ? -1 : 1))[0]!.r;
          this.registry.removeReplica(fullest.id, h);
          this.push(this.deletes, fullest.id, h);
          scan.surplusDeletes++;
        }
      }
    }

    // Most urgent first: a chunk with one replica left before one with two.
    candidates.sort((a, b) => a.live.length - b.live.length || a.handle - b.handle);
    for (const c of candidates) {
      for (let k = 0; k < c.need; k++) {
        if (this.inFlightCount >= this.limits.maxInFlight) break;
        const source = c.live
          .filter((r) => (load.get(r.id) ?? 0) < this.limits.perServerCopies)
          .sort((a, b) => (load.get(a.id) ?? 0) - (load.get(b.id) ?? 0))[0];
        if (!source) break;
        const busy = [...load].filter(([, n]) => n >= this.limits.perServerCopies).map(([id]) => id);
        // Not a server about to delete this very chunk (a surplus delete queued before it fell short).
        const deleting = [...this.deletes].filter(([, hs]) => hs.includes(c.handle)).map(([id]) => id);
        const exclude = [...c.live.map((r) => r.id), ...(this.inFlight.get(c.handle) ?? []).map((f) => f.target), ...busy, ...deleting];
        const [target] = this.registry.place(1, exclude, c.chunkSizeBytes);
        if (!target) break;
        const list = this.inFlight.get(c.handle) ?? [];
        list.push({ target: target.id, source: source.id, startedMs: now });
        this.inFlight.set(c.handle, list);
        this.push(this.orders, target.id, { handle: c.handle, version: c.version, length: c.length, checksum: c.checksum, source: source.addr });
        bump(source.id);
        bump(target.id);
        this.copiesOrdered++;
        scan.ordered++;
      }
    }
    scan.inFlight = this.inFlightCount;
    this.last = scan;
    return scan;
  }

  private withdrawOrder(serverId: string, handle: number): void {
    const list = this.orders.get(serverId);
    if (!list) return;
    const rest = list.filter((o) => o.handle !== handle);
    if (rest.length > 0) this.orders.set(serverId, rest);
    else this.orders.delete(serverId);
  }

  private deleteQueued(handle: number): boolean {
    for (const list of this.deletes.values()) if (list.includes(handle)) return true;
    return false;
  }

  private push<T>(map: Map<string, T[]>, key: string, value: T): void {
    const list = map.get(key) ?? [];
    list.push(value);
    map.set(key, list);
  }
}
