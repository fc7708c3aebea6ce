// Record appends to one file take turns on the leader (master/state/record-append.ts): each is a
// short append holding the file's lease from its open to its complete, and the next one's open is
// proposed when that lease is gone. Clients do not hold the file between records or queue for it
// themselves: they ask, and the leader answers each in its turn.
import { DfsError } from '../../common/errors.js';

/** How record appends wait for their turn on the leader. */
export interface RecordTurnLimits {
  /** Opens waiting for one file at most; more are refused FILE_BUSY at once. */
  maxWaitersPerFile: number;
  /**
   * Longest wait for a turn: below the client's master-call timeout (10 s), so a refusal
   * (FILE_BUSY, retried by the client) comes back instead of a timeout that leaves it unsure.
   */
  waitMs: number;
  /** A waiter looks again this often, for a turn freed by a lease that expired. */
  pollMs: number;
}

export const RECORD_TURN_LIMITS: RecordTurnLimits = { maxWaitersPerFile: 1024, waitMs: 5000, pollMs: 20 };

export class RecordTurns {
  private readonly waiters = new Map<string, number>();
  /** Files whose open is being proposed: nobody else proposes one meanwhile. */
  private readonly opening = new Set<string>();
  private wakers = new Set<() => void>();

  constructor(private readonly limits: RecordTurnLimits = RECORD_TURN_LIMITS) {}

  /**
   * Runs `open` once no other append holds `path` (`held()`, from the leader's state) and no other
   * open for it is being proposed; FILE_BUSY when the turn does not come within the wait.
   */
  async take<T>(path: string, held: () => boolean, open: () => Promise<T>): Promise<T> {
    const waiting = this.waiters.get(path) ?? 0;
    if (waiting >= this.limits.maxWaitersPerFile) throw new DfsError('FILE_BUSY', `${waiting} record appends are already waiting for ${path}; try again shortly`);
    this.waiters.set(path, waiting + 1);
    const deadline = performance.now() + this.limits.waitMs;
    try {
      for (;;) {
        if (!this.opening.has(path) && !held()) {
          this.opening.add(path);
          try {
            return await open();
          } finally {
            this.opening.delete(path);
            this.wake();
          }
        }
        const left = deadline - performance.now();
        if (left <= 0) throw new DfsError('FILE_BUSY', `${path} is busy with other appends; a record append waited ${this.limits.waitMs} ms for its turn; try again`);
        await this.sleep(Math.min(left, this.limits.pollMs));
      }
    } finally {
      const n = (this.waiters.get(path) ?? 1) - 1;
      if (n > 0) this.waiters.set(path, n);
      else this.waiters.delete(path);
    }
  }

  /** An append ended (completed or abandoned): waiters look again now rather than at their next poll. */
  wake(): void {
    const wakers = this.wakers;
    this.wakers = new Set();
    for (const w of wakers) w();
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.wakers.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.wakers.add(done);
    });
  }
}
