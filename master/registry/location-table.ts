// Chunk locations: each chunk's replicas as (server number, version), in typed arrays.

/** Replica slots in a block: the usual replication, so that most chunks take one block. */
const SLOTS_PER_BLOCK = 3;
const NO_BLOCK = -1;
const INITIAL_BLOCKS = 1024;
/** Server numbers are 16 bits, 0 marking a free slot. */
export const MAX_SERVERS = 0xffff;
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
export class LocationTable {
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
