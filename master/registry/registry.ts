// The registry's facade: the chunkservers, their liveness and use, and where each chunk's replicas are.
import type { ChunkserverStatus, HeartbeatRequest, RegisterRequest, ReportedChunk } from '../../common/protocol.js';
import { DEFAULT_RACK } from '../../common/racks.js';
import { chooseReplicas } from '../placement.js';
import { CorruptReplicas } from './corrupt.js';
import { GarbageSweeps } from './garbage.js';
import { ConnectionLiveness } from './liveness.js';
import { LocationTable, MAX_SERVERS } from './location-table.js';

interface ServerEntry {
  id: string;
  /** The server's number in the location table (1 and up), kept while the entry is. */
  index: number;
  addr: string;
  capacityBytes: number;
  freeBytes: number;
  usedBytes: number;
  activeWrites: number;
  activeReads: number;
  lastHeartbeatMs: number;
  pendingAllocations: number;
  copyRateBytesPerSec: number;
  /** Replicas the location table holds for this server. */
  chunkCount: number;
  /** The file system its data is on (see ServerStats.fsId); undefined from a server that does not say. */
  fsId?: string;
  /** Its failure domain, as it registered (DEFAULT_RACK when it names none). */
  rack: string;
}

/** What placement needs to know of a chunk beyond its size (see RackPlan): ids here, racks looked up. */
export interface PlaceOptions { holders?: readonly string[]; writerRack?: string; replication?: number; strict?: boolean }

/**
 * Volatile knowledge of the chunkservers: who is alive, how full and busy, and which chunk
 * replicas each holds. Rebuilt from registrations and heartbeats; never persisted.
 */
/**
 * Whether a replica reported at `reported` serves the chunk at `version`: at that version or a
 * later one (appends only add bytes, so a later version begins with the same ones). A version
 * past 32 bits, kept as the largest (see location-table.ts), is no master's: never current.
 */
function isCurrent(reported: number, version: number): boolean {
  return reported >= version && reported < 0xffffffff;
}

export class Registry {
  private servers = new Map<string, ServerEntry>();
  /** Server number → entry (0 is no server); numbers of removed entries are given out again. */
  private byIndex: (ServerEntry | undefined)[] = [undefined];
  private freeIndexes: number[] = [];
  private readonly locations = new LocationTable();
  /** Where each server's garbage sweep stands (see takeGarbage). */
  private readonly garbage = new GarbageSweeps(this.locations);
  private readonly corrupt = new CorruptReplicas();
  /** What the servers' connections to the leader say (liveness.ts): suspect at once, dead after a grace. */
  readonly liveness: ConnectionLiveness;

  /**
   * `now` is the leader's clock reading (the core's, never the machine's); `random` is the
   * placement jitter's source (seeded in tests and the simulator); `connectionGraceMs` how long a
   * server whose connection dropped has to connect again.
   */
  constructor(private readonly deadTimeoutMs: number, private readonly now: () => number, private readonly random: () => number, connectionGraceMs = Number.POSITIVE_INFINITY) {
    this.liveness = new ConnectionLiveness(connectionGraceMs);
  }

  register(req: RegisterRequest): void {
    const old = this.servers.get(req.id);
    if (old) this.forgetServerChunks(old);
    this.liveness.registered(req.id);
    // An address now claimed by another id belongs to a server that was wiped and re-created.
    for (const other of this.servers.values()) {
      if (other.id !== req.id && other.addr === req.addr) {
        this.forgetServerChunks(other);
        this.servers.delete(other.id);
        this.liveness.forget(other.id);
        this.byIndex[other.index] = undefined;
        this.freeIndexes.push(other.index);
      }
    }
    const entry: ServerEntry = {
      id: req.id, index: old?.index ?? this.newIndex(), addr: req.addr, capacityBytes: req.capacityBytes, freeBytes: req.freeBytes, usedBytes: req.usedBytes,
      activeWrites: req.activeWrites, activeReads: req.activeReads, lastHeartbeatMs: this.now(), pendingAllocations: 0,
      copyRateBytesPerSec: req.copyRateBytesPerSec ?? 0, chunkCount: 0, fsId: req.fsId, rack: req.rack ?? DEFAULT_RACK, // rack rule
    };
    this.servers.set(req.id, entry);
    this.byIndex[entry.index] = entry;
    for (const c of req.chunks) this.addReplica(entry, c);
  }

  /** A known server at `addr` is alive now (it is sending a paged report); nothing else changes. */
  touch(id: string, addr: string): void {
    const entry = this.servers.get(id);
    if (entry && entry.addr === addr) entry.lastHeartbeatMs = this.now();
  }

  /** Applies a heartbeat; false when the server is unknown and must register with a full report. */
  heartbeat(req: HeartbeatRequest): boolean {
    const entry = this.servers.get(req.id);
    if (!entry || entry.addr !== req.addr) return false;
    Object.assign(entry, {
      capacityBytes: req.capacityBytes, freeBytes: req.freeBytes, usedBytes: req.usedBytes,
      activeWrites: req.activeWrites, activeReads: req.activeReads, lastHeartbeatMs: this.now(), pendingAllocations: 0,
      copyRateBytesPerSec: req.copyRateBytesPerSec ?? 0, fsId: req.fsId,
    });
    for (const c of req.added) this.addReplica(entry, c);
    for (const h of req.removed) this.removeReplica(req.id, h);
    return true;
  }

  private newIndex(): number {
    const index = this.freeIndexes.pop() ?? this.byIndex.length;
    if (index > MAX_SERVERS) throw new Error(`more than ${MAX_SERVERS} chunkservers registered with this master`);
    return index;
  }

  private addReplica(entry: ServerEntry, c: ReportedChunk): void {
    if (this.locations.set(c.handle, entry.index, c.version)) entry.chunkCount++;
  }

  /** Records a replica the pipeline told us about, before that server's next heartbeat does. */
  addKnownReplica(serverId: string, handle: number, version: number): void {
    const entry = this.servers.get(serverId);
    if (entry) this.addReplica(entry, { handle, version, length: 0 });
  }

  removeReplica(serverId: string, handle: number): void {
    const entry = this.servers.get(serverId);
    if (entry && this.locations.remove(handle, entry.index)) entry.chunkCount--;
  }

  private forgetServerChunks(entry: ServerEntry): void {
    this.garbage.forget(entry.id);
    this.locations.removeServer(entry.index);
    entry.chunkCount = 0;
  }

  /** Whether a server of this id is in the registry (alive or not). */
  isKnown(id: string): boolean {
    return this.servers.has(id);
  }

  isAlive(id: string): boolean {
    const e = this.servers.get(id);
    if (!e) return false;
    const now = this.now();
    // A server held restarting is silent on purpose: only the hold's end makes it dead.
    return (now - e.lastHeartbeatMs <= this.deadTimeoutMs || this.liveness.restarting(id, now)) && !this.liveness.expired(id, now);
  }

  /** Alive but not to be offered for new pipelines: its connection dropped (within the grace), or a probe failed. */
  isSuspect(id: string): boolean {
    return this.isAlive(id) && this.liveness.suspect(id, this.now());
  }

  addrOf(id: string): string | undefined {
    return this.servers.get(id)?.addr;
  }

  /**
   * Live replicas of `handle` at `version`, or later: a replica an append is making (or made,
   * and failed to complete) starts with the same bytes and serves them. An older one is stale.
   */
  liveReplicas(handle: number, version: number): { id: string; addr: string }[] {
    const out: { id: string; addr: string }[] = [];
    this.locations.forEachReplica(handle, (server, v) => {
      const s = this.byIndex[server]!;
      if (isCurrent(v, version) && this.isAlive(s.id)) out.push({ id: s.id, addr: s.addr });
    });
    return out.sort((a, b) => (a.id < b.id ? -1 : 1));
  }

  /**
   * Live replicas on servers in service (not suspect): the ones a pipeline, a copy or a reader can
   * count on reaching now. A suspect server's replicas still count against copies (liveReplicas),
   * but one held restarting is down, and one whose link dropped may be.
   */
  inServiceReplicas(handle: number, version: number): { id: string; addr: string }[] {
    return this.liveReplicas(handle, version).filter((r) => !this.isSuspect(r.id));
  }

  /**
   * Replicas on a server to delete now: chunks no file or write references (deleted files,
   * abandoned writes, failed pipelines) and stale replicas (a version older than the chunk's),
   * once they have been so for `graceMs`. The grace period covers a master whose view is
   * momentarily behind and gives an operator time to notice a mistaken delete; a leader change
   * starts it over, which only delays deletion. Returned replicas are forgotten here.
   */
  takeGarbage(serverId: string, versionOf: (handle: number) => number | undefined, graceMs: number, limit: number, issuedBelow = Number.POSITIVE_INFINITY): number[] {
    const e = this.servers.get(serverId);
    if (!e || limit <= 0) return [];
    const ready = this.garbage.take(serverId, e.index, { nowMs: this.now(), versionOf, graceMs, limit, issuedBelow });
    for (const h of ready) this.removeReplica(serverId, h);
    return ready;
  }

  /** A replica failed its checksum on `serverId` (which dropped it): forget it, remember why. */
  markCorrupt(serverId: string, handle: number): void {
    this.removeReplica(serverId, handle);
    this.corrupt.add(serverId, handle);
  }

  /** Servers that reported `handle` corrupt since it was last healthy. */
  corruptReports(handle: number): number {
    return this.corrupt.count(handle);
  }

  /** The chunk is healthy again (or gone): its corrupt reports are history. */
  clearCorrupt(handle: number): void {
    this.corrupt.delete(handle);
  }

  /** How many chunks have corrupt reports outstanding. */
  get corruptCount(): number {
    return this.corrupt.size;
  }

  /** Handles with corrupt reports outstanding (for cleaning up those of deleted files). */
  corruptHandles(): number[] {
    return this.corrupt.handles();
  }

  /** Live servers with their capacity (for balancing decisions). */
  liveServers(): { id: string; addr: string; capacityBytes: number }[] {
    return [...this.servers.values()]
      .filter((s) => this.isAlive(s.id))
      .map((s) => ({ id: s.id, addr: s.addr, capacityBytes: s.capacityBytes }))
      .sort((a, b) => (a.id < b.id ? -1 : 1));
  }

  /** Handles of the replicas a server holds, at any version. A pass over every replica: for balancing, not per chunk. */
  *handlesOn(serverId: string): Generator<number> {
    const e = this.servers.get(serverId);
    if (e) yield* this.locations.handlesOn(e.index);
  }

  /** Calls `fn` for every replica the master knows of, on any server, alive or not. */
  forEachReplica(fn: (handle: number, serverId: string, version: number) => void): void {
    this.locations.forEach((handle, server, version) => fn(handle, this.byIndex[server]!.id, version));
  }

  /** The id of the server at `addr`, or `addr` itself when it is already a known id. */
  resolve(idOrAddr: string): string | undefined {
    if (this.servers.has(idOrAddr)) return idOrAddr;
    for (const s of this.servers.values()) if (s.addr === idOrAddr) return s.id;
    return undefined;
  }

  place(count: number, exclude: string[], chunkSizeBytes: number, opts: PlaceOptions = {}): { id: string; addr: string }[] {
    const ex = new Set(exclude);
    const live = [...this.servers.values()].filter((s) => !ex.has(s.id) && this.isAlive(s.id) && !this.liveness.suspect(s.id, this.now()));
    const plan = { ...opts, holderRacks: opts.holders?.map((id) => this.rackOf(id)) }; // rack rule
    const ids = chooseReplicas(live, count, chunkSizeBytes, this.random, plan);
    return ids.map((id) => {
      const s = this.servers.get(id)!;
      s.pendingAllocations++;
      return { id, addr: s.addr };
    });
  }

  /** The rack a server registered with (DEFAULT_RACK for an unknown one). */
  rackOf(id: string): string {
    return this.servers.get(id)?.rack ?? DEFAULT_RACK;
  }

  /** Live servers per rack, those in `exclude` (draining) left out: the racks a chunk may spread over. */
  rackSizes(exclude: ReadonlySet<string> = new Set()): Map<string, number> {
    const sizes = new Map<string, number>();
    for (const s of this.servers.values()) if (!exclude.has(s.id) && this.isAlive(s.id)) sizes.set(s.rack, (sizes.get(s.rack) ?? 0) + 1);
    return sizes;
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
    const e = this.servers.get(serverId);
    return e ? this.locations.versionOn(handle, e.index) : undefined;
  }

  /** Every server, alive or not, that reported `handle` at `version`. */
  holders(handle: number, version: number): string[] {
    const out: string[] = [];
    this.locations.forEachReplica(handle, (server, v) => {
      if (isCurrent(v, version)) out.push(this.byIndex[server]!.id);
    });
    return out;
  }

  /** Free space as a share of capacity (0 for an unknown server). */
  freeRatio(id: string): number {
    const s = this.servers.get(id);
    return s && s.capacityBytes > 0 ? s.freeBytes / s.capacityBytes : 0;
  }

  /** Whether any server (alive or not) has reported a replica of `handle`. */
  hasAnyReplica(handle: number): boolean {
    return this.locations.has(handle);
  }

  /** Every server known, alive or dead. */
  serverIds(): IterableIterator<string> {
    return this.servers.keys();
  }

  liveCount(): number {
    return [...this.servers.keys()].filter((id) => this.isAlive(id)).length;
  }

  list(): Omit<ChunkserverStatus, 'state' | 'decommissionRemaining'>[] {
    const now = this.now();
    return [...this.servers.values()]
      .sort((a, b) => (a.id < b.id ? -1 : 1))
      .map((s) => ({
        id: s.id, addr: s.addr, alive: this.isAlive(s.id), suspect: this.isSuspect(s.id), ...this.restartField(s.id, now), capacityBytes: s.capacityBytes, freeBytes: s.freeBytes,
        usedBytes: s.usedBytes, chunkCount: s.chunkCount, activeWrites: s.activeWrites, activeReads: s.activeReads,
        lastHeartbeatAgoMs: now - s.lastHeartbeatMs, rack: s.rack, ...(s.fsId !== undefined ? { fsId: s.fsId } : {}),
      }));
  }

  /** `restartHeldMs` for a server held restarting: how much longer before it is dead. */
  private restartField(id: string, now: number): { restartHeldMs?: number } {
    const until = this.liveness.restartHoldUntil(id, now);
    return until !== undefined ? { restartHeldMs: until - now } : {};
  }

  clear(): void {
    this.servers.clear();
    this.byIndex = [undefined];
    this.freeIndexes = [];
    this.locations.clear();
    this.garbage.clear();
    this.corrupt.clear();
    this.liveness.clear();
  }
}
