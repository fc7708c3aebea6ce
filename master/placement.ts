// Pure decisions about where replicas go and which servers are alive; no I/O here.
import { DEFAULT_RACK } from '../common/racks.js';
import { countByRack, maxPerRack } from './racks.js';

export interface Candidate {
  id: string;
  freeBytes: number;
  capacityBytes: number;
  activeWrites: number;
  /** Chunks allocated to it since its last heartbeat: free space the heartbeat does not show yet. */
  pendingAllocations: number;
  /** Its failure domain (DEFAULT_RACK when absent). */
  rack?: string;
}

/** Where a chunk's replicas already are and where its writer is: what the rack rule places by. */
export interface RackPlan {
  /** Racks of the replicas that stay (repair: the good replicas and copies under way). */
  holderRacks?: readonly string[];
  /** The writer's rack: the first replica goes to a server there when one can take it. */
  writerRack?: string;
  /** The chunk's replication, for the per-rack share; default: `count` plus the holders. */
  replication?: number;
  /** Never exceed a rack's share, picking fewer servers instead (a move that mends a misplaced chunk is pointless otherwise). */
  strict?: boolean;
}

/**
 * Picks up to `count` distinct servers for a chunk, preferring free space and little load. A
 * small random jitter spreads equally good choices so that concurrent writers do not all land on
 * the same three servers between heartbeats. With servers in two or more racks, no rack gets
 * more than its share of the chunk (maxPerRack, HDFS's rule: so a chunk spans two racks at
 * least), the writer's rack first; when the shares leave too few servers (a small rack full),
 * the rest go wherever there is room unless `plan.strict`: the replicas matter more than
 * their spread, and repair mends the spread later.
 */
export function chooseReplicas(candidates: Candidate[], count: number, chunkSizeBytes: number, random: () => number, plan: RackPlan = {}): string[] {
  const scored = candidates
    .filter((c) => c.freeBytes - c.pendingAllocations * chunkSizeBytes >= chunkSizeBytes)
    .map((c) => {
      const free = c.freeBytes - c.pendingAllocations * chunkSizeBytes;
      const freeRatio = c.capacityBytes > 0 ? free / c.capacityBytes : 0;
      // Each write in flight counts like 5 % less free space; the jitter is worth up to 2 %.
      const score = freeRatio - 0.05 * (c.activeWrites + c.pendingAllocations) + 0.02 * random();
      return { id: c.id, rack: c.rack ?? DEFAULT_RACK, score };
    })
    .sort((a, b) => b.score - a.score || (a.id < b.id ? -1 : 1));
  const holders = plan.holderRacks ?? [];
  const racks = new Set([...holders, ...scored.map((s) => s.rack)]).size;
  const share = maxPerRack(plan.replication ?? count + holders.length, racks);
  const inRack = countByRack(holders);
  const picked: typeof scored = [];
  const take = (s: (typeof scored)[number]) => {
    picked.push(s);
    inRack.set(s.rack, (inRack.get(s.rack) ?? 0) + 1);
  };
  const fits = (s: (typeof scored)[number]) => picked.length < count && !picked.includes(s) && (inRack.get(s.rack) ?? 0) < share;
  const local = plan.writerRack === undefined ? undefined : scored.find((s) => s.rack === plan.writerRack && fits(s));
  if (local) take(local);
  for (const s of scored) if (fits(s)) take(s);
  if (!plan.strict) for (const s of scored) if (picked.length < count && !picked.includes(s)) take(s);
  return picked.map((s) => s.id);
}
