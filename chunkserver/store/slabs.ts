/** Received bytes are copied into slabs of this size, each written to the file with one call. */
export const WRITE_SLAB_BYTES = 1024 * 1024;
/** Arenas of write slabs kept while wholly idle, store-wide (8 MiB each). */
export const MAX_IDLE_ARENAS = 4;
/** What O_DIRECT needs aligned (file offsets, lengths, memory): a page covers any logical block size up to 4 KiB. */
export const DIRECT_ALIGN_BYTES = 4096;
/** Slabs allocated together: each WebAssembly memory reserves gigabytes of address space, so few of them. */
export const SLABS_PER_ARENA = 8;

/**
 * A buffer whose memory starts on a page boundary, as O_DIRECT needs (EINVAL otherwise). A Node
 * Buffer's memory need not; a WebAssembly memory's always does. Sizes round up to 64 KiB.
 */
export function alignedBuffer(bytes: number): Buffer {
  const pages = Math.ceil(bytes / 65536);
  return Buffer.from(new WebAssembly.Memory({ initial: pages, maximum: pages }).buffer, 0, bytes);
}

interface Arena { free: Buffer[] }

/**
 * Write slabs (page-aligned), reused. A slab is an eighth of an arena (one WebAssembly memory),
 * and an arena's memory goes only when all eight are idle: so the pool counts and drops whole
 * arenas, keeping at most `maxIdleArenas` wholly idle ones, and hands out slabs from arenas
 * already in use first.
 */
export class SlabPool {
  private readonly arenas = new Map<ArrayBufferLike, Arena>();

  constructor(private readonly maxIdleArenas: number) {}

  /** Arenas alive, and how many of those are wholly idle (for tests and metrics). */
  stats(): { arenas: number; idleArenas: number } {
    let idleArenas = 0;
    for (const a of this.arenas.values()) if (a.free.length === SLABS_PER_ARENA) idleArenas++;
    return { arenas: this.arenas.size, idleArenas };
  }

  take(): Buffer {
    let best: Arena | undefined;
    for (const a of this.arenas.values()) if (a.free.length > 0 && (!best || a.free.length < best.free.length)) best = a;
    if (best) return best.free.pop()!;
    const memory = alignedBuffer(SLABS_PER_ARENA * WRITE_SLAB_BYTES);
    const arena: Arena = { free: [] };
    for (let i = 1; i < SLABS_PER_ARENA; i++) arena.free.push(memory.subarray(i * WRITE_SLAB_BYTES, (i + 1) * WRITE_SLAB_BYTES));
    this.arenas.set(memory.buffer, arena);
    return memory.subarray(0, WRITE_SLAB_BYTES);
  }

  /** Hands a slab back; only once nothing (a write in flight) uses it any more. */
  give(slab: Buffer): void {
    const arena = this.arenas.get(slab.buffer);
    if (!arena) return;
    arena.free.push(slab);
    if (arena.free.length === SLABS_PER_ARENA && this.stats().idleArenas > this.maxIdleArenas) this.arenas.delete(slab.buffer);
  }
}
