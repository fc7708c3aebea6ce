import { randomId } from '../../common/random-id.js';
import { constants as fsc } from 'node:fs';
import { mkdir, open, readdir, rename, rm, stat, statfs, type FileHandle } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { DfsError } from '../../common/errors.js';
import type { Logger } from '../../common/log.js';
import type { ReportedChunk } from '../../common/protocol.js';
import type { ChunkMeta } from '../format.js';
import { ChangeLog } from './changes.js';
import { fsyncDir, GroupDirSync } from './dir-sync.js';
import { HandleLocks } from './handle-locks.js';
import { ChunkReader, readChunkMeta } from './reader.js';
import { applyRedo, readFrom, REDO_NAME, REDO_SUFFIX, replayRedo, restoreTail } from './redo.js';
import { MAX_IDLE_ARENAS, SlabPool } from './slabs.js';
import { startAppend, type AppendWrite } from './append.js';
import { ChunkWriter, type ChunkWriterOptions, type StoredChunk } from './writer.js';

export interface ChunkStoreOptions {
  /** Write chunk files with O_DIRECT where the file system allows (default); false: always through the page cache. */
  directIo?: boolean;
  /** How a folder is fsynced (tests watch the chunks/ folder syncs through it). */
  syncDir?: (dir: string) => Promise<void>;
  /** How a temporary chunk file is opened (tests stand in a file system that refuses O_DIRECT). */
  openFile?: (path: string, flags: number | string, mode?: number) => Promise<FileHandle>;
  /** How an append's redo record is written over its chunk file (tests stand in a disk that fills up midway). */
  applyRedo?: typeof applyRedo;
  /** Metrics hook: an fsync of a finished chunk file (`file`) or of the chunks/ folder (`dir`) took `seconds`. */
  onFsync?: (kind: 'file' | 'dir', seconds: number) => void;
}

/**
 * The chunk files under `<dataDir>/chunks`, one per handle, written through a temporary file in
 * `<dataDir>/tmp` that is fsynced and renamed into place (and the folder fsynced) before any
 * write is acknowledged. Damaged replicas move to `<dataDir>/corrupt` for inspection. The
 * index of what is served, and the changes the heartbeat reports, live here; reading, writing
 * and the write slabs are apart (reader.ts, writer.ts, slabs.ts).
 */
export class ChunkStore {
  private readonly index = new Map<number, StoredChunk>();
  private readonly changes = new ChangeLog();
  private readonly chunksDir: string;
  private readonly tmpDir: string;
  private readonly corruptDir: string;
  /** Trailer reads share a handle's lock; a tail written in place, a replace and a delete hold it alone. */
  private readonly locks = new HandleLocks();
  private readonly reader = new ChunkReader((handle) => this.pathOf(handle), (handle, fn) => this.locks.shared(handle, fn));
  private readonly slabs = new SlabPool(MAX_IDLE_ARENAS);
  private readonly chunksDirSync: GroupDirSync;
  private readonly openFile: NonNullable<ChunkStoreOptions['openFile']>;
  private readonly onFsync: ChunkStoreOptions['onFsync'];
  private readonly applyRedo: typeof applyRedo;
  /** Whether chunk files are still opened with O_DIRECT: until the file system refuses it once. */
  private directIo: boolean;

  constructor(private readonly dataDir: string, private readonly log: Logger, opts: ChunkStoreOptions = {}) {
    this.directIo = (opts.directIo ?? true) && fsc.O_DIRECT !== undefined;
    this.openFile = opts.openFile ?? open;
    this.onFsync = opts.onFsync;
    this.applyRedo = opts.applyRedo ?? applyRedo;
    this.chunksDir = join(dataDir, 'chunks');
    this.tmpDir = join(dataDir, 'tmp');
    this.corruptDir = join(dataDir, 'corrupt');
    const syncDir = opts.syncDir ?? fsyncDir;
    this.chunksDirSync = new GroupDirSync(() => this.timed('dir', () => syncDir(this.chunksDir)));
  }

  /**
   * Scans the chunk folder, verifying each trailer; leftovers of interrupted writes are removed,
   * and an append in place that was committed but maybe not wholly applied is applied again.
   */
  async open(): Promise<void> {
    await rm(this.tmpDir, { recursive: true, force: true });
    for (const d of [this.chunksDir, this.tmpDir, this.corruptDir]) await mkdir(d, { recursive: true });
    for (const name of await readdir(this.chunksDir)) {
      const m = REDO_NAME.exec(name);
      if (!m) continue;
      const handle = Number(m[1]);
      try {
        const outcome = await replayRedo(join(this.chunksDir, name), this.pathOf(handle), handle);
        this.log.warn({ handle, outcome }, 'an append in place was interrupted; its redo record was found at start');
      } catch (err) {
        // Not applied (a full disk, an unreadable file): the replica and its record are kept aside together.
        this.log.error({ handle, err: (err as Error).message }, 'an interrupted append in place could not be applied at start; the replica and its redo record are moved aside');
        await this.quarantine(handle);
      }
    }
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

  // ---- changes for the heartbeat (see ChangeLog) ----

  /** Changes since the last call, oldest first, at most `max` of each kind; put back with restoreChanges if the heartbeat fails. */
  takeChanges(max?: number): { added: ReportedChunk[]; removed: number[] } {
    return this.changes.take(max);
  }

  /** Changes left for later heartbeats. */
  get pendingChanges(): number {
    return this.changes.pending;
  }

  /** Forgets every change: a full report covers them. Clears an overflow too. */
  clearChanges(): void {
    this.changes.clear();
  }

  /** Whether changes were dropped past MAX_CHANGE_BACKLOG: only a full report tells the master the truth now. */
  get changesOverflowed(): boolean {
    return this.changes.overflowed;
  }

  /** Puts back changes a failed heartbeat carried; a change made since then is newer and stays. */
  restoreChanges(c: { added: ReportedChunk[]; removed: number[] }): void {
    this.changes.restore(c);
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
  readMeta(handle: number): Promise<ChunkMeta> {
    return this.locks.shared(handle, async () => {
      const file = await open(this.pathOf(handle), 'r');
      try {
        return await readChunkMeta(file, handle);
      } finally {
        await file.close();
      }
    });
  }

  /** Starts writing a new chunk; bytes go to a temporary file until commit(). */
  async createWriter(handle: number, version: number, maxBytes: number): Promise<ChunkWriter> {
    if (this.index.has(handle)) throw new DfsError('CHUNK_EXISTS', `chunk ${handle} is already stored here`);
    return this.openWriter(handle, version, maxBytes, (t, chunk) => this.publish(t, chunk));
  }

  /**
   * Starts a copy of a chunk (re-replication): new here, or over a replica of an older version
   * (one that missed appends while this server was away), which it replaces in one rename when
   * done, as an append does. CHUNK_EXISTS when this version or a later one is here already.
   */
  async createCopyWriter(handle: number, version: number, maxBytes: number): Promise<ChunkWriter> {
    const stale = this.index.get(handle);
    if (!stale) return this.createWriter(handle, version, maxBytes);
    if (stale.version >= version) throw new DfsError('CHUNK_EXISTS', `chunk ${handle} is already stored here at version ${stale.version}`);
    return this.openWriter(handle, version, maxBytes, (t, chunk) => this.publishReplacing(t, chunk, stale));
  }

  /**
   * Starts an append to a stored chunk (see chunkserver/store/append.ts): a new file at
   * `newVersion` that holds the stored bytes [0, `offset`), then what the caller writes.
   */
  createAppendWriter(a: AppendWrite, maxBytes: number): Promise<ChunkWriter> {
    return startAppend(a, {
      stored: (h) => this.index.get(h),
      open: (publish) => this.openWriter(a.handle, a.newVersion, maxBytes, publish),
      readRange: (h, offset, length, sink) => this.readRange(h, offset, length, sink),
      replace: (tmp, chunk, base) => this.publishReplacing(tmp, chunk, base),
      publishNew: (tmp, chunk) => this.publish(tmp, chunk),
      readMeta: (h) => this.readMeta(h),
      openTail: (from, publish) => this.openWriter(a.handle, a.newVersion, maxBytes, publish, from),
      applyTail: (tmp, chunk, base, at) => this.applyTail(tmp, chunk, base, at),
    });
  }

  /**
   * An append in place (append.ts): `tmp` holds the chunk's new tail from `at` on, with the whole
   * chunk's new trailer, fsynced. Renamed to the handle's redo record (and the folder fsynced) it
   * is committed: a crash from then on finds it at start and applies it again (open). Applied:
   * written over the replica from `at`, the file cut to its new size and fsynced; then the new
   * version is served and the record removed. Readers of the trailer wait meanwhile (the data
   * bytes they may be reading are rewritten with the same values). A failure while applying (a
   * full disk: the file grows) puts the old trailer back (rollBack); the append fails, and the
   * acknowledged version stays served.
   */
  private applyTail(tmp: string, chunk: StoredChunk, base: StoredChunk, at: number): Promise<void> {
    const { handle } = chunk;
    return this.locks.exclusive(handle, async () => {
      if (this.index.get(handle) !== base) throw new DfsError('STALE_VERSION', `chunk ${handle} changed here during the append`);
      const redo = this.redoPathOf(handle);
      const oldTrailer = await readFrom(this.pathOf(handle), base.length);
      await rename(tmp, redo);
      try {
        await this.chunksDirSync.sync();
        await this.applyRedo(redo, this.pathOf(handle), at);
      } catch (err) {
        await this.rollBack(handle, base.length, oldTrailer, err as Error);
        throw err;
      }
      this.index.set(handle, chunk);
      this.changes.noteAdded(chunk);
      // Left behind, it is applied again at start (the same bytes) or dropped there.
      await rm(redo, { force: true }).catch(() => undefined);
    });
  }

  /**
   * After a failed apply: the old trailer goes back after the old bytes (which the apply never
   * changed) and the record is removed, so the replica is the acknowledged version again. Should
   * that fail too, the replica is moved aside with its record. A crash in between applies the
   * record at start: this replica then holds the failed append's version, as a replica does
   * whose pipeline failed after it (the master's version rules expect that).
   */
  private async rollBack(handle: number, length: number, oldTrailer: Buffer, cause: Error): Promise<void> {
    try {
      await restoreTail(this.pathOf(handle), length, oldTrailer);
      await rm(this.redoPathOf(handle), { force: true });
      await this.chunksDirSync.sync();
      this.log.warn({ handle, err: cause.message }, 'an append in place failed while applied; the replica was put back as it was');
    } catch (err) {
      this.log.error({ handle, err: cause.message, rollBack: (err as Error).message }, 'an append in place failed while applied and could not be undone; the replica is moved aside');
      await this.quarantine(handle);
    }
  }

  private redoPathOf(handle: number): string {
    return join(this.chunksDir, `${handle}${REDO_SUFFIX}`);
  }

  private async openWriter(handle: number, version: number, maxBytes: number, publish: (tmp: string, chunk: StoredChunk) => Promise<void>, from?: ChunkWriterOptions['from']): Promise<ChunkWriter> {
    const tmp = join(this.tmpDir, `${handle}.${randomId(6)}.tmp`);
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
    return new ChunkWriter({
      fh, tmp, handle, version, maxBytes, direct, slabs: this.slabs,
      publish, from,
      onDirectRefused: (err) => this.refuseDirectIo(err),
      syncFile: (file) => this.timed('file', () => file.sync()),
    });
  }

  /** From now on chunks are written through the page cache: the file system refused O_DIRECT. */
  private refuseDirectIo(err: Error): void {
    if (!this.directIo) return;
    this.directIo = false;
    this.log.warn({ dataDir: this.dataDir, err: err.message }, 'the data folder\'s file system refuses O_DIRECT; chunks are written through the page cache');
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

  /** Called by a writer after its fsync: the chunk is renamed into place, durable, and served. */
  private publish(tmp: string, chunk: StoredChunk): Promise<void> {
    return this.locks.exclusive(chunk.handle, async () => {
      if (this.index.has(chunk.handle)) throw new DfsError('CHUNK_EXISTS', `chunk ${chunk.handle} is already stored here`);
      await rename(tmp, this.pathOf(chunk.handle));
      await this.chunksDirSync.sync();
      this.index.set(chunk.handle, chunk);
      this.changes.noteAdded(chunk);
    });
  }

  /**
   * An appended chunk replaces the replica it was made from, in one rename (a crash leaves the
   * old file or the new one, both whole). Refused if that replica went or changed meanwhile.
   */
  private publishReplacing(tmp: string, chunk: StoredChunk, base: StoredChunk): Promise<void> {
    return this.locks.exclusive(chunk.handle, async () => {
      if (this.index.get(chunk.handle) !== base) throw new DfsError('STALE_VERSION', `chunk ${chunk.handle} changed here during the append`);
      await rename(tmp, this.pathOf(chunk.handle));
      await this.chunksDirSync.sync();
      this.index.set(chunk.handle, chunk);
      this.changes.noteAdded(chunk);
    });
  }

  /**
   * A delete the master asked for, unless this server stored that chunk again since its last
   * report (a copy over a stale replica, say): the master decided without knowing, so the replica
   * stays and the next heartbeat reports it; the master asks again if it still wants it gone.
   * Answers whether it was deleted.
   */
  removeOrdered(handle: number): Promise<boolean> {
    // Checked with the lock held: a copy publishing meanwhile is noted before the check.
    return this.locks.exclusive(handle, async () => {
      if (this.changes.hasAdded(handle)) return false;
      await this.removeLocked(handle, false);
      return true;
    });
  }

  /** Deletes a replica; `report` false when the master asked for it and so already forgot it. */
  remove(handle: number, report = true): Promise<void> {
    return this.locks.exclusive(handle, () => this.removeLocked(handle, report));
  }

  private async removeLocked(handle: number, report: boolean): Promise<void> {
    if (!this.index.delete(handle)) return;
    if (report) this.changes.noteRemoved(handle);
    else this.changes.forgetAdded(handle);
    await rm(this.pathOf(handle), { force: true });
    await rm(this.redoPathOf(handle), { force: true });
  }

  /** Moves a damaged replica aside so it is never served again, and forgets it. */
  moveToCorrupt(handle: number): Promise<void> {
    return this.locks.exclusive(handle, () => this.quarantine(handle));
  }

  /** moveToCorrupt, with the handle's lock held: a redo record left goes along. */
  private async quarantine(handle: number): Promise<void> {
    if (this.index.delete(handle)) this.changes.noteRemoved(handle);
    const stamp = Date.now();
    await rename(this.pathOf(handle), join(this.corruptDir, `${handle}.${stamp}.chunk`)).catch(() => undefined);
    await rename(this.redoPathOf(handle), join(this.corruptDir, `${handle}.${stamp}${REDO_SUFFIX}`)).catch(() => undefined);
  }

  /** See ChunkReader.readRange: verified bytes of a stored chunk, lent to `sink` batch by batch. */
  readRange(handle: number, offset: number, length: number, sink: (bytes: Buffer) => Promise<void>): Promise<void> {
    return this.reader.readRange(handle, offset, length, sink);
  }
}
