// A token bucket for background traffic (the chunkserver's scrubber and its re-replication
// copies), with the clock behind an interface so tests drive time instead of waiting for it.
import { DfsError } from './errors.js';

export const MiB = 1024 * 1024;

/** Below this a 64 MiB chunk takes over ten minutes: a cap that slow is a typo for 0 (off). */
export const MIN_RATE_MIBPS = 0.1;
/** Faster than any disk or NIC a chunkserver has: a larger number is a typo, not a cap. */
export const MAX_RATE_MIBPS = 10_240;

/** Time as the limiter sees it: the wall clock in production, a hand-driven one in tests. */
export interface Clock {
  nowMs(): number;
  /** Resolves after `ms`; rejects (with the signal's reason) as soon as `signal` aborts. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

export const systemClock: Clock = {
  nowMs: () => performance.now(),
  sleep: (ms, signal) => new Promise<void>((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  }),
};

/**
 * Parses a `--*-rate <MiB/s>` option: 0 (returned as 0) means `zeroMeans`, anything else must lie
 * in [MIN_RATE_MIBPS, MAX_RATE_MIBPS]. Fractions are allowed (0.5 = 512 KiB/s).
 */
export function parseRateMiBps(raw: unknown, what: string, zeroMeans = 'no limit'): number {
  const n = typeof raw === 'string' && raw.trim() !== '' ? Number(raw) : raw;
  if (typeof n !== 'number' || !Number.isFinite(n) || n < 0) {
    throw new DfsError('INVALID_ARGUMENT', `${what} must be a number of MiB/s (0 for ${zeroMeans}), not ${JSON.stringify(raw)}`);
  }
  if (n !== 0 && (n < MIN_RATE_MIBPS || n > MAX_RATE_MIBPS)) {
    throw new DfsError('INVALID_ARGUMENT', `${what} must be 0 (${zeroMeans}) or from ${MIN_RATE_MIBPS} to ${MAX_RATE_MIBPS} MiB/s, not ${n}`);
  }
  return n;
}

/**
 * A token bucket shared by every caller that holds it: bytes accrue at `rateMiBps` up to
 * `burstBytes`. `take(n)` spends n at once, going into debt if need be, and sleeps until the debt
 * is paid. Spending first makes concurrent callers queue fairly (each waits for the debt in front
 * of it, as golang.org/x/time/rate's reservations do) without a loop that re-checks, and lets a
 * single take be larger than the burst.
 */
export class RateLimiter {
  readonly bytesPerSec: number;
  private readonly burstBytes: number;
  private readonly clock: Clock;
  private tokens: number;
  private lastMs: number;

  /**
   * `burstBytes` trades smoothness for fewer sleeps: what may pass at full speed after an idle
   * spell. The default, a tenth of a second's worth, keeps a background reader's spikes short.
   */
  constructor(rateMiBps: number, opts: { burstBytes?: number; clock?: Clock } = {}) {
    if (!Number.isFinite(rateMiBps) || rateMiBps <= 0) throw new DfsError('INVALID_ARGUMENT', `a rate limit must be a positive number of MiB/s, not ${rateMiBps}`);
    this.bytesPerSec = rateMiBps * MiB;
    this.burstBytes = opts.burstBytes ?? this.bytesPerSec / 10;
    this.clock = opts.clock ?? systemClock;
    this.tokens = this.burstBytes;
    this.lastMs = this.clock.nowMs();
  }

  /** Waits until `bytes` may pass. An abort rejects at once; the bytes stay spent. */
  async take(bytes: number, signal?: AbortSignal): Promise<void> {
    signal?.throwIfAborted();
    const now = this.clock.nowMs();
    this.tokens = Math.min(this.burstBytes, this.tokens + ((now - this.lastMs) * this.bytesPerSec) / 1000);
    this.lastMs = now;
    this.tokens -= bytes;
    if (this.tokens >= 0) return;
    await this.clock.sleep((-this.tokens * 1000) / this.bytesPerSec, signal);
  }
}
