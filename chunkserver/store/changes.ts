import { MAX_CHANGE_BACKLOG, MAX_HEARTBEAT_CHANGES } from '../../common/limits.js';
import type { ReportedChunk } from '../../common/protocol.js';

/**
 * The store's changes for the next heartbeats, by handle: a chunk is in one of the two at most
 * (the latest change wins), so a beat may carry any part of them in any order and the master
 * still ends where this server is. Bounded by MAX_CHANGE_BACKLOG: past it they are dropped, and
 * the heartbeat registers again with a full report (see overflowed).
 */
export class ChangeLog {
  private readonly added = new Map<number, ReportedChunk>();
  private readonly removed = new Set<number>();
  private dropped = false;

  /**
   * Changes since the last call, oldest first, at most `max` added and `max` removed (the rest
   * stay for the next heartbeat); put back with restore if the heartbeat fails.
   */
  take(max = MAX_HEARTBEAT_CHANGES): { added: ReportedChunk[]; removed: number[] } {
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
  get pending(): number {
    return this.added.size + this.removed.size;
  }

  /** Forgets every change: a full report covers them. Clears an overflow too. */
  clear(): void {
    this.added.clear();
    this.removed.clear();
    this.dropped = false;
  }

  /** Whether changes were dropped past MAX_CHANGE_BACKLOG: only a full report tells the master the truth now. */
  get overflowed(): boolean {
    return this.dropped;
  }

  /** Puts back changes a failed heartbeat carried; a change made since then is newer and stays. */
  restore(c: { added: ReportedChunk[]; removed: number[] }): void {
    for (const a of c.added) if (!this.added.has(a.handle) && !this.removed.has(a.handle)) this.added.set(a.handle, { handle: a.handle, version: a.version, length: a.length });
    for (const h of c.removed) if (!this.added.has(h)) this.removed.add(h);
    this.bound();
  }

  noteAdded(c: ReportedChunk): void {
    this.removed.delete(c.handle);
    this.added.delete(c.handle); // re-inserted last: the newest change
    this.added.set(c.handle, { handle: c.handle, version: c.version, length: c.length });
    this.bound();
  }

  noteRemoved(handle: number): void {
    this.added.delete(handle);
    this.removed.add(handle);
    this.bound();
  }

  /** Whether an addition of `handle` waits to be reported. */
  hasAdded(handle: number): boolean {
    return this.added.has(handle);
  }

  /** The master forgot the chunk itself: an addition not yet reported would bring it back. */
  forgetAdded(handle: number): void {
    this.added.delete(handle);
  }

  private bound(): void {
    if (this.added.size + this.removed.size <= MAX_CHANGE_BACKLOG) return;
    this.added.clear();
    this.removed.clear();
    this.dropped = true;
  }
}
