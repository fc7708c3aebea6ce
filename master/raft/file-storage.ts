// Durable Storage: a write-ahead log (checksummed, length-prefixed records, one fdatasync per
// batch) plus a snapshot file written with temp + fsync + rename + directory fsync. The log is
// kept bounded by rewriting it without the compacted prefix after each snapshot.
import { fdatasyncSync, writeSync } from 'node:fs';
import { mkdir, open, readFile, rename, rm, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { MemoryStorage } from './memory-storage.js';
import type { PersistBatch, Storage } from './storage.js';
import { readSnapshotFile, writeSnapshotData, writeSnapshotFile } from './snapshot-file.js';
import type { Entry, HardState, Snapshot, SnapshotMeta } from './types.js';
import { decodeRecords, encodeRecords, type WalRecord } from './wal.js';

const WAL_FILE = 'raft.wal';
const SNAPSHOT_FILE = 'raft.snapshot';
/** Where a snapshot taken here is written in the background (a received one uses `.tmp`). */
const TAKEN_TMP = 'raft.snapshot.taken.tmp';

export interface FileStorageOptions {
  /** Directory owned by this storage; created if missing. */
  readonly dir: string;
  /** Metrics hooks; must only count, never block or throw. */
  readonly observer?: StorageObserver;
}

/** What the storage reports for metrics; every method optional. */
export interface StorageObserver {
  /** One WAL fdatasync (a persisted batch) took `seconds`. */
  walSynced?(seconds: number): void;
  /** A snapshot of `bytes` (its state machine data) was written and made durable. */
  snapshotWritten?(bytes: number): void;
}

/** What start-up found on disk. */
export interface OpenReport {
  /** Bytes of torn or corrupt WAL tail that were cut off (0 after a clean shutdown). */
  readonly truncatedBytes: number;
  readonly entries: number;
  readonly snapshotIndex: number;
}

export class FileStorage implements Storage {
  private readonly memory = new MemoryStorage();
  /** Serialises disk writes: a snapshot rewrite must never interleave with a batch append. */
  private queue: Promise<void> = Promise.resolve();
  /** Calls of serialised() not yet settled. */
  private pending = 0;
  private closed = false;
  /** The commit index held in memory is ahead of the last hard state written (persist). */
  private commitUnwritten = false;

  private constructor(
    private readonly dir: string,
    private wal: FileHandle,
    readonly openReport: OpenReport,
    private readonly observer: StorageObserver = {},
  ) {}

  static async open(options: FileStorageOptions): Promise<FileStorage> {
    const dir = options.dir;
    await mkdir(dir, { recursive: true });
    await rm(join(dir, `${WAL_FILE}.tmp`), { force: true });
    await rm(join(dir, `${SNAPSHOT_FILE}.tmp`), { force: true });
    await rm(join(dir, TAKEN_TMP), { force: true });
    await rm(join(dir, `${TAKEN_TMP}.done`), { force: true });
    const snapshot = await readSnapshotFile(join(dir, SNAPSHOT_FILE));
    const walPath = join(dir, WAL_FILE);
    const file = await readFile(walPath).catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return Buffer.alloc(0);
      throw error;
    });
    const decoded = decodeRecords(file);
    const truncatedBytes = file.byteLength - decoded.validBytes;
    const wal = await open(walPath, 'a');
    if (truncatedBytes > 0) {
      // Cut the torn tail before appending after it, and make the cut durable.
      await wal.truncate(decoded.validBytes);
      await wal.sync();
    }
    const state = replay(decoded.records, snapshot);
    const storage = new FileStorage(dir, wal, {
      truncatedBytes,
      entries: state.entries.length,
      snapshotIndex: snapshot.meta.index,
    }, options.observer);
    storage.memory.load(state);
    if (file.byteLength === 0) await syncDirectory(dir);
    return storage;
  }

  initialState(): HardState {
    return this.memory.initialState();
  }
  firstIndex(): number {
    return this.memory.firstIndex();
  }
  lastIndex(): number {
    return this.memory.lastIndex();
  }
  term(index: number): number | undefined {
    return this.memory.term(index);
  }
  entries(lo: number, hi: number, maxBytes: number): Entry[] {
    return this.memory.entries(lo, hi, maxBytes);
  }
  snapshot(): Snapshot {
    return this.memory.snapshot();
  }

  persist(batch: PersistBatch): Promise<void> {
    return this.serialised(async () => {
      if (batch.snapshot !== null) {
        const written = await writeSnapshotData(join(this.dir, SNAPSHOT_FILE), join(this.dir, `${SNAPSHOT_FILE}.tmp`), batch.snapshot);
        await syncDirectory(this.dir);
        this.observer.snapshotWritten?.(written.data.byteLength);
        // Kept from now on as the file, not as the pieces received.
        this.memory.persistSync({ ...batch, snapshot: written });
        await this.rewriteWal();
        return;
      }
      const last = this.memory.initialState();
      const mustSync = batch.entries.length > 0 || (batch.hardState !== null && (batch.hardState.term !== last.term || batch.hardState.vote !== last.vote));
      // A Ready that only moves the commit index is not written now: it goes with the next batch
      // that is (or at close). As etcd's MustSync, it needs no fdatasync: losing it in a crash
      // only makes the node relearn the commit index from the leader, while entries and the term
      // and vote, which safety rests on, are always synced. Unwritten, it costs no write() on the
      // path that answers a client (node.ts applies, answers, then persists such a Ready).
      if (!mustSync && batch.hardState !== null) {
        this.memory.persistSync(batch);
        this.commitUnwritten = true;
        return;
      }
      const records: WalRecord[] = batch.entries.map((entry) => ({ kind: 'entry', entry }));
      const hardState = batch.hardState ?? (this.commitUnwritten ? last : null);
      if (hardState !== null) records.push({ kind: 'hardState', hardState });
      if (records.length === 0) return;
      this.commitUnwritten = false;
      // Group commit: the whole Ready goes out in one write and one fdatasync.
      const bytes = encodeRecords(records);
      await appendAll(this.wal, bytes);
      if (mustSync && batch.mayBlock === true && bytes.byteLength <= BLOCKING_SYNC_MAX_BYTES) this.timedDatasyncHere();
      else if (mustSync) await this.timedDatasync();
      this.memory.persistSync(batch);
    });
  }

  saveSnapshot(snapshot: Snapshot, compactIndex: number): Promise<void> {
    return this.serialised(async () => {
      if (snapshot.meta.index <= this.memory.snapshot().meta.index) return;
      const written = await writeSnapshotData(join(this.dir, SNAPSHOT_FILE), join(this.dir, `${SNAPSHOT_FILE}.tmp`), snapshot);
      await this.adopt(written, compactIndex);
    });
  }

  /**
   * Stores a snapshot taken here from its pieces, written to a temp file while batches go on being
   * persisted (the snapshot does not hold the disk queue); only the rename and the WAL rewrite wait
   * their turn. A snapshot no newer than the one held by then (one received meanwhile) is dropped.
   */
  async saveSnapshotStream(meta: SnapshotMeta, pieces: Iterator<Uint8Array>, compactIndex: number): Promise<void> {
    if (this.closed) throw new Error('raft storage is closed');
    const tmpPath = join(this.dir, TAKEN_TMP);
    const staged = join(this.dir, `${TAKEN_TMP}.done`);
    const written = await writeSnapshotFile(staged, tmpPath, meta, pieces);
    await this.serialised(async () => {
      if (meta.index <= this.memory.snapshot().meta.index) return void (await rm(staged, { force: true }));
      await rename(staged, join(this.dir, SNAPSHOT_FILE));
      await this.adopt(written, compactIndex);
    });
  }

  private async adopt(written: Snapshot, compactIndex: number): Promise<void> {
    await syncDirectory(this.dir);
    this.observer.snapshotWritten?.(written.data.byteLength);
    this.memory.saveSnapshotSync(written, compactIndex);
    await this.rewriteWal();
  }

  close(): Promise<void> {
    return this.serialised(async () => {
      if (this.closed) return;
      this.closed = true;
      // Best effort, as the commit index always is: after a failed WAL rewrite the log may be gone.
      if (this.commitUnwritten) await appendAll(this.wal, encodeRecords([{ kind: 'hardState', hardState: this.memory.initialState() }])).catch(() => undefined);
      await this.wal.close();
    });
  }

  /** fdatasync on this thread: for a small batch whose caller waits for nothing else (PersistBatch.mayBlock). */
  private timedDatasyncHere(): void {
    const startedMs = performance.now();
    fdatasyncSync(this.wal.fd);
    this.observer.walSynced?.((performance.now() - startedMs) / 1000);
  }

  private async timedDatasync(): Promise<void> {
    if (!this.observer.walSynced) return this.wal.datasync();
    const startedMs = performance.now();
    await this.wal.datasync();
    this.observer.walSynced((performance.now() - startedMs) / 1000);
  }

  /**
   * Runs `work` after every earlier one. With none pending it starts at once, not a microtask
   * later: a leader calls persist just before it writes to its followers' sockets, and its WAL
   * write and fdatasync are then under way while it does.
   */
  private serialised(work: () => Promise<void>): Promise<void> {
    const start = async (): Promise<void> => {
      if (this.closed) throw new Error('raft storage is closed');
      await work();
    };
    const run = this.pending === 0 ? start() : this.queue.then(start);
    this.pending++;
    const settled = run.catch(() => undefined).then(() => void this.pending--);
    this.queue = settled;
    return run;
  }

  /** Writes base + hard state + remaining entries to a new WAL and swaps it in atomically. */
  private async rewriteWal(): Promise<void> {
    const base = this.memory.base();
    const records: WalRecord[] = [
      { kind: 'base', index: base.index, term: base.term },
      { kind: 'hardState', hardState: this.memory.initialState() },
      ...this.memory.allEntries().map((entry): WalRecord => ({ kind: 'entry', entry })),
    ];
    const tmpPath = join(this.dir, `${WAL_FILE}.tmp`);
    const tmp = await open(tmpPath, 'w');
    try {
      await tmp.write(encodeRecords(records));
      await tmp.sync();
    } finally {
      await tmp.close();
    }
    await this.wal.close();
    await rename(tmpPath, join(this.dir, WAL_FILE));
    await syncDirectory(this.dir);
    this.wal = await open(join(this.dir, WAL_FILE), 'a');
    this.commitUnwritten = false; // the new log's hard state holds it
  }
}

interface ReplayedState {
  hardState: HardState;
  snapshot: Snapshot;
  baseIndex: number;
  baseTerm: number;
  entries: Entry[];
}

/** Rebuilds the log from WAL records, then reconciles it with the snapshot file. */
function replay(records: readonly WalRecord[], snapshot: Snapshot): ReplayedState {
  let hardState: HardState = { term: 0, vote: null, commit: 0 };
  let baseIndex = 0;
  let baseTerm = 0;
  let entries: Entry[] = [];
  for (const record of records) {
    if (record.kind === 'base') {
      baseIndex = record.index;
      baseTerm = record.term;
      entries = [];
    } else if (record.kind === 'hardState') {
      hardState = record.hardState;
    } else {
      const at = record.entry.index - baseIndex - 1;
      if (at < 0 || at > entries.length) {
        throw new Error(`raft WAL is inconsistent: entry ${record.entry.index} after base ${baseIndex} with ${entries.length} entries`);
      }
      entries.length = at;
      entries.push(record.entry);
    }
  }
  const snapshotIndex = snapshot.meta.index;
  if (snapshotIndex > baseIndex) {
    const held = entries[snapshotIndex - baseIndex - 1];
    if (held === undefined || held.term !== snapshot.meta.term) {
      // A crash between saving a received snapshot and rewriting the WAL: the snapshot wins.
      baseIndex = snapshotIndex;
      baseTerm = snapshot.meta.term;
      entries = [];
    }
  }
  if (hardState.commit > baseIndex + entries.length) {
    throw new Error(`raft WAL is inconsistent: commit ${hardState.commit} beyond last index ${baseIndex + entries.length}`);
  }
  return { hardState, snapshot, baseIndex, baseTerm, entries };
}

/**
 * A batch this small whose caller may block (PersistBatch.mayBlock) is synced on this thread: a
 * lone command, even a 4 KiB inline file (about 6 KiB as an entry). A larger one is a follower
 * under load: it goes to the pool, so the next append is read and decoded while it syncs.
 */
const BLOCKING_SYNC_MAX_BYTES = 8 * 1024;

/** A WAL append this small is written from this thread (a copy into the page cache); larger ones go to the pool. */
const INLINE_WRITE_MAX_BYTES = 256 * 1024;

/**
 * Appends all of `bytes` or throws: a short write (a full disk) must never leave a torn record
 * that later records would follow, since start-up cuts the log at the first bad record. A small
 * append is written from this thread: the fdatasync that follows starts without first waiting
 * for a write's round trip through the thread pool.
 */
async function appendAll(wal: FileHandle, bytes: Buffer): Promise<void> {
  let done = 0;
  while (done < bytes.byteLength) {
    const rest = bytes.subarray(done);
    const n = bytes.byteLength <= INLINE_WRITE_MAX_BYTES ? writeSync(wal.fd, rest) : (await wal.write(rest)).bytesWritten;
    if (n <= 0) throw new Error(`raft WAL write made no progress (${done} of ${bytes.byteLength} bytes written)`);
    done += n;
  }
}

async function syncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
