// Durable Storage: a write-ahead log (checksummed, length-prefixed records, one fdatasync per
// batch) plus a snapshot file written with temp + fsync + rename + directory fsync. The log is
// kept bounded by rewriting it without the compacted prefix after each snapshot.
import { mkdir, open, readFile, rename, rm, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { MemoryStorage } from './memory-storage.js';
import type { PersistBatch, Storage } from './storage.js';
import { EMPTY_SNAPSHOT, type Entry, type HardState, type Snapshot } from './types.js';
import { decodeRecords, encodeRecords, type WalRecord } from './wal.js';

const WAL_FILE = 'raft.wal';
const SNAPSHOT_FILE = 'raft.snapshot';
const SNAPSHOT_MAGIC = Buffer.from('DFSRSNP1', 'ascii');
const SNAPSHOT_HEADER_BYTES = SNAPSHOT_MAGIC.byteLength + 4 + 24;

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
  private closed = false;

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
        await writeSnapshotFile(this.dir, batch.snapshot);
        this.observer.snapshotWritten?.(batch.snapshot.data.byteLength);
        this.memory.persistSync(batch);
        await this.rewriteWal();
        return;
      }
      const records: WalRecord[] = batch.entries.map((entry) => ({ kind: 'entry', entry }));
      if (batch.hardState !== null) records.push({ kind: 'hardState', hardState: batch.hardState });
      if (records.length === 0) return;
      // Group commit: the whole Ready goes out in one write and one fdatasync. As etcd's
      // MustSync: a Ready that only moves the commit index needs no fdatasync. Losing it in a
      // crash only makes the node relearn the commit index from the leader; entries and the
      // term and vote, which safety rests on, are always synced (and a later sync covers it).
      const last = this.memory.initialState();
      const mustSync = batch.entries.length > 0 || (batch.hardState !== null && (batch.hardState.term !== last.term || batch.hardState.vote !== last.vote));
      await this.wal.write(encodeRecords(records));
      if (mustSync) await this.timedDatasync();
      this.memory.persistSync(batch);
    });
  }

  saveSnapshot(snapshot: Snapshot, compactIndex: number): Promise<void> {
    return this.serialised(async () => {
      if (snapshot.meta.index <= this.memory.snapshot().meta.index) return;
      await writeSnapshotFile(this.dir, snapshot);
      this.observer.snapshotWritten?.(snapshot.data.byteLength);
      this.memory.saveSnapshotSync(snapshot, compactIndex);
      await this.rewriteWal();
    });
  }

  close(): Promise<void> {
    return this.serialised(async () => {
      if (this.closed) return;
      this.closed = true;
      await this.wal.close();
    });
  }

  private async timedDatasync(): Promise<void> {
    if (!this.observer.walSynced) return this.wal.datasync();
    const startedMs = performance.now();
    await this.wal.datasync();
    this.observer.walSynced((performance.now() - startedMs) / 1000);
  }

  private serialised(work: () => Promise<void>): Promise<void> {
    const run = this.queue.then(() => {
      if (this.closed) throw new Error('raft storage is closed');
      return work();
    });
    this.queue = run.catch(() => undefined);
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

async function writeSnapshotFile(dir: string, snapshot: Snapshot): Promise<void> {
  const header = Buffer.alloc(SNAPSHOT_HEADER_BYTES);
  SNAPSHOT_MAGIC.copy(header, 0);
  header.writeBigUInt64LE(BigInt(snapshot.meta.index), 12);
  header.writeBigUInt64LE(BigInt(snapshot.meta.term), 20);
  header.writeBigUInt64LE(BigInt(snapshot.data.byteLength), 28);
  const checksum = crc32(snapshot.data, crc32(header.subarray(12)));
  header.writeUInt32LE(checksum, 8);
  const tmpPath = join(dir, `${SNAPSHOT_FILE}.tmp`);
  const tmp = await open(tmpPath, 'w');
  try {
    await tmp.write(header);
    await tmp.write(snapshot.data);
    await tmp.sync();
  } finally {
    await tmp.close();
  }
  await rename(tmpPath, join(dir, SNAPSHOT_FILE));
  await syncDirectory(dir);
}

async function readSnapshotFile(path: string): Promise<Snapshot> {
  let file: Buffer;
  try {
    file = await readFile(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return EMPTY_SNAPSHOT;
    throw error;
  }
  // The file was renamed into place only after an fsync, so any damage is real corruption:
  // refuse to start rather than serve a state machine that silently lost data.
  if (file.byteLength < SNAPSHOT_HEADER_BYTES || !file.subarray(0, SNAPSHOT_MAGIC.byteLength).equals(SNAPSHOT_MAGIC)) {
    throw new Error(`raft snapshot ${path} is corrupt (bad header)`);
  }
  const index = Number(file.readBigUInt64LE(12));
  const term = Number(file.readBigUInt64LE(20));
  const length = Number(file.readBigUInt64LE(28));
  const data = file.subarray(SNAPSHOT_HEADER_BYTES);
  const checksum = crc32(data, crc32(file.subarray(12, SNAPSHOT_HEADER_BYTES)));
  if (data.byteLength !== length || checksum !== file.readUInt32LE(8)) {
    throw new Error(`raft snapshot ${path} is corrupt (checksum mismatch)`);
  }
  return { meta: { index, term }, data: new Uint8Array(data) };
}

async function syncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
