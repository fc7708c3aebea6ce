import type { ChunkserverStatus, HeartbeatRequest, RegisterRequest, ReportedChunk } from '../common/protocol.js';
import { chooseReplicas } from './placement.js';

interface ServerEntry {
  id: string;
  addr: string;
  capacityBytes: number;
  freeBytes: number;
  usedBytes: number;
  activeWrites: number;
  activeReads: number;
  lastHeartbeatMs: number;
  pendingAllocations: number;
  copyRateBytesPerSec: number;
  chunks: Set<number>;
}

/** Replicas of one chunk, flat: server id, version, server id, version, ... */
type Replicas = (string | number)[];

function versionOf(m: Replicas, id: string): number | undefined {
  for (let i = 0; i < m.length; i += 2) if (m[i] === id) return m[i + 1] as number;
  return undefined;
}

/** Updates `id`'s version in place; false when `id` has no pair yet. */
function setVersion(m: Replicas, id: string, version: number): boolean {
  for (let i = 0; i < m.length; i += 2) {
    if (m[i] === id) {
      m[i + 1] = version;
      return true;
    }
  }
  return false;
}

/** Removes `id`'s pair; true when it was there. */
function dropServer(m: Replicas, id: string): boolean {
  for (let i = 0; i < m.length; i += 2) {
    if (m[i] === id) {
      m.splice(i, 2);
      return true;
    }
  }
  return false;
}

/**
 * Volatile knowledge of the chunkservers: who is alive, how full and busy, and which chunk
 * replicas each holds. Rebuilt from registrations and heartbeats; never persisted.
 */
export class Registry {
  private servers = new Map<string, ServerEntry>();
  /**
   * handle → [server id, version, server id, version, ...]. A flat array per chunk rather than a
   * Map: a chunk has a handful of replicas, and with a million chunks the Map objects alone
   * cost more than everything else the registry keeps.
   */
  private locations = new Map<number, Replicas>();
  /** server id → (handle → when it was first seen unreferenced or stale): garbage waits a grace period. */
  private garbageSeen = new Map<string, Map<number, number>>();
  /** handle → servers that reported a replica corrupt (dropped there), until the chunk is healthy again. */
  private corrupt = new Map<number, Set<string>>();

  constructor(private readonly deadTimeoutMs: number, private readonly now: () => number = Date.now) {}

  register(req: RegisterRequest): void {
    const old = this.servers.get(req.id);
    if (old) this.forgetServerChunks(old);
    // An address now claimed by another id belongs to a server that was wiped and re-created.
    for (const other of this.servers.values()) {
      if (other.id !== req.id && other.addr === req.addr) {
        this.forgetServerChunks(other);
        this.servers.delete(other.id);
      }
    }
    const entry: ServerEntry = {
      id: req.id, addr: req.addr, capacityBytes: req.capacityBytes, freeBytes: req.freeBytes, usedBytes: req.usedBytes,
      activeWrites: req.activeWrites, activeReads: req.activeReads, lastHeartbeatMs: this.now(), pendingAllocations: 0,
      copyRateBytesPerSec: req.copyRateBytesPerSec ?? 0, chunks: new Set(),
    };
    this.servers.set(req.id, entry);
    for (const c of req.chunks) this.addReplica(entry, c);
  }

  /** Applies a heartbeat; false when the server is unknown and must register with a full report. */
  heartbeat(req: HeartbeatRequest): boolean {
    const entry = this.servers.get(req.id);
    if (!entry || entry.addr !== req.addr) return false;
    Object.assign(entry, {
      capacityBytes: req.capacityBytes, freeBytes: req.freeBytes, usedBytes: req.usedBytes,
      activeWrites: req.activeWrites, activeReads: req.activeReads, lastHeartbeatMs: this.now(), pendingAllocations: 0,
      copyRateBytesPerSec: req.copyRateBytesPerSec ?? 0,
    });
    for (const c of req.added) this.addReplica(entry, c);
    for (const h of req.removed) this.removeReplica(req.id, h);
    return true;
  }

  private addReplica(entry: ServerEntry, c: ReportedChunk): void {
    entry.chunks.add(c.handle);
    const m = this.locations.get(c.handle);
    // A new array of exactly the right size: push() would leave slack for 16 more elements.
    if (!m) this.locations.set(c.handle, [entry.id, c.version]);
    else if (!setVersion(m, entry.id, c.version)) this.locations.set(c.handle, m.concat(entry.id, c.version));
  }

  /** Records a replica the pipeline told us about, before that server's next heartbeat does. */
  addKnownReplica(serverId: string, handle: number, version: number): void {
    const entry = this.servers.get(serverId);
    if (entry) this.addReplica(entry, { handle, version, length: 0 });
  }

  removeReplica(serverId: string, handle: number): void {
    this.servers.get(serverId)?.chunks.delete(handle);
    const m = this.locations.get(handle);
    if (m && dropServer(m, serverId) && m.length === 0) this.locations.delete(handle);
  }

  private forgetServerChunks(entry: ServerEntry): void {
    this.garbageSeen.delete(entry.id);
    for (const h of entry.chunks) {
      const m = this.locations.get(h);
      if (m && dropServer(m, entry.id) && m.length === 0) this.locations.delete(h);
    }
    entry.chunks.clear();
  }

  isAlive(id: string): boolean {
    const e = this.servers.get(id);
    return !!e && this.now() - e.lastHeartbeatMs <= this.deadTimeoutMs;
  }

  addrOf(id: string): string | undefined {
    return this.servers.get(id)?.addr;
  }

  /** Live replicas of `handle` at `version`. */
  liveReplicas(handle: number, version: number): { id: string; addr: string }[] {
    const m = this.locations.get(handle);
    if (!m) return [];
    const out: { id: string; addr: string }[] = [];
    for (let i = 0; i < m.length; i += 2) {
      const id = m[i] as string;
      if (m[i + 1] === version && this.isAlive(id)) out.push({ id, addr: this.servers.get(id)!.addr });
    }
    return out.sort((a, b) => (a.id < b.id ? -1 : 1));
  }

  /**
   * Replicas on a server to delete now: chunks no file or write references (deleted files,
   * abandoned writes, failed pipelines) and stale replicas (a version older than the chunk's),
   * once they have been so for `graceMs`. The grace period covers a master whose view is
   * momentarily behind and gives an operator time to notice a mistaken delete; a leader change
   * starts it over, which only delays deletion. Returned replicas are forgotten here.
   */
  takeGarbage(serverId: string, versionOf: (handle: number) => number | undefined, graceMs: number, limit: number): number[] {
    const e = this.servers.get(serverId);
    if (!e || limit <= 0) return [];
    const now = this.now();
    const seen = this.garbageSeen.get(serverId) ?? new Map<number, number>();
    const ready: number[] = [];
    for (const h of e.chunks) {
      const want = versionOf(h);
      const have = this.versionOn(serverId, h);
      if (want !== undefined && have !== undefined && have >= want) {
        seen.delete(h); // referenced again (e.g. a reinstated write): not garbage after all
        continue;
      }
      let since = seen.get(h);
      if (since === undefined) seen.set(h, (since = now));
      if (now - since >= graceMs && ready.length < limit) ready.push(h);
    }
    for (const h of ready) {
      seen.delete(h);
      this.removeReplica(serverId, h);
    }
    for (const h of seen.keys()) if (!e.chunks.has(h)) seen.delete(h); // the server dropped it itself
    if (seen.size > 0) this.garbageSeen.set(serverId, seen);
    else this.garbageSeen.delete(serverId);
    return ready;
  }

  /** A replica failed its checksum on `serverId` (which dropped it): forget it, remember why. */
  markCorrupt(serverId: string, handle: number): void {
    this.removeReplica(serverId, handle);
    let set = this.corrupt.get(handle);
    if (!set) this.corrupt.set(handle, (set = new Set()));
    if (set.size < 64) set.add(serverId);
  }

  /** Servers that reported `handle` corrupt since it was last healthy. */
  corruptReports(handle: number): number {
    return this.corrupt.get(handle)?.size ?? 0;
  }

  /** The chunk is healthy again (or gone): its corrupt reports are history. */
  clearCorrupt(handle: number): void {
    this.corrupt.delete(handle);
  }

  /** Handles with corrupt reports outstanding (for cleaning up those of deleted files). */
  corruptHandles(): number[] {
    return [...this.corrupt.keys()];
  }

  /** Live servers with their capacity and the handles they hold (for balancing decisions). */
  liveServers(): { id: string; addr: string; capacityBytes: number; chunks: ReadonlySet<number> }[] {
    return [...this.servers.values()]
      .filter((s) => this.isAlive(s.id))
      .map((s) => ({ id: s.id, addr: s.addr, capacityBytes: s.capacityBytes, chunks: s.chunks }))
      .sort((a, b) => (a.id < b.id ? -1 : 1));
  }

  /** The id of the server at `addr`, or `addr` itself when it is already a known id. */
  resolve(idOrAddr: string): string | undefined {
    if (this.servers.has(idOrAddr)) return idOrAddr;
    for (const s of this.servers.values()) if (s.addr === idOrAddr) return s.id;
    return undefined;
  }

  place(count: number, exclude: string[], chunkSizeBytes: number): { id: string; addr: string }[] {
    const ex = new Set(exclude);
    const live = [...this.servers.values()].filter((s) => !ex.has(s.id) && this.isAlive(s.id));
    const ids = chooseReplicas(live, count, chunkSizeBytes);
    return ids.map((id) => {
      const s = this.servers.get(id)!;
      s.pendingAllocations++;
      return { id, addr: s.addr };
    });
  }

  /** The server's cap on incoming copies, bytes a second (0: none or unknown). */
  copyRateOf(id: string): number {
    return this.servers.get(id)?.copyRateBytesPerSec ?? 0;
  }

  /** Free bytes as last reported (0 for an unknown server). */
  freeBytes(id: string): number {
    const s = this.servers.get(id);
    return s ? s.freeBytes : 0;
  }

  /** The version of `handle` that `serverId` reported, if it holds one. */
  versionOn(serverId: string, handle: number): number | undefined {
    const m = this.locations.get(handle);
    return m ? versionOf(m, serverId) : undefined;
  }

  /** Every server, alive or not, that reported `handle` at `version`. */
  holders(handle: number, version: number): string[] {
    const m = this.locations.get(handle);
    const out: string[] = [];
    if (m) for (let i = 0; i < m.length; i += 2) if (m[i + 1] === version) out.push(m[i] as string);
    return out;
  }

  /** Free space as a share of capacity (0 for an unknown server). */
  freeRatio(id: string): number {
    const s = this.servers.get(id);
    return s && s.capacityBytes > 0 ? s.freeBytes / s.capacityBytes : 0;
  }

  /** Whether any server (alive or not) has reported a replica of `handle`. */
  hasAnyReplica(handle: number): boolean {
    return (this.locations.get(handle)?.length ?? 0) > 0;
  }

  liveCount(): number {
    return [...this.servers.keys()].filter((id) => this.isAlive(id)).length;
  }

  list(): Omit<ChunkserverStatus, 'state' | 'decommissionRemaining'>[] {
    const now = this.now();
    return [...this.servers.values()]
      .sort((a, b) => (a.id < b.id ? -1 : 1))
      .map((s) => ({
        id: s.id, addr: s.addr, alive: this.isAlive(s.id), capacityBytes: s.capacityBytes, freeBytes: s.freeBytes,
        usedBytes: s.usedBytes, chunkCount: s.chunks.size, activeWrites: s.activeWrites, activeReads: s.activeReads,
        lastHeartbeatAgoMs: now - s.lastHeartbeatMs,
      }));
  }

  clear(): void {
    this.servers.clear();
    this.locations.clear();
    this.garbageSeen.clear();
    this.corrupt.clear();
  }
}
