// How status and fsck show racks: servers grouped by rack, the failure tolerance in words, and
// misplaced chunks (replicas not spread over racks as the rule wants).
import type { ChunkserverStatus, ClusterTolerance, FsckReply } from '../common/protocol.js';
import { DEFAULT_RACK } from '../common/racks.js';

/** The servers' lines grouped under a `rack NAME:` heading each, racks in name order; one rack: no headings. */
export function groupByRack(servers: readonly ChunkserverStatus[], line: (c: ChunkserverStatus) => string): string[] {
  const racks = new Map<string, ChunkserverStatus[]>();
  for (const c of servers) {
    const r = c.rack ?? DEFAULT_RACK;
    racks.set(r, [...(racks.get(r) ?? []), c]);
  }
  if (racks.size <= 1) return servers.map(line);
  const out: string[] = [];
  for (const [rack, list] of [...racks].sort(([a], [b]) => (a < b ? -1 : 1))) {
    out.push(`  rack ${rack}: ${list.filter((c) => c.alive).length} live of ${list.length}`);
    for (const c of list) out.push(`  ${line(c)}`);
  }
  return out;
}

/** One line: how many servers, and which racks, can be lost now without losing data. */
export function formatTolerance(t: ClusterTolerance): string {
  if (t.servers === null) return 'failure tolerance: no data stored yet';
  const servers = t.servers === 0 ? 'no server can be lost without losing data' : `any ${t.servers} server${t.servers === 1 ? '' : 's'} can be lost without losing data`;
  const all = t.racksSafe.length + t.racksAtRisk.length;
  let racks: string;
  if (all <= 1) racks = `one live rack${all === 1 ? ` (${[...t.racksSafe, ...t.racksAtRisk.map((r) => r.rack)][0]})` : ''}: losing it loses everything`;
  else if (t.racksAtRisk.length === 0) racks = `any one rack of ${all} can be lost (${t.racksSafe.join(', ')})`;
  else {
    const risk = t.racksAtRisk.map((r) => `${r.rack} holds every replica of ${r.chunks} chunk${r.chunks === 1 ? '' : 's'}`).join('; ');
    racks = t.racksSafe.length > 0 ? `only rack ${t.racksSafe.join(', ')} can be lost (${risk})` : `no rack can be lost (${risk})`;
  }
  return `failure tolerance: ${servers}; ${racks}`;
}

/** fsck's lines for misplaced chunks (listed ones, then the count), or none. */
export function formatMisplaced(r: FsckReply): string[] {
  if (!r.misplaced) return []; // 0, or a master from before racks
  const lines = r.misplacedChunks.map((m) => `${m.path}: chunk #${m.index} (handle ${m.handle}) MISPLACED: replicas in racks ${m.racks.join(', ')}`);
  if (r.misplacedChunks.length < r.misplaced) lines.push(`... and ${r.misplaced - r.misplacedChunks.length} more misplaced chunks`);
  lines.push(`racks: ${r.misplaced} misplaced chunk${r.misplaced === 1 ? '' : 's'} (too many replicas in one rack; repair moves them)`);
  return lines;
}
