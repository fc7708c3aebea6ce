// A scan's pause points: units of work counted between them, and a sort that pauses.

/** Units of work (files walked, chunks checked, candidates sorted) between a scan's pause points. */
export const SCAN_STEP = 256;

/** Counts units of work; every `step`th is a point where a sliced scan may pause. */
export class Work {
  private n = 0;
  constructor(readonly step: number) {}

  due(): boolean {
    return ++this.n % this.step === 0;
  }
}

/**
 * `items` sorted by `cmp` (a total order) in bounded steps: runs of `step` items are sorted,
 * then merged pairwise, with a pause point every `step` items placed. Sorting hundreds of
 * thousands of candidates at once (a server died) would stall the loop for a long while.
 */
export function* sortInSteps<T>(items: T[], cmp: (a: T, b: T) => number, step: number): Generator<void, T[]> {
  const n = items.length;
  let from = items;
  for (let lo = 0; lo < n; lo += step) {
    const run = from.slice(lo, lo + step).sort(cmp);
    for (let i = 0; i < run.length; i++) from[lo + i] = run[i]!;
    yield;
  }
  let to = new Array<T>(n);
  for (let width = step; width < n; width *= 2) {
    let placed = 0;
    for (let lo = 0; lo < n; lo += 2 * width) {
      const mid = Math.min(lo + width, n);
      const hi = Math.min(lo + 2 * width, n);
      let i = lo, j = mid;
      for (let k = lo; k < hi; k++) {
        to[k] = i < mid && (j >= hi || cmp(from[i]!, from[j]!) <= 0) ? from[i++]! : from[j++]!;
        if (++placed % step === 0) yield;
      }
    }
    [from, to] = [to, from];
  }
  return from;
}
