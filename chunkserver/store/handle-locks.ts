/**
 * Shared and exclusive locks, one per chunk handle, granted in the order asked (a waiting
 * exclusive one holds back later shared ones, so a stream of reads cannot starve it). Reading a
 * chunk file's trailer is shared; rewriting the file's tail in place (an append, chunk-store.ts)
 * and replacing or removing the file are exclusive. Held for a few disk operations at most.
 */
export class HandleLocks {
  private readonly entries = new Map<number, Entry>();

  /** Runs `fn` holding `handle`'s lock, shared with other shared holders. */
  shared<T>(handle: number, fn: () => Promise<T>): Promise<T> {
    return this.run(handle, false, fn);
  }

  /** Runs `fn` holding `handle`'s lock alone. */
  exclusive<T>(handle: number, fn: () => Promise<T>): Promise<T> {
    return this.run(handle, true, fn);
  }

  /** Handles with a lock held or asked for (tests check that none is left behind). */
  get size(): number {
    return this.entries.size;
  }

  private async run<T>(handle: number, exclusive: boolean, fn: () => Promise<T>): Promise<T> {
    await this.acquire(handle, exclusive);
    try {
      return await fn();
    } finally {
      this.release(handle, exclusive);
    }
  }

  private acquire(handle: number, exclusive: boolean): Promise<void> {
    let e = this.entries.get(handle);
    if (!e) {
      e = { readers: 0, writer: false, queue: [] };
      this.entries.set(handle, e);
    }
    const free = e.queue.length === 0 && !e.writer && (!exclusive || e.readers === 0);
    if (free) {
      take(e, exclusive);
      return Promise.resolve();
    }
    const entry = e;
    return new Promise((grant) => entry.queue.push({ exclusive, grant }));
  }

  private release(handle: number, exclusive: boolean): void {
    const e = this.entries.get(handle)!;
    if (exclusive) e.writer = false;
    else e.readers--;
    while (e.queue.length > 0 && !e.writer) {
      const next = e.queue[0]!;
      if (next.exclusive && e.readers > 0) break;
      e.queue.shift();
      take(e, next.exclusive);
      next.grant();
    }
    if (e.readers === 0 && !e.writer && e.queue.length === 0) this.entries.delete(handle);
  }
}

interface Waiter { exclusive: boolean; grant: () => void }
interface Entry { readers: number; writer: boolean; queue: Waiter[] }

function take(e: Entry, exclusive: boolean): void {
  if (exclusive) e.writer = true;
  else e.readers++;
}
