import { randomBytes } from 'node:crypto';
import { signChunkToken, type ChunkAccessMode } from '../common/auth.js';
import { systemClock, type Clock } from '../common/clock.js';
import { DfsError } from '../common/errors.js';
import { callJson } from '../common/http.js';
import type { Logger } from '../common/log.js';
import { joinPath, namesDirectory, normalizePath } from '../common/paths.js';
import type {
  AllocateReply, AllocateRequest, ChunkHealth, ChunkInfo, ChunkserverStatus, ClusterStatus, FileHealth, FsckFile, FsckProblem, FsckReply, MasterStatus,
  RaftStatusReply, CompleteRequest, CorruptReport, CreateEmptyReply, CreateReply, CreateRequest, DecommissionRequest, DeleteRequest, DuReply, EntryInfo,
  HeartbeatReply, HeartbeatRequest, ListReply, MkdirRequest, RegisterRequest, RenameRequest, RenewReply, RenewRequest, SetReplicationRequest, StatReply,
} from '../common/protocol.js';
import type { ConcatRequest } from '../common/protocol.js';
import type { Command } from './commands.js';
import { LeaderCore, toReply, type PlacementRefusal } from './leader/core.js';
import { runInSlices } from './leader/slices.js';
import type { Registry } from './registry.js';
import type { RepairLimits, RepairScheduler } from './repair.js';
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
  /** How long a read token (stat's chunks, copy orders) stays valid: see READ_TOKEN_TTL_MS. */
  readTokenTtlMs: number;
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

/**
 * How long a read token stays valid. Longer lets a reader (a slow download, an S3 client that
 * stat'ed a while ago, a queued copy order) start more chunk reads on one stat; shorter makes a
 * leaked token (a log line, a copied URL) useful for less time. A reader whose token expired
 * stats the file again, so this costs a stat per this long per reader, not a failed read.
 */
export const READ_TOKEN_TTL_MS = 10 * 60_000;

/** Bounds on what one listing may return, so a huge directory cannot exhaust the master. */
export const MAX_LIST_ENTRIES = 100_000;
export { MAX_DELETES_PER_REPLY } from './leader/core.js';
/**
 * How often the driver ticks the leader core: it then proposes what the core asks (expired
 * leases) and starts a repair scan when the core says one is due (every second, or 100 ms after
 * a copy's news). Short enough that a scan asked for by a heartbeat starts within about this.
 */
const LEADER_TICK_MS = 100;
/** Problems listed by one fsck reply (the counts cover all of them). */
export const MAX_FSCK_PROBLEMS = 1000;

/** What the service takes from its surroundings, so that a test can replace it. */
export interface MasterEnv {
  clock?: Clock;
  /** The placement jitter's source. */
  random?: () => number;
}

/**
 * The master's operations, between the HTTP routes and the replicated state. Mutations go
 * through the Replicator; reads wait for its read barrier; chunk placement uses the volatile
 * registry and never enters the log. For the leader's volatile half it is the thin async driver
 * of a deterministic core (master/leader/core.ts): it reads the clock, hands the core each
 * chunkserver call with the time, runs its repair scans in slices on a timer of its own, and
 * proposes the commands the core asks for.
 */
export class MasterService {
  readonly core: LeaderCore;
  private readonly clock: Clock;
  private tickTimer?: NodeJS.Timeout;
  /** A scan is under way or waiting for its read barrier: the tick does not start another. */
  private scanning = false;
  /** An expireLeases proposal is in flight: the tick does not send another meanwhile. */
  private proposing = false;

  constructor(
    readonly config: MasterConfig,
    private readonly getState: () => MasterState,
    readonly replicator: Replicator,
    private readonly log: Logger,
    env: MasterEnv = {},
  ) {
    this.clock = env.clock ?? systemClock;
    this.core = new LeaderCore({
      deadTimeoutMs: config.deadTimeoutMs, safeModeMs: config.safeModeMs, gcGraceMs: config.gcGraceMs,
      leaseCheckIntervalMs: Math.max(250, Math.floor(config.writeLeaseMs / 4)), repair: config.repair, random: env.random ?? Math.random,
    }, getState(), this.clock.nowMs());
    // Already leading (a group of one elected before this service existed): no change will say so.
    if (replicator.isLeader()) this.core.becomeLeader(this.clock.nowMs(), replicator.status().term);
    replicator.onLeaderChange((isLeader) => {
      const now = this.now();
      if (isLeader) this.core.becomeLeader(now, replicator.status().term);
      else this.core.loseLeadership(now, replicator.leaderAddr());
      this.flushLog();
    });
  }

  /** The core's registry (read by reports: fsck, status, stat's locations). */
  get registry(): Registry {
    return this.core.registry;
  }

  /** The core's repair planner (read by status for its counters). */
  get repair(): RepairScheduler {
    return this.core.repair;
  }

  /** Starts the leader's timer: lease expiry and repair scans. */
  start(): void {
    this.tickTimer ??= setInterval(() => this.tick(), LEADER_TICK_MS);
  }

  stop(): void {
    clearInterval(this.tickTimer);
    this.tickTimer = undefined;
  }

  /** Reads the clock and brings the core up to date with it and with the replicated state. */
  private now(): number {
    const now = this.clock.nowMs();
    this.core.stateChanged(this.state);
    this.core.advanceTo(now);
    return now;
  }

  private flushLog(): void {
    for (const e of this.core.drainLog()) this.log[e.level](e.fields, e.msg);
  }

  /** One tick of the leader core: propose what it asks, start a scan when one is due. */
  tick(): void {
    const now = this.now();
    const commands = this.proposing ? [] : this.core.tick(now);
    for (const cmd of commands) this.proposeTimed(cmd);
    this.runScan().catch((err: Error) => this.log.warn({ err: err.message }, 'repair scan failed'));
    this.flushLog();
  }

  private proposeTimed(cmd: Command): void {
    this.proposing = true;
    this.commit(cmd)
      .then((r) => {
        const abandoned = (r as { abandoned?: string[] } | undefined)?.abandoned ?? [];
        if (abandoned.length > 0) this.log.info({ abandoned }, 'abandoned writes whose lease expired');
      })
      .catch((err) => this.log.warn({ err }, 'lease expiry failed'))
      .finally(() => (this.proposing = false));
  }

  /** Safe mode (see LeaderCore.inSafeMode). */
  inSafeMode(): boolean {
    return this.core.inSafeMode(this.now());
  }

  private get state(): MasterState {
    return this.getState();
  }

  /** The replicated state, for master/credentials/ (its keys and revocations, a write's path). */
  get replicatedState(): MasterState {
    return this.getState();
  }

  /** NOT_LEADER, with the leader's address and the group's, unless this master leads (public: master/credentials/ calls it). */
  requireLeader(): void {
    if (!this.replicator.isLeader()) {
      const leader = this.replicator.leaderAddr();
      // The whole group rides along: a client given one master's address finds the others.
      throw new DfsError('NOT_LEADER', leader ? `not the leader; the leader is ${leader}` : 'not the leader, and no leader is known yet; retry shortly', {
        leader: leader ?? null, masters: this.config.peers,
      });
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
    this.now(); // liveness in what the read reports is judged at the time of the read
    return this.state;
  }

  // ---- namespace ----

  async registerSession(): Promise<string> {
    this.requireLeader();
    return this.replicator.registerSession();
  }

  async mkdir(req: MkdirRequest, session?: SessionRef): Promise<EntryInfo> {
    return (await this.commit({ op: 'mkdir', path: normalizePath(req.path), parents: req.parents, nowMs: this.clock.nowMs() }, session)) as EntryInfo;
  }

  async create(req: CreateRequest, session?: SessionRef): Promise<CreateReply | CreateEmptyReply> {
    const path = normalizePath(req.path);
    const replication = req.replication ?? this.config.defaultReplication;
    // A retried create (same session seq) gets the first answer, so the writeId from the log.
    const created = await this.commit({
      op: 'create', path, overwrite: req.overwrite, parents: req.parents, replication, chunkSizeBytes: this.config.chunkSizeBytes,
      writeId: randomBytes(12).toString('base64url'), leaseMs: this.config.writeLeaseMs, nowMs: this.clock.nowMs(), ...(req.empty ? { empty: true } : {}),
    }, session);
    if (req.empty) return { file: created as EntryInfo };
    return { writeId: (created as { writeId: string }).writeId, path, chunkSizeBytes: this.config.chunkSizeBytes, replication, leaseMs: this.config.writeLeaseMs };
  }

  async allocate(req: AllocateRequest, session?: SessionRef): Promise<AllocateReply> {
    const state = await this.read();
    if (this.inSafeMode()) throw new DfsError('SAFE_MODE', 'a new master leader is waiting for chunkserver reports; retry shortly');
    const w = state.writes.get(req.writeId);
    if (!w) throw new DfsError('WRITE_NOT_FOUND', 'this write is unknown or was abandoned (its lease expired?); start the upload again');
    const replicas = this.core.place(this.now(), w.replication, req.exclude, w.chunkSizeBytes);
    if (typeof replicas === 'string') throw placementError(replicas, req.exclude.length);
    const rec = (await this.commit({ op: 'allocate', writeId: req.writeId, index: req.index, nowMs: this.clock.nowMs() }, session)) as { handle: number; version: number };
    const token = this.chunkToken(rec.handle, rec.version, 'write');
    return { handle: rec.handle, version: rec.version, replicas, token, underReplicated: replicas.length < w.replication };
  }

  async complete(req: CompleteRequest, session?: SessionRef): Promise<EntryInfo> {
    if (req.minReplicas !== undefined) this.checkMinReplicas(req, req.minReplicas);
    const chunks = req.chunks.map(({ handle, length, checksum }) => ({ handle, length, checksum }));
    const info = (await this.commit({ op: 'complete', writeId: req.writeId, length: req.length, chunks, nowMs: this.clock.nowMs() }, session)) as EntryInfo;
    this.core.stateChanged(this.state);
    this.core.addWrittenReplicas(this.clock.nowMs(), req.chunks);
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
      if (live.size < min && this.core.justElected(this.clock.nowMs())) {
        // A new leader knows only the servers that have re-registered so far: not a verdict yet.
        throw new DfsError('SAFE_MODE', 'a new master leader is waiting for chunkservers to report; retry shortly');
      }
      if (live.size < min) throw new DfsError('TOO_FEW_REPLICAS', `chunk ${index} has ${live.size} live replica${live.size === 1 ? '' : 's'} of ${w.replication}, fewer than the ${min} required`);
    });
  }

  async abandon(writeId: string, session?: SessionRef): Promise<void> {
    await this.commit({ op: 'abandon', writeId }, session);
  }

  /** Extends the leases of open writes whose bytes are slow to come (the client renews in the background). */
  async renew(req: RenewRequest, session?: SessionRef): Promise<RenewReply> {
    return (await this.commit({ op: 'renew', writeIds: req.writeIds, nowMs: this.clock.nowMs() }, session)) as RenewReply;
  }

  async delete(req: DeleteRequest, session?: SessionRef): Promise<{ files: number }> {
    return (await this.commit({ op: 'delete', path: normalizePath(req.path), recursive: req.recursive, nowMs: this.clock.nowMs() }, session)) as { files: number };
  }

  async rename(req: RenameRequest, session?: SessionRef): Promise<EntryInfo> {
    const into = namesDirectory(req.dst);
    return (await this.commit({ op: 'rename', src: normalizePath(req.src), dst: normalizePath(req.dst), nowMs: this.clock.nowMs(), ...(into ? { into } : {}) }, session)) as EntryInfo;
  }

  /** Joins complete files into one by their chunk lists (no bytes move); see MasterState.concat. */
  async concat(req: ConcatRequest, session?: SessionRef): Promise<EntryInfo> {
    const cmd = { op: 'concat' as const, sources: req.sources.map((p) => normalizePath(p)), target: normalizePath(req.target), overwrite: req.overwrite, nowMs: Date.now() };
    return (await this.commit(cmd, session)) as EntryInfo;
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
        token: this.chunkToken(handle, rec?.version ?? 0, 'read'),
      };
    });
  }

  /** A chunk access token (common/auth.ts) for `mode`, valid from now for that mode's TTL. */
  private chunkToken(handle: number, version: number, mode: ChunkAccessMode): string {
    const ttlMs = mode === 'write' ? this.config.writeTokenTtlMs : this.config.readTokenTtlMs;
    return signChunkToken(this.config.secret, { handle, version, mode, expiresAtMs: this.clock.nowMs() + ttlMs });
  }

  /** A register or heartbeat reply with the server's work; each copy order carries a read token for its source. */
  private workReply(serverId: string, namespaceId: string): HeartbeatReply {
    const reply = toReply(this.core.takeWork(serverId, this.now()));
    return { ...reply, copies: reply.copies.map((o) => ({ ...o, token: this.chunkToken(o.handle, o.version, 'read') })), namespaceId };
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
    this.now();
    const chunkservers = this.registry.list().map((cs): ChunkserverStatus => {
      if (!state.decommissioning.has(cs.id)) return { ...cs, state: 'in-service' };
      // Until a scan has counted this server, assume it still holds work.
      const left = remaining[cs.id] ?? cs.chunkCount;
      return { ...cs, state: left === 0 ? 'decommissioned' : 'decommissioning', decommissionRemaining: left };
    });
    const r = this.repair;
    return {
      clusterId: this.config.clusterId,
      ...(state.namespaceId !== undefined ? { namespaceId: state.namespaceId } : {}),
      leader: this.config.addr,
      masters: await this.mastersStatus(),
      chunkservers,
      files, dirs: dirs - 1, chunks: state.chunks.size, underReplicatedChunks: under, overReplicatedChunks: over, missingChunks: missing,
      chunkSizeBytes: this.config.chunkSizeBytes, defaultReplication: this.config.defaultReplication,
      safeMode: this.inSafeMode(),
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

  /**
   * A registration report, or one page of it: only the final page's reply carries work (and only
   * after it is the report applied); an earlier page's reply is empty, and `reregister` asks for
   * the report again from its first page.
   */
  async register(req: RegisterRequest): Promise<HeartbeatReply> {
    this.requireLeader();
    const namespaceId = await this.namespaceOf(req);
    const outcome = this.core.registerPage(req, this.now());
    this.flushLog();
    if (outcome.kind === 'busy') throw new DfsError('UNAVAILABLE', 'the master is assembling too many chunk reports; retry shortly');
    if (outcome.kind !== 'complete') return { reregister: outcome.kind === 'restart', deletes: [], copies: [], namespaceId };
    // The read barrier may fail: take the queued work only after it, so a failed reply loses none.
    await this.read();
    return this.workReply(req.id, namespaceId);
  }

  /** The namespace's id, drawn and replicated by the first leader to need it (proposed once at a time). */
  private namespaceReady?: Promise<string>;

  /**
   * This namespace's id; WRONG_CLUSTER for a chunkserver that recorded another one. Such a server
   * is neither registered nor sent deletes: its chunks are another namespace's, or this master's
   * data was lost, and either way they are not this master's to judge.
   */
  private async namespaceOf(req: { id: string; namespaceId?: string }): Promise<string> {
    let ns = this.state.namespaceId;
    if (ns === undefined) {
      this.namespaceReady ??= this.commit({ op: 'initNamespace', namespaceId: randomBytes(8).toString('hex') })
        .then((r) => (r as { namespaceId: string }).namespaceId)
        .finally(() => (this.namespaceReady = undefined));
      ns = await this.namespaceReady;
    }
    if (req.namespaceId !== undefined && req.namespaceId !== ns) {
      this.log.error({ server: req.id, theirs: req.namespaceId, ours: ns }, 'refused a chunkserver of another namespace');
      throw new DfsError('WRONG_CLUSTER', `chunkserver ${req.id} holds chunks of namespace ${req.namespaceId}, but this master's namespace is ${ns} (another cluster's master, or one whose data was lost); it is not registered here and nothing on it is deleted`);
    }
    return ns;
  }

  /**
   * A heartbeat never waits for a scan: a copy it reports finished or failed makes the core ask
   * for one, which the next tick starts, and the copies it plans ride on later replies.
   */
  async heartbeat(req: HeartbeatRequest): Promise<HeartbeatReply> {
    this.requireLeader();
    const namespaceId = await this.namespaceOf(req);
    if (!this.core.heartbeat(req, this.now())) return { reregister: true, deletes: [], copies: [], namespaceId };
    await this.read();
    return this.workReply(req.id, namespaceId);
  }

  /**
   * A repair scan, when the core says one is due (see LeaderCore.startScan): after a read
   * barrier (the state caught up, leadership confirmed), in slices of a few milliseconds.
   */
  async runScan(): Promise<void> {
    if (this.scanning || !this.replicator.isLeader() || !this.core.scanDue(this.now())) return;
    this.scanning = true;
    try {
      await this.read();
      const steps = this.core.startScan(this.now());
      if (!steps) return;
      let scan;
      try {
        scan = await runInSlices(steps, { pause: async () => {
          await new Promise((resolve) => setImmediate(resolve));
          this.now(); // the core sees a snapshot installed meanwhile, and the time
        } });
      } finally {
        this.core.finishScan(this.now(), scan);
      }
    } finally {
      this.scanning = false;
      this.flushLog();
    }
  }

  reportCorrupt(req: CorruptReport): void {
    this.requireLeader();
    this.core.reportCorrupt(req, this.now());
    this.flushLog();
  }
}

/** The error a client sees when placement must wait or cannot place at all. */
function placementError(why: PlacementRefusal, excluded: number): DfsError {
  switch (why) {
    case 'safe-mode':
      return new DfsError('SAFE_MODE', 'a new master leader is waiting for chunkserver reports; retry shortly');
    case 'short-after-election':
      // Short of servers right after becoming leader: more may still be re-registering.
      return new DfsError('SAFE_MODE', 'a new master leader is waiting for chunkservers to report; retry shortly');
    case 'no-servers':
      return new DfsError('NO_CHUNKSERVERS', 'no live chunkservers; start one (dfs chunkserver) or check that they can reach the master');
    case 'no-room':
      return new DfsError('NO_CHUNKSERVERS', `no live chunkserver with room for a chunk outside the ${excluded} excluded`);
  }
}
