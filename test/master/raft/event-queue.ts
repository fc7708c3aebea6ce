// The simulator's event queue: a binary heap ordered by (virtual time, insertion order), so events at
// the same time run in the order they were scheduled and a seed replays exactly.

export class EventQueue {
  private heap: { time: number; seq: number; run: () => void }[] = [];
  private seq = 0;

  push(time: number, run: () => void): void {
    const item = { time, seq: this.seq++, run };
    const h = this.heap;
    h.push(item);
    let i = h.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (less(h[parent]!, item)) break;
      h[i] = h[parent]!;
      i = parent;
    }
    h[i] = item;
  }

  pop(): { time: number; run: () => void } | undefined {
    const h = this.heap;
    const top = h[0];
    const last = h.pop();
    if (top === undefined || last === undefined || h.length === 0) return top;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      let best = last;
      if (l < h.length && less(h[l]!, best)) {
        m = l;
        best = h[l]!;
      }
      if (r < h.length && less(h[r]!, best)) m = r;
      if (m === i) break;
      h[i] = h[m]!;
      i = m;
    }
    h[i] = last;
    return top;
  }
}

function less(a: { time: number; seq: number }, b: { time: number; seq: number }): boolean {
  return a.time < b.time || (a.time === b.time && a.seq < b.seq);
}

