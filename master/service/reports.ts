// The reports: fsck, du, the cluster's status, the Raft status and the dashboard's chunk matrix.
import { call } from '../../common/contract/call.js';
import { CLUSTER } from '../../common/contract/index.js';
import { DfsError } from '../../common/errors.js';
import { joinPath, normalizePath } from '../../common/paths.js';
import type { ChunkMatrix } from '../../common/dashboard.js';
import type {
  ChunkHealth, ChunkserverStatus, ClusterStatus, DuReply, FileHealth, FsckFile, FsckProblem, FsckReply, MasterStatus, RaftStatusReply,
} from '../../common/protocol.js';
import type { FileNode, MasterState } from '../state/index.js';
import type { Leadership } from './leadership.js';
import { RackReport } from './rack-report.js';
import { inlineMaxBytes } from './config.js';
import { INLINE_TOTAL_MAX_BYTES } from '../../common/inline.js';

/** Problems listed by one fsck reply (the counts cover all of them). */
const MAX_FSCK_PROBLEMS = 1000;

export class Reports {
  constructor(private readonly lead: Leadership) {}

  /**
   * The health of one chunk: good replicas (live, on a server not being drained) against the
   * replication it is kept at (its file's, or the highest of the files sharing it: sharedReplication); with none left, CORRUPT if some replica failed its checksum, else MISSING.
   */
  private chunkHealth(state: MasterState, handle: number, replication: number): { live: number; health: ChunkHealth | 'HEALTHY' | 'OVER_REPLICATED' } {
    const version = state.chunks.versionOf(handle);
    const live = version !== undefined ? this.lead.registry.liveReplicas(handle, version) : [];
    const good = live.filter((r) => !state.decommissioning.has(r.id)).length;
    if (live.length === 0) return { live: 0, health: this.lead.registry.corruptReports(handle) > 0 ? 'CORRUPT' : 'MISSING' };
    if (good < replication) return { live: good, health: 'UNDER_REPLICATED' };
    return { live: good, health: good > replication ? 'OVER_REPLICATED' : 'HEALTHY' };
  }

  /** Like HDFS's fsck: checks every finished file's chunks below a path against live replicas. */
  async fsck(rawPath: string, allFiles = false): Promise<FsckReply> {
    const path = normalizePath(rawPath);
    const state = await this.lead.read();
    const node = state.lookup(path);
    if (!node) throw new DfsError('NOT_FOUND', `${path} does not exist`);
    const reply: FsckReply = {
      path, files: 0, openFiles: 0, chunks: 0, underReplicated: 0, overReplicated: 0, missing: 0, corrupt: 0,
      filesHealthy: 0, filesUnderReplicated: 0, filesMissing: 0, filesCorrupt: 0, fileReports: [], problems: [], status: 'HEALTHY',
      misplaced: 0, misplacedChunks: [],
    };
    const racks = new RackReport(this.lead.registry, state, MAX_FSCK_PROBLEMS); // rack rule
    const rank: Record<FileHealth, number> = { HEALTHY: 0, UNDER_REPLICATED: 1, MISSING: 2, CORRUPT: 3 };
    const problems: FsckProblem[] = [];
    const counted = new Set<number>(); // a chunk shared by snapshots counts once in the chunk totals
    const kept = sharedReplication(state);
    const keptHigher = new Set<number>();
    for (const [p, n] of state.walk(path, node)) {
      if (n.type !== 'file') continue;
      if (n.state !== 'complete') {
        reply.openFiles++;
        continue;
      }
      reply.files++;
      const file: FsckFile = { path: p, size: n.size, replication: n.replication, chunks: n.chunks.length, status: 'HEALTHY', badChunks: 0 };
      n.chunks.forEach((h, index) => {
        const first = !counted.has(h);
        counted.add(h);
        if (first) reply.chunks++;
        const replication = kept.get(h) ?? n.replication;
        if (replication > n.replication) keptHigher.add(h);
        const { live, health } = this.chunkHealth(state, h, replication);
        if (health === 'OVER_REPLICATED' && first) reply.overReplicated++;
        if (health === 'HEALTHY' && first) racks.checkPlacement(reply, p, index, h, replication); // rack rule
        if (health === 'HEALTHY' || health === 'OVER_REPLICATED') return;
        if (first) {
          if (health === 'CORRUPT') reply.corrupt++;
          else if (health === 'MISSING') reply.missing++;
          else reply.underReplicated++;
        }
        file.badChunks++;
        if (rank[health] > rank[file.status]) file.status = health;
        if (problems.length < 10 * MAX_FSCK_PROBLEMS) problems.push({ path: p, index, handle: h, live, replication, status: health });
      });
      if (file.status === 'HEALTHY') reply.filesHealthy++;
      else if (file.status === 'UNDER_REPLICATED') reply.filesUnderReplicated++;
      else if (file.status === 'MISSING') reply.filesMissing++;
      else reply.filesCorrupt++;
      if ((allFiles || file.status !== 'HEALTHY') && reply.fileReports.length < MAX_FSCK_PROBLEMS) reply.fileReports.push(file);
    }
    reply.problems = problems.sort((a, b) => a.live - b.live).slice(0, MAX_FSCK_PROBLEMS);
    if (keptHigher.size > 0) reply.keptHigher = keptHigher.size;
    reply.status = reply.missing + reply.corrupt > 0 ? 'CORRUPT' : 'HEALTHY';
    return reply;
  }

  /** Bytes below a path: a chunk that several files share (snapshots) counts once, unless `perFile`. */
  async du(rawPath: string, summary: boolean, perFile = false): Promise<DuReply> {
    const path = normalizePath(rawPath);
    const state = await this.lead.read();
    const node = state.lookup(path);
    if (!node) throw new DfsError('NOT_FOUND', `${path} does not exist`);
    const total = { bytes: 0, files: 0, dirs: 0, chunks: 0, sharedBytes: 0 };
    const seen = new Set<number>();
    for (const [, n] of state.walk(path, node)) {
      if (n.type === 'dir') total.dirs++;
      else if (n.state === 'complete') {
        total.files++;
        total.chunks += n.chunks.length;
        total.bytes += perFile ? n.size : uniqueBytes(state, n, seen, total);
      }
    }
    const { sharedBytes, ...counts } = total;
    const reply: DuReply = { path, ...counts, ...(sharedBytes > 0 ? { sharedBytes } : {}) }; // as before snapshots when nothing is shared
    if (!summary && node.type === 'dir') {
      reply.entries = [...node.children.keys()].sort().map((name) => {
        let bytes = 0;
        const p = joinPath(path, name);
        const inEntry = new Set<number>();
        const shared = { sharedBytes: 0 };
        for (const [, n] of state.walk(p, node.children.get(name)!)) if (n.type === 'file' && n.state === 'complete') bytes += perFile ? n.size : uniqueBytes(state, n, inEntry, shared);
        return { path: p, bytes };
      });
    }
    return reply;
  }

  async clusterStatus(): Promise<ClusterStatus> {
    const state = await this.lead.read();
    let files = 0, dirs = 0, under = 0, over = 0, missing = 0, inlineFiles = 0;
    const racks = new RackReport(this.lead.registry, state); // rack rule
    const counted = new Set<number>(); // a chunk shared by snapshots counts once
    const kept = sharedReplication(state);
    for (const [, n] of state.walk('/', state.root)) {
      if (n.type === 'dir') {
        dirs++;
        continue;
      }
      files++;
      if (n.inline) inlineFiles++;
      if (n.state !== 'complete') continue;
      for (const h of n.chunks) {
        if (counted.has(h)) continue;
        counted.add(h);
        const { health } = this.chunkHealth(state, h, kept.get(h) ?? n.replication);
        racks.count(h); // rack rule
        if (health === 'MISSING' || health === 'CORRUPT') missing++;
        else if (health === 'UNDER_REPLICATED') under++;
        else if (health === 'OVER_REPLICATED') over++;
      }
    }
    const remaining = this.lead.repair.last.decommissionRemaining;
    this.lead.now();
    const chunkservers = this.lead.registry.list().map((cs): ChunkserverStatus => {
      if (!state.decommissioning.has(cs.id)) return { ...cs, state: 'in-service' };
      // Until a scan has counted this server, assume it still holds work.
      const left = remaining[cs.id] ?? cs.chunkCount;
      return { ...cs, state: left === 0 ? 'decommissioned' : 'decommissioning', decommissionRemaining: left };
    });
    const r = this.lead.repair;
    return {
      clusterId: this.lead.config.clusterId,
      ...(state.namespaceId !== undefined ? { namespaceId: state.namespaceId } : {}),
      leader: this.lead.config.addr,
      masters: await this.mastersStatus(),
      chunkservers,
      files, dirs: dirs - 1, chunks: state.chunks.size, underReplicatedChunks: under, overReplicatedChunks: over, missingChunks: missing,
      chunkSizeBytes: this.lead.config.chunkSizeBytes, defaultReplication: this.lead.config.defaultReplication,
      safeMode: this.lead.inSafeMode(),
      trash: this.lead.trashQuota.held(state), // trash-quota
      inline: { files: inlineFiles, bytes: state.inlineBytes, capBytes: INLINE_TOTAL_MAX_BYTES, maxFileBytes: inlineMaxBytes(this.lead.config) },
      repair: { copiesInFlight: r.inFlightCount, copiesDone: r.copiesDone, copiesFailed: r.copiesFailed, bytesCopied: r.bytesCopied, movesInFlight: r.movesInFlight, movesDone: r.movesDone },
      tolerance: racks.tolerance(), // rack rule
    };
  }

  /** This master's own view of the Raft group (any master answers, leader or not). */
  raftStatus(): RaftStatusReply {
    const st = this.lead.replicator.status();
    const leaderId = st.leaderId;
    return {
      id: this.lead.config.id, addr: this.lead.config.addr, clusterId: this.lead.config.clusterId, role: st.role, term: st.term,
      leader: leaderId === null ? null : this.lead.config.peers[leaderId] ?? null, commitIndex: st.commitIndex, appliedIndex: st.appliedIndex,
      snapshotIndex: st.snapshotIndex, snapshotsReceived: st.snapshotsReceived,
    };
  }

  /** Every master's role, term and indexes, asked of each one (1 s each, in parallel). */
  private async mastersStatus(): Promise<MasterStatus[]> {
    return Promise.all(Object.entries(this.lead.config.peers).map(async ([id, addr]): Promise<MasterStatus> => {
      if (id === this.lead.config.id) {
        const s = this.raftStatus();
        return { id, addr, role: s.role, term: s.term, commitIndex: s.commitIndex, appliedIndex: s.appliedIndex, reachable: true };
      }
      try {
        const s = await call(addr, CLUSTER.raftStatus, {}, { timeoutMs: 1000 });
        return { id, addr, role: s.role, term: s.term, commitIndex: s.commitIndex, appliedIndex: s.appliedIndex, reachable: true };
      } catch (err) {
        return { id, addr, role: 'unknown', reachable: false, error: (err as Error).message };
      }
    }));
  }

  /**
   * The chunk matrix for the dashboard (master/dashboard.ts): complete files' chunks counted by
   * wanted replication × good live replicas, as MooseFS shows it, with fsck's problem counts.
   */
  async chunkMatrix(): Promise<ChunkMatrix> {
    const state = await this.lead.read();
    const cells = new Map<string, { replication: number; live: number; chunks: number }>();
    const matrix = { cells: [] as { replication: number; live: number; chunks: number }[], chunks: 0, bytes: 0, underReplicated: 0, overReplicated: 0, missing: 0, corrupt: 0 };
    const counted = new Set<number>(); // a chunk shared by snapshots counts once
    const kept = sharedReplication(state);
    for (const [, n] of state.walk('/', state.root)) {
      if (n.type !== 'file' || n.state !== 'complete') continue;
      matrix.bytes += n.size;
      for (const h of n.chunks) {
        if (counted.has(h)) continue;
        counted.add(h);
        const replication = kept.get(h) ?? n.replication;
        const { live, health } = this.chunkHealth(state, h, replication);
        matrix.chunks++;
        if (health === 'UNDER_REPLICATED') matrix.underReplicated++;
        else if (health === 'OVER_REPLICATED') matrix.overReplicated++;
        else if (health === 'MISSING') matrix.missing++;
        else if (health === 'CORRUPT') matrix.corrupt++;
        const key = `${replication}/${live}`;
        const cell = cells.get(key) ?? { replication, live, chunks: 0 };
        cell.chunks++;
        cells.set(key, cell);
      }
    }
    matrix.cells = [...cells.values()].sort((a, b) => a.replication - b.replication || a.live - b.live);
    return matrix;
  }
}

/**
 * The replication each chunk shared by snapshots is kept at: the highest of the finished files
 * that hold it, anywhere in the namespace, as repair keeps it (master/repair/wanted.ts). A chunk
 * of one file is judged by its file's. One walk of the namespace, only when some chunk is shared.
 */
function sharedReplication(state: MasterState): Map<number, number> {
  const out = new Map<number, number>();
  if (state.chunks.sharedCount === 0) return out;
  for (const [, n] of state.walk('/', state.root)) {
    if (n.type !== 'file' || n.state !== 'complete') continue;
    for (const h of n.chunks) if (state.chunks.refsOf(h) > 1 && (out.get(h) ?? 0) < n.replication) out.set(h, n.replication);
  }
  return out;
}

/** A file's bytes in chunks not counted yet (`seen`); a shared chunk's bytes also go into `sharedBytes` the first time. */
function uniqueBytes(state: MasterState, file: FileNode, seen: Set<number>, acc: { sharedBytes: number }): number {
  let bytes = file.inline ? file.size : 0; // an inline file's bytes are its own (a snapshot's copy counts them again)
  for (const h of file.chunks) {
    const refs = state.chunks.refsOf(h);
    if (refs > 1 && seen.has(h)) continue;
    const length = state.chunks.lengthOf(h) ?? 0;
    if (refs > 1) {
      seen.add(h);
      acc.sharedBytes += length;
    }
    bytes += length;
  }
  return bytes;
}
