import { Counter, Gauge, type Registry as MetricsRegistry } from 'prom-client';
import { toDfsError } from '../common/errors.js';
import type { Logger } from '../common/log.js';
import { RateLimiter, systemClock, type Clock } from '../common/rate.js';
import type { ChunkStore, StoredChunk } from './store.js';

export interface ScrubberOptions {
  /**
   * Bytes verified per second, in MiB. Trades how soon silent damage (bit rot, a bad sector, a
   * stray write) is found against disk time taken from clients and page cache churn.
   */
  rateMiBps: number;
  /**
   * Least time from the start of one full pass to the start of the next: a small store is not
   * re-read over and over; a store too large to verify within it is verified back to back.
   */
  intervalMs: number;
}

export const SCRUB_DEFAULTS: ScrubberOptions = {
  // HDFS's block scanner reads 1 MiB/s per volume and aims to cover every block in three weeks,
  // for DataNodes of many large disks. A dfs chunkserver is one folder on one disk; 16 MiB/s
  // verifies 1 TiB in about 18 hours, is about a tenth of one spinning disk's sequential
  // bandwidth (a small share of an SSD's), and xxHash64 at that rate costs well under 1% of a core.
  rateMiBps: 16,
  // So with up to ~1 TiB per server every replica is checked at least daily, and a small store
  // is read once a day rather than continuously.
  intervalMs: 24 * 60 * 60 * 1000,
};

/** A week: a replica unverified longer than that is a risk, and setTimeout cannot sleep past 24.8 days. */
export const MAX_SCRUB_INTERVAL_MS = 7 * 24 * 60 * 60 * 1000;
/** Passes start at most once a second, so an empty store does not spin. */
export const MIN_SCRUB_INTERVAL_MS = 1000;

export interface ScrubPass {
  /** Replicas read end to end with every block matching its hash. */
  verified: number;
  /** Bytes that passed verification (of a damaged replica: the read batches before the bad block's). */
  bytesVerified: number;
  /** Replicas that failed: quarantined and reported. */
  corrupt: number;
  /** Chunks deleted (or replaced) before or while they were read: neither verified nor reported. */
  skipped: number;
  elapsedMs: number;
}

/**
 * Background verification of every stored replica, so damage is found and repaired while good
 * copies still exist, not when a client finally reads the chunk. Each pass walks the chunks in
 * handle order (a snapshot taken at its start; chunks stored later wait for the next pass) and
 * reads each through the store's verified read, which checks the trailer and every block's
 * hash, at a bounded rate. A replica that fails goes to `onCorrupt`, as a failed client read
 * does: quarantined in corrupt/ and reported to the master, which copies a good one back.
 */
export class Scrubber {
  private readonly limiter: RateLimiter;
  private readonly stop = new AbortController();
  private loop?: Promise<void>;
  private readonly metrics: {
    bytes: Counter; chunks: Counter; corrupt: Counter; passes: Counter; remaining: Gauge; lastPassSeconds: Gauge;
  };

  constructor(
    private readonly store: ChunkStore,
    private readonly opts: ScrubberOptions,
    private readonly onCorrupt: (handle: number, reason: string) => void,
    private readonly log: Logger,
    registry: MetricsRegistry,
    private readonly clock: Clock = systemClock,
  ) {
    this.limiter = new RateLimiter(opts.rateMiBps, { clock });
    const registers = [registry];
    this.metrics = {
      bytes: new Counter({ name: 'dfs_chunkserver_scrub_bytes_total', help: 'chunk bytes verified by the scrubber', registers }),
      chunks: new Counter({ name: 'dfs_chunkserver_scrub_chunks_total', help: 'replicas verified by the scrubber', registers }),
      corrupt: new Counter({ name: 'dfs_chunkserver_scrub_corrupt_total', help: 'replicas the scrubber found damaged and quarantined', registers }),
      passes: new Counter({ name: 'dfs_chunkserver_scrub_passes_total', help: 'full scrub passes finished', registers }),
      remaining: new Gauge({ name: 'dfs_chunkserver_scrub_pass_remaining_chunks', help: 'replicas left to verify in the current pass', registers }),
      lastPassSeconds: new Gauge({ name: 'dfs_chunkserver_scrub_last_pass_seconds', help: 'how long the last full pass took', registers }),
    };
  }

  /** Runs passes until close(): one at once, then one per interval. */
  start(): void {
    this.loop ??= this.run();
  }

  /** Stops at the next batch boundary (a sleep is cut short) and waits for that. */
  async close(): Promise<void> {
    this.stop.abort();
    await this.loop;
  }

  private async run(): Promise<void> {
    const signal = this.stop.signal;
    while (!signal.aborted) {
      const startedMs = this.clock.nowMs();
      try {
        await this.runPass();
        await this.clock.sleep(Math.max(0, startedMs + this.opts.intervalMs - this.clock.nowMs()), signal);
      } catch (err) {
        if (signal.aborted) return;
        // Not a bad replica (those are handled per chunk): e.g. the folder cannot be read.
        // Try again after an interval rather than spinning.
        this.log.error({ err: toDfsError(err).message }, 'scrub pass failed');
        await this.clock.sleep(this.opts.intervalMs, signal).catch(() => undefined);
      }
    }
  }

  /**
   * One full pass over the chunks stored now; rejects only when closed (or on an unexpected
   * error). start() calls it; tests call it directly instead of start(), never both at once.
   */
  async runPass(): Promise<ScrubPass> {
    const signal = this.stop.signal;
    const startedMs = this.clock.nowMs();
    const pass: ScrubPass = { verified: 0, bytesVerified: 0, corrupt: 0, skipped: 0, elapsedMs: 0 };
    const todo = this.store.list().map((c) => c.handle).sort((a, b) => a - b);
    this.metrics.remaining.set(todo.length);
    for (const handle of todo) {
      signal.throwIfAborted();
      const outcome = await this.verify(handle, pass);
      pass[outcome]++;
      this.metrics.remaining.dec();
    }
    pass.elapsedMs = Math.round(this.clock.nowMs() - startedMs);
    this.metrics.passes.inc();
    this.metrics.lastPassSeconds.set(pass.elapsedMs / 1000);
    this.log.info(pass, 'scrub pass done');
    return pass;
  }

  private async verify(handle: number, pass: ScrubPass): Promise<'verified' | 'corrupt' | 'skipped'> {
    const chunk = this.store.get(handle);
    if (!chunk) return 'skipped'; // deleted since the pass began
    try {
      await this.store.readRange(handle, 0, chunk.length, async (bytes) => {
        pass.bytesVerified += bytes.length;
        this.metrics.bytes.inc(bytes.length);
        await this.limiter.take(bytes.length, this.stop.signal);
      });
    } catch (err) {
      if (this.stop.signal.aborted) throw err;
      const e = toDfsError(err, `scrubbing chunk ${handle}`);
      // Deleted (or quarantined by a client read) while we read it: not ours to report. An open
      // file keeps its bytes after an unlink, so this check, not the read, tells us.
      if (!this.isStill(chunk)) return 'skipped';
      if (e.code !== 'CHECKSUM_MISMATCH') {
        this.log.warn({ handle, err: e.message }, 'scrubber could not read a replica; it will try again next pass');
        return 'skipped';
      }
      this.metrics.corrupt.inc();
      this.log.error({ handle, err: e.message }, 'replica failed verification by the scrubber');
      this.onCorrupt(handle, e.message);
      return 'corrupt';
    }
    this.metrics.chunks.inc();
    return 'verified';
  }

  private isStill(chunk: StoredChunk): boolean {
    return this.store.get(chunk.handle) === chunk;
  }
}
