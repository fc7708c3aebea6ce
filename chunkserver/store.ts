import { randomBytes } from 'node:crypto';
import { constants as fsc } from 'node:fs';
import { mkdir, open, readdir, rename, rm, stat, statfs, type FileHandle } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { BLOCK_SIZE_BYTES, BlockHasher, hashBlock } from '../common/checksum.js';
import { DfsError } from '../common/errors.js';
import type { Logger } from '../common/log.js';
import { MAX_CHANGE_BACKLOG, MAX_HEARTBEAT_CHANGES } from '../common/limits.js';
import type { ReportedChunk } from '../common/protocol.js';
import { decodeFooter, decodeTrailer, encodeTrailer, FOOTER_BYTES, trailerBytes, type ChunkMeta } from './format.js';

export interface ChunkStoreOptions {
  /** Write chunk files with O_DIRECT where the file system allows (default); false: always through the page cache. */
  directIo?: boolean;
  /** How a folder is fsynced (tests watch the chunks/ folder syncs through it). */
  syncDir?: (dir: string) => Promise<void>;
  /** How a temporary chunk file is opened (tests stand in a file system that refuses O_DIRECT). */
  openFile?: (path: string, flags: number | string, mode?: number) => Promise<FileHandle>;
  /** Metrics hook: an fsync of a finished chunk file (`file`) or of the chunks/ folder (`dir`) took `seconds`. */
  onFsync?: (kind: 'file' | 'dir', seconds: number) => void;
}

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
  /**
   * Changes for the next heartbeats, by handle: a chunk is in one of the two at most (the latest
   * change wins), so a beat may carry any part of them in any order and the master still ends
   * where this server is. Bounded by MAX_CHANGE_BACKLOG: past it they are dropped, and the
   * heartbeat registers again with a full report (see changesOverflowed).
   */
  private added = new Map<number, ReportedChunk>();
  private removed = new Set<number>();
  private overflowed = false;
  readonly chunksDir: string;
  private readonly tmpDir: string;
  private readonly corruptDir: string;
  private readonly batches = new BatchPool(MAX_POOLED_BATCHES);
  private readonly slabs = new SlabPool(MAX_IDLE_ARENAS);
  /** The chunks/ folder sync in progress, and the one queued after it (see syncChunksDir). */
  private dirSyncRunning: Promise<void> | undefined;
  private dirSyncNext: Promise<void> | undefined;
  private readonly syncDir: (dir: string) => Promise<void>;
  private readonly openFile: NonNullable<ChunkStoreOptions['openFile']>;
  private readonly onFsync: ChunkStoreOptions['onFsync'];
  /** Whether chunk files are still opened with O_DIRECT: until the file system refuses it once. */
  private directIo: boolean;

  constructor(readonly dataDir: string, private readonly log: Logger, opts: ChunkStoreOptions = {}) {
    this.directIo = (opts.directIo ?? true) && fsc.O_DIRECT !== undefined;
    this.syncDir = opts.syncDir ?? fsyncDir;
    this.openFile = opts.openFile ?? open;
    this.onFsync = opts.onFsync;
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

  /**
   * Changes since the last call, oldest first, at most `max` added and `max` removed (the rest
   * stay for the next heartbeat); put back with restoreChanges if the heartbeat fails.
   */
  takeChanges(max = MAX_HEARTBEAT_CHANGES): { added: ReportedChunk[]; removed: number[] } {
    const added: ReportedChunk[] = [];
    for (const [h, c] of this.added) {
      if (added.length >= max) break;
      added.push(c);
      this.added.delete(h);
    }
    const removed: number[] = [];
    for (const h of this.removed) {
      if (removed.length >= max) break;
      removed.push(h);
      this.removed.delete(h);
    }
    return { added, removed };
  }

  /** Changes left for later heartbeats. */
  get pendingChanges(): number {
    return this.added.size + this.removed.size;
  }

  /** Forgets every change: a full report covers them. Clears an overflow too. */
  clearChanges(): void {
    this.added.clear();
    this.removed.clear();
    this.overflowed = false;
  }

  /** Whether changes were dropped past MAX_CHANGE_BACKLOG: only a full report tells the master the truth now. */
  get changesOverflowed(): boolean {
    return this.overflowed;
  }

  /** Puts back changes a failed heartbeat carried; a change made since then is newer and stays. */
  restoreChanges(c: { added: ReportedChunk[]; removed: number[] }): void {
    for (const a of c.added) if (!this.added.has(a.handle) && !this.removed.has(a.handle)) this.added.set(a.handle, { handle: a.handle, version: a.version, length: a.length });
    for (const h of c.removed) if (!this.added.has(h)) this.removed.add(h);
    this.boundChanges();
  }

  private noteAdded(c: ReportedChunk): void {
    this.removed.delete(c.handle);
    this.added.delete(c.handle); // re-inserted last: the newest change
    this.added.set(c.handle, { handle: c.handle, version: c.version, length: c.length });
    this.boundChanges();
  }

  private noteRemoved(handle: number): void {
    this.added.delete(handle);
    this.removed.add(handle);
    this.boundChanges();
  }

  private boundChanges(): void {
    if (this.added.size + this.removed.size <= MAX_CHANGE_BACKLOG) return;
    this.added.clear();
    this.removed.clear();
    this.overflowed = true;
  }

  /**
   * Size and free space of the file system the data folder is on, and which one it is: the host
   * and the device number, so that chunkservers sharing a disk are counted once in totals.
   */
  async diskStats(): Promise<{ capacityBytes: number; freeBytes: number; fsId: string }> {
    const [s, st] = await Promise.all([statfs(this.dataDir), stat(this.dataDir)]);
    return { capacityBytes: s.blocks * s.bsize, freeBytes: s.bavail * s.bsize, fsId: `${hostname()}:${st.dev}` };
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
    let fh: FileHandle | undefined;
    if (this.directIo) {
      try {
        fh = await this.openFile(tmp, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL | fsc.O_DIRECT, 0o644);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EINVAL') throw err;
        // This file system has no O_DIRECT (tmpfs before Linux 6.6, some network file systems).
        this.refuseDirectIo(err as Error);
        await rm(tmp, { force: true });
      }
    }
    const direct = fh !== undefined;
    fh ??= await this.openFile(tmp, 'wx');
    return new ChunkWriter(fh, tmp, handle, version, maxBytes, direct, this.slabs, (t, chunk) => this.publish(t, chunk), (err) => this.refuseDirectIo(err), (fh) => this.timed('file', () => fh.sync()));
  }

  /** From now on chunks are written through the page cache: the file system refused O_DIRECT. */
  private refuseDirectIo(err: Error): void {
    if (!this.directIo) return;
    this.directIo = false;
    this.log.warn({ dataDir: this.dataDir, err: err.message }, 'the data folder\'s file system refuses O_DIRECT; chunks are written through the page cache');
  }

  /**
   * Makes every rename into chunks/ done before the call durable. Concurrent callers share
   * fsyncs (group commit): one that arrives while a sync runs waits for the next, which starts
   * when that one ends and serves everyone who arrived meanwhile. With 64 small files in
   * flight, each replica's folder sync had been one journal commit of its own.
   */
  private syncChunksDir(): Promise<void> {
    if (this.dirSyncNext) return this.dirSyncNext;
    if (!this.dirSyncRunning) return this.startDirSync();
    const next = this.dirSyncRunning.catch(() => undefined).then(() => {
      this.dirSyncNext = undefined;
      return this.startDirSync();
    });
    this.dirSyncNext = next;
    return next;
  }

  private startDirSync(): Promise<void> {
    const sync: Promise<void> = this.timed('dir', () => this.syncDir(this.chunksDir)).finally(() => {
      if (this.dirSyncRunning === sync) this.dirSyncRunning = undefined;
    });
    this.dirSyncRunning = sync;
    return sync;
  }

  /** Runs an fsync, timing it for onFsync when there is one. */
  private async timed(kind: 'file' | 'dir', sync: () => Promise<void>): Promise<void> {
    if (!this.onFsync) return sync();
    const startedMs = performance.now();
    await sync();
    this.onFsync(kind, (performance.now() - startedMs) / 1000);
  }

  /** Write-slab arenas alive and wholly idle. */
  writeArenas(): { arenas: number; idleArenas: number } {
    return this.slabs.stats();
  }

  /** Called by a writer after its rename: the chunk is durable and now served. */
  async publish(tmp: string, chunk: StoredChunk): Promise<void> {
    if (this.index.has(chunk.handle)) throw new DfsError('CHUNK_EXISTS', `chunk ${chunk.handle} is already stored here`);
    await rename(tmp, this.pathOf(chunk.handle));
    await this.syncChunksDir();
    this.index.set(chunk.handle, chunk);
    this.noteAdded(chunk);
  }

  /** Deletes a replica; `report` false when the master asked for it and so already forgot it. */
  async remove(handle: number, report = true): Promise<void> {
    if (!this.index.delete(handle)) return;
    if (report) this.noteRemoved(handle);
    else this.added.delete(handle); // the master forgot it: an addition not yet reported would bring it back
    await rm(this.pathOf(handle), { force: true });
  }

  /** Moves a damaged replica aside so it is never served again, and forgets it. */
  async moveToCorrupt(handle: number): Promise<void> {
    if (this.index.delete(handle)) this.noteRemoved(handle);
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

/** Received bytes are copied into slabs of this size, each written to the file with one call. */
export const WRITE_SLAB_BYTES = 1024 * 1024;
/** Slab writes in flight per chunk; the sender waits beyond this (so at most 5 MiB held per chunk). */
export const MAX_WRITES_IN_FLIGHT = 4;
/** Arenas of write slabs kept while wholly idle, store-wide (8 MiB each). */
export const MAX_IDLE_ARENAS = 4;
/** What O_DIRECT needs aligned (file offsets, lengths, memory): a page covers any logical block size up to 4 KiB. */
export const DIRECT_ALIGN_BYTES = 4096;
/**
 * Through the page cache only (no O_DIRECT): after this many bytes reach the file a background
 * fdatasync starts, so the final fsync does not write a whole dirty 64 MiB chunk while the
 * pipeline waits.
 */
export const SYNC_EVERY_BYTES = 16 * 1024 * 1024;

/**
 * A buffer whose memory starts on a page boundary, as O_DIRECT needs (EINVAL otherwise). A Node
 * Buffer's memory need not; a WebAssembly memory's always does. Sizes round up to 64 KiB.
 */
export function alignedBuffer(bytes: number): Buffer {
  const pages = Math.ceil(bytes / 65536);
  return Buffer.from(new WebAssembly.Memory({ initial: pages, maximum: pages }).buffer, 0, bytes);
}

/** Slabs allocated together: each WebAssembly memory reserves gigabytes of address space, so few of them. */
export const SLABS_PER_ARENA = 8;

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

  constructor(
    private readonly fh: FileHandle,
    private readonly tmp: string,
    readonly handle: number,
    readonly version: number,
    private readonly maxBytes: number,
    /** The file is open with O_DIRECT: writes must be whole aligned blocks from aligned memory. */
    readonly direct: boolean,
    private readonly slabs: SlabPool,
    private readonly publish: (tmp: string, chunk: StoredChunk) => Promise<void>,
    private readonly onDirectRefused: (err: Error) => void,
    /** The final fsync of the finished file (the store times it). */
    private readonly syncFile: (fh: FileHandle) => Promise<void> = (fh) => fh.sync(),
  ) {}

  get bytes(): number {
    return this.hasher.bytes;
  }

  /**
   * Copies `buf` in (the caller may reuse it once this settles); waits only when the disk is
   * behind. One write at a time: each must settle before the next, or bytes would interleave.
   */
  async write(buf: Buffer): Promise<void> {
    if (this.failure) throw this.failure;
    if (this.writing) throw new DfsError('INTERNAL', `chunk ${this.handle}: a write was started before the previous one settled`);
    if (this.hasher.bytes + buf.length > this.maxBytes) throw new DfsError('BODY_TOO_LARGE', `chunk is larger than ${this.maxBytes} bytes`);
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
    const length = this.hasher.bytes;
    const blockHashes = this.hasher.finish();
    const { bytes, checksum } = encodeTrailer({ handle: this.handle, version: this.version, length, blockHashes });
    await this.stage(bytes);
    const size = length + bytes.length;
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
