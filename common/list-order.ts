// The order a paged directory listing comes in, and the page itself: a directory's children by
// the UTF-8 bytes of their names, a directory's name followed by '/'. That is the order full
// paths sort in (`a-b` < `a/x` < `a0`), so a walk that opens a directory where its `name/` falls
// yields a namespace in path order, as S3 lists keys; and a page starts after a name without the
// directory being sorted whole.

/** Compares two strings by their UTF-8 bytes (code point order), without encoding them. */
export function compareUtf8(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    let x = a.charCodeAt(i);
    let y = b.charCodeAt(i);
    if (x === y) continue;
    // UTF-16 puts code points past U+FFFF (surrogates, D800-DFFF) below E000-FFFF; UTF-8 above.
    if (x >= 0xd800 && y >= 0xd800) {
      x = x < 0xe000 ? x + 0x2000 : x - 0x800;
      y = y < 0xe000 ? y + 0x2000 : y - 0x800;
    }
    return x - y;
  }
  return a.length - b.length;
}

/** A child's place in path order: its name, and a directory's followed by '/'. */
export function pathOrderKey(name: string, isDir: boolean): string {
  return isDir ? `${name}/` : name;
}

/**
 * The `limit` smallest items (by `keyOf`, in path order) whose keys sort after `after`, sorted;
 * `more` when others after them were left out. One pass with a bounded heap: O(n log limit)
 * time, `limit` items held, however large the input.
 */
export function selectPage<T>(items: Iterable<T>, keyOf: (t: T) => string, after: string | undefined, limit: number): { page: T[]; more: boolean } {
  if (!(Number.isInteger(limit) && limit >= 1)) throw new Error(`selectPage: limit ${limit} is not a positive integer`);
  // A max-heap: the largest key kept is at the top, the first to go when a smaller one comes.
  const heap: { key: string; item: T }[] = [];
  let more = false;
  for (const item of items) {
    const key = keyOf(item);
    if (after !== undefined && compareUtf8(key, after) <= 0) continue;
    if (heap.length < limit) {
      heap.push({ key, item });
      siftUp(heap, heap.length - 1);
      continue;
    }
    more = true;
    if (compareUtf8(key, heap[0]!.key) < 0) {
      heap[0] = { key, item };
      siftDown(heap, 0);
    }
  }
  heap.sort((a, b) => compareUtf8(a.key, b.key));
  return { page: heap.map((e) => e.item), more };
}

function siftUp(heap: { key: string }[], i: number): void {
  while (i > 0) {
    const parent = (i - 1) >> 1;
    if (compareUtf8(heap[i]!.key, heap[parent]!.key) <= 0) return;
    [heap[i], heap[parent]] = [heap[parent]!, heap[i]!];
    i = parent;
  }
}

function siftDown(heap: { key: string }[], i: number): void {
  for (;;) {
    const l = 2 * i + 1;
    const r = l + 1;
    let top = i;
    if (l < heap.length && compareUtf8(heap[l]!.key, heap[top]!.key) > 0) top = l;
    if (r < heap.length && compareUtf8(heap[r]!.key, heap[top]!.key) > 0) top = r;
    if (top === i) return;
    [heap[i], heap[top]] = [heap[top]!, heap[i]!];
    i = top;
  }
}

/** The index of the first of `sorted` (keys in path order) that sorts after `after`; 0 when `after` is undefined. O(log n). */
export function firstAfter(sorted: readonly string[], after: string | undefined): number {
  if (after === undefined) return 0;
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (compareUtf8(sorted[mid]!, after) <= 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * Keys kept in path order as they come and go, for pages read from anywhere in O(log n + page):
 * an insert or a removal is a binary search and one move of the keys after it (a memmove).
 */
export class PathOrderIndex {
  private readonly keys: string[];

  constructor(keys: Iterable<string>) {
    this.keys = [...keys].sort(compareUtf8);
  }

  get size(): number {
    return this.keys.length;
  }

  add(key: string): void {
    const i = firstAfter(this.keys, key);
    if (i > 0 && this.keys[i - 1] === key) return;
    this.keys.splice(i, 0, key);
  }

  remove(key: string): void {
    const i = firstAfter(this.keys, key) - 1;
    if (i >= 0 && this.keys[i] === key) this.keys.splice(i, 1);
  }

  /** At most `limit` keys after `after`, in order; `more` when others follow them. */
  page(after: string | undefined, limit: number): { keys: string[]; more: boolean } {
    if (!(Number.isInteger(limit) && limit >= 1)) throw new Error(`PathOrderIndex.page: limit ${limit} is not a positive integer`);
    const start = firstAfter(this.keys, after);
    return { keys: this.keys.slice(start, start + limit), more: start + limit < this.keys.length };
  }
}
