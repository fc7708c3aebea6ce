// Pure decisions about where replicas go and which servers are alive; no I/O here.

export interface Candidate {
  id: string;
  freeBytes: number;
  capacityBytes: number;
  activeWrites: number;
  /** Chunks allocated to it since its last heartbeat: free space the heartbeat does not show yet. */
  pendingAllocations: number;
}

/**
 * Picks up to `count` distinct servers for a new chunk, preferring free space and little load.
 * A small random jitter spreads equally good choices so that concurrent writers do not all
 * land on the same three servers between heartbeats.
 */
export function chooseReplicas(candidates: Candidate[], count: number, chunkSizeBytes: number, random: () => number): string[] {
  const scored = candidates
    .filter((c) => c.freeBytes - c.pendingAllocations * chunkSizeBytes >= chunkSizeBytes)
    .map((c) => {
      const free = c.freeBytes - c.pendingAllocations * chunkSizeBytes;
      const freeRatio = c.capacityBytes > 0 ? free / c.capacityBytes : 0;
      // Each write in flight counts like 5 % less free space; the jitter is worth up to 2 %.
      const score = freeRatio - 0.05 * (c.activeWrites + c.pendingAllocations) + 0.02 * random();
      return { id: c.id, score };
    })
    .sort((a, b) => b.score - a.score || (a.id < b.id ? -1 : 1));
  return scored.slice(0, count).map((s) => s.id);
}

/** Orders replicas for a reader: rotate by a per-call offset so readers spread across copies. */
export function orderForRead<T>(replicas: T[], spread: number): T[] {
  if (replicas.length === 0) return replicas;
  const k = ((spread % replicas.length) + replicas.length) % replicas.length;
  return [...replicas.slice(k), ...replicas.slice(0, k)];
}
