import { open, type FileHandle } from 'node:fs/promises';
import { BLOCK_SIZE_BYTES, hashBlock } from '../../common/checksum.js';
import { DfsError } from '../../common/errors.js';
import { decodeFooter, decodeTrailer, FOOTER_BYTES, trailerBytes, type ChunkMeta } from '../format.js';

/** Reads verify this many bytes per disk read: large reads, few syscalls, bounded memory. */
export const READ_BATCH_BYTES = 16 * BLOCK_SIZE_BYTES;
/**
 * Idle read batches kept for the next read, store-wide. A fresh 1 MiB buffer per batch made V8
 * run a full mark-compact every few tens of MiB served ("external memory pressure"): more than
 * half of a serving chunkserver's CPU. 32 idle buffers cover the reads a small cluster serves at once.
 */
const MAX_POOLED_BATCHES = 32;

/** Batch-sized buffers for reuse, so a read allocates nothing per batch; at most `max` are kept idle. */
class BatchPool {
  private readonly idle: Buffer[] = [];

  constructor(private readonly max: number) {}

  take(): Buffer {
    return this.idle.pop() ?? Buffer.allocUnsafe(READ_BATCH_BYTES);
  }

  /** Hands a buffer back; only once nothing (a read in flight, a socket write) still uses it. */
  give(buf: Buffer): void {
    if (this.idle.length < this.max) this.idle.push(buf);
  }
}

/** Reads and verifies the trailer of the chunk file open as `file`, which must hold `handle`. */
export async function readChunkMeta(file: FileHandle, handle: number): Promise<ChunkMeta> {
  const { size } = await file.stat();
  if (size < FOOTER_BYTES) throw new Error('chunk file is shorter than its footer');
  const footer = Buffer.alloc(FOOTER_BYTES);
  await file.read(footer, 0, FOOTER_BYTES, size - FOOTER_BYTES);
  const { nBlocks, length } = decodeFooter(footer, size);
  const trailer = Buffer.alloc(trailerBytes(nBlocks));
  await file.read(trailer, 0, trailer.length, length);
  const meta = decodeTrailer(trailer);
  if (meta.handle !== handle) throw new Error(`chunk file holds handle ${meta.handle}`);
  return meta;
}

/** One disk read of whole blocks: `buf` is the batch's bytes, a view of `pooled`, the whole buffer taken from the pool. */
interface Batch { block: number; n: number; start: number; buf: Buffer; pooled: Buffer }

/** Reads stored chunks, verifying every block before any byte of it leaves; its batch buffers are shared by all reads. */
export class ChunkReader {
  private readonly batches = new BatchPool(MAX_POOLED_BATCHES);

  /**
   * `guard` runs the opening of a chunk file and the reading of its trailer, which an append in
   * place rewrites (the store holds a shared lock for it); the data bytes a trailer covers are
   * never changed in place, so the rest of a read needs no lock.
   */
  constructor(private readonly pathOf: (handle: number) => string, private readonly guard: <T>(handle: number, fn: () => Promise<T>) => Promise<T> = (_h, fn) => fn()) {}

  /**
   * Streams bytes [offset, offset+length) of a chunk to `sink`, verifying every 64 KiB block it
   * touches before handing over any byte of that block. Throws CHECKSUM_MISMATCH on a bad block.
   * The bytes are lent: the sink may use them until the promise it returns settles, and must copy
   * what it keeps longer, as their memory is then reused for a later batch.
   */
  async readRange(handle: number, offset: number, length: number, sink: (bytes: Buffer) => Promise<void>): Promise<void> {
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0) {
      throw new DfsError('INVALID_ARGUMENT', `bad range: offset ${offset}, length ${length}`);
    }
    const { fh, meta } = await this.guard(handle, async () => {
      const file = await open(this.pathOf(handle), 'r').catch(() => {
        throw new DfsError('CHUNK_NOT_FOUND', `chunk ${handle} is not stored here`);
      });
      try {
        return { fh: file, meta: await readChunkMeta(file, handle) };
      } catch (err) {
        await file.close();
        throw new DfsError('CHECKSUM_MISMATCH', `chunk ${handle}: ${(err as Error).message}`);
      }
    });
    try {
      if (offset + length > meta.length) throw new DfsError('INVALID_ARGUMENT', `range ${offset}+${length} is past the chunk's ${meta.length} bytes`);
      if (length === 0) return;
      await this.stream(fh, meta, offset, offset + length, sink);
    } finally {
      await fh.close();
    }
  }

  /** The verified bytes [offset, end) to `sink`, batch by batch; one batch is read ahead while the previous one is verified and sent. */
  private async stream(fh: FileHandle, meta: ChunkMeta, offset: number, end: number, sink: (bytes: Buffer) => Promise<void>): Promise<void> {
    const lastBlock = Math.floor((end - 1) / BLOCK_SIZE_BYTES);
    // A read-ahead fails while nobody awaits it yet: mark it handled now (an unhandled rejection
    // would end the process); awaiting it below still throws the error.
    const ahead = (block: number): Promise<Batch> => {
      const p = this.readBatch(fh, meta, block, lastBlock);
      p.catch(() => undefined);
      return p;
    };
    let next: Promise<Batch> | undefined = ahead(Math.floor(offset / BLOCK_SIZE_BYTES));
    try {
      while (next) {
        const { block, n, start, buf, pooled }: Batch = await next;
        next = block + n <= lastBlock ? ahead(block + n) : undefined;
        for (let i = 0; i < n; i++) {
          const b = buf.subarray(i * BLOCK_SIZE_BYTES, Math.min((i + 1) * BLOCK_SIZE_BYTES, buf.length));
          if (hashBlock(b) !== meta.blockHashes[block + i]) {
            throw new DfsError('CHECKSUM_MISMATCH', `chunk ${meta.handle}: block ${block + i} failed its checksum`, { handle: meta.handle, block: block + i });
          }
        }
        const from = Math.max(offset, start) - start;
        const to = Math.min(end, start + buf.length) - start;
        await sink(buf.subarray(from, to));
        // Only a sink that finished with the bytes gives them back; after a failure they may
        // still sit in a socket's queue, so they are left to the garbage collector.
        this.batches.give(pooled);
      }
    } finally {
      // A read ahead still in flight must finish before the descriptor is closed.
      await next?.catch(() => undefined);
    }
  }

  private async readBatch(fh: FileHandle, meta: ChunkMeta, block: number, lastBlock: number): Promise<Batch> {
    const n = Math.min(READ_BATCH_BYTES / BLOCK_SIZE_BYTES, lastBlock - block + 1);
    const start = block * BLOCK_SIZE_BYTES;
    const bytes = Math.min(n * BLOCK_SIZE_BYTES, meta.length - start);
    const pooled = this.batches.take();
    const buf = pooled.subarray(0, bytes);
    const { bytesRead } = await fh.read(buf, 0, bytes, start);
    if (bytesRead !== bytes) throw new DfsError('CHECKSUM_MISMATCH', `chunk ${meta.handle}: short read`);
    return { block, n, start, buf, pooled };
  }
}
