// The core's view of the log: a stable prefix in Storage plus an unstable suffix (entries and
// possibly a snapshot) that the driver has not persisted yet. Modelled on etcd's raftLog.
import type { LogStorage } from './storage.js';
import { assert, entryBytes, type Entry, type Snapshot } from './types.js';

/** Entries (and a snapshot) accepted by the core but not yet reported durable by `advance`. */
class Unstable {
  snapshot: Snapshot | null = null;
  entries: Entry[] = [];
  /** Index of entries[0]; everything below it is in Storage (and durable). */
  offset: number;

  constructor(offset: number) {
    this.offset = offset;
  }

  maybeFirstIndex(): number | undefined {
    return this.snapshot === null ? undefined : this.snapshot.meta.index + 1;
  }

  maybeLastIndex(): number | undefined {
    if (this.entries.length > 0) return this.offset + this.entries.length - 1;
    return this.snapshot === null ? undefined : this.snapshot.meta.index;
  }

  maybeTerm(index: number): number | undefined {
    if (index < this.offset) {
      return this.snapshot !== null && this.snapshot.meta.index === index ? this.snapshot.meta.term : undefined;
    }
    const last = this.maybeLastIndex();
    if (last === undefined || index > last) return undefined;
    return this.entries[index - this.offset]!.term;
  }

  /** Entries up to `index` were persisted; the term check ignores a write overtaken by a truncation. */
  stableTo(index: number, term: number): void {
    if (index < this.offset || this.maybeTerm(index) !== term) return;
    this.entries = this.entries.slice(index + 1 - this.offset);
    this.offset = index + 1;
  }

  stableSnapTo(index: number): void {
    if (this.snapshot !== null && this.snapshot.meta.index === index) this.snapshot = null;
  }

  restore(snapshot: Snapshot): void {
    this.offset = snapshot.meta.index + 1;
    this.entries = [];
    this.snapshot = snapshot;
  }

  truncateAndAppend(entries: readonly Entry[]): void {
    const from = entries[0]!.index;
    if (from === this.offset + this.entries.length) {
      this.entries.push(...entries);
    } else if (from <= this.offset) {
      // Replaces everything unstable; the storage below `from` is truncated when these persist.
      this.offset = from;
      this.entries = [...entries];
    } else {
      this.entries = this.entries.slice(0, from - this.offset).concat(entries);
    }
  }

  slice(lo: number, hi: number): Entry[] {
    assert(lo >= this.offset && hi <= this.offset + this.entries.length, `unstable slice [${lo}, ${hi}) out of range`);
    return this.entries.slice(lo - this.offset, hi - this.offset);
  }
}

export class RaftLog {
  readonly storage: LogStorage;
  private readonly unstable: Unstable;
  /** Highest index known to be committed. */
  committed: number;
  /** Highest index handed to the driver for applying (may not be applied yet). */
  applying: number;
  /** Highest index the driver reported applied. */
  applied: number;

  constructor(storage: LogStorage, applied: number) {
    this.storage = storage;
    const first = storage.firstIndex();
    const last = storage.lastIndex();
    this.unstable = new Unstable(last + 1);
    const hardState = storage.initialState();
    assert(hardState.commit <= last, `persisted commit ${hardState.commit} beyond the last index ${last}`);
    this.committed = Math.max(hardState.commit, first - 1);
    // The state machine must hold everything before the log's first entry (its snapshot).
    assert(applied <= this.committed && applied >= first - 1, `applied ${applied} outside [${first - 1}, ${this.committed}]`);
    this.applying = applied;
    this.applied = applied;
  }

  firstIndex(): number {
    return this.unstable.maybeFirstIndex() ?? this.storage.firstIndex();
  }

  lastIndex(): number {
    return this.unstable.maybeLastIndex() ?? this.storage.lastIndex();
  }

  /** Term at `index`, or undefined if compacted away or beyond the end. */
  term(index: number): number | undefined {
    if (index < this.firstIndex() - 1 || index > this.lastIndex()) return undefined;
    return this.unstable.maybeTerm(index) ?? this.storage.term(index);
  }

  lastTerm(): number {
    const term = this.term(this.lastIndex());
    assert(term !== undefined, 'the last entry has no term');
    return term;
  }

  matchTerm(index: number, term: number): boolean {
    return this.term(index) === term;
  }

  /** §5.4.1: a log is more up-to-date if its last term is higher, or equal with a longer log. */
  isUpToDate(lastIndex: number, lastTerm: number): boolean {
    const ourTerm = this.lastTerm();
    return lastTerm > ourTerm || (lastTerm === ourTerm && lastIndex >= this.lastIndex());
  }

  /**
   * §5.3 receiver rules 2–4: if the entry at prevIndex matches prevTerm, delete conflicting
   * entries, append new ones and advance commit. Returns the last index known to match, or
   * undefined when prevIndex/prevTerm did not match.
   */
  maybeAppend(prevIndex: number, prevTerm: number, leaderCommit: number, entries: readonly Entry[]): number | undefined {
    if (!this.matchTerm(prevIndex, prevTerm)) return undefined;
    const lastNewIndex = prevIndex + entries.length;
    const conflict = this.findConflict(entries);
    if (conflict !== 0) {
      assert(conflict > this.committed, `conflict at ${conflict} with committed entry ${this.committed}`);
      this.append(entries.slice(conflict - prevIndex - 1));
    }
    // Only up to the last new entry: entries beyond it may be stale leftovers of another leader.
    this.commitTo(Math.min(leaderCommit, lastNewIndex));
    return lastNewIndex;
  }

  append(entries: readonly Entry[]): number {
    if (entries.length === 0) return this.lastIndex();
    const after = entries[0]!.index - 1;
    assert(after >= this.committed, `append after ${after} would overwrite committed ${this.committed}`);
    assert(after <= this.lastIndex(), `append after ${after} leaves a gap`);
    this.unstable.truncateAndAppend(entries);
    return this.lastIndex();
  }

  /** First index whose term differs from ours (or is new); 0 when all entries are already held. */
  private findConflict(entries: readonly Entry[]): number {
    for (const entry of entries) {
      if (!this.matchTerm(entry.index, entry.term)) return entry.index;
    }
    return 0;
  }

  /**
   * The largest index ≤ `index` whose term is ≤ `term`, with that term (0 when unknown because
   * compacted). Entries above it cannot match a log whose entry at `index` has `term`.
   */
  findConflictByTerm(index: number, term: number): { index: number; term: number } {
    for (let i = index; i > 0; i--) {
      const ourTerm = this.term(i);
      if (ourTerm === undefined) return { index: i, term: 0 };
      if (ourTerm <= term) return { index: i, term: ourTerm };
    }
    return { index: 0, term: 0 };
  }

  commitTo(index: number): void {
    if (index <= this.committed) return;
    assert(index <= this.lastIndex(), `commit ${index} beyond the last index ${this.lastIndex()}`);
    this.committed = index;
  }

  /** §5.4.2: commit by counting replicas only an entry of the leader's own term. */
  maybeCommit(index: number, term: number): boolean {
    if (index > this.committed && this.term(index) === term) {
      this.commitTo(index);
      return true;
    }
    return false;
  }

  hasNextCommittedEntries(): boolean {
    return this.committed > this.applying && this.unstable.snapshot === null;
  }

  nextCommittedEntries(maxBytes: number): Entry[] {
    if (!this.hasNextCommittedEntries()) return [];
    return this.slice(this.applying + 1, this.committed + 1, maxBytes) ?? [];
  }

  acceptApplying(index: number): void {
    assert(index <= this.committed, 'applying beyond commit');
    this.applying = Math.max(this.applying, index);
  }

  appliedTo(index: number): void {
    assert(index <= this.committed, 'applied beyond commit');
    this.applied = Math.max(this.applied, index);
  }

  unstableEntries(): Entry[] {
    return [...this.unstable.entries];
  }

  unstableSnapshot(): Snapshot | null {
    return this.unstable.snapshot;
  }

  stableTo(index: number, term: number): void {
    this.unstable.stableTo(index, term);
  }

  stableSnapTo(index: number): void {
    this.unstable.stableSnapTo(index);
  }

  /** Highest index known durable in this log (what a leader may count as its own replica). */
  persistedLastIndex(): number {
    if (this.unstable.snapshot !== null) return 0;
    return Math.min(this.unstable.offset - 1, this.lastIndex());
  }

  snapshot(): Snapshot {
    return this.unstable.snapshot ?? this.storage.snapshot();
  }

  /** Replaces the log with a snapshot received from the leader. */
  restore(snapshot: Snapshot): void {
    this.committed = snapshot.meta.index;
    this.applying = Math.max(this.applying, snapshot.meta.index);
    this.unstable.restore(snapshot);
  }

  /** Entries in [lo, hi) bounded by `maxBytes` (at least one), or undefined if lo was compacted. */
  slice(lo: number, hi: number, maxBytes: number): Entry[] | undefined {
    if (lo < this.firstIndex()) return undefined;
    assert(hi <= this.lastIndex() + 1, `slice [${lo}, ${hi}) beyond the last index ${this.lastIndex()}`);
    if (lo >= hi) return [];
    const offset = this.unstable.offset;
    let out: Entry[] = [];
    if (lo < offset) {
      out = this.storage.entries(lo, Math.min(hi, offset), maxBytes);
      if (out.length < Math.min(hi, offset) - lo) return out;
    }
    if (hi > offset) {
      let bytes = out.reduce((sum, e) => sum + entryBytes(e), 0);
      for (const entry of this.unstable.slice(Math.max(lo, offset), hi)) {
        bytes += entryBytes(entry);
        if (out.length > 0 && bytes > maxBytes) break;
        out.push(entry);
      }
    }
    return out;
  }

  /** The entry at `index`, if held (for invariant checks). */
  entryAt(index: number): Entry | undefined {
    if (index < this.firstIndex() || index > this.lastIndex()) return undefined;
    return this.slice(index, index + 1, Number.MAX_SAFE_INTEGER)?.[0];
  }
}
