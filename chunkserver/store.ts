import { randomBytes } from 'node:crypto';
import { constants as fsc } from 'node:fs';
import { mkdir, open, readdir, rename, rm, statfs, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { BLOCK_SIZE_BYTES, BlockHasher, hashBlock } from '../common/checksum.js';
import { DfsError } from '../common/errors.js';
import type { Logger } from '../common/log.js';
import type { ReportedChunk } from '../common/protocol.js';
import { decodeFooter, decodeTrailer, encodeTrailer, FOOTER_BYTES, trailerBytes, type ChunkMeta } from './format.js';

export interface StoredChunk { handle: number; version: number; length: number; checksum: string }

/** Reads verify this many bytes per disk read: large reads, few syscalls, bounded memory. */
export const READ_BATCH_BYTES = 16 * BLOCK_SIZE_BYTES;
/**
 * Idle read batches kept for the next read, store-wide. A fresh 1 MiB buffer per batch made V8
 * run a full mark-compact every few tens of MiB served ("external memory pressure"): more than
 * half of a serving chunkserver's CPU. 32 idle buffers cover the reads a small cluster serves at once.
 */
export const MAX_POOLED_BATCHES = 32;

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

async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, fsc.O_RDONLY);
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/**
 * The chunk files under `<dataDir>/chunks`, one per handle, written through a temporary file in
 * `<dataDir>/tmp` that is fsynced and renamed into place (and the folder fsynced) before any
 * write is acknowledged. Damaged replicas move to `<dataDir>/corrupt` for inspection.
 */
export class ChunkStore {
  private readonly index = new Map<number, StoredChunk>();
  private added: StoredChunk[] = [];
  private removed: number[] = [];
  readonly chunksDir: string;
  private readonly tmpDir: string;
  private readonly corruptDir: string;
  private readonly batches = new BatchPool(MAX_POOLED_BATCHES);

  constructor(readonly dataDir: string, private readonly log: Logger) {
    this.chunksDir = join(dataDir, 'chunks');
    this.tmpDir = join(dataDir, 'tmp');
    this.corruptDir = join(dataDir, 'corrupt');
  }

  /** Scans the chunk folder, verifying each trailer; leftovers of interrupted writes are removed. */
  async open(): Promise<void> {
    await rm(this.tmpDir, { recursive: true, force: true });
    for (const d of [this.chunksDir, this.tmpDir, this.corruptDir]) await mkdir(d, { recursive: true });
    for (const name of await readdir(this.chunksDir)) {
      const m = /^(\d+)\.chunk$/.exec(name);
      if (!m) continue;
      const handle = Number(m[1]);
      try {
        const meta = await this.readMeta(handle);
        this.index.set(handle, { handle, version: meta.version, length: meta.length, checksum: meta.checksum });
      } catch (err) {
        this.log.warn({ handle, err: (err as Error).message }, 'chunk file failed verification at start; quarantined');
        await this.moveToCorrupt(handle);
      }
    }
  }

  pathOf(handle: number): string {
    return join(this.chunksDir, `${handle}.chunk`);
  }

  get(handle: number): StoredChunk | undefined {
    return this.index.get(handle);
  }

  list(): ReportedChunk[] {
    return [...this.index.values()].map(({ handle, version, length }) => ({ handle, version, length }));
  }

  get count(): number {
    return this.index.size;
  }

  usedBytes(): number {
    let n = 0;
    for (const c of this.index.values()) n += c.length;
    return n;
  }

  /** Changes since the last call, for the next heartbeat; put back with restoreChanges if it fails. */
  takeChanges(): { added: ReportedChunk[]; removed: number[] } {
    const out = { added: this.added.map(({ handle, version, length }) => ({ handle, version, length })), removed: this.removed };
    this.added = [];
    this.removed = [];
    return out;
  }

  restoreChanges(c: { added: ReportedChunk[]; removed: number[] }): void {
    this.added.unshift(...c.added.map((a) => ({ ...a, checksum: '' })));
    this.removed.unshift(...c.removed);
  }

  async diskStats(): Promise<{ capacityBytes: number; freeBytes: number }> {
    const s = await statfs(this.dataDir);
    return { capacityBytes: s.blocks * s.bsize, freeBytes: s.bavail * s.bsize };
  }

  /** Reads and verifies the trailer of a stored chunk. */
  async readMeta(handle: number, fh?: FileHandle): Promise<ChunkMeta> {
    const own = !fh;
    const file = fh ?? (await open(this.pathOf(handle), 'r'));
    try {
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
    } finally {
      if (own) await file.close();
    }
  }

  /** Starts writing a new chunk; bytes go to a temporary file until commit(). */
  async createWriter(handle: number, version: number, maxBytes: number): Promise<ChunkWriter> {
    if (this.index.has(handle)) throw new DfsError('CHUNK_EXISTS', `chunk ${handle} is already stored here`);
    const tmp = join(this.tmpDir, `${handle}.${randomBytes(6).toString('hex')}.tmp`);
    const fh = await open(tmp, 'wx');
    return new ChunkWriter(this, fh, tmp, handle, version, maxBytes);
  }

  /** Called by a writer after its rename: the chunk is durable and now served. */
  async publish(tmp: string, chunk: StoredChunk): Promise<void> {
    if (this.index.has(chunk.handle)) throw new DfsError('CHUNK_EXISTS', `chunk ${chunk.handle} is already stored here`);
    await rename(tmp, this.pathOf(chunk.handle));
    await fsyncDir(this.chunksDir);
    this.index.set(chunk.handle, chunk);
    this.added.push(chunk);
  }

  /** Deletes a replica; `report` false when the master asked for it and so already forgot it. */
  async remove(handle: number, report = true): Promise<void> {
    if (!this.index.delete(handle)) return;
    if (report) this.removed.push(handle);
    await rm(this.pathOf(handle), { force: true });
  }

  /** Moves a damaged replica aside so it is never served again, and forgets it. */
  async moveToCorrupt(handle: number): Promise<void> {
    if (this.index.delete(handle)) this.removed.push(handle);
    await rename(this.pathOf(handle), join(this.corruptDir, `${handle}.${Date.now()}.chunk`)).catch(() => undefined);
  }

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
    const fh = await open(this.pathOf(handle), 'r').catch(() => {
      throw new DfsError('CHUNK_NOT_FOUND', `chunk ${handle} is not stored here`);
    });
    try {
      let meta: ChunkMeta;
      try {
        meta = await this.readMeta(handle, fh);
      } catch (err) {
        throw new DfsError('CHECKSUM_MISMATCH', `chunk ${handle}: ${(err as Error).message}`);
      }
      if (offset + length > meta.length) throw new DfsError('INVALID_ARGUMENT', `range ${offset}+${length} is past the chunk's ${meta.length} bytes`);
      if (length === 0) return;
      const end = offset + length;
      const lastBlock = Math.floor((end - 1) / BLOCK_SIZE_BYTES);
      const perBatch = READ_BATCH_BYTES / BLOCK_SIZE_BYTES;
      // One batch is read ahead while the previous one is verified and sent: disk and network overlap.
      // `buf` is the batch's bytes, a view of `pooled`, the whole buffer taken from the pool.
      type Batch = { block: number; n: number; start: number; buf: Buffer; pooled: Buffer };
      const readBatch = async (block: number): Promise<Batch> => {
        const n = Math.min(perBatch, lastBlock - block + 1);
        const start = block * BLOCK_SIZE_BYTES;
        const bytes = Math.min(n * BLOCK_SIZE_BYTES, meta.length - start);
        const pooled = this.batches.take();
        const buf = pooled.subarray(0, bytes);
        const { bytesRead } = await fh.read(buf, 0, bytes, start);
        if (bytesRead !== bytes) throw new DfsError('CHECKSUM_MISMATCH', `chunk ${handle}: short read`);
        return { block, n, start, buf, pooled };
      };
      // A read-ahead fails while nobody awaits it yet: mark it handled now (an unhandled rejection
      // would end the process); awaiting it below still throws the error.
      const ahead = (block: number): Promise<Batch> => {
        const p = readBatch(block);
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
              throw new DfsError('CHECKSUM_MISMATCH', `chunk ${handle}: block ${block + i} failed its checksum`, { handle, block: block + i });
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
    } finally {
      await fh.close();
    }
  }
}

/** Received bytes are gathered into writes of at least this size: few syscalls, few thread-pool trips. */
export const WRITE_BATCH_BYTES = 1024 * 1024;
/** Bytes a writer holds in memory, waiting for the disk, before it makes its sender wait. */
export const MAX_BUFFERED_BYTES = 8 * 1024 * 1024;
/**
 * After this many bytes reach the file, a background fdatasync starts. With lots of memory the
 * kernel would otherwise keep a whole 64 MiB chunk dirty and the final fsync would write it all
 * while the pipeline waits; flushing as data arrives overlaps the disk with the network.
 */
export const SYNC_EVERY_BYTES = 16 * 1024 * 1024;

/**
 * One chunk being received: bytes are hashed as they pass, gathered into large writes to a
 * temporary file (one write in flight while the next batch fills), and flushed to disk in the
 * background as they accumulate. Nothing is acknowledged before finish() has fsynced it all.
 */
export class ChunkWriter {
  private readonly hasher = new BlockHasher();
  private done = false;
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private flushing: Promise<void> | undefined;
  private syncing: Promise<void> | undefined;
  private unsyncedBytes = 0;
  private failure: Error | undefined;

  constructor(
    private readonly store: ChunkStore,
    private readonly fh: FileHandle,
    private readonly tmp: string,
    readonly handle: number,
    readonly version: number,
    private readonly maxBytes: number,
  ) {}

  get bytes(): number {
    return this.hasher.bytes;
  }

  /** Takes `buf` (kept, not copied: the caller must not reuse it); waits only when the disk is behind. */
  async write(buf: Buffer): Promise<void> {
    if (this.failure) throw this.failure;
    if (this.hasher.bytes + buf.length > this.maxBytes) throw new DfsError('BODY_TOO_LARGE', `chunk is larger than ${this.maxBytes} bytes`);
    this.hasher.update(buf);
    if (buf.length === 0) return;
    this.pending.push(buf);
    this.pendingBytes += buf.length;
    if (this.pendingBytes >= WRITE_BATCH_BYTES) this.flush();
    while (this.pendingBytes >= MAX_BUFFERED_BYTES && this.flushing) await this.flushing;
    if (this.failure) throw this.failure;
  }

  /** Starts writing what is pending, unless a write is already in flight (it starts the next when done). */
  private flush(): void {
    if (this.flushing || this.pendingBytes === 0 || this.failure) return;
    const bufs = this.pending;
    const n = this.pendingBytes;
    this.pending = [];
    this.pendingBytes = 0;
    this.flushing = this.writeFully(bufs).then(
      () => {
        this.flushing = undefined;
        this.unsyncedBytes += n;
        if (this.unsyncedBytes >= SYNC_EVERY_BYTES && !this.syncing) this.syncInBackground();
        if (this.pendingBytes >= WRITE_BATCH_BYTES) this.flush();
      },
      (err: Error) => {
        this.flushing = undefined;
        this.failure = err;
      },
    );
  }

  private syncInBackground(): void {
    if (this.failure) return;
    this.unsyncedBytes = 0;
    this.syncing = this.fh.datasync().then(
      () => {
        this.syncing = undefined;
      },
      (err: Error) => {
        this.syncing = undefined;
        this.failure = err; // a failed flush may have lost written pages: this chunk must not be acknowledged
      },
    );
  }

  private async writeFully(bufs: Buffer[]): Promise<void> {
    let rest = bufs;
    while (rest.length > 0) {
      let { bytesWritten } = await this.fh.writev(rest);
      // A short write (rare for regular files) resumes where it stopped.
      while (rest.length > 0 && bytesWritten >= rest[0]!.length) bytesWritten -= rest.shift()!.length;
      if (bytesWritten > 0) rest[0] = rest[0]!.subarray(bytesWritten);
    }
  }

  /** Waits for every write and background flush in flight, then writes what is left. */
  private async drain(): Promise<void> {
    for (;;) {
      if (this.flushing) await this.flushing;
      else if (this.pendingBytes > 0 && !this.failure) this.flush();
      else break;
    }
    if (this.syncing) await this.syncing;
    if (this.failure) throw this.failure;
  }

  /** Appends the trailer and fsyncs the temporary file; the chunk is durable but not yet served. */
  async finish(): Promise<StoredChunk> {
    await this.drain();
    const blockHashes = this.hasher.finish();
    const { bytes, checksum } = encodeTrailer({ handle: this.handle, version: this.version, length: this.hasher.bytes, blockHashes });
    await this.writeFully([bytes]);
    await this.fh.sync();
    await this.fh.close();
    this.done = true;
    return { handle: this.handle, version: this.version, length: this.hasher.bytes, checksum };
  }

  async commit(chunk: StoredChunk): Promise<void> {
    await this.store.publish(this.tmp, chunk);
  }

  /** Drops the temporary file: nothing half-written stays behind. */
  async abort(): Promise<void> {
    if (!this.done) {
      this.failure ??= new DfsError('IO_ERROR', 'write aborted');
      this.pending = [];
      this.pendingBytes = 0;
      // Let a write or flush in flight settle before the descriptor goes.
      await Promise.allSettled([this.flushing, this.syncing]);
      await this.fh.close().catch(() => undefined);
    }
    this.done = true;
    await rm(this.tmp, { force: true });
  }
}
