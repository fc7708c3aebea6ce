// Corrupt-replica memory: which servers reported a chunk's replica corrupt, until it is healthy again.

/** Servers remembered per chunk: enough to tell CORRUPT from MISSING, bounded. */
const MAX_REPORTERS = 64;

export class CorruptReplicas {
  /** handle → servers that reported a replica corrupt (dropped there), until the chunk is healthy again. */
  private readonly reports = new Map<number, Set<string>>();

  add(serverId: string, handle: number): void {
    let set = this.reports.get(handle);
    if (!set) this.reports.set(handle, (set = new Set()));
    if (set.size < MAX_REPORTERS) set.add(serverId);
  }

  /** Servers that reported `handle` corrupt since it was last healthy. */
  count(handle: number): number {
    return this.reports.get(handle)?.size ?? 0;
  }

  /** The chunk is healthy again (or gone): its corrupt reports are history. */
  delete(handle: number): void {
    this.reports.delete(handle);
  }

  /** How many chunks have corrupt reports outstanding. */
  get size(): number {
    return this.reports.size;
  }

  handles(): number[] {
    return [...this.reports.keys()];
  }

  clear(): void {
    this.reports.clear();
  }
}
