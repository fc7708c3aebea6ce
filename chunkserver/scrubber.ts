import { CHUNKSERVER_DEFAULTS } from '../common/defaults.js';
import { readFile, stat } from 'node:fs/promises';
import { Counter, Gauge, type Registry as MetricsRegistry } from 'prom-client';
import { writeFileDurably } from '../common/durable-file.js';
import { toDfsError } from '../common/errors.js';
import type { Logger } from '../common/log.js';
import { RateLimiter, systemClock, type Clock } from '../common/rate.js';
import type { ChunkStore, StoredChunk } from './store/index.js';

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
  /**
   * Where the scrubber keeps its place (the next handle of the pass under way), so a restart
   * resumes the pass instead of starting over, and verifies first the chunks written since it
   * last wrote the file. Without it, each start begins a full pass.
   */
  stateFile?: string;
}

/** The rate and interval of common/defaults.ts (CHUNKSERVER_DEFAULTS), which says what they trade. */
export const SCRUB_DEFAULTS: ScrubberOptions = { rateMiBps: CHUNKSERVER_DEFAULTS.scrubRateMiBps, intervalMs: CHUNKSERVER_DEFAULTS.scrubIntervalMs };

/** Progress is written at most this often while a pass runs: a restart re-reads at most this much. */
export const SCRUB_STATE_SAVE_INTERVAL_MS = 5_000;
/** The state file is a few bytes; anything larger is not ours and is ignored. */
const MAX_STATE_FILE_BYTES = 4096;

interface ScrubState { version: 1; nextHandle: number }

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
    let resume = await this.loadState();
    if (resume) {
      try {
        await this.verifyWrittenSince(resume.savedAtMs);
      } catch (err) {
        if (signal.aborted) return;
        this.log.warn({ err: toDfsError(err).message }, 'scrubber could not check the chunks written since its last run first; the pass covers them');
      }
    }
    while (!signal.aborted) {
      const startedMs = this.clock.nowMs();
      try {
        await this.runPass(resume?.nextHandle ?? 0);
        resume = undefined;
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
   * One pass over the chunks stored now, from `fromHandle` on (a pass resumed after a restart);
   * rejects only when closed (or on an unexpected error). start() calls it; tests call it
   * directly instead of start(), never both at once.
   */
  async runPass(fromHandle = 0): Promise<ScrubPass> {
    const signal = this.stop.signal;
    const startedMs = this.clock.nowMs();
    const pass: ScrubPass = { verified: 0, bytesVerified: 0, corrupt: 0, skipped: 0, elapsedMs: 0 };
    const todo = this.store.list().map((c) => c.handle).filter((h) => h >= fromHandle).sort((a, b) => a - b);
    this.metrics.remaining.set(todo.length);
    let savedMs = this.clock.nowMs();
    for (const handle of todo) {
      signal.throwIfAborted();
      const outcome = await this.verify(handle, pass);
      pass[outcome]++;
      this.metrics.remaining.dec();
      if (this.clock.nowMs() - savedMs >= SCRUB_STATE_SAVE_INTERVAL_MS) {
        await this.saveState(handle + 1);
        savedMs = this.clock.nowMs();
      }
    }
    // The next pass starts from the beginning; chunks written from now on are "new" after a restart.
    await this.saveState(0);
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

  /**
   * After a restart, the chunks written (or replaced) since the state file was last written
   * have never been verified by this scrubber: check them before resuming the pass, since a
   * crash is when a bad write is likeliest. Their file times say which they are.
   */
  private async verifyWrittenSince(savedAtMs: number): Promise<void> {
    const fresh: number[] = [];
    for (const { handle } of this.store.list()) {
      this.stop.signal.throwIfAborted();
      const modifiedMs = await stat(this.store.pathOf(handle)).then((s) => s.mtimeMs, () => undefined);
      // A file time is as coarse as the file system's; a tie counts as new.
      if (modifiedMs !== undefined && modifiedMs >= savedAtMs) fresh.push(handle);
    }
    if (fresh.length === 0) return;
    fresh.sort((a, b) => a - b);
    this.log.info({ chunks: fresh.length }, 'scrubber: verifying the chunks written since its last run first');
    const pass: ScrubPass = { verified: 0, bytesVerified: 0, corrupt: 0, skipped: 0, elapsedMs: 0 };
    for (const handle of fresh) {
      this.stop.signal.throwIfAborted();
      pass[await this.verify(handle, pass)]++;
    }
    this.log.info(pass, 'scrubber: chunks written since its last run verified');
  }

  /** The saved place and when it was saved (the file's own time, on the chunks' clock), if any. */
  private async loadState(): Promise<{ nextHandle: number; savedAtMs: number } | undefined> {
    const file = this.opts.stateFile;
    if (!file) return undefined;
    try {
      const info = await stat(file);
      if (info.size > MAX_STATE_FILE_BYTES) throw new Error(`${info.size} bytes`);
      const s = JSON.parse(await readFile(file, 'utf8')) as Partial<ScrubState>;
      if (s.version !== 1 || !Number.isSafeInteger(s.nextHandle) || s.nextHandle! < 0) throw new Error('unknown format');
      return { nextHandle: s.nextHandle!, savedAtMs: info.mtimeMs };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') this.log.warn({ file, err: (err as Error).message }, 'scrubber state unreadable; starting a full pass');
      return undefined;
    }
  }

  /** Replaced whole (common/durable-file.ts): the state is the old one or the new one, never a torn one. */
  private async saveState(nextHandle: number): Promise<void> {
    const file = this.opts.stateFile;
    if (!file) return;
    const state: ScrubState = { version: 1, nextHandle };
    try {
      await writeFileDurably(file, JSON.stringify(state) + '\n');
    } catch (err) {
      // Losing the place costs a re-read, not data: say so and go on.
      this.log.warn({ file, err: (err as Error).message }, 'scrubber could not save its place');
    }
  }

  private isStill(chunk: StoredChunk): boolean {
    return this.store.get(chunk.handle) === chunk;
  }
}
