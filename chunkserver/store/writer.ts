import type { FileHandle } from 'node:fs/promises';
import { rm } from 'node:fs/promises';
import { BLOCK_SIZE_BYTES, BlockHasher } from '../../common/checksum.js';
import { DfsError } from '../../common/errors.js';
import { encodeTrailer } from '../format.js';
import { DIRECT_ALIGN_BYTES, type SlabPool } from './slabs.js';

/** A chunk as the store serves it: its trailer's facts and its whole checksum. */
export interface StoredChunk { handle: number; version: number; length: number; checksum: string }

/** Slab writes in flight per chunk; the sender waits beyond this (so at most 5 MiB held per chunk). */
export const MAX_WRITES_IN_FLIGHT = 4;
/**
 * Through the page cache only (no O_DIRECT): after this many bytes reach the file a background
 * fdatasync starts, so the final fsync does not write a whole dirty 64 MiB chunk while the
 * pipeline waits.
 */
export const SYNC_EVERY_BYTES = 16 * 1024 * 1024;

export interface ChunkWriterOptions {
  /** The temporary file, open for writing, and its path. */
  fh: FileHandle;
  tmp: string;
  handle: number;
  version: number;
  /** Largest chunk accepted: more is BODY_TOO_LARGE. */
  maxBytes: number;
  /** The file is open with O_DIRECT: writes must be whole aligned blocks from aligned memory. */
  direct: boolean;
  slabs: SlabPool;
  /** Renames the finished file into place and serves it (the store's publish). */
  publish: (tmp: string, chunk: StoredChunk) => Promise<void>;
  /** A write refused O_DIRECT: later chunks go through the page cache. */
  onDirectRefused: (err: Error) => void;
  /** The final fsync of the finished file (the store times it). */
  syncFile?: (fh: FileHandle) => Promise<void>;
  /**
   * The file holds the chunk from `offset` on (a block boundary), not from 0: an append in place
   * (append.ts) writes the tail of the chunk, and the blocks before `offset` keep these hashes.
   * The trailer written at the end is the whole chunk's.
   */
  from?: { offset: number; blockHashes: BigUint64Array };
}

/**
 * One chunk being received into a temporary file: bytes are hashed as they pass and copied into
 * page-aligned 1 MiB slabs, each written at its offset while the next one fills (up to
 * MAX_WRITES_IN_FLIGHT at once). Where the file system allows, the file is open with O_DIRECT:
 * slabs go from this process's memory to the disk, with no copy into the page cache (a replica
 * is not read back soon, and on virtual machines whose memory the host backs lazily, filling
 * fresh page-cache pages cost more CPU than all the rest of a pipeline hop). Nothing is
 * acknowledged before finish() has fsynced it all.
 */
export class ChunkWriter {
  private readonly hasher = new BlockHasher();
  private done = false;
  /** The slab being filled, and how much of it is. */
  private slab: Buffer | undefined;
  private filled = 0;
  /** Bytes handed to file writes so far: the next slab's offset. */
  private fileBytes = 0;
  private readonly writes = new Set<Promise<void>>();
  private writing = false;
  private syncing: Promise<void> | undefined;
  private unsyncedBytes = 0;
  private failure: Error | undefined;

  private readonly fh: FileHandle;
  private readonly tmp: string;
  readonly handle: number;
  readonly version: number;
  private readonly maxBytes: number;
  /** The file is open with O_DIRECT: writes must be whole aligned blocks from aligned memory. */
  readonly direct: boolean;
  private readonly slabs: SlabPool;
  private readonly publish: ChunkWriterOptions['publish'];
  private readonly onDirectRefused: ChunkWriterOptions['onDirectRefused'];
  private readonly syncFile: NonNullable<ChunkWriterOptions['syncFile']>;
  private readonly from: NonNullable<ChunkWriterOptions['from']>;

  constructor(o: ChunkWriterOptions) {
    this.fh = o.fh;
    this.tmp = o.tmp;
    this.handle = o.handle;
    this.version = o.version;
    this.maxBytes = o.maxBytes;
    this.direct = o.direct;
    this.slabs = o.slabs;
    this.publish = o.publish;
    this.onDirectRefused = o.onDirectRefused;
    this.syncFile = o.syncFile ?? ((fh) => fh.sync());
    this.from = o.from ?? { offset: 0, blockHashes: new BigUint64Array(0) };
    if (this.from.offset % BLOCK_SIZE_BYTES !== 0 || this.from.blockHashes.length !== this.from.offset / BLOCK_SIZE_BYTES) {
      throw new DfsError('INTERNAL', `chunk ${o.handle}: a tail must start on a block boundary with a hash for each block before it`);
    }
  }

  /** The chunk's length so far (the bytes before a tail's start included). */
  get bytes(): number {
    return this.from.offset + this.hasher.bytes;
  }

  /**
   * Copies `buf` in (the caller may reuse it once this settles); waits only when the disk is
   * behind. One write at a time: each must settle before the next, or bytes would interleave.
   */
  async write(buf: Buffer): Promise<void> {
    if (this.failure) throw this.failure;
    if (this.writing) throw new DfsError('INTERNAL', `chunk ${this.handle}: a write was started before the previous one settled`);
    if (this.bytes + buf.length > this.maxBytes) throw new DfsError('BODY_TOO_LARGE', `chunk is larger than ${this.maxBytes} bytes`);
    this.hasher.update(buf);
    this.writing = true;
    try {
      await this.stage(buf);
    } finally {
      this.writing = false;
    }
  }

  /** Copies bytes into slabs, writing each one that fills up. */
  private async stage(buf: Uint8Array): Promise<void> {
    let off = 0;
    while (off < buf.length) {
      const slab = (this.slab ??= this.slabs.take());
      const n = Math.min(buf.length - off, slab.length - this.filled);
      slab.set(buf.subarray(off, off + n), this.filled);
      this.filled += n;
      off += n;
      if (this.filled === slab.length) {
        this.writeSlab(slab.length);
        while (this.writes.size >= MAX_WRITES_IN_FLIGHT) await Promise.race(this.writes);
        if (this.failure) throw this.failure;
      }
    }
  }

  /** Starts writing the current slab's first `length` bytes at the next offset. */
  private writeSlab(length: number): void {
    const slab = this.slab!;
    const at = this.fileBytes;
    this.slab = undefined;
    this.filled = 0;
    this.fileBytes += length;
    const w: Promise<void> = this.writeFully(slab, length, at).then(
      () => {
        this.slabs.give(slab);
        if (this.direct) return; // on the disk already: nothing for a background flush to do
        this.unsyncedBytes += length;
        if (this.unsyncedBytes >= SYNC_EVERY_BYTES && !this.syncing) this.syncInBackground();
      },
      (err: NodeJS.ErrnoException) => {
        // The write has settled, so the kernel is done with the slab.
        this.slabs.give(slab);
        // A file system may take O_DIRECT at open and refuse it on writes: this chunk fails (the
        // client retries it), and later chunks on this store go through the page cache.
        if (this.direct && err.code === 'EINVAL') this.onDirectRefused(err);
        this.failure ??= err;
      },
    ).finally(() => this.writes.delete(w));
    this.writes.add(w);
  }

  private async writeFully(buf: Buffer, length: number, position: number): Promise<void> {
    // A short write (rare for regular files: a full disk says ENOSPC) resumes where it stopped;
    // with O_DIRECT, from the block it stopped in, as writes must start on a block boundary.
    for (let done = 0; done < length;) {
      const { bytesWritten } = await this.fh.write(buf, done, length - done, position + done);
      if (bytesWritten <= 0) throw new DfsError('IO_ERROR', `writing chunk ${this.handle}: the disk took no bytes`);
      done += bytesWritten;
      if (this.direct && done < length) done -= done % DIRECT_ALIGN_BYTES;
    }
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

  /** Waits for every write and background flush in flight. */
  private async settle(): Promise<void> {
    while (this.writes.size > 0) await Promise.race(this.writes);
    if (this.syncing) await this.syncing;
    if (this.failure) throw this.failure;
  }

  /** Writes what is left and the trailer, and fsyncs the temporary file; the chunk is durable but not yet served. */
  async finish(): Promise<StoredChunk> {
    if (this.failure) throw this.failure;
    const length = this.bytes;
    const tail = this.hasher.finish();
    const blockHashes = new BigUint64Array(this.from.blockHashes.length + tail.length);
    blockHashes.set(this.from.blockHashes);
    blockHashes.set(tail, this.from.blockHashes.length);
    const { bytes, checksum } = encodeTrailer({ handle: this.handle, version: this.version, length, blockHashes });
    await this.stage(bytes);
    const size = this.hasher.bytes + bytes.length;
    if (this.filled > 0) {
      // O_DIRECT writes whole blocks: the last one is padded with zeros, cut off below.
      const n = this.direct ? Math.ceil(this.filled / DIRECT_ALIGN_BYTES) * DIRECT_ALIGN_BYTES : this.filled;
      this.slab!.fill(0, this.filled, n);
      this.writeSlab(n);
    }
    await this.settle();
    if (this.fileBytes !== size) await this.fh.truncate(size);
    await this.syncFile(this.fh);
    await this.fh.close();
    this.done = true;
    return { handle: this.handle, version: this.version, length, checksum };
  }

  async commit(chunk: StoredChunk): Promise<void> {
    await this.publish(this.tmp, chunk);
  }

  /** Drops the temporary file: nothing half-written stays behind. */
  async abort(): Promise<void> {
    if (!this.done) {
      this.failure ??= new DfsError('IO_ERROR', 'write aborted');
      // Let writes and a flush in flight settle before the descriptor goes.
      await Promise.allSettled([...this.writes, this.syncing]);
      if (this.slab) this.slabs.give(this.slab);
      this.slab = undefined;
      await this.fh.close().catch(() => undefined);
    }
    this.done = true;
    await rm(this.tmp, { force: true });
  }
}
