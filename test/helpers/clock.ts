import type { Clock } from '../../common/rate.js';

interface Sleeper { untilMs: number; resolve: () => void }

/**
 * A clock that moves only when told: `advance(ms)` wakes the sleepers it passes. With
 * `autoAdvance`, a sleep moves the clock by its own length and returns at once, so code that
 * sleeps between batches runs to the end while the test still sees every sleep it asked for.
 */
export class FakeClock implements Clock {
  now = 0;
  /** Every sleep asked for, in ms, in order. */
  readonly sleeps: number[] = [];
  /** Runs at each sleep (1 for the first) before it starts: a test's hook into a running loop. */
  onSleep?: (n: number) => void | Promise<void>;
  private sleepers: Sleeper[] = [];
  private waitingForSleep: (() => void)[] = [];

  constructor(private readonly autoAdvance = false) {}

  nowMs(): number {
    return this.now;
  }

  /** Records the sleep and, without a hook, registers it before returning: no microtask gap. */
  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    this.sleeps.push(ms);
    const hook = this.onSleep?.(this.sleeps.length);
    return hook ? Promise.resolve(hook).then(() => this.wait(ms, signal)) : this.wait(ms, signal);
  }

  private wait(ms: number, signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    if (this.autoAdvance) {
      this.now += ms;
      return Promise.resolve();
    }
    return new Promise<void>((resolve, reject) => {
      const sleeper: Sleeper = { untilMs: this.now + ms, resolve };
      this.sleepers.push(sleeper);
      signal?.addEventListener('abort', () => {
        this.sleepers = this.sleepers.filter((s) => s !== sleeper);
        reject(signal.reason);
      }, { once: true });
      for (const w of this.waitingForSleep.splice(0)) w();
    });
  }

  /** Sleepers not yet woken. */
  get pending(): number {
    return this.sleepers.length;
  }

  /** Resolves once some sleep is pending (at once if one is). */
  async untilSleeping(): Promise<void> {
    if (this.sleepers.length === 0) await new Promise<void>((r) => this.waitingForSleep.push(r));
  }

  advance(ms: number): void {
    this.now += ms;
    const due = this.sleepers.filter((s) => s.untilMs <= this.now);
    this.sleepers = this.sleepers.filter((s) => s.untilMs > this.now);
    for (const s of due) s.resolve();
  }
}
