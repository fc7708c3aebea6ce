// The leader's view of each follower, modelled on etcd's tracker: a follower is probed one append
// at a time until its match is found, then replicated with a bounded window of appends in flight,
// or sent a snapshot when the entries it needs were compacted away.
import { assert, type Snapshot } from './types.js';

export type ProgressState = 'probe' | 'replicate' | 'snapshot';

/** A bounded window of in-flight appends, freed by acknowledgements in log order. */
export class Inflights {
  private readonly lastIndexes: number[] = [];
  private readonly sizes: number[] = [];
  private bytes = 0;

  constructor(
    private readonly maxCount: number,
    private readonly maxBytes: number,
  ) {
    assert(maxCount > 0, 'maxInflightMsgs must be positive');
  }

  add(lastIndex: number, sizeBytes: number): void {
    assert(!this.full(), 'adding to a full inflight window');
    this.lastIndexes.push(lastIndex);
    this.sizes.push(sizeBytes);
    this.bytes += sizeBytes;
  }

  /** Frees every append whose last index is ≤ `index`. */
  freeLE(index: number): void {
    let n = 0;
    while (n < this.lastIndexes.length && this.lastIndexes[n]! <= index) {
      this.bytes -= this.sizes[n]!;
      n++;
    }
    this.lastIndexes.splice(0, n);
    this.sizes.splice(0, n);
  }

  /** Frees the oldest append, whatever its index (its reply was probably lost). */
  freeFirstOne(): void {
    if (this.lastIndexes.length === 0) return;
    this.freeLE(this.lastIndexes[0]!);
  }

  full(): boolean {
    return this.lastIndexes.length >= this.maxCount || this.bytes >= this.maxBytes;
  }

  count(): number {
    return this.lastIndexes.length;
  }

  reset(): void {
    this.lastIndexes.length = 0;
    this.sizes.length = 0;
    this.bytes = 0;
  }
}

/** Where a snapshot stream to one follower stands. */
export interface SnapshotStream {
  readonly snapshot: Snapshot;
  /** Next byte to send. */
  sentOffset: number;
  /** Bytes the follower confirmed. */
  ackedOffset: number;
  /** Whether an ack arrived since the last heartbeat; if not, the stream restarts from ackedOffset. */
  progressed: boolean;
}

export class Progress {
  /** Highest index known to be replicated on the follower (durably). */
  match = 0;
  /** Next index to send. */
  next: number;
  state: ProgressState = 'probe';
  /** In probe state: an append is outstanding; wait for its reply or the next heartbeat reply. */
  probeSent = false;
  /** Heard from since the last check-quorum round. */
  recentActive = false;
  /** recentActive as it was at the last check-quorum round (a removal must leave a live majority). */
  lastRoundActive = false;
  readonly inflights: Inflights;
  stream: SnapshotStream | null = null;

  constructor(next: number, maxInflightMsgs: number, maxInflightBytes: number) {
    this.next = next;
    this.inflights = new Inflights(maxInflightMsgs, maxInflightBytes);
  }

  private resetState(state: ProgressState): void {
    this.state = state;
    this.probeSent = false;
    this.stream = null;
    this.inflights.reset();
  }

  becomeProbe(): void {
    // After a snapshot the follower holds at least the snapshot; otherwise start right after match.
    const snapshotIndex = this.stream?.snapshot.meta.index ?? 0;
    this.resetState('probe');
    this.next = Math.max(this.match + 1, snapshotIndex + 1);
  }

  /**
   * The follower's log ends before what we knew it held: it lost its disk (an operator wiped
   * and restarted it). Start again from what it has, by probing; a snapshot follows if the
   * log no longer reaches that far back. Lowering match only delays commits, never undoes one.
   */
  resetAfterLoss(followerLastIndex: number): void {
    this.match = followerLastIndex;
    this.resetState('probe');
    this.next = followerLastIndex + 1;
  }

  becomeReplicate(): void {
    this.resetState('replicate');
    this.next = this.match + 1;
  }

  becomeSnapshot(snapshot: Snapshot): void {
    this.resetState('snapshot');
    this.stream = { snapshot, sentOffset: 0, ackedOffset: 0, progressed: true };
  }

  /** Records a successful append up to `index`; returns whether match moved. */
  maybeUpdate(index: number): boolean {
    let updated = false;
    if (this.match < index) {
      this.match = index;
      this.probeSent = false;
      updated = true;
    }
    this.next = Math.max(this.next, index + 1);
    return updated;
  }

  /**
   * Handles a rejected append of `rejected` (its prevLogIndex) with the follower's hint
   * `matchHint` (an index at or below which the logs may match). Returns false for a stale reply.
   */
  maybeDecrTo(rejected: number, matchHint: number): boolean {
    if (this.state === 'replicate') {
      if (rejected <= this.match) return false;
      this.next = this.match + 1;
      return true;
    }
    if (this.next - 1 !== rejected) return false;
    this.next = Math.max(Math.min(rejected, matchHint + 1), this.match + 1);
    this.probeSent = false;
    return true;
  }

  /** Accounts for an append just sent with `count` entries ending at `lastIndex`. */
  sentEntries(count: number, lastIndex: number, sizeBytes: number): void {
    if (this.state === 'replicate') {
      if (count > 0) {
        this.next = lastIndex + 1;
        this.inflights.add(lastIndex, sizeBytes);
      }
    } else if (this.state === 'probe') {
      this.probeSent = true;
    }
  }

  isPaused(): boolean {
    switch (this.state) {
      case 'probe':
        return this.probeSent;
      case 'replicate':
        return this.inflights.full();
      case 'snapshot':
        return true;
    }
  }
}
