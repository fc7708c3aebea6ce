// Runs a repair scan (a generator of pause points, from the deterministic core) in slices of a
// few milliseconds of real time, letting the event loop in between: this is driver code, the one
// place the scan meets a clock and the event loop.
import type { MasterState } from '../state/index.js';
import { SCAN_STEP, type RepairScan, type RepairScheduler } from '../repair/index.js';

/** How a scan shares the event loop. */
export interface SliceOptions {
  /** The longest the scan runs before it lets other work in. */
  sliceMs?: number;
  /** Units of work (files walked, chunks checked, candidates sorted) between looks at the clock. */
  step?: number;
  now?: () => number;
  /** Lets other work run; the next slice starts when it resolves. */
  pause?: () => Promise<void>;
  /** Asked whenever the scan resumes: false ends it there, ordering nothing more (leadership lost). */
  proceed?: () => boolean;
}

/** A few milliseconds a slice: Raft ticks every 100 ms, and clients should not notice a scan. */
const SLICE_DEFAULTS = { sliceMs: 5, step: SCAN_STEP };

const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/**
 * Drives `steps` to its end, pausing whenever about `sliceMs` of work has passed. Returns what
 * the steps return. A scan abandoned by its own checks returns undefined from the generator.
 */
export async function runInSlices<T>(steps: Generator<void, T>, opts: Pick<SliceOptions, 'sliceMs' | 'now' | 'pause'> = {}): Promise<T> {
  const sliceMs = opts.sliceMs ?? SLICE_DEFAULTS.sliceMs;
  const now = opts.now ?? (() => performance.now());
  const pause = opts.pause ?? nextTurn;
  try {
    let sliceStart = now();
    for (;;) {
      const r = steps.next();
      if (r.done) return r.value;
      if (now() - sliceStart < sliceMs) continue;
      await pause();
      sliceStart = now();
    }
  } finally {
    // An error (or a pause that threw) leaves the generator suspended: end it, so its own
    // cleanup (the scheduler's one-scan-at-a-time flag) runs.
    steps.return(undefined as T);
  }
}

/**
 * One repair scan in slices of about `sliceMs` each: at a million files a scan takes seconds,
 * and the leader must go on answering meanwhile. Undefined when it ended early (the state was
 * replaced, `proceed` said no) or another scan was running. See RepairScheduler.scanSteps.
 */
export function scanInSlices(repair: RepairScheduler, getState: () => MasterState, opts: SliceOptions = {}): Promise<RepairScan | undefined> {
  return runInSlices(repair.scanSteps(getState, { step: opts.step, proceed: opts.proceed }), opts);
}
