// The Storage seam between the Raft core (which only reads stable state) and the driver (which
// writes it). Two implementations: MemoryStorage (tests, simulator) and FileStorage (a checksummed
// write-ahead log plus a snapshot file).
import type { Entry, HardState, Snapshot, SnapshotMeta } from './types.js';

/** The read side the core uses. All indexes are log indexes; reads never block. */
export interface LogStorage {
  /**
   * Hard state as last persisted (a commit index moved by a commit-only batch counts, though a
   * file storage may write it only later: see persist); `commit` is never below the snapshot index.
   */
  initialState(): HardState;
  /** First index still held in the log (entries before it were compacted away). */
  firstIndex(): number;
  lastIndex(): number;
  /** Term at `index`, for index in [firstIndex()-1, lastIndex()]; undefined outside that range. */
  term(index: number): number | undefined;
  /**
   * Entries in [lo, hi) with lo ≥ firstIndex() and hi ≤ lastIndex()+1, stopping before the total
   * passes `maxBytes` but always returning at least one entry when lo < hi.
   */
  entries(lo: number, hi: number, maxBytes: number): Entry[];
  /** The latest snapshot (EMPTY_SNAPSHOT when none); its index is ≥ firstIndex()-1. */
  snapshot(): Snapshot;
}

/** What one `ready()` asks to persist; the driver writes it with a single fsync. */
export interface PersistBatch {
  readonly hardState: HardState | null;
  /** A snapshot received from the leader; replaces the whole log. Written before `entries`. */
  readonly snapshot: Snapshot | null;
  /** Appended in order; an entry at an index the log already holds truncates the log there. */
  readonly entries: readonly Entry[];
  /**
   * The caller has nothing else to do until this batch is durable (a follower, which answers the
   * leader only then, or a leader with no other work): a small batch may then be synced on the
   * calling thread. Its fdatasync
   * skips the thread pool's two wake-ups, which cost about as much as the sync itself on a busy
   * machine.
   */
  readonly mayBlock?: boolean;
}

export interface Storage extends LogStorage {
  /**
   * Makes the batch durable (one fdatasync for the WAL part) before resolving. A batch that only
   * moves the commit index may be kept in memory until the next batch or close: a crash may lose
   * it, and the node relearns the commit index from the leader.
   */
  persist(batch: PersistBatch): Promise<void>;
  /**
   * Durably stores a snapshot the local state machine took, then drops log entries up to
   * `compactIndex` (≤ snapshot index; keeping a tail lets slightly lagging followers catch up
   * from the log instead of by snapshot).
   */
  saveSnapshot(snapshot: Snapshot, compactIndex: number): Promise<void>;
  /**
   * Optional: as saveSnapshot, from the pieces of a capture, written while other calls go on (the
   * driver then takes snapshots in the background). Drops a snapshot no newer than the one it holds.
   */
  saveSnapshotStream?(meta: SnapshotMeta, pieces: Iterator<Uint8Array>, compactIndex: number): Promise<void>;
  close(): Promise<void>;
}

export { MemoryStorage } from './memory-storage.js';
export { FileStorage, type FileStorageOptions, type OpenReport } from './file-storage.js';
