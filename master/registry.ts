import type { ChunkserverStatus, HeartbeatRequest, RegisterRequest, ReportedChunk } from '../common/protocol.js';
import { DEFAULT_RACK } from '../common/racks.js';
import { chooseReplicas } from './placement.js';

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

/** Replica slots in a block: the usual replication, so that most chunks take one block. */
const SLOTS_PER_BLOCK = 3;
const NO_BLOCK = -1;
const INITIAL_BLOCKS = 1024;
/** Server numbers are 16 bits, 0 marking a free slot. */
const MAX_SERVERS = 0xffff;
/**
 * Versions are 32 bits, as in the chunk table. A larger one (no master hands one out) is kept as
 * the largest: still newer than any version the table has.
 */
const MAX_VERSION = 0xffffffff;

function grown<T extends Uint16Array | Uint32Array | Int32Array | Float64Array>(column: T, length: number): T {
  const wider = new (column.constructor as new (n: number) => T)(length);
  wider.set(column);
  return wider;
}

/**
 * Chunk locations: for each handle, its replicas as (server number, version). A master holds
 * this for every chunk, so it is typed arrays, not an object per chunk: a chunk's replicas fill
 * the slots of a chain of blocks (one block up to three replicas, more blocks beyond) from the
 * first slot on, without gaps, and a Map gives each handle its first block. A block is 30 bytes;
 * the Map, ids as strings and a per-server Set of handles took about 210 a chunk. A server's
 * replicas are found through a bitmap of the blocks it has a slot in, as garbage collection does
 * on every heartbeat: a pass over C/32 words and the server's own blocks, not over every chunk.
 * A bit per block and server costs less than the Sets did below about 600 servers.
 */
class LocationTable {
  private readonly firstBlock = new Map<number, number>();
  private readonly freeBlocks: number[] = [];
  private blocksUsed = 0;
  /** Per block: its chunk's handle, and the next block of the chain or NO_BLOCK. */
  private handle = new Float64Array(INITIAL_BLOCKS);
  private next = new Int32Array(INITIAL_BLOCKS);
  /** Per slot (block * SLOTS_PER_BLOCK + i): the server number (0: free) and the version it holds. */
  private server = new Uint16Array(INITIAL_BLOCKS * SLOTS_PER_BLOCK);
  private version = new Uint32Array(INITIAL_BLOCKS * SLOTS_PER_BLOCK);
  /** Per server number: a bit per block, set where the server has a slot (a server has at most one a chunk). */
  private blocksOf: (Uint32Array | undefined)[] = [];

  has(handle: number): boolean {
    return this.firstBlock.has(handle);
  }

  versionOn(handle: number, server: number): number | undefined {
    const slot = this.slotOf(handle, server);
    return slot === undefined ? undefined : this.version[slot];
  }

  /** Calls `fn` for each replica of `handle`, in the order they were added. */
  forEachReplica(handle: number, fn: (server: number, version: number) => void): void {
    for (let b = this.firstBlock.get(handle) ?? NO_BLOCK; b !== NO_BLOCK; b = this.next[b]!) {
      for (let slot = b * SLOTS_PER_BLOCK; slot < (b + 1) * SLOTS_PER_BLOCK && this.server[slot] !== 0; slot++) fn(this.server[slot]!, this.version[slot]!);
    }
  }

  /** Calls `fn` for every replica of every chunk, chunks in the order they were first reported. */
  forEach(fn: (handle: number, server: number, version: number) => void): void {
    this.firstBlock.forEach((first, handle) => {
      for (let b = first; b !== NO_BLOCK; b = this.next[b]!) {
        for (let slot = b * SLOTS_PER_BLOCK; slot < (b + 1) * SLOTS_PER_BLOCK && this.server[slot] !== 0; slot++) fn(handle, this.server[slot]!, this.version[slot]!);
      }
    });
  }

  /** Calls `fn` for each replica `server` holds, with its handle and version. Changing the table meanwhile is not allowed. */
  forEachOn(server: number, fn: (handle: number, version: number) => void): void {
    this.forEachBlockOf(server, (b) => fn(this.handle[b]!, this.version[this.slotInBlock(b, server)]!));
  }

  /**
   * As forEachOn, from block `from` on, for at most `maxBlocks` of the server's blocks. Returns
   * the block to go on from, or 0 once the end is reached (a sweep starts again at 0).
   */
  forEachOnFrom(server: number, from: number, maxBlocks: number, fn: (handle: number, version: number) => void): number {
    const bits = this.blocksOf[server];
    if (!bits) return 0;
    let left = maxBlocks;
    for (let w = from >>> 5; w < bits.length; w++) {
      // In the first word, only the blocks at or after `from`.
      let word = w === from >>> 5 ? bits[w]! & ~((1 << (from & 31)) - 1) : bits[w]!;
      for (; word !== 0; word &= word - 1) {
        if (left-- === 0) return w * 32 + 31 - Math.clz32(word & -word);
        const b = w * 32 + 31 - Math.clz32(word & -word);
        fn(this.handle[b]!, this.version[this.slotInBlock(b, server)]!);
      }
    }
    return 0;
  }

  /** Handles of the replicas `server` holds, one at a time: balancing stops at the first it can move. */
  *handlesOn(server: number): Generator<number> {
    const bits = this.blocksOf[server] ?? new Uint32Array(0);
    for (let w = 0; w < bits.length; w++) {
      for (let word = bits[w]!; word !== 0; word &= word - 1) yield this.handle[w * 32 + 31 - Math.clz32(word & -word)]!;
    }
  }

  /** Records that `server` holds `handle` at `version`; true when it is a new replica. */
  set(handle: number, server: number, reportedVersion: number): boolean {
    const version = Math.min(reportedVersion, MAX_VERSION);
    let b = this.firstBlock.get(handle);
    if (b === undefined) {
      b = this.newBlock(handle);
      this.firstBlock.set(handle, b);
    }
    for (;;) {
      for (let slot = b * SLOTS_PER_BLOCK; slot < (b + 1) * SLOTS_PER_BLOCK; slot++) {
        if (this.server[slot] === server) {
          this.version[slot] = version;
          return false;
        }
        if (this.server[slot] === 0) {
          this.server[slot] = server;
          this.version[slot] = version;
          this.mark(server, b);
          return true;
        }
      }
      if (this.next[b] === NO_BLOCK) this.next[b] = this.newBlock(handle);
      b = this.next[b]!;
    }
  }

  /** Forgets `server`'s replica of `handle`; true when there was one. The chain's last replica fills the gap. */
  remove(handle: number, server: number): boolean {
    const slot = this.slotOf(handle, server);
    if (slot === undefined) return false;
    let before = NO_BLOCK;
    let last = this.firstBlock.get(handle)!;
    while (this.next[last] !== NO_BLOCK) {
      before = last;
      last = this.next[last]!;
    }
    let end = last * SLOTS_PER_BLOCK;
    while (end + 1 < (last + 1) * SLOTS_PER_BLOCK && this.server[end + 1] !== 0) end++;
    const block = Math.floor(slot / SLOTS_PER_BLOCK);
    this.unmark(server, block);
    if (end !== slot) {
      const moved = this.server[end]!;
      this.unmark(moved, last);
      this.mark(moved, block);
      this.server[slot] = moved;
      this.version[slot] = this.version[end]!;
    }
    this.server[end] = 0;
    if (end === last * SLOTS_PER_BLOCK) {
      // The last block is empty now: unlink it (and with the first, the handle).
      if (before === NO_BLOCK) this.firstBlock.delete(handle);
      else this.next[before] = NO_BLOCK;
      this.freeBlocks.push(last);
    }
    return true;
  }

  /** Forgets every replica `server` holds. */
  removeServer(server: number): void {
    for (const handle of [...this.handlesOn(server)]) this.remove(handle, server);
    this.blocksOf[server] = undefined;
  }

  clear(): void {
    this.firstBlock.clear();
    this.freeBlocks.length = 0;
    this.blocksUsed = 0;
    this.handle = new Float64Array(INITIAL_BLOCKS);
    this.next = new Int32Array(INITIAL_BLOCKS);
    this.server = new Uint16Array(INITIAL_BLOCKS * SLOTS_PER_BLOCK);
    this.version = new Uint32Array(INITIAL_BLOCKS * SLOTS_PER_BLOCK);
    this.blocksOf = [];
  }

  private slotOf(handle: number, server: number): number | undefined {
    const first = this.firstBlock.get(handle);
    return first === undefined ? undefined : this.slotIn(first, server);
  }

  /** `server`'s slot in the chain that starts at block `first`. */
  private slotIn(first: number, server: number): number | undefined {
    for (let b = first; b !== NO_BLOCK; b = this.next[b]!) {
      for (let slot = b * SLOTS_PER_BLOCK; slot < (b + 1) * SLOTS_PER_BLOCK && this.server[slot] !== 0; slot++) {
        if (this.server[slot] === server) return slot;
      }
    }
    return undefined;
  }

  /** `server`'s slot in block `b`, which it has one in. */
  private slotInBlock(b: number, server: number): number {
    let slot = b * SLOTS_PER_BLOCK;
    while (this.server[slot] !== server) slot++;
    return slot;
  }

  /** Calls `fn` with each block `server` has a slot in, lowest first (as handlesOn, without a generator's cost on every heartbeat). */
  private forEachBlockOf(server: number, fn: (block: number) => void): void {
    const bits = this.blocksOf[server];
    if (!bits) return;
    for (let w = 0; w < bits.length; w++) {
      for (let word = bits[w]!; word !== 0; word &= word - 1) fn(w * 32 + 31 - Math.clz32(word & -word));
    }
  }

  private mark(server: number, b: number): void {
    let bits = this.blocksOf[server];
    if (!bits || bits.length <= b >>> 5) {
      bits = grown(bits ?? new Uint32Array(0), Math.ceil(this.next.length / 32));
      this.blocksOf[server] = bits;
    }
    bits[b >>> 5] |= 1 << (b & 31);
  }

  private unmark(server: number, b: number): void {
    this.blocksOf[server]![b >>> 5] &= ~(1 << (b & 31));
  }

  private newBlock(handle: number): number {
    let b = this.freeBlocks.pop();
    if (b === undefined) {
      if (this.blocksUsed === this.next.length) {
        const blocks = Math.ceil(this.next.length * 1.5);
        this.handle = grown(this.handle, blocks);
        this.next = grown(this.next, blocks);
        this.server = grown(this.server, blocks * SLOTS_PER_BLOCK);
        this.version = grown(this.version, blocks * SLOTS_PER_BLOCK);
      }
      b = this.blocksUsed++;
    }
    this.handle[b] = handle;
    this.next[b] = NO_BLOCK;
    return b;
  }
}

/**
 * Volatile knowledge of the chunkservers: who is alive, how full and busy, and which chunk
 * replicas each holds. Rebuilt from registrations and heartbeats; never persisted.
 */
/** Replicas a garbage check looks at per heartbeat; a larger server is swept over several. */
export const GARBAGE_CHECKS_PER_CALL = 32_768;

/** A server's garbage sweep: where it stands, and when each garbage replica was first seen. */
interface GarbageSweep { cursor: number; earlier: Map<number, number>; current: Map<number, number> }

export class Registry {
  private servers = new Map<string, ServerEntry>();
  /** Server number → entry (0 is no server); numbers of removed entries are given out again. */
  private byIndex: (ServerEntry | undefined)[] = [undefined];
  private freeIndexes: number[] = [];
  private readonly locations = new LocationTable();
  /** server id → where its garbage sweep stands, and when each garbage replica was first seen (see takeGarbage). */
  private garbageSweeps = new Map<string, GarbageSweep>();
  /** handle → servers that reported a replica corrupt (dropped there), until the chunk is healthy again. */
  private corrupt = new Map<number, Set<string>>();

  /**
   * `now` is the leader's clock reading (the core's, never the machine's); `random` is the
   * placement jitter's source (seeded in tests and the simulator).
   */
  constructor(private readonly deadTimeoutMs: number, private readonly now: () => number, private readonly random: () => number) {}

  register(req: RegisterRequest): void {
    const old = this.servers.get(req.id);
    if (old) this.forgetServerChunks(old);
    // An address now claimed by another id belongs to a server that was wiped and re-created.
    for (const other of this.servers.values()) {
      if (other.id !== req.id && other.addr === req.addr) {
        this.forgetServerChunks(other);
        this.servers.delete(other.id);
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
    this.garbageSweeps.delete(entry.id);
    this.locations.removeServer(entry.index);
    entry.chunkCount = 0;
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
    const out: { id: string; addr: string }[] = [];
    this.locations.forEachReplica(handle, (server, v) => {
      const s = this.byIndex[server]!;
      if (v === version && this.isAlive(s.id)) out.push({ id: s.id, addr: s.addr });
    });
    return out.sort((a, b) => (a.id < b.id ? -1 : 1));
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
    const now = this.now();
    let sweep = this.garbageSweeps.get(serverId);
    if (!sweep) this.garbageSweeps.set(serverId, (sweep = { cursor: 0, earlier: new Map(), current: new Map() }));
    const { earlier, current } = sweep;
    const ready: number[] = [];
    // A call looks at the next GARBAGE_CHECKS_PER_CALL replicas, not all of them: a server with
    // a million replicas took 0.1 s of the leader's loop per heartbeat. Garbage seen in this
    // sweep is in `current`; what the sweep has not reached yet keeps its time from `earlier`.
    sweep.cursor = this.locations.forEachOnFrom(e.index, sweep.cursor, GARBAGE_CHECKS_PER_CALL, (h, have) => {
      const want = versionOf(h);
      if (want !== undefined && have >= want) return; // referenced (perhaps again, as a reinstated write): not garbage
      // A handle this namespace never issued is not its garbage: another cluster's chunk, or a
      // master that lost its data. Deleting it would destroy what this master cannot know.
      if (h >= issuedBelow) return;
      const since = current.get(h) ?? earlier.get(h) ?? now;
      if (now - since >= graceMs && ready.length < limit) ready.push(h);
      else current.set(h, since);
    });
    for (const h of ready) {
      current.delete(h);
      this.removeReplica(serverId, h);
    }
    // At the end of a sweep, what it did not see again (no longer held, referenced again) drops out.
    if (sweep.cursor === 0) this.garbageSweeps.set(serverId, { cursor: 0, earlier: current, current: new Map() });
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

  /** How many chunks have corrupt reports outstanding. */
  get corruptCount(): number {
    return this.corrupt.size;
  }

  /** Handles with corrupt reports outstanding (for cleaning up those of deleted files). */
  corruptHandles(): number[] {
    return [...this.corrupt.keys()];
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
    const live = [...this.servers.values()].filter((s) => !ex.has(s.id) && this.isAlive(s.id));
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
      if (v === version) out.push(this.byIndex[server]!.id);
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

  liveCount(): number {
    return [...this.servers.keys()].filter((id) => this.isAlive(id)).length;
  }

  list(): Omit<ChunkserverStatus, 'state' | 'decommissionRemaining'>[] {
    const now = this.now();
    return [...this.servers.values()]
      .sort((a, b) => (a.id < b.id ? -1 : 1))
      .map((s) => ({
        id: s.id, addr: s.addr, alive: this.isAlive(s.id), capacityBytes: s.capacityBytes, freeBytes: s.freeBytes,
        usedBytes: s.usedBytes, chunkCount: s.chunkCount, activeWrites: s.activeWrites, activeReads: s.activeReads,
        lastHeartbeatAgoMs: now - s.lastHeartbeatMs, rack: s.rack, ...(s.fsId !== undefined ? { fsId: s.fsId } : {}),
      }));
  }

  clear(): void {
    this.servers.clear();
    this.byIndex = [undefined];
    this.freeIndexes = [];
    this.locations.clear();
    this.garbageSweeps.clear();
    this.corrupt.clear();
  }
}
