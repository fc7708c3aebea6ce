// An in-memory Storage. Used directly by tests and the simulator (where "what was persisted" is
// exactly what `persist` accepted), and as the in-memory mirror inside FileStorage.
import type { PersistBatch, Storage } from './storage.js';
import { assert, EMPTY_SNAPSHOT, entryBytes, type Entry, type HardState, type Snapshot } from './types.js';

export class MemoryStorage implements Storage {
  private hardState: HardState = { term: 0, vote: null, commit: 0 };
  private latestSnapshot: Snapshot = EMPTY_SNAPSHOT;
  /** Index and term of the entry just before `log[0]` (compacted or covered by a snapshot). */
  private baseIndex = 0;
  private baseTerm = 0;
  private log: Entry[] = [];

  initialState(): HardState {
    const commit = Math.max(this.hardState.commit, this.latestSnapshot.meta.index);
    return { ...this.hardState, commit };
  }

  firstIndex(): number {
    return this.baseIndex + 1;
  }

  lastIndex(): number {
    return this.baseIndex + this.log.length;
  }

  term(index: number): number | undefined {
    if (index === this.baseIndex) return this.baseTerm;
    if (index < this.baseIndex || index > this.lastIndex()) return undefined;
    return this.log[index - this.baseIndex - 1]!.term;
  }

  entries(lo: number, hi: number, maxBytes: number): Entry[] {
    assert(lo >= this.firstIndex() && hi <= this.lastIndex() + 1 && lo <= hi, `entries [${lo}, ${hi}) out of range`);
    const out: Entry[] = [];
    let bytes = 0;
    for (let i = lo; i < hi; i++) {
      const entry = this.log[i - this.baseIndex - 1]!;
      bytes += entryBytes(entry);
      if (out.length > 0 && bytes > maxBytes) break;
      out.push(entry);
    }
    return out;
  }

  snapshot(): Snapshot {
    return this.latestSnapshot;
  }

  /** All entries currently held, for persistence layers and invariant checks. */
  allEntries(): readonly Entry[] {
    return this.log;
  }

  base(): { index: number; term: number } {
    return { index: this.baseIndex, term: this.baseTerm };
  }

  persist(batch: PersistBatch): Promise<void> {
    this.persistSync(batch);
    return Promise.resolve();
  }

  persistSync(batch: PersistBatch): void {
    if (batch.snapshot !== null) this.installSnapshot(batch.snapshot);
    this.append(batch.entries);
    if (batch.hardState !== null) this.setHardState(batch.hardState);
  }

  saveSnapshot(snapshot: Snapshot, compactIndex: number): Promise<void> {
    this.saveSnapshotSync(snapshot, compactIndex);
    return Promise.resolve();
  }

  saveSnapshotSync(snapshot: Snapshot, compactIndex: number): void {
    assert(compactIndex <= snapshot.meta.index, 'compaction past the snapshot');
    if (snapshot.meta.index <= this.latestSnapshot.meta.index) return;
    assert(snapshot.meta.index <= this.lastIndex(), 'snapshot of entries the log does not hold');
    this.latestSnapshot = snapshot;
    this.compact(compactIndex);
  }

  close(): Promise<void> {
    return Promise.resolve();
  }

  setHardState(hardState: HardState): void {
    this.hardState = hardState;
  }

  /** Replaces the whole log with a snapshot received from the leader. */
  installSnapshot(snapshot: Snapshot): void {
    this.latestSnapshot = snapshot;
    this.log = [];
    this.baseIndex = snapshot.meta.index;
    this.baseTerm = snapshot.meta.term;
  }

  append(entries: readonly Entry[]): void {
    if (entries.length === 0) return;
    const first = entries[0]!.index;
    assert(first > this.baseIndex, `append at ${first} below the compacted prefix ${this.baseIndex}`);
    assert(first <= this.lastIndex() + 1, `append at ${first} leaves a gap after ${this.lastIndex()}`);
    this.log.length = first - this.baseIndex - 1;
    for (const entry of entries) {
      assert(entry.index === this.lastIndex() + 1, 'appended entries are not contiguous');
      this.log.push(entry);
    }
  }

  /** Drops entries up to and including `index` (no-op if already compacted). */
  compact(index: number): void {
    if (index <= this.baseIndex) return;
    const term = this.term(index);
    assert(term !== undefined, `compact to ${index} beyond the last index ${this.lastIndex()}`);
    this.log = this.log.slice(index - this.baseIndex);
    this.baseIndex = index;
    this.baseTerm = term;
  }

  /** Restores contents loaded from disk (FileStorage start-up). */
  load(state: { hardState: HardState; snapshot: Snapshot; baseIndex: number; baseTerm: number; entries: Entry[] }): void {
    this.hardState = state.hardState;
    this.latestSnapshot = state.snapshot;
    this.baseIndex = state.baseIndex;
    this.baseTerm = state.baseTerm;
    this.log = state.entries;
  }
}
