import { randomBytes } from 'node:crypto';
import { signWriteToken } from '../common/auth.js';
import { DfsError } from '../common/errors.js';
import { callJson } from '../common/http.js';
import type { Logger } from '../common/log.js';
import { joinPath, namesDirectory, normalizePath } from '../common/paths.js';
import type {
  AllocateReply, AllocateRequest, ChunkHealth, ChunkInfo, ChunkserverStatus, ClusterStatus, FileHealth, FsckFile, FsckProblem, FsckReply, MasterStatus,
  RaftStatusReply, CompleteRequest, CorruptReport, CreateEmptyReply, CreateReply, CreateRequest, DecommissionRequest, DeleteRequest, DuReply, EntryInfo,
  HeartbeatReply, HeartbeatRequest, ListReply, MkdirRequest, RegisterRequest, RenameRequest, SetReplicationRequest, StatReply,
} from '../common/protocol.js';
import type { Command } from './commands.js';
import { Registry } from './registry.js';
import { REPAIR_DEFAULTS, RepairScheduler, type RepairLimits } from './repair.js';
import type { Replicator, SessionRef } from './replicator.js';
import type { FileNode, MasterState } from './state.js';

export interface MasterConfig {
  id: string;
  addr: string;
  /** The cluster this master's data folder belongs to (master/membership.ts). */
  clusterId: string;
  chunkSizeBytes: number;
  defaultReplication: number;
  /** A writer silent this long loses its file: the write is abandoned and its chunks are garbage. */
  writeLeaseMs: number;
  /** A chunkserver silent this long is dead and its replicas stop counting. */
  deadTimeoutMs: number;
  /** How long a write token stays valid: long enough to stream one chunk on a slow link. */
  writeTokenTtlMs: number;
  secret: Buffer;
  /** Every master of the group: id → host:port (this one included). */
  peers: Record<string, string>;
  /**
   * After becoming leader, placement waits this long at most for chunkservers to report
   * (a short safe mode, as HDFS's): until then an unknown location is not a missing one.
   */
  safeModeMs: number;
  /**
   * A replica no file references (deleted file, abandoned write) or of an old version is
   * deleted once it has been garbage this long: a deleted file's space returns within about
   * this plus one heartbeat.
   */
  gcGraceMs: number;
  /** Re-replication and balancing limits (master/repair.ts); defaults where not given. */
  repair?: Partial<RepairLimits>;
}

/** Bounds on what one listing may return, so a huge directory cannot exhaust the master. */
export const MAX_LIST_ENTRIES = 100_000;
/** Deletions sent in one heartbeat reply; the rest go in later ones. */
export const MAX_DELETES_PER_REPLY = 10_000;
/** Scans a heartbeat's news may trigger are at least this far apart: a scan walks the namespace. */
const MIN_EVENT_SCAN_INTERVAL_MS = 100;
/** Problems listed by one fsck reply (the counts cover all of them). */
export const MAX_FSCK_PROBLEMS = 1000;

/**
 * The master's operations, between the HTTP routes and the replicated state. Mutations go
 * through the Replicator; reads wait for its read barrier; chunk placement uses the volatile
 * registry and never enters the log.
 */
export class MasterService {
  readonly registry: Registry;
  readonly repair: RepairScheduler;

  constructor(
    readonly config: MasterConfig,
    private readonly getState: () => MasterState,
    readonly replicator: Replicator,
    private readonly log: Logger,
  ) {
    this.registry = new Registry(config.deadTimeoutMs);
    this.repair = new RepairScheduler(this.registry, { ...REPAIR_DEFAULTS, ...config.repair });
    replicator.onLeaderChange((isLeader) => {
      // Locations and liveness are volatile: a new leader learns them afresh from reports.
      this.registry.clear();
      this.repair.clear();
      this.leaderChanges++;
      this.leaderSinceMs = isLeader ? Date.now() : undefined;
      this.leaderStartedMs = isLeader ? Date.now() : undefined;
      if (isLeader) log.info({ term: replicator.status().term }, 'became leader; waiting for chunkserver reports');
      else log.info({ leader: replicator.leaderAddr() ?? null }, 'not the leader');
    });
  }

  private leaderSinceMs?: number;
  private leaderStartedMs?: number;
  /** Counts leadership changes: a scan that resumes after one (both ways) stops. */
  private leaderChanges = 0;
  /** How long the last repair scan took, slices and the work between them (it walks the whole namespace). */
  private lastScanDurationMs = 0;

  /**
   * Safe mode: just after becoming leader, until every chunk has a reported replica or
   * safeModeMs passed. Placement waits, so that a chunk nobody has reported yet is not taken
   * for lost, and a server not yet registered is not taken for absent.
   */
  inSafeMode(state: MasterState = this.state): boolean {
    if (this.leaderSinceMs === undefined) return false;
    if (Date.now() - this.leaderSinceMs >= this.config.safeModeMs) {
      this.leaderSinceMs = undefined;
      return false;
    }
    if (this.registry.liveCount() === 0) return true;
    // Chunks of writes in progress may not be stored anywhere yet: only finished files count.
    const pending = new Set<number>();
    for (const w of state.writes.values()) for (const h of w.chunks) pending.add(h);
    for (const h of state.chunks.keys()) if (!pending.has(h) && !this.registry.hasAnyReplica(h)) return true;
    this.leaderSinceMs = undefined;
    return false;
  }

  private get state(): MasterState {
    return this.getState();
  }

  private requireLeader(): void {
    if (!this.replicator.isLeader()) {
      const leader = this.replicator.leaderAddr();
      throw new DfsError('NOT_LEADER', leader ? `not the leader; the leader is ${leader}` : 'not the leader, and no leader is known yet; retry shortly', { leader: leader ?? null });
    }
  }

  private async commit(cmd: Command, session?: SessionRef): Promise<unknown> {
    this.requireLeader();
    const result = await this.replicator.propose(cmd, session);
    if (!result.ok) throw new DfsError(result.code, result.message);
    return result.value;
  }

  private async read(): Promise<MasterState> {
    this.requireLeader();
    await this.replicator.readBarrier();
    return this.state;
  }

  // ---- namespace ----

  async registerSession(): Promise<string> {
    this.requireLeader();
    return this.replicator.registerSession();
  }

  async mkdir(req: MkdirRequest, session?: SessionRef): Promise<EntryInfo> {
    return (await this.commit({ op: 'mkdir', path: normalizePath(req.path), parents: req.parents, nowMs: Date.now() }, session)) as EntryInfo;
  }

  async create(req: CreateRequest, session?: SessionRef): Promise<CreateReply | CreateEmptyReply> {
    const path = normalizePath(req.path);
    const replication = req.replication ?? this.config.defaultReplication;
    // A retried create (same session seq) gets the first answer, so the writeId from the log.
    const created = await this.commit({
      op: 'create', path, overwrite: req.overwrite, parents: req.parents, replication, chunkSizeBytes: this.config.chunkSizeBytes,
      writeId: randomBytes(12).toString('base64url'), leaseMs: this.config.writeLeaseMs, nowMs: Date.now(), ...(req.empty ? { empty: true } : {}),
    }, session);
    if (req.empty) return { file: created as EntryInfo };
    return { writeId: (created as { writeId: string }).writeId, path, chunkSizeBytes: this.config.chunkSizeBytes, replication, leaseMs: this.config.writeLeaseMs };
  }

  async allocate(req: AllocateRequest, session?: SessionRef): Promise<AllocateReply> {
    const state = await this.read();
    if (this.inSafeMode(state)) throw new DfsError('SAFE_MODE', 'a new master leader is waiting for chunkserver reports; retry shortly');
    const w = state.writes.get(req.writeId);
    if (!w) throw new DfsError('WRITE_NOT_FOUND', 'this write is unknown or was abandoned (its lease expired?); start the upload again');
    const replicas = this.registry.place(w.replication, [...req.exclude, ...state.decommissioning], w.chunkSizeBytes);
    if (replicas.length < w.replication && this.leaderStartedMs !== undefined && Date.now() - this.leaderStartedMs < this.config.safeModeMs) {
      // Short of servers right after becoming leader: more may still be re-registering.
      throw new DfsError('SAFE_MODE', 'a new master leader is waiting for chunkservers to report; retry shortly');
    }
    if (replicas.length === 0) {
      const live = this.registry.liveCount();
      throw new DfsError('NO_CHUNKSERVERS', live === 0
        ? 'no live chunkservers; start one (dfs chunkserver) or check that they can reach the master'
        : `no live chunkserver with room for a chunk outside the ${req.exclude.length} excluded`);
    }
    const rec = (await this.commit({ op: 'allocate', writeId: req.writeId, index: req.index, nowMs: Date.now() }, session)) as { handle: number; version: number };
    const token = signWriteToken(this.config.secret, { handle: rec.handle, version: rec.version, expiresAtMs: Date.now() + this.config.writeTokenTtlMs });
    return { handle: rec.handle, version: rec.version, replicas, token, underReplicated: replicas.length < w.replication };
  }

  async complete(req: CompleteRequest, session?: SessionRef): Promise<EntryInfo> {
    if (req.minReplicas !== undefined) this.checkMinReplicas(req, req.minReplicas);
    const chunks = req.chunks.map(({ handle, length, checksum }) => ({ handle, length, checksum }));
    const info = (await this.commit({ op: 'complete', writeId: req.writeId, length: req.length, chunks, nowMs: Date.now() }, session)) as EntryInfo;
    for (const c of req.chunks) {
      const version = this.state.chunks.versionOf(c.handle);
      if (version !== undefined) for (const id of c.replicas) this.registry.addKnownReplica(id, c.handle, version);
    }
    return info;
  }

  /**
   * Refuses to complete a write with a chunk on fewer than `min` live servers, as HDFS's NameNode
   * refuses below dfs.namenode.replication.min: the writer asked for that much durability before
   * the file becomes visible. A chunk's servers are those its pipeline says stored it and those
   * that reported it since.
   */
  private checkMinReplicas(req: CompleteRequest, min: number): void {
    this.requireLeader();
    const w = this.state.writes.get(req.writeId);
    if (!w) return; // the commit says why (unknown or abandoned), or answers a retry of a complete already applied
    if (min > w.replication) throw new DfsError('INVALID_ARGUMENT', `a minimum of ${min} replicas is more than the file's replication (${w.replication})`);
    req.chunks.forEach((c, index) => {
      const version = this.state.chunks.versionOf(c.handle);
      const live = new Set(version === undefined ? [] : this.registry.liveReplicas(c.handle, version).map((r) => r.id));
      for (const id of c.replicas) if (this.registry.isAlive(id)) live.add(id);
      if (live.size < min && this.leaderStartedMs !== undefined && Date.now() - this.leaderStartedMs < this.config.safeModeMs) {
        // A new leader knows only the servers that have re-registered so far: not a verdict yet.
        throw new DfsError('SAFE_MODE', 'a new master leader is waiting for chunkservers to report; retry shortly');
      }
      if (live.size < min) throw new DfsError('TOO_FEW_REPLICAS', `chunk ${index} has ${live.size} live replica${live.size === 1 ? '' : 's'} of ${w.replication}, fewer than the ${min} required`);
    });
  }

  async abandon(writeId: string, session?: SessionRef): Promise<void> {
    await this.commit({ op: 'abandon', writeId }, session);
  }

  async delete(req: DeleteRequest, session?: SessionRef): Promise<{ files: number }> {
    return (await this.commit({ op: 'delete', path: normalizePath(req.path), recursive: req.recursive, nowMs: Date.now() }, session)) as { files: number };
  }

  async rename(req: RenameRequest, session?: SessionRef): Promise<EntryInfo> {
    const into = namesDirectory(req.dst);
    return (await this.commit({ op: 'rename', src: normalizePath(req.src), dst: normalizePath(req.dst), nowMs: Date.now(), ...(into ? { into } : {}) }, session)) as EntryInfo;
  }

  async setReplication(req: SetReplicationRequest, session?: SessionRef): Promise<{ files: number }> {
    return (await this.commit({ op: 'setReplication', path: normalizePath(req.path), replication: req.replication, recursive: req.recursive }, session)) as { files: number };
  }

  /**
   * Starts (or with `cancel` ends) draining a chunkserver, named by id or host:port. Only a
   * server this leader knows can start draining; cancelling works for any id.
   */
  async decommission(req: DecommissionRequest, session?: SessionRef): Promise<{ server: string; decommissioning: string[] }> {
    this.requireLeader();
    const id = this.registry.resolve(req.server) ?? (req.cancel && this.state.decommissioning.has(req.server) ? req.server : undefined);
    if (id === undefined) throw new DfsError('NOT_FOUND', `no chunkserver ${req.server} is known to the master (dfs status lists them by id and address)`);
    const r = (await this.commit({ op: 'decommission', server: id, cancel: req.cancel }, session)) as { decommissioning: string[] };
    this.log.info({ server: id, cancel: req.cancel }, req.cancel ? 'decommission cancelled' : 'decommissioning chunkserver');
    return { server: id, decommissioning: r.decommissioning };
  }

  /** Abandons writes whose writer went silent; proposed only when one has expired. */
  async expireLeases(): Promise<void> {
    if (!this.replicator.isLeader()) return;
    const now = Date.now();
    if (![...this.state.writes.values()].some((w) => w.leaseExpiresAtMs <= now)) return;
    const r = (await this.commit({ op: 'expireLeases', nowMs: now })) as { abandoned: string[] };
    if (r.abandoned.length > 0) this.log.info({ abandoned: r.abandoned }, 'abandoned writes whose lease expired');
  }

  async stat(rawPath: string, withChunks: boolean): Promise<StatReply> {
    const path = normalizePath(rawPath);
    const state = await this.read();
    const node = state.lookup(path);
    if (!node) throw new DfsError('NOT_FOUND', `${path} does not exist`);
    const info = state.entryInfo(path, node);
    if (node.type === 'dir') return { ...info, chunkSizeBytes: this.config.chunkSizeBytes };
    return { ...info, chunkSizeBytes: node.chunkSizeBytes, ...(withChunks ? { chunks: this.chunkInfos(state, node) } : {}) };
  }

  private chunkInfos(state: MasterState, file: FileNode): ChunkInfo[] {
    return file.chunks.map((handle, index) => {
      const rec = state.chunks.get(handle);
      return {
        index, handle, version: rec?.version ?? 0, length: rec?.length ?? 0, checksum: rec?.checksum ?? '',
        replicas: rec ? this.registry.liveReplicas(handle, rec.version) : [],
      };
    });
  }

  async list(rawPath: string, recursive: boolean): Promise<ListReply> {
    const path = normalizePath(rawPath);
    const state = await this.read();
    const node = state.lookup(path);
    if (!node) throw new DfsError('NOT_FOUND', `${path} does not exist`);
    const entries: EntryInfo[] = [];
    if (node.type === 'file') entries.push(state.entryInfo(path, node));
    else if (recursive) {
      for (const [p, n] of state.walk(path, node)) {
        if (p === path) continue;
        if (entries.length >= MAX_LIST_ENTRIES) throw new DfsError('INVALID_ARGUMENT', `more than ${MAX_LIST_ENTRIES} entries below ${path}; list a smaller directory`);
        entries.push(state.entryInfo(p, n));
      }
    } else {
      if (node.children.size > MAX_LIST_ENTRIES) throw new DfsError('INVALID_ARGUMENT', `${path} has more than ${MAX_LIST_ENTRIES} entries`);
      for (const name of [...node.children.keys()].sort()) entries.push(state.entryInfo(joinPath(path, name), node.children.get(name)!));
    }
    return { path, entries };
  }

  /**
   * The health of one chunk: good replicas (live, on a server not being drained) against its
   * file's replication; with none left, CORRUPT if some replica failed its checksum, else MISSING.
   */
  private chunkHealth(state: MasterState, handle: number, replication: number): { live: number; health: ChunkHealth | 'HEALTHY' | 'OVER_REPLICATED' } {
    const version = state.chunks.versionOf(handle);
    const live = version !== undefined ? this.registry.liveReplicas(handle, version) : [];
    const good = live.filter((r) => !state.decommissioning.has(r.id)).length;
    if (live.length === 0) return { live: 0, health: this.registry.corruptReports(handle) > 0 ? 'CORRUPT' : 'MISSING' };
    if (good < replication) return { live: good, health: 'UNDER_REPLICATED' };
    return { live: good, health: good > replication ? 'OVER_REPLICATED' : 'HEALTHY' };
  }

  /** Like HDFS's fsck: checks every finished file's chunks below a path against live replicas. */
  async fsck(rawPath: string, allFiles = false): Promise<FsckReply> {
    const path = normalizePath(rawPath);
    const state = await this.read();
    const node = state.lookup(path);
    if (!node) throw new DfsError('NOT_FOUND', `${path} does not exist`);
    const reply: FsckReply = {
      path, files: 0, openFiles: 0, chunks: 0, underReplicated: 0, overReplicated: 0, missing: 0, corrupt: 0,
      filesHealthy: 0, filesUnderReplicated: 0, filesMissing: 0, filesCorrupt: 0, fileReports: [], problems: [], status: 'HEALTHY',
    };
    const rank: Record<FileHealth, number> = { HEALTHY: 0, UNDER_REPLICATED: 1, MISSING: 2, CORRUPT: 3 };
    const problems: FsckProblem[] = [];
    for (const [p, n] of state.walk(path, node)) {
      if (n.type !== 'file') continue;
      if (n.state !== 'complete') {
        reply.openFiles++;
        continue;
      }
      reply.files++;
      const file: FsckFile = { path: p, size: n.size, replication: n.replication, chunks: n.chunks.length, status: 'HEALTHY', badChunks: 0 };
      n.chunks.forEach((h, index) => {
        reply.chunks++;
        const { live, health } = this.chunkHealth(state, h, n.replication);
        if (health === 'OVER_REPLICATED') reply.overReplicated++;
        if (health === 'HEALTHY' || health === 'OVER_REPLICATED') return;
        if (health === 'CORRUPT') reply.corrupt++;
        else if (health === 'MISSING') reply.missing++;
        else reply.underReplicated++;
        file.badChunks++;
        if (rank[health] > rank[file.status]) file.status = health;
        if (problems.length < 10 * MAX_FSCK_PROBLEMS) problems.push({ path: p, index, handle: h, live, replication: n.replication, status: health });
      });
      if (file.status === 'HEALTHY') reply.filesHealthy++;
      else if (file.status === 'UNDER_REPLICATED') reply.filesUnderReplicated++;
      else if (file.status === 'MISSING') reply.filesMissing++;
      else reply.filesCorrupt++;
      if ((allFiles || file.status !== 'HEALTHY') && reply.fileReports.length < MAX_FSCK_PROBLEMS) reply.fileReports.push(file);
    }
    reply.problems = problems.sort((a, b) => a.live - b.live).slice(0, MAX_FSCK_PROBLEMS);
    reply.status = reply.missing + reply.corrupt > 0 ? 'CORRUPT' : 'HEALTHY';
    return reply;
  }

  async du(rawPath: string, summary: boolean): Promise<DuReply> {
    const path = normalizePath(rawPath);
    const state = await this.read();
    const node = state.lookup(path);
    if (!node) throw new DfsError('NOT_FOUND', `${path} does not exist`);
    const total = { bytes: 0, files: 0, dirs: 0, chunks: 0 };
    for (const [, n] of state.walk(path, node)) {
      if (n.type === 'dir') total.dirs++;
      else if (n.state === 'complete') {
        total.files++;
        total.bytes += n.size;
        total.chunks += n.chunks.length;
      }
    }
    const reply: DuReply = { path, ...total };
    if (!summary && node.type === 'dir') {
      reply.entries = [...node.children.keys()].sort().map((name) => {
        let bytes = 0;
        const p = joinPath(path, name);
        for (const [, n] of state.walk(p, node.children.get(name)!)) if (n.type === 'file' && n.state === 'complete') bytes += n.size;
        return { path: p, bytes };
      });
    }
    return reply;
  }

  async clusterStatus(): Promise<ClusterStatus> {
    const state = await this.read();
    let files = 0, dirs = 0, under = 0, over = 0, missing = 0;
    for (const [, n] of state.walk('/', state.root)) {
      if (n.type === 'dir') {
        dirs++;
        continue;
      }
      files++;
      if (n.state !== 'complete') continue;
      for (const h of n.chunks) {
        const { health } = this.chunkHealth(state, h, n.replication);
        if (health === 'MISSING' || health === 'CORRUPT') missing++;
        else if (health === 'UNDER_REPLICATED') under++;
        else if (health === 'OVER_REPLICATED') over++;
      }
    }
    const remaining = this.repair.last.decommissionRemaining;
    const chunkservers = this.registry.list().map((cs): ChunkserverStatus => {
      if (!state.decommissioning.has(cs.id)) return { ...cs, state: 'in-service' };
      // Until a scan has counted this server, assume it still holds work.
      const left = remaining[cs.id] ?? cs.chunkCount;
      return { ...cs, state: left === 0 ? 'decommissioned' : 'decommissioning', decommissionRemaining: left };
    });
    const r = this.repair;
    return {
      clusterId: this.config.clusterId,
      leader: this.config.addr,
      masters: await this.mastersStatus(),
      chunkservers,
      files, dirs: dirs - 1, chunks: state.chunks.size, underReplicatedChunks: under, overReplicatedChunks: over, missingChunks: missing,
      chunkSizeBytes: this.config.chunkSizeBytes, defaultReplication: this.config.defaultReplication,
      safeMode: this.inSafeMode(state),
      repair: { copiesInFlight: r.inFlightCount, copiesDone: r.copiesDone, copiesFailed: r.copiesFailed, bytesCopied: r.bytesCopied, movesInFlight: r.movesInFlight, movesDone: r.movesDone },
    };
  }

  /** This master's own view of the Raft group (any master answers, leader or not). */
  raftStatus(): RaftStatusReply {
    const st = this.replicator.status();
    const leaderId = st.leaderId;
    return {
      id: this.config.id, addr: this.config.addr, clusterId: this.config.clusterId, role: st.role, term: st.term,
      leader: leaderId === null ? null : this.config.peers[leaderId] ?? null, commitIndex: st.commitIndex, appliedIndex: st.appliedIndex,
    };
  }

  /** Every master's role, term and indexes, asked of each one (1 s each, in parallel). */
  private async mastersStatus(): Promise<MasterStatus[]> {
    return Promise.all(Object.entries(this.config.peers).map(async ([id, addr]): Promise<MasterStatus> => {
      if (id === this.config.id) {
        const s = this.raftStatus();
        return { id, addr, role: s.role, term: s.term, commitIndex: s.commitIndex, appliedIndex: s.appliedIndex, reachable: true };
      }
      try {
        const s = await callJson<RaftStatusReply>(addr, '/v1/raft/status', { method: 'GET', timeoutMs: 1000 });
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
  async chunkMatrix(): Promise<import('../common/dashboard.js').ChunkMatrix> {
    const state = await this.read();
    const cells = new Map<string, { replication: number; live: number; chunks: number }>();
    const matrix = { cells: [] as { replication: number; live: number; chunks: number }[], chunks: 0, bytes: 0, underReplicated: 0, overReplicated: 0, missing: 0, corrupt: 0 };
    for (const [, n] of state.walk('/', state.root)) {
      if (n.type !== 'file' || n.state !== 'complete') continue;
      matrix.bytes += n.size;
      for (const h of n.chunks) {
        const { live, health } = this.chunkHealth(state, h, n.replication);
        matrix.chunks++;
        if (health === 'UNDER_REPLICATED') matrix.underReplicated++;
        else if (health === 'OVER_REPLICATED') matrix.overReplicated++;
        else if (health === 'MISSING') matrix.missing++;
        else if (health === 'CORRUPT') matrix.corrupt++;
        const key = `${n.replication}/${live}`;
        const cell = cells.get(key) ?? { replication: n.replication, live, chunks: 0 };
        cell.chunks++;
        cells.set(key, cell);
      }
    }
    matrix.cells = [...cells.values()].sort((a, b) => a.replication - b.replication || a.live - b.live);
    return matrix;
  }

  // ---- chunkservers ----

  async register(req: RegisterRequest): Promise<HeartbeatReply> {
    this.requireLeader();
    this.registry.register(req);
    this.repair.forgetServer(req.id);
    this.log.info({ server: req.id, addr: req.addr, chunks: req.chunks.length }, 'chunkserver registered');
    return { reregister: false, deletes: this.garbageOn(await this.read(), req.id, MAX_DELETES_PER_REPLY), copies: [] };
  }

  async heartbeat(req: HeartbeatRequest): Promise<HeartbeatReply> {
    this.requireLeader();
    if (!this.registry.heartbeat(req)) return { reregister: true, deletes: [], copies: [] };
    this.repair.onCopyFailed(req.id, req.copyFailed);
    // A copy finished or failed: plan the next ones now, so this reply carries them, rather
    // than at the next scan (with small chunks, copies would otherwise wait a second each).
    if (req.copyFailed.length > 0 || req.added.some((c) => this.repair.awaits(req.id, c.handle))) {
      // repairScan itself keeps large scans apart; small ones still wait this long.
      if (Date.now() - this.repair.lastScanMs >= MIN_EVENT_SCAN_INTERVAL_MS) await this.repairScan();
    }
    // The read barrier may fail: take the queued work only after it, so a failed heartbeat loses
    // none. Surplus deletes go first; the reply's delete list is capped, the rest waits.
    const state = await this.read();
    const work = this.repair.takeFor(req.id, MAX_DELETES_PER_REPLY);
    const garbage = this.garbageOn(state, req.id, MAX_DELETES_PER_REPLY - work.deletes.length);
    return { reregister: false, deletes: [...work.deletes, ...garbage], copies: work.copies };
  }

  /**
   * One pass of re-replication planning (the leader, every second, outside safe mode): orders
   * copies for under-replicated chunks and drops surplus replicas. See master/repair.ts.
   */
  async repairScan(): Promise<void> {
    if (!this.replicator.isLeader()) return;
    // Until a dead timeout has passed since we became leader, a server that has not reported yet
    // may simply not have found us: copying its chunks now would only make surplus replicas.
    if (this.leaderStartedMs === undefined || Date.now() - this.leaderStartedMs < this.config.deadTimeoutMs) return;
    // A scan walks the whole namespace (over a second at a million files on this class of
    // machine). It runs in slices of a few milliseconds, so the leader keeps answering Raft and
    // clients meanwhile, but the slices still take its CPU: whatever asks for one, 4 scan
    // durations pass between the starts of two scans, so scanning takes at most about a quarter
    // of the leader's time. A scan asked for while one runs is skipped: the running one covers it.
    if (Date.now() - this.repair.lastScanMs < 4 * this.lastScanDurationMs) return;
    const state = await this.read();
    if (this.inSafeMode(state)) return;
    const started = Date.now();
    const changes = this.leaderChanges;
    // Between slices this master may lose leadership (and perhaps win it again, with locations
    // to relearn): the scan then stops, ordering nothing more.
    const scan = await this.repair.scanInSlices(() => this.state, { proceed: () => this.replicator.isLeader() && this.leaderChanges === changes });
    if (!scan) return;
    this.lastScanDurationMs = Date.now() - started;
    if (scan.ordered > 0 || scan.surplusDeletes > 0) this.log.info(scan, 'repair: copies ordered, surplus replicas dropped');
  }

  /** Replicas a server holds that nothing references, or of an old version, past the grace period: delete them. */
  private garbageOn(state: MasterState, serverId: string, limit: number): number[] {
    return this.registry.takeGarbage(serverId, (h) => state.chunks.versionOf(h), this.config.gcGraceMs, limit);
  }

  reportCorrupt(req: CorruptReport): void {
    this.requireLeader();
    this.log.warn({ server: req.id, handle: req.handle, reason: req.reason }, 'replica reported corrupt');
    this.registry.markCorrupt(req.id, req.handle);
  }
}
