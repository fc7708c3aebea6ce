// The rack rule, as pure functions: where replicas of one chunk may be (HDFS's default policy),
// which chunks break it ("misplaced"), which replica to trim or move so that it holds, and how
// much of the cluster can be lost right now without losing data. No I/O, no clock: the registry,
// repair and the reports call these with what they know.
import type { ClusterTolerance } from '../common/protocol.js';

/** Replicas with their racks, as the callers hold them. */
export interface RackedReplica { id: string; rack: string }

/**
 * The most replicas of a chunk one rack may hold: floor((r − 1) / racks) + 1, HDFS's rule. With
 * two or more racks and r ≥ 2 it is below r, so a chunk always spans at least two racks.
 */
export function maxPerRack(replication: number, racks: number): number {
  if (racks < 2) return Math.max(replication, 1);
  return Math.floor((Math.max(replication, 1) - 1) / racks) + 1;
}

export function countByRack(racks: Iterable<string>): Map<string, number> {
  const counts = new Map<string, number>();
  for (const r of racks) counts.set(r, (counts.get(r) ?? 0) + 1);
  return counts;
}

/**
 * Whether a chunk's replicas, on `replicaRacks`, break the rule and a move could mend it: some
 * rack holds more than its share while another rack has a server to spare below its share.
 * `rackSizes` is the live servers (not draining) per rack. A rule no placement can meet (one
 * small rack, the others full) is not called misplaced: nothing could fix it.
 */
export function isMisplaced(replicaRacks: readonly string[], replication: number, rackSizes: ReadonlyMap<string, number>): boolean {
  if (rackSizes.size < 2 || replicaRacks.length < 2) return false;
  const cap = maxPerRack(replication, rackSizes.size);
  const counts = countByRack(replicaRacks);
  let over = false;
  for (const n of counts.values()) if (n > cap) over = true;
  if (!over) return false;
  for (const [rack, size] of rackSizes) if ((counts.get(rack) ?? 0) < Math.min(cap, size)) return true;
  return false;
}

/**
 * The replicas that may go without weakening the spread: those in the racks holding the most
 * of the chunk. Trimming a surplus replica, or moving one out of an overfull rack, takes one of
 * these, so a chunk never drops out of a rack it is alone in while another holds two.
 */
export function inFullestRacks<T extends RackedReplica>(replicas: readonly T[]): T[] {
  const counts = countByRack(replicas.map((r) => r.rack));
  let most = 0;
  for (const n of counts.values()) most = Math.max(most, n);
  return replicas.filter((r) => counts.get(r.rack) === most);
}

/**
 * Whether moving the replica on a server of `fromRack` to a server of `toRack` keeps the rule
 * (balancing within a rack always does; across racks the result must not be misplaced).
 */
export function moveKeepsRule(replicaRacks: readonly string[], fromRack: string, toRack: string, replication: number, rackSizes: ReadonlyMap<string, number>): boolean {
  if (fromRack === toRack) return true;
  const after = [...replicaRacks];
  const i = after.indexOf(fromRack);
  if (i >= 0) after.splice(i, 1);
  after.push(toRack);
  return !isMisplaced(after, replication, rackSizes);
}

/**
 * Adds up failure tolerance over chunks, one `add` per chunk with the racks of its live
 * replicas. Chunks with no live replica are lost already and do not count (fsck and status
 * report them as missing).
 */
export class ToleranceCounter {
  private fewest = Number.POSITIVE_INFINITY;
  private readonly onlyIn = new Map<string, number>();

  add(replicaRacks: readonly string[]): void {
    if (replicaRacks.length === 0) return;
    this.fewest = Math.min(this.fewest, replicaRacks.length);
    const first = replicaRacks[0]!;
    if (replicaRacks.every((r) => r === first)) this.onlyIn.set(first, (this.onlyIn.get(first) ?? 0) + 1);
  }

  /** The tolerance over the chunks added, for a cluster whose live servers are in `racks`. */
  result(racks: Iterable<string>): ClusterTolerance {
    const all = [...new Set([...racks, ...this.onlyIn.keys()])].sort();
    return {
      servers: this.fewest === Number.POSITIVE_INFINITY ? null : this.fewest - 1,
      racksSafe: all.filter((r) => !this.onlyIn.has(r)),
      racksAtRisk: all.filter((r) => this.onlyIn.has(r)).map((rack) => ({ rack, chunks: this.onlyIn.get(rack)! })),
    };
  }
}

/** A chunk that breaks the rule, as repair found it (its good replicas number its replication). */
export interface MisplacedChunk { handle: number; replication: number; chunkSizeBytes: number }

/** What fixing misplaced chunks needs from repair: its view now, its limits, and its order. */
export interface RackFixContext {
  /** Good live replicas of the chunk now (none if it changed since it was found: gone, re-versioned, busy). */
  replicas(handle: number): RackedReplica[];
  /** Whether another move may start now (moves and copies in flight are within limits). */
  canStart(): boolean;
  /** Whether a server has a copy slot free. */
  free(id: string): boolean;
  /** A server for a new replica whose rack keeps the rule with `holders`, never breaking it; undefined if none. */
  place(chunk: MisplacedChunk, holders: RackedReplica[], exclude: string[]): string | undefined;
  /** Orders the copy from `source` to `target`; the replica on `source` is deleted once the copy is confirmed. */
  order(handle: number, source: string, target: string): void;
}

/**
 * Orders one move per misplaced chunk, while limits allow: copy a replica from the fullest rack
 * to a server of a rack below its share, and delete it there only after the copy is confirmed
 * (repair's moves do that), so the chunk never has fewer replicas than its replication.
 * Returns how many moves were ordered.
 */
export function planRackFixes(chunks: readonly MisplacedChunk[], ctx: RackFixContext): number {
  let ordered = 0;
  for (const c of chunks) {
    if (!ctx.canStart()) break;
    const replicas = ctx.replicas(c.handle);
    // Short of its replication now (a server died since): repair's copies come first, and place by the rule.
    if (replicas.length !== c.replication) continue;
    const source = inFullestRacks(replicas).find((r) => ctx.free(r.id));
    if (!source) continue;
    const staying = replicas.filter((r) => r.id !== source.id);
    const target = ctx.place(c, staying, replicas.map((r) => r.id));
    if (target === undefined) continue;
    ctx.order(c.handle, source.id, target);
    ordered++;
  }
  return ordered;
}
