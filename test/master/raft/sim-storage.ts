// The simulator's disk. A node's durable state is a MemoryStorage that outlives its incarnations;
// each incarnation reads it through a SimStorage whose writes become durable (and visible, as in
// FileStorage, which updates its in-memory mirror after the fsync) only when the simulator
// completes them. A crash abandons the incarnation with its write unfinished: the simulator then
// keeps a prefix of it (a torn WAL tail) or nothing.
import type { MemoryStorage } from '../../../master/raft/memory-storage.js';
import type { PersistBatch, Storage } from '../../../master/raft/storage.js';
import type { Entry, HardState, Snapshot } from '../../../master/raft/types.js';

export type PendingWrite =
  | { readonly kind: 'persist'; readonly batch: PersistBatch; readonly done: () => void }
  | { readonly kind: 'snapshot'; readonly snapshot: Snapshot; readonly compactIndex: number; readonly done: () => void };

export class SimStorage implements Storage {
  constructor(
    readonly disk: MemoryStorage,
    /** Called with each write; the simulator completes it (writes it to `disk`, then `done()`) later. */
    private readonly startWrite: (write: PendingWrite) => void,
  ) {}

  initialState(): HardState {
    return this.disk.initialState();
  }

  firstIndex(): number {
    return this.disk.firstIndex();
  }

  lastIndex(): number {
    return this.disk.lastIndex();
  }

  term(index: number): number | undefined {
    return this.disk.term(index);
  }

  entries(lo: number, hi: number, maxBytes: number): Entry[] {
    return this.disk.entries(lo, hi, maxBytes);
  }

  snapshot(): Snapshot {
    return this.disk.snapshot();
  }

  persist(batch: PersistBatch): Promise<void> {
    return new Promise((done) => this.startWrite({ kind: 'persist', batch, done }));
  }

  saveSnapshot(snapshot: Snapshot, compactIndex: number): Promise<void> {
    return new Promise((done) => this.startWrite({ kind: 'snapshot', snapshot, compactIndex, done }));
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

/** Makes a write durable. */
export function completeWrite(disk: MemoryStorage, write: PendingWrite): void {
  if (write.kind === 'persist') disk.persistSync(write.batch);
  else disk.saveSnapshotSync(write.snapshot, write.compactIndex);
}
