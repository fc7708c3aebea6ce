// The namespace calls: what clients ask of the namespace (mkdir, create, allocate, complete, rm,
// mv, setrep, concat, decommission) and read from it (stat, ls), between the routes and the log.
import { DfsError } from '../../common/errors.js';
import type { Logger } from '../../common/log.js';
import { randomId } from '../../common/random-id.js';
import { pathOrderKey, selectPage } from '../../common/list-order.js';
import { joinPath, MAX_NAME_BYTES, MAX_PATH_BYTES, namesDirectory, normalizePath } from '../../common/paths.js';
import { HTTP_LIMITS } from '../../common/http.js';
import { MAX_STAT_MANY_PATHS } from '../../common/protocol.js';
import { assert } from '../../common/limits.js';
import type {
  AllocateReply, AllocateRequest, AppendReply, AppendRequest, ChunkInfo, SnapshotRequest, CompleteRequest, ConcatRequest, CreateEmptyReply, CreateReply, CreateRequest, DecommissionRequest,
  DeleteRequest, EntryInfo, InlineData, ListReply, MkdirRequest, RenameRequest, RenewReply, RenewRequest, SetReplicationRequest, StatManyReply, StatManyRequest, StatReply,
} from '../../common/protocol.js';
import type { PlacementRefusal } from '../leader/core.js';
import type { SessionRef } from '../replicator.js';
import type { AppendOpened } from '../state/append.js';
import type { FileNode, InlineBytes, MasterState } from '../state/index.js';
import { base64Length, decodeInline, INLINE_MAX_BYTES_LIMIT } from '../../common/inline.js';
import type { Leadership } from './leadership.js';
import { ChildMap } from '../state/capture.js';
import { checkComplete, type VouchedChunk } from './complete-check.js';
import { inlineMaxBytes } from './config.js';
import { allocateFirst, createRefusedNow, refuseOtherType } from './open-checks.js';
import { RECORD_TURN_LIMITS, RecordTurns } from './record-turns.js';
import { RECORD_LEASE_MS } from '../../common/limits.js';
import type { ChunkTokens } from './tokens.js';

/** Bounds on what one listing may return, so a huge directory cannot exhaust the master. */
const MAX_LIST_ENTRIES = 100_000;
/** The most entries one page of a paged listing returns; a directory of any size pages through. */
export const MAX_LIST_PAGE_ENTRIES = 5000;
/** An entry's JSON at its widest: path and name with every byte escaped ('"' and '\\' take two), and the other fields. */
const MAX_ENTRY_JSON_BYTES = 2 * (MAX_PATH_BYTES + MAX_NAME_BYTES) + 256;
assert(MAX_LIST_PAGE_ENTRIES * MAX_ENTRY_JSON_BYTES <= HTTP_LIMITS.maxJsonReplyBytes, 'a full list page fits the JSON reply limit');
assert(MAX_STAT_MANY_PATHS * (MAX_ENTRY_JSON_BYTES + base64Length(INLINE_MAX_BYTES_LIMIT) + 256) <= HTTP_LIMITS.maxJsonReplyBytes, 'a stat-many of the most paths, each an inline file of the largest size, fits the JSON reply limit');

/**
 * Longest an append's open waits for repair to copy its file's last chunk back to full
 * replication (NamespaceCalls.healTail): a copy of a chunk this size or less takes a fraction of it.
 */
export const APPEND_HEAL_WAIT_MS = 3000;
/** After a wait that did not heal a chunk, appends to it go on at once for this long: no server may be able to take a copy (full, a rack rule). */
export const APPEND_HEAL_BACKOFF_MS = 30_000;
/** Chunks remembered as not healed in time; past this the oldest is forgotten (an append to it may wait once more). */
const MAX_HEAL_GAVE_UP = 10_000;
const APPEND_HEAL_POLL_MS = 20;
assert(RECORD_TURN_LIMITS.waitMs + APPEND_HEAL_WAIT_MS < HTTP_LIMITS.controlTimeoutMs, 'a record append that waited its whole turn, then for its last chunk to heal, is answered before its client gives up on the call');

/** A file's last chunk, as an append's open sees it (NamespaceCalls.healTail). */
/** A last chunk with room: replicas in service, replicas repair counts (a held server's too), the replication, servers in service. */
interface Tail { handle: number; live: number; counted: number; want: number; servers: number }

/** Short of replicas, with a replica to copy from and a live server that could take a copy. */
function isShort(t: Tail): boolean {
  // `counted` below the replication too: repair copies only then (a held server's replica counts).
  return t.live > 0 && t.live < t.want && t.counted < t.want && t.servers > t.live;
}

/** A paged listing: the children after `after` (a name, a directory's followed by '/'), at most `limit`, in path order. */
export interface ListPaging { after?: string; limit: number }

/** `after` and `limit` from a list query; undefined when neither is there (an unpaged listing). */
export function listPaging(query: Record<string, unknown>): ListPaging | undefined {
  const { after, limit } = query;
  if (after === undefined && limit === undefined) return undefined;
  if (after !== undefined && typeof after !== 'string') throw new DfsError('INVALID_ARGUMENT', 'query parameter after must be given once');
  const n = limit === undefined ? 1000 : typeof limit === 'string' && /^\d{1,6}$/.test(limit) ? Number(limit) : NaN;
  if (!(n >= 1 && n <= MAX_LIST_PAGE_ENTRIES)) throw new DfsError('INVALID_ARGUMENT', `query parameter limit must be 1 to ${MAX_LIST_PAGE_ENTRIES}`);
  return { after, limit: n };
}

export class NamespaceCalls {
  /** Record appends waiting for their file (master/service/record-turns.ts). */
  private readonly recordTurns = new RecordTurns();
  /** Last chunks whose heal an append waited for in vain, and until when appends do not wait for them again. */
  private readonly healGaveUp = new Map<number, number>();

  constructor(private readonly lead: Leadership, private readonly tokens: ChunkTokens) {}

  async registerSession(): Promise<string> {
    this.lead.requireLeader();
    return this.lead.replicator.registerSession();
  }

  async mkdir(req: MkdirRequest, session?: SessionRef): Promise<EntryInfo> {
    return (await this.lead.commit({ op: 'mkdir', path: normalizePath(req.path), parents: req.parents, nowMs: this.lead.clock.nowMs() }, session)) as EntryInfo;
  }

  /**
   * Refuses, before anything is proposed, an inline body this leader will not keep: INLINE_REFUSED
   * (off, too large: the client writes chunks instead) or INLINE_CHECKSUM_MISMATCH (bytes that are
   * not what their checksum says). The namespace's cap is checked in the apply (writes.ts).
   */
  private checkInline(req: CreateRequest): void {
    const body = req.inline;
    if (!body) return;
    const max = inlineMaxBytes(this.lead.config);
    if (req.empty) throw new DfsError('INVALID_ARGUMENT', 'a create is either empty or inline, not both');
    if (body.size > max) {
      throw new DfsError('INLINE_REFUSED', max === 0 ? 'this master keeps no files inline; write the file as chunks' : `this master keeps files of at most ${max} bytes inline, not ${body.size}; write the file as chunks`,
        { reason: max === 0 ? 'off' : 'too-large', inlineMaxBytes: max });
    }
    if (!decodeInline(body)) throw new DfsError('INLINE_CHECKSUM_MISMATCH', `the inline bytes of ${req.path} are not ${body.size} bytes of base64 whose checksum is ${body.checksum}; nothing was written`);
  }

  async create(req: CreateRequest, session?: SessionRef): Promise<CreateReply | CreateEmptyReply> {
    const path = normalizePath(req.path);
    this.checkInline(req);
    const replication = req.replication ?? this.lead.config.defaultReplication;
    if (req.allocate && (req.empty || req.inline)) throw new DfsError('INVALID_ARGUMENT', 'allocate: an empty or inline file has no chunk to allocate');
    const writeId = randomId(12, 'base64url');
    const nowMs = this.lead.clock.nowMs();
    // A retried create (same session seq) gets the first answer, so the writeId from the log.
    const creating = this.lead.commit({
      op: 'create', path, overwrite: req.overwrite, parents: req.parents, replication, chunkSizeBytes: this.lead.config.chunkSizeBytes,
      writeId, leaseMs: this.lead.config.writeLeaseMs, nowMs, ...(req.empty ? { empty: true } : {}),
      ...(req.expectedBytes !== undefined && !req.empty && !req.inline ? { expectedBytes: req.expectedBytes } : {}), // trash-quota
      ...(req.inline ? { inline: req.inline } : {}),
    }, session);
    // With `allocate`: chunk 0's allocate, proposed in the same turn, so in the same log append and
    // Raft round, right after the create (two commands every master knows, not a new one).
    const first = req.allocate && !createRefusedNow(this.lead.state, path, req) ? allocateFirst(this.lead, this.tokens, writeId, replication, req.allocate.rack, nowMs) : undefined;
    const created = await creating.catch((err: unknown) => {
      // Refused in the apply: the namespace's inline bytes are at their cap.
      if (err instanceof DfsError && err.code === 'INLINE_REFUSED') throw new DfsError(err.code, err.message, { reason: 'full', inlineMaxBytes: inlineMaxBytes(this.lead.config) });
      throw err;
    });
    if (req.empty || req.inline) return { file: created as EntryInfo };
    const opened = (created as { writeId: string }).writeId;
    // A retried create answers the first one's write: the allocate made for this one found none.
    const allocated = opened === writeId ? await first : undefined;
    return { writeId: opened, path, chunkSizeBytes: this.lead.config.chunkSizeBytes, replication, leaseMs: this.lead.config.writeLeaseMs, ...(allocated ? { first: allocated } : {}) };
  }

  async allocate(req: AllocateRequest, session?: SessionRef): Promise<AllocateReply> {
    const state = await this.lead.read();
    if (this.lead.inSafeMode()) throw new DfsError('SAFE_MODE', 'a new master leader is waiting for chunkserver reports; retry shortly');
    const w = state.writes.get(req.writeId);
    if (!w) throw new DfsError('WRITE_NOT_FOUND', 'this write is unknown or was abandoned (its lease expired?); start the upload again');
    const replicas = this.lead.core.place(this.lead.now(), w.replication, req.exclude, w.chunkSizeBytes, req.rack); // rack rule
    if (typeof replicas === 'string') throw placementError(replicas, req.exclude.length);
    const rec = (await this.lead.commit({ op: 'allocate', writeId: req.writeId, index: req.index, nowMs: this.lead.clock.nowMs() }, session)) as { handle: number; version: number };
    const token = this.tokens.sign(rec.handle, rec.version, 'write', replicas);
    return { handle: rec.handle, version: rec.version, replicas, token, underReplicated: replicas.length < w.replication };
  }

  /**
   * Completes a write, checked on the leader before it is proposed (master/service/complete-check.ts):
   * a complete that could not apply costs no log space, and each chunk's length and checksum must
   * be what a chunkserver's write receipt says it stored. Only the servers of those receipts
   * become locations before their heartbeats arrive; the client's `replicas` list is not used.
   */
  async complete(req: CompleteRequest, session?: SessionRef): Promise<EntryInfo> {
    const state = await this.lead.read();
    const nowMs = this.lead.clock.nowMs();
    const vouched = checkComplete(state, req, this.lead.config.secret);
    if (!vouched) {
      // An unknown write: a retry of a complete that applied gets its answer from the session; anything else, WRITE_NOT_FOUND. Either way a small entry.
      return (await this.lead.commit({ op: 'complete', writeId: req.writeId, length: 0, chunks: [], nowMs }, session)) as EntryInfo;
    }
    if (req.minReplicas !== undefined) this.checkMinReplicas(req, req.minReplicas, vouched);
    const chunks = req.chunks.map(({ handle, length, checksum }) => ({ handle, length, checksum }));
    const last = req.last ? { last: { handle: req.last.handle, length: req.last.length, checksum: req.last.checksum } } : {};
    const info = (await this.lead.commit({ op: 'complete', writeId: req.writeId, length: req.length, chunks, nowMs, ...last }, session).finally(() => this.recordTurns.wake())) as EntryInfo;
    this.lead.core.stateChanged(this.lead.state);
    this.lead.core.addWrittenReplicas(this.lead.clock.nowMs(), vouched.map((c) => ({ handle: c.handle, replicas: c.servers })));
    return info;
  }

  /**
   * Opens an append (master/state/append.ts) and says where its first bytes go: the replicas of
   * the last chunk that hold its current version, with a write token for the version the append
   * gives it. A last chunk with room and no live replica cannot be appended to (NO_REPLICAS)
   * until repair or a restarted server brings one back; nothing is opened then.
   */
  async append(req: AppendRequest, session?: SessionRef, log: Logger = this.lead.log): Promise<AppendReply> {
    const path = normalizePath(req.path);
    if (this.lead.inSafeMode()) throw new DfsError('SAFE_MODE', 'a new master leader is waiting for chunkserver reports; retry shortly');
    if (req.record === undefined) return this.openAppend(path, req, this.lead.config.writeLeaseMs, log, session);
    // A record append holds the file only for one record: a short lease, and the next waits its turn here.
    const leaseMs = Math.min(this.lead.config.writeLeaseMs, RECORD_LEASE_MS);
    return this.recordTurns.take(path, () => this.appendHeld(path), () => this.openAppend(path, req, leaseMs, log, session));
  }

  /** Whether an append or overwrite whose lease runs holds `path` (a record append then waits its turn). */
  private appendHeld(path: string): boolean {
    this.lead.requireLeader();
    const nowMs = this.lead.clock.nowMs();
    for (const w of this.lead.state.writes.values()) if (w.path === path && w.replacing && w.leaseExpiresAtMs > nowMs) return true;
    return false;
  }

  private async openAppend(path: string, req: AppendRequest, leaseMs: number, log: Logger, session?: SessionRef): Promise<AppendReply> {
    await this.healTail(path, log);
    const state = await this.lead.read();
    const node = state.lookup(path);
    const lastHandle = node?.type === 'file' && node.chunkCount > 0 ? node.chunks[node.chunkCount - 1]! : undefined;
    const lastRec = lastHandle === undefined ? undefined : state.chunks.get(lastHandle);
    if (lastRec && node?.type === 'file' && lastRec.length < node.chunkSizeBytes && this.lead.registry.inServiceReplicas(lastRec.handle, lastRec.version).length === 0) {
      throw new DfsError('NO_REPLICAS', `the last chunk of ${path} has no live replica to append to; try again once a chunkserver holding it is back (dfs fsck ${path})`);
    }
    const expectedBytes = req.expectedBytes ?? req.record;
    const opened = (await this.lead.commit({
      op: 'append', path, writeId: randomId(12, 'base64url'), leaseMs, nowMs: this.lead.clock.nowMs(),
      ...(expectedBytes !== undefined ? { expectedBytes } : {}), ...(req.record !== undefined ? { record: req.record } : {}),
    }, session)) as AppendOpened;
    const { fill } = opened;
    // The fill's write token names the replicas that take part, in the order the client pipelines
    // them: those in service. A suspect server's replica (one held restarting is down) misses the
    // append, is stale from then on, and repair replaces it.
    const holders = fill ? this.lead.registry.inServiceReplicas(fill.handle, fill.version) : [];
    return {
      writeId: opened.writeId, path, chunkSizeBytes: opened.chunkSizeBytes, replication: opened.replication, leaseMs, size: opened.size,
      ...(opened.record ? { record: { offset: opened.record.offset, pad: opened.record.pad } } : {}),
      ...(opened.inline ? { inline: opened.inline } : {}),
      ...(fill ? {
        fill: {
          handle: fill.handle, version: fill.version, offset: fill.length, newVersion: fill.newVersion,
          replicas: holders, token: this.tokens.sign(fill.copyTo ?? fill.handle, fill.newVersion, 'write', holders),
          ...(fill.copyTo !== undefined ? { copyTo: fill.copyTo, fromToken: this.tokens.sign(fill.handle, fill.version, 'read') } : {}),
        },
      } : {}),
    };
  }

  /**
   * Before an append gives a file's last chunk a new version, lets repair copy it back to full
   * replication, as HDFS replaces a failed datanode in an append's pipeline. Every append
   * re-versions the chunk, so a copy made while appends go on is out of date when it lands: under
   * a steady append, a chunk that lost a replica would stay short, one failure away from none
   * (a rolling restart did that). No append of this file is open meanwhile (they take turns, and
   * one opened by another route fails FILE_BUSY at its commit), so the copy repair orders stays
   * current. Waits at most APPEND_HEAL_WAIT_MS; a chunk not healed by then is not waited for again
   * for APPEND_HEAL_BACKOFF_MS, and the append goes on with the replicas there are.
   */
  private async healTail(path: string, log: Logger): Promise<void> {
    const started = performance.now();
    let tail = this.tailOf(path);
    if (!tail || !isShort(tail) || (this.healGaveUp.get(tail.handle) ?? -Infinity) > started) return;
    const chunk = tail.handle;
    this.lead.core.askScan();
    while (tail?.handle === chunk && isShort(tail)) {
      if (performance.now() - started >= APPEND_HEAL_WAIT_MS) {
        if (this.healGaveUp.size >= MAX_HEAL_GAVE_UP) this.healGaveUp.delete(this.healGaveUp.keys().next().value!);
        this.healGaveUp.set(chunk, started + APPEND_HEAL_BACKOFF_MS);
        log.warn({ path, handle: chunk, live: tail.live, replication: tail.want, waitedMs: APPEND_HEAL_WAIT_MS }, 'the last chunk was not copied back to full replication in time; the append goes on with the replicas there are');
        return;
      }
      await new Promise((r) => setTimeout(r, APPEND_HEAL_POLL_MS));
      tail = this.tailOf(path);
    }
    this.healGaveUp.delete(chunk);
    // Not short any more: healed, or the file or the live servers changed (a server died, the last chunk is another).
    if (tail?.handle !== chunk || tail.live < tail.want) return;
    log.info({ path, handle: chunk, live: tail.live, waitedMs: Math.round(performance.now() - started) }, 'the last chunk was copied back to full replication before the append');
  }

  /** `path`'s last chunk, when it has room: its replicas in service, its file's replication, and the servers in service. */
  private tailOf(path: string): Tail | undefined {
    if (!this.lead.replicator.isLeader()) return undefined;
    const state = this.lead.state;
    const node = state.lookup(path);
    if (node?.type !== 'file' || node.chunkCount === 0) return undefined;
    const handle = node.chunks[node.chunkCount - 1]!;
    const rec = state.chunks.get(handle);
    if (!rec || rec.length >= node.chunkSizeBytes) return undefined;
    // In service only: a server held restarting can neither take the copy nor the append.
    const registry = this.lead.registry;
    return {
      handle, live: registry.inServiceReplicas(handle, rec.version).length, counted: registry.liveReplicas(handle, rec.version).length,
      want: node.replication, servers: registry.liveServers().filter((s) => !registry.isSuspect(s.id)).length,
    };
  }

  /**
   * Refuses to complete a write with a chunk on fewer than `min` live servers, as HDFS's NameNode
   * refuses below dfs.namenode.replication.min: the writer asked for that much durability before
   * the file becomes visible. A chunk's servers are those whose write receipts vouch for it and
   * those that reported it since.
   */
  private checkMinReplicas(req: CompleteRequest, min: number, vouched: VouchedChunk[]): void {
    this.lead.requireLeader();
    const w = this.lead.state.writes.get(req.writeId);
    if (!w) return; // the commit says why (unknown or abandoned), or answers a retry of a complete already applied
    if (min > w.replication) throw new DfsError('INVALID_ARGUMENT', `a minimum of ${min} replicas is more than the file's replication (${w.replication})`);
    vouched.forEach((c, index) => {
      const live = new Set(this.lead.registry.liveReplicas(c.handle, c.version).map((r) => r.id));
      for (const id of c.servers) if (this.lead.registry.isAlive(id)) live.add(id);
      if (live.size < min && this.lead.core.justElected(this.lead.clock.nowMs())) {
        // A new leader knows only the servers that have re-registered so far: not a verdict yet.
        throw new DfsError('SAFE_MODE', 'a new master leader is waiting for chunkservers to report; retry shortly');
      }
      if (live.size < min) throw new DfsError('TOO_FEW_REPLICAS', `chunk ${index} has ${live.size} live replica${live.size === 1 ? '' : 's'} of ${w.replication}, fewer than the ${min} required`);
    });
  }

  async abandon(writeId: string, session?: SessionRef): Promise<void> {
    await this.lead.commit({ op: 'abandon', writeId }, session).finally(() => this.recordTurns.wake());
  }

  /** Extends the leases of open writes whose bytes are slow to come (the client renews in the background). */
  async renew(req: RenewRequest, session?: SessionRef): Promise<RenewReply> {
    return (await this.lead.commit({ op: 'renew', writeIds: req.writeIds, nowMs: this.lead.clock.nowMs() }, session)) as RenewReply;
  }

  async delete(req: DeleteRequest, session?: SessionRef): Promise<{ files: number }> {
    const path = normalizePath(req.path);
    if (req.type) refuseOtherType(this.lead.state, path, req.type);
    return (await this.lead.commit({ op: 'delete', path, recursive: req.recursive, nowMs: this.lead.clock.nowMs(), ...(req.type ? { type: req.type } : {}) }, session)) as { files: number };
  }

  async rename(req: RenameRequest, session?: SessionRef): Promise<EntryInfo> {
    const into = namesDirectory(req.dst);
    return (await this.lead.commit({ op: 'rename', src: normalizePath(req.src), dst: normalizePath(req.dst), nowMs: this.lead.clock.nowMs(), ...(into ? { into } : {}) }, session)) as EntryInfo;
  }

  /** Copies a file or tree whose files share the chunks (master/state/tree-snapshot.ts): one command, whatever the size. */
  async snapshot(req: SnapshotRequest, session?: SessionRef): Promise<EntryInfo> {
    const info = (await this.lead.commit({ op: 'snapshot', src: normalizePath(req.src), dst: normalizePath(req.dst), nowMs: this.lead.clock.nowMs() }, session)) as EntryInfo;
    this.lead.core.stateChanged(this.lead.state);
    return info;
  }

  /** Joins complete files into one by their chunk lists (no bytes move); see concat in master/state/namespace.ts. */
  async concat(req: ConcatRequest, session?: SessionRef): Promise<EntryInfo> {
    const cmd = { op: 'concat' as const, sources: req.sources.map((p) => normalizePath(p)), target: normalizePath(req.target), overwrite: req.overwrite, nowMs: this.lead.clock.nowMs() };
    return (await this.lead.commit(cmd, session)) as EntryInfo;
  }

  async setReplication(req: SetReplicationRequest, session?: SessionRef): Promise<{ files: number }> {
    return (await this.lead.commit({ op: 'setReplication', path: normalizePath(req.path), replication: req.replication, recursive: req.recursive }, session)) as { files: number };
  }

  /**
   * Starts (or with `cancel` ends) draining a chunkserver, named by id or host:port. Only a
   * server this leader knows can start draining; cancelling works for any id.
   */
  async decommission(req: DecommissionRequest, session?: SessionRef, log: Logger = this.lead.log): Promise<{ server: string; decommissioning: string[] }> {
    this.lead.requireLeader();
    const id = this.lead.registry.resolve(req.server) ?? (req.cancel && this.lead.state.decommissioning.has(req.server) ? req.server : undefined);
    if (id === undefined) throw new DfsError('NOT_FOUND', `no chunkserver ${req.server} is known to the master (dfs status lists them by id and address)`);
    const r = (await this.lead.commit({ op: 'decommission', server: id, cancel: req.cancel }, session)) as { decommissioning: string[] };
    log.info({ server: id, cancel: req.cancel }, req.cancel ? 'decommission cancelled' : 'decommissioning chunkserver');
    return { server: id, decommissioning: r.decommissioning };
  }

  async stat(rawPath: string, withChunks: boolean): Promise<StatReply> {
    const path = normalizePath(rawPath);
    const state = await this.lead.read();
    const node = state.lookup(path);
    if (!node) throw new DfsError('NOT_FOUND', `${path} does not exist`);
    const info = state.entryInfo(path, node);
    if (node.type === 'dir') return { ...info, chunkSizeBytes: this.lead.config.chunkSizeBytes };
    const inline = withChunks && node.inline ? { inline: inlineData(node.inline) } : {};
    return { ...info, chunkSizeBytes: node.chunkSizeBytes, ...(withChunks ? { chunks: this.chunkInfos(state, node) } : {}), ...inline };
  }

  /** Stats of many paths at one read of the state (StatManyRequest): each as stat answers it without chunks, or null. */
  async statMany(req: StatManyRequest): Promise<StatManyReply> {
    const state = await this.lead.read();
    return {
      entries: req.paths.map((raw) => {
        const path = normalizePath(raw);
        const node = state.lookup(path);
        if (!node) return null;
        const info = state.entryInfo(path, node);
        if (node.type === 'dir') return { ...info, chunkSizeBytes: this.lead.config.chunkSizeBytes };
        return { ...info, chunkSizeBytes: node.chunkSizeBytes, ...(req.inline && node.inline ? { inline: inlineData(node.inline) } : {}) };
      }),
    };
  }

  /**
   * Where a reader is sent: the replicas in service, or while there are none, every live one (a
   * server suspect on a client's word may answer). A server held restarting is down: a read sent
   * there would wait out a connect timeout on a rebooting host (HDFS sorts stale datanodes last).
   */
  private readable(handle: number, version: number): { id: string; addr: string }[] {
    const inService = this.lead.registry.inServiceReplicas(handle, version);
    return inService.length > 0 ? inService : this.lead.registry.liveReplicas(handle, version);
  }

  private chunkInfos(state: MasterState, file: FileNode): ChunkInfo[] {
    return file.chunks.map((handle, index) => {
      const rec = state.chunks.get(handle);
      return {
        index, handle, version: rec?.version ?? 0, length: rec?.length ?? 0, checksum: rec?.checksum ?? '',
        replicas: rec ? this.readable(handle, rec.version).map((r) => ({ ...r, rack: this.lead.registry.rackOf(r.id) })) : [], // rack rule
        token: this.tokens.sign(handle, rec?.version ?? 0, 'read'),
        ...(state.chunks.refsOf(handle) > 1 ? { shared: state.chunks.refsOf(handle) } : {}),
      };
    });
  }

  async list(rawPath: string, recursive: boolean, paging?: ListPaging): Promise<ListReply> {
    const path = normalizePath(rawPath);
    if (paging && recursive) throw new DfsError('INVALID_ARGUMENT', 'a recursive listing is not paged: list each directory with after and limit');
    const state = await this.lead.read();
    const node = state.lookup(path);
    if (!node) throw new DfsError('NOT_FOUND', `${path} does not exist`);
    const entries: EntryInfo[] = [];
    if (node.type === 'file') entries.push(state.entryInfo(path, node));
    else if (paging) {
      // A seek into the directory's names kept in path order (master/state/capture.ts); a directory
      // not made by newDir (none in a running master) takes one pass, sorting only the page.
      const { names: page, more } = node.children instanceof ChildMap ? node.children.pathOrderPage(paging.after, paging.limit)
        : (({ page, more }) => ({ names: page, more }))(selectPage(node.children.keys(), (name) => pathOrderKey(name, node.children.get(name)!.type === 'dir'), paging.after, paging.limit));
      for (const name of page) entries.push(state.entryInfo(joinPath(path, name), node.children.get(name)!));
      const last = entries.at(-1);
      return { path, entries, ...(more && last ? { next: pathOrderKey(last.name, last.type === 'dir') } : {}) };
    }
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
}

/** An inline file's bytes as replies carry them (StatReply.inline, AppendReply.inline). */
function inlineData(bytes: InlineBytes): InlineData {
  return { data: bytes.data.toString('base64'), size: bytes.data.length, checksum: bytes.checksum };
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
