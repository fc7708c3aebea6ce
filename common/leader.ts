import { DfsError } from './errors.js';
import { callJson, type CallOptions } from './http.js';

export interface LeaderClientOptions {
  /** Attempts across masters before giving up: covers an election plus a few redirects. */
  maxAttempts?: number;
  /** Pause between rounds when no master is reachable or none knows a leader yet. */
  retryDelayMs?: number;
  timeoutMs?: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Calls "the master": whichever of the configured masters leads. It remembers the leader,
 * follows NOT_LEADER hints, and moves on to the next master when one is unreachable, a bounded
 * number of times. Used by the client library and by chunkservers alike.
 */
export class LeaderClient {
  private current = 0;
  private readonly maxAttempts: number;
  private readonly retryDelayMs: number;

  constructor(readonly masters: string[], private readonly opts: LeaderClientOptions = {}) {
    if (masters.length === 0) throw new DfsError('INVALID_ARGUMENT', 'no master addresses given');
    this.maxAttempts = opts.maxAttempts ?? Math.max(6, masters.length * 4);
    this.retryDelayMs = opts.retryDelayMs ?? 200;
  }

  get leader(): string {
    return this.masters[this.current]!;
  }

  async call<T>(path: string, opts: CallOptions = {}): Promise<T> {
    let last: DfsError | undefined;
    for (let attempt = 0; attempt < this.maxAttempts; attempt++) {
      const addr = this.masters[this.current]!;
      try {
        return await callJson<T>(addr, path, { timeoutMs: this.opts.timeoutMs, ...opts });
      } catch (err) {
        const e = err instanceof DfsError ? err : new DfsError('INTERNAL', String(err));
        if (e.code === 'NOT_LEADER') {
          last = e;
          const hint = typeof e.details.leader === 'string' ? e.details.leader : undefined;
          const i = hint ? this.masters.indexOf(hint) : -1;
          if (i >= 0 && i !== this.current) {
            this.current = i;
            continue;
          }
        } else if (e.code === 'UNAVAILABLE' || e.code === 'TIMEOUT') {
          last = e;
        } else {
          throw e;
        }
        this.current = (this.current + 1) % this.masters.length;
        if (this.current === 0 || this.masters.length === 1) await sleep(this.retryDelayMs);
      }
    }
    if (last?.code === 'NOT_LEADER') throw new DfsError('UNAVAILABLE', `no master leader among ${this.masters.join(', ')}; is a majority of masters running?`);
    throw new DfsError('UNAVAILABLE', `cannot reach a master at ${this.masters.join(', ')} (${last?.message ?? 'no answer'}); is the cluster running? (npm start, or set --masters / DFS_MASTERS)`);
  }
}
