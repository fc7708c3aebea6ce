import { formatBytes } from '../common/config.js';
import type { ChunkserverStatus, ClusterStatus, DuReply, EntryInfo, FsckProblem, FsckReply, StatReply } from '../common/protocol.js';
import { formatMisplaced, formatTolerance, groupByRack } from './format-racks.js';

const size = (n: number, human: boolean) => (human ? formatBytes(n) : String(n));

/**
 * A time as the local wall clock shows it, with its offset from UTC (`2024-06-01 14:03:07 +0200`,
 * as GNU stat prints it): never UTC that does not say so. `clock` gives only `14:03:07 +0200`.
 */
export function localTime(ms: number, clock = false): string {
  const d = new Date(ms);
  const two = (n: number) => String(n).padStart(2, '0');
  const offsetMin = -d.getTimezoneOffset();
  const zone = `${offsetMin < 0 ? '-' : '+'}${two(Math.floor(Math.abs(offsetMin) / 60))}${two(Math.abs(offsetMin) % 60)}`;
  const time = `${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())} ${zone}`;
  return clock ? time : `${String(d.getFullYear()).padStart(4, '0')}-${two(d.getMonth() + 1)}-${two(d.getDate())} ${time}`;
}

const date = (ms: number) => localTime(ms);

/** What a set of chunkservers offers, each file system counted once however many servers share it. */
export interface CapacityTotals { capacityBytes: number; freeBytes: number; servers: number; fileSystems: number }

/**
 * Raw capacity and free space of the live chunkservers. Servers that report the same file system
 * (several on one disk, as a local cluster has) count it once: summing them claimed a 252 GiB
 * disk held 1008 GiB. A server that reports none counts as a file system of its own.
 */
export function capacityTotals(servers: readonly Pick<ChunkserverStatus, 'id' | 'alive' | 'capacityBytes' | 'freeBytes' | 'fsId'>[]): CapacityTotals {
  const byFs = new Map<string, { capacityBytes: number; freeBytes: number }>();
  let live = 0;
  for (const s of servers) {
    if (!s.alive) continue;
    live++;
    // The latest report of a shared disk's free space is as good as any other's.
    byFs.set(s.fsId !== undefined ? `fs ${s.fsId}` : `server ${s.id}`, { capacityBytes: s.capacityBytes, freeBytes: s.freeBytes });
  }
  let capacityBytes = 0;
  let freeBytes = 0;
  for (const fs of byFs.values()) {
    capacityBytes += fs.capacityBytes;
    freeBytes += fs.freeBytes;
  }
  return { capacityBytes, freeBytes, servers: live, fileSystems: byFs.size };
}

/** `1.2 TiB raw, 800 GiB free`, and when servers share disks, how many disks they are on. */
export function formatCapacity(t: CapacityTotals): string {
  const shared = t.fileSystems < t.servers ? ` (${t.servers} chunkservers on ${t.fileSystems} file system${t.fileSystems === 1 ? '' : 's'}, each counted once)` : '';
  return `${formatBytes(t.capacityBytes)} raw, ${formatBytes(t.freeBytes)} free${shared}`;
}

/** `ls -l` columns: type, replication, size, mtime, state, name. */
export function formatLong(entries: EntryInfo[], human: boolean, showPath: boolean): string {
  const rows = entries.map((e) => [
    e.type === 'dir' ? 'd' : '-',
    e.type === 'dir' ? '-' : `r${e.replication}`,
    e.type === 'dir' ? '-' : size(e.size, human),
    date(e.mtimeMs),
    e.state === 'writing' ? 'WRITING' : '',
    (showPath ? e.path : e.name) + (e.type === 'dir' ? '/' : ''),
  ]);
  const widths = [0, 1, 2].map((c) => Math.max(0, ...rows.map((r) => r[c]!.length)));
  const anyWriting = rows.some((r) => r[4] !== '');
  return rows
    .map((r) => [r[0], r[1]!.padEnd(widths[1]!), r[2]!.padStart(widths[2]!), r[3], ...(anyWriting ? [r[4]!.padEnd(7)] : []), r[5]].join(' '))
    .join('\n');
}

export function formatStat(s: StatReply, human: boolean): string {
  const lines = [
    `path:        ${s.path}`,
    `type:        ${s.type}`,
  ];
  if (s.type === 'file') {
    lines.push(
      `size:        ${size(s.size, human)}${human ? '' : ' bytes'}`,
      `state:       ${s.state}`,
      `replication: ${s.replication}`,
      `chunk size:  ${size(s.chunkSizeBytes, human)}`,
      `modified:    ${date(s.mtimeMs)}`,
      `chunks:      ${s.chunkCount}`,
    );
    if (s.inline) lines.push(`inline:      in the masters' state, checksum ${s.inline.checksum} (no chunkserver holds it)`);
    for (const c of s.chunks ?? []) {
      const live = c.replicas.length;
      const flag = live === 0 ? '  MISSING' : live < s.replication ? `  UNDER-REPLICATED (${live}/${s.replication})` : '';
      const shared = c.shared ? `  shared by ${c.shared} files` : '';
      lines.push(`  #${c.index} handle ${c.handle} v${c.version} ${size(c.length, human)} checksum ${c.checksum} replicas ${c.replicas.map((r) => `${r.id}@${r.addr}`).join(', ') || '-'}${flag}${shared}`);
    }
  } else {
    lines.push(`modified:    ${date(s.mtimeMs)}`);
  }
  return lines.join('\n');
}

export function formatDu(d: DuReply, human: boolean): string {
  if (d.entries) return d.entries.map((e) => `${size(e.bytes, human)}\t${e.path}`).concat(`${size(d.bytes, human)}\t${d.path}`).join('\n');
  return `${size(d.bytes, human)}\t${d.path}`;
}

/** A span as people read it: 45s, 9m 58s, 1h 2m. */
export function formatDuration(ms: number): string {
  const s = Math.max(0, Math.ceil(ms / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`;
  return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
}

export function formatStatus(s: ClusterStatus): string {
  const lines = ['masters:'];
  for (const m of s.masters) {
    lines.push(`  ${m.id.padEnd(6)} ${m.addr.padEnd(21)} ${m.reachable ? m.role : 'UNREACHABLE'}${m.term !== undefined ? `  term ${m.term} commit ${m.commitIndex} applied ${m.appliedIndex}` : ''}${m.error ? `  (${m.error})` : ''}`);
  }
  const live = s.chunkservers.filter((c) => c.alive).length;
  lines.push(`chunkservers: ${live} live of ${s.chunkservers.length}${live > 0 ? `: ${formatCapacity(capacityTotals(s.chunkservers))}` : ''}`);
  lines.push(...groupByRack(s.chunkservers, (c) => { // rack rule
    const drain = c.state === 'decommissioning' ? `  DECOMMISSIONING (${c.decommissionRemaining} chunks to copy)` : c.state === 'decommissioned' ? '  DECOMMISSIONED (safe to remove)'
      : c.alive && c.restartHeldMs !== undefined ? `  RESTARTING (no copies for ${formatDuration(c.restartHeldMs)} more)` : '';
    return `  ${c.id.padEnd(8)} ${c.addr.padEnd(21)} ${(!c.alive ? 'DEAD' : c.suspect ? 'SUSPECT' : 'alive').padEnd(7)}  capacity ${formatBytes(c.capacityBytes).padStart(9)}  free ${formatBytes(c.freeBytes).padStart(9)}  used ${formatBytes(c.usedBytes).padStart(9)}  chunks ${String(c.chunkCount).padStart(6)}  heartbeat ${(c.lastHeartbeatAgoMs / 1000).toFixed(1)}s ago${drain}`;
  }));
  lines.push(`namespace: ${s.files} files, ${s.dirs} directories, ${s.chunks} chunks (chunk size ${formatBytes(s.chunkSizeBytes)}, replication ${s.defaultReplication})`);
  lines.push(`health: ${s.underReplicatedChunks} under-replicated chunks, ${s.missingChunks} missing chunks, ${s.overReplicatedChunks} over-replicated${s.safeMode ? ' (safe mode: waiting for chunkserver reports)' : ''}`);
  if (s.tolerance) lines.push(formatTolerance(s.tolerance)); // rack rule
  lines.push(`repair: ${s.repair.copiesInFlight} copies in flight, ${s.repair.copiesDone} done, ${s.repair.copiesFailed} failed; balancing: ${s.repair.movesInFlight} moves in flight, ${s.repair.movesDone} done (since this leader took over)`);
  if (s.trash) lines.push(formatTrashHeld(s.trash)); // trash-quota
  if (s.inline && (s.inline.files > 0 || s.inline.maxFileBytes > 0)) lines.push(`inline: ${s.inline.files} file${s.inline.files === 1 ? '' : 's'} of at most ${formatBytes(s.inline.maxFileBytes)} in the masters' state, ${formatBytes(s.inline.bytes)} of ${formatBytes(s.inline.capBytes)}`);
  return lines.join('\n');
}

/** The trash line of `dfs status`: what rm moved there and not yet expunged, and for how long it is kept. */
export function formatTrashHeld(t: NonNullable<ClusterStatus['trash']>): string {
  const keep = t.intervalMs >= 3600_000 ? `${+(t.intervalMs / 3600_000).toFixed(1)} h` : `${+(t.intervalMs / 1000).toFixed(1)} s`;
  return `trash: ${t.files} file${t.files === 1 ? '' : 's'}, ${formatBytes(t.bytes)} (${formatBytes(t.rawBytes)} with replicas), each kept ${keep} after rm (dfs trash)`;
}

/** HDFS-style fsck report: each unhealthy file with its bad chunks, then totals and a verdict. */
export function formatFsck(r: FsckReply): string {
  const lines: string[] = [];
  const byFile = new Map<string, FsckProblem[]>();
  for (const p of r.problems) byFile.set(p.path, [...(byFile.get(p.path) ?? []), p]);
  for (const f of r.fileReports) {
    lines.push(`${f.path}: ${f.status}${f.badChunks > 0 ? ` (${f.badChunks} of ${f.chunks} chunks)` : ''}`);
    for (const p of byFile.get(f.path) ?? []) {
      lines.push(`  chunk #${p.index} (handle ${p.handle}) ${p.status === 'UNDER_REPLICATED' ? `UNDER-REPLICATED ${p.live}/${p.replication}` : p.status}`);
    }
  }
  const unhealthy = r.filesUnderReplicated + r.filesMissing + r.filesCorrupt;
  const listed = r.fileReports.filter((f) => f.status !== 'HEALTHY').length;
  if (listed < unhealthy) lines.push(`... and ${unhealthy - listed} more unhealthy files`);
  lines.push(...formatMisplaced(r)); // rack rule
  lines.push(
    `files: ${r.files} (and ${r.openFiles} being written, not checked): ${r.filesHealthy} healthy, ${r.filesUnderReplicated} under-replicated, ${r.filesMissing} missing, ${r.filesCorrupt} corrupt`,
    `chunks: ${r.chunks}: ${r.underReplicated} under-replicated, ${r.missing} missing, ${r.corrupt} corrupt, ${r.overReplicated} over-replicated${r.keptHigher ? `; ${r.keptHigher} shared with a snapshot of higher replication, kept at that` : ''}`,
    `The filesystem under path '${r.path}' is ${r.status}${r.underReplicated > 0 ? ` (${r.underReplicated} under-replicated chunk${r.underReplicated === 1 ? '' : 's'})` : ''}`,
  );
  return lines.join('\n');
}

/**
 * The warning for an upload some chunk of which reached fewer servers than the file's
 * replication (servers down or draining); undefined when every chunk has them all.
 */
export function formatDegradedWrite(path: string, replication: number, replicasPerChunk: readonly number[]): string | undefined {
  if (replicasPerChunk.length === 0) return undefined;
  // A loop, not Math.min(...list): spreading 150,000+ chunks' counts overflows the call stack.
  let fewest = Infinity;
  for (const n of replicasPerChunk) if (n < fewest) fewest = n;
  if (fewest >= replication) return undefined;
  const uneven = replicasPerChunk.some((n) => n !== fewest);
  const missing = replication - fewest;
  return `${path} stored with ${uneven ? 'as few as ' : ''}${fewest} of ${replication} replicas${uneven ? ' per chunk' : ''} `
    + `(${missing} chunkserver${missing === 1 ? '' : 's'} unavailable); the cluster will copy the rest`;
}
