// Timing and summary helpers shared by the benchmarks (scripts/bench.ts, scripts/metabench.ts).

/** The value below which `p` percent of `sorted` (ascending) lie; nearest rank. */
export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) throw new Error('percentile of no samples');
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/** Median, min and max of repeated runs: the median is what we compare, min and max show the noise. */
export interface Summary { median: number; min: number; max: number; runs: number[] }

export function summarize(runs: number[]): Summary {
  if (runs.length === 0) throw new Error('summary of no runs');
  const sorted = [...runs].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  const median = sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
  return { median, min: sorted[0]!, max: sorted.at(-1)!, runs };
}

/** One batch of operations: rate and latency percentiles. */
export interface OpsPhase { ops: number; inflight: number; elapsedMs: number; opsPerSec: number; p50Ms: number; p99Ms: number; maxMs: number }

/**
 * Runs `op(0..ops-1)` with `inflight` of them outstanding at any time, each op timed on its own.
 * A failing op fails the phase: a benchmark that hides errors measures the wrong thing.
 */
export async function timeOps(ops: number, inflight: number, op: (i: number) => Promise<unknown>): Promise<OpsPhase> {
  const latenciesMs: number[] = [];
  let next = 0;
  const start = performance.now();
  await Promise.all(Array.from({ length: Math.min(inflight, ops) }, async () => {
    while (next < ops) {
      const i = next++;
      const t0 = performance.now();
      await op(i);
      latenciesMs.push(performance.now() - t0);
    }
  }));
  const elapsedMs = performance.now() - start;
  latenciesMs.sort((a, b) => a - b);
  return {
    ops, inflight, elapsedMs, opsPerSec: ops / (elapsedMs / 1000),
    p50Ms: percentile(latenciesMs, 50), p99Ms: percentile(latenciesMs, 99), maxMs: latenciesMs.at(-1)!,
  };
}

export interface FailoverGap {
  /** kill -9 of the leader to the first operation acknowledged after it. */
  gapMs: number;
  /** The longest any one operation took around the kill (the client waits for a new leader by itself). */
  longestOpMs: number;
}

/**
 * A sequential stream of operations with `kill` called before operation `killAt`; the gap is
 * how long the stream stood still as a client sees it.
 */
export async function measureFailoverGap(op: (i: number) => Promise<unknown>, kill: () => void | Promise<void>, killAt = 100, total = 400): Promise<FailoverGap> {
  let killedAt = 0;
  let firstAfter = 0;
  let longestOpMs = 0;
  for (let i = 0; i < total; i++) {
    if (i === killAt) {
      await kill();
      killedAt = performance.now();
    }
    const t0 = performance.now();
    await op(i);
    const t1 = performance.now();
    longestOpMs = Math.max(longestOpMs, t1 - t0);
    if (killedAt && !firstAfter) firstAfter = t1;
  }
  return { gapMs: firstAfter - killedAt, longestOpMs };
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export const MiB = 1024 * 1024;

export function mibPerSec(bytes: number, elapsedMs: number): number {
  return bytes / MiB / (elapsedMs / 1000);
}
