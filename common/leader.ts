import { DfsError } from './errors.js';
import { callJson, type CallOptions } from './http.js';

export interface LeaderClientOptions {
  /** How long to keep trying (an election, redirects, a safe mode) before giving up. */
  maxWaitMs?: number;
  /** How long to keep trying when no master answers at all (nothing running there?). */
  unreachableWaitMs?: number;
  /** Pause between rounds when no master is reachable or none knows a leader yet. */
  retryDelayMs?: number;
  timeoutMs?: number;
  /** Sent on every call (e.g. a chunkserver's proof that it holds the cluster secret). */
  headers?: Record<string, string>;
}

/** Header of an exactly-once master request: `<session id>:<sequence number>` (POST /v1/session). */
export const SESSION_HEADER = 'x-dfs-session';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Calls "the master": whichever of the configured masters leads. It remembers the leader,
 * follows NOT_LEADER hints, moves on to the next master when one is unreachable, and waits out
 * an election or a new leader's safe mode, for a bounded time. Used by the client library and
 * by chunkservers alike. Retried calls carry the same headers, so a mutation sent with a session
 * header (x-dfs-session) is applied once however often it is retried.
 */
export class LeaderClient {
  private current = 0;
  private readonly maxWaitMs: number;
  private readonly retryDelayMs: number;

  constructor(readonly masters: string[], private readonly opts: LeaderClientOptions = {}) {
    if (masters.length === 0) throw new DfsError('INVALID_ARGUMENT', 'no master addresses given');
    this.maxWaitMs = opts.maxWaitMs ?? 15_000;
    this.retryDelayMs = opts.retryDelayMs ?? 100;
  }

  get leader(): string {
    return this.masters[this.current]!;
  }

  async call<T>(path: string, opts: CallOptions = {}): Promise<T> {
    let last: DfsError | undefined;
    let sawMaster = false;
    /** Masters that failed this call: a stale hint pointing back at one waits a beat first. */
    const failed = new Set<number>();
    const start = Date.now();
    const deadline = () => start + (sawMaster ? this.maxWaitMs : this.opts.unreachableWaitMs ?? 2_000);
    // Each master is tried at least once, whatever the deadline.
    for (let attempt = 0; attempt < this.masters.length || Date.now() < deadline(); attempt++) {
      const addr = this.masters[this.current]!;
      try {
        return await callJson<T>(addr, path, { timeoutMs: this.opts.timeoutMs, ...opts, headers: { ...this.opts.headers, ...opts.headers } });
      } catch (err) {
        const e = err instanceof DfsError ? err : new DfsError('INTERNAL', String(err));
        if (e.code === 'NOT_LEADER') {
          last = e;
          sawMaster = true;
          const hint = typeof e.details.leader === 'string' ? e.details.leader : undefined;
          const i = hint ? this.masters.indexOf(hint) : -1;
          if (i >= 0 && i !== this.current) {
            if (failed.has(i)) await sleep(this.retryDelayMs); // its followers have not noticed yet
            this.current = i;
            continue;
          }
        } else if (e.code === 'SAFE_MODE') {
          last = e;
          sawMaster = true;
          await sleep(4 * this.retryDelayMs);
          continue; // the same master: it is the leader, waiting for reports
        } else if (e.code === 'UNAVAILABLE' || e.code === 'TIMEOUT') {
          last = e;
          failed.add(this.current);
        } else {
          throw e;
        }
        this.current = (this.current + 1) % this.masters.length;
        if (this.current === 0 || this.masters.length === 1) await sleep(this.retryDelayMs);
      }
    }
    if (last?.code === 'SAFE_MODE') throw last;
    if (sawMaster) throw new DfsError('UNAVAILABLE', `no master leader among ${this.masters.join(', ')} (${last?.message ?? 'no answer'}); is a majority of masters running?`);
    throw new DfsError('UNAVAILABLE', `cannot reach a master at ${this.masters.join(', ')} (${last?.message ?? 'no answer'}); is the cluster running? (npm start, or set --masters / DFS_MASTERS)`);
  }
}
