// The one clock interface of the project. Deterministic cores (master/raft/core.ts,
// master/leader/core.ts) never read a clock: their drivers read this one and pass the time in,
// so a test or a simulator drives them with a clock of its own.

export interface Clock {
  /** Wall-clock milliseconds since the epoch: what timeouts, leases and grace periods are measured on. */
  nowMs(): number;
}

/** The machine's clock: for drivers only. */
export const systemClock: Clock = { nowMs: () => Date.now() };

/** A clock a test moves by hand. */
export class ManualClock implements Clock {
  constructor(private ms = 0) {}

  nowMs(): number {
    return this.ms;
  }

  advance(ms: number): void {
    if (ms < 0) throw new Error('a clock does not go back');
    this.ms += ms;
  }
}
