import { AUTHORIZATION_HEADER } from '../common/credentials.js';
import { DfsError } from '../common/errors.js';
import { call, type RouteCallOptions } from '../common/contract/call.js';
import { CLUSTER, FS, type JsonRoute, type ReplyOf, type RequestOf } from '../common/contract/index.js';
import { LeaderClient, SESSION_HEADER } from '../common/leader.js';
import { UNREACHABLE_REPORT_TIMEOUT_MS } from '../common/limits.js';
import { namesDirectory, normalizePath } from '../common/paths.js';
import { MetaBatcher } from './meta-batch.js';

/** Chunkservers one client reports at most. */
const MAX_REPORTED_SERVERS = 64;

/** A connection that could not be made (refused, no route, connect timeout), not one that failed later. */
export function isConnectFailure(e: DfsError): boolean {
  return e.code === 'UNAVAILABLE' && /ECONNREFUSED|EHOSTUNREACH|ENETUNREACH|UND_ERR_CONNECT_TIMEOUT/.test(e.message);
}

/** The client's metadata calls: the master's namespace and cluster operations, mutations exactly once. */
export class MetaClient {
  readonly master: LeaderClient;
  /** Master sessions not in use. A mutation holds one for its whole call, retries included. */
  private readonly idleSessions: { id: string; seq: number }[] = [];

  /** `token`: the client token every master call carries (docs/SECURITY.md); none: anonymous. */
  constructor(masters: string[], token?: string) {
    this.authHeaders = token ? { [AUTHORIZATION_HEADER]: `Bearer ${token}` } : {};
    this.master = new LeaderClient(masters, { headers: this.authHeaders });
    this.batcher = new MetaBatcher({ batch: (calls) => call(this.master, FS.batch, { calls }), leader: () => this.master.leader });
  }
  /** Many calls out at once go to the leader in batches (cli/meta-batch.ts). */
  private readonly batcher: MetaBatcher;
  private readonly authHeaders: Record<string, string>;

  /**
   * A mutating master call, exactly once: it carries a session id and the session's next
   * sequence number, so a retry after a timeout or a leader change gets the first answer
   * instead of being applied twice. Each call in flight uses a session of its own.
   */
  async mutate<R extends JsonRoute>(route: R, body: RequestOf<R>): Promise<ReplyOf<R>> {
    const session = this.idleSessions.pop() ?? await this.openSession();
    session.seq++;
    try {
      const header = `${session.id}:${session.seq}`;
      const reply = await this.batcher.submit(route, body, header, () => call(this.master, route, body, { headers: { [SESSION_HEADER]: header } }));
      this.idleSessions.push(session);
      return reply;
    } catch (err) {
      // A call that failed for good may have been applied or not: its session is not reused.
      if (err instanceof DfsError && err.status >= 400 && err.status < 500 && err.code !== 'SESSION_EXPIRED') this.idleSessions.push(session);
      throw err;
    }
  }

  /** The largest file the leader keeps inline, as its last session reply said (undefined: none asked yet). */
  private inlineLimit: number | undefined;

  private async openSession(): Promise<{ id: string; seq: number }> {
    const opened = await this.read(FS.session, {});
    this.inlineLimit = opened.inlineMaxBytes ?? 0; // a master without inline files says nothing
    return { id: opened.sessionId, seq: 0 };
  }

  /**
   * The largest file the leader keeps inline (common/inline.ts), 0 when none: from the session
   * replies, so it costs a call only before this client's first mutation.
   */
  async inlineMaxBytes(): Promise<number> {
    if (this.inlineLimit === undefined) this.idleSessions.push(await this.openSession());
    return this.inlineLimit ?? 0;
  }

  /** A leader refused an inline file (INLINE_REFUSED): what it said its limit is now, until the next session says otherwise. */
  learnInlineRefusal(err: DfsError): void {
    const max = err.details.inlineMaxBytes;
    if (typeof max === 'number' && Number.isInteger(max) && max >= 0) this.inlineLimit = max;
  }

  /** A call to the leader without a session: a read, or a call that is safe to repeat. Its reply is checked against the contract. */
  read<R extends JsonRoute>(route: R, input: RequestOf<R>, opts: RouteCallOptions = {}): Promise<ReplyOf<R>> {
    if (opts.headers !== undefined || opts.timeoutMs !== undefined || opts.sign !== undefined || opts.params !== undefined) return call(this.master, route, input, opts);
    return this.batcher.submit(route, input, undefined, () => call(this.master, route, input));
  }

  /** Chunkservers this client reported unreachable already (each once: the master probes it). */
  private readonly reported = new Set<string>();

  /**
   * Tells the leader that a chunkserver could not be reached (as HDFS clients report bad
   * datanodes): only a connect failure, once a server, never waited for, never failing the
   * caller. The leader checks for itself (master/service/probes.ts).
   */
  reportUnreachable(addr: string, err: DfsError): void {
    if (!isConnectFailure(err) || this.reported.has(addr) || this.reported.size >= MAX_REPORTED_SERVERS) return;
    this.reported.add(addr);
    call(this.master.leader, CLUSTER.unreachable, { addr }, { headers: this.authHeaders, timeoutMs: UNREACHABLE_REPORT_TIMEOUT_MS }).catch(() => undefined);
  }

  mkdir(path: string, parents = false) {
    return this.mutate(FS.mkdir, { path: normalizePath(path), parents });
  }
  stat(path: string, chunks = false) {
    return this.read(FS.stat, { path: normalizePath(path), chunks });
  }
  /** Stats of up to MAX_STAT_MANY_PATHS paths in one call, in order, null where nothing is; `inline`: with inline files' bytes. */
  statMany(paths: string[], inline = false) {
    return this.read(FS.statMany, { paths: paths.map((p) => normalizePath(p)), inline });
  }
  list(path: string, recursive = false) {
    return this.read(FS.list, { path: normalizePath(path), recursive });
  }
  /** One page of a directory's children in path order (common/list-order.ts), after `after`; the reply's `next` is where the next page starts. */
  listPage(path: string, after: string | undefined, limit: number) {
    return this.read(FS.list, { path: normalizePath(path), after, limit });
  }
  fsck(path: string, allFiles = false) {
    return this.read(FS.fsck, { path: normalizePath(path), files: allFiles });
  }
  setReplication(path: string, replication: number, recursive = false) {
    return this.mutate(FS.setrep, { path: normalizePath(path), replication, recursive });
  }
  decommission(server: string, cancel = false) {
    return this.mutate(CLUSTER.decommission, { server, cancel });
  }
  /** Bytes below `path`, chunks shared by snapshots counted once (`perFile`: each file's whole size). */
  du(path: string, summary = false, perFile = false) {
    return this.read(FS.du, { path: normalizePath(path), summary, perFile });
  }
  /** Copies the file or tree at `src` to `dst` in one command; the copy shares the chunks until one side appends (dfs snapshot). */
  snapshot(src: string, dst: string) {
    return this.mutate(FS.snapshot, { src: normalizePath(src), dst: normalizePath(dst) });
  }
  /** Removes `path` (`recursive`: a directory's tree); with `type`, only a path of that type (else NOT_A_DIRECTORY or IS_A_DIRECTORY). */
  remove(path: string, recursive = false, type?: 'file' | 'dir') {
    return this.mutate(FS.delete, { path: normalizePath(path), recursive, ...(type ? { type } : {}) });
  }
  rename(src: string, dst: string) {
    // A trailing '/' on dst is kept: the master then moves into an existing directory or fails.
    return this.mutate(FS.rename, { src: normalizePath(src), dst: normalizePath(dst) + (namesDirectory(dst) ? '/' : '') });
  }
  status() {
    return this.read(CLUSTER.status, {});
  }
  // trash-quota: `remove` deletes at once (as HDFS's FileSystem.delete); `trash` is what `dfs rm` does.
  /** Moves a path into `user`'s trash (inside /.trash it deletes at once: trashPath is then null). */
  trash(path: string, user: string, recursive = false) {
    return this.mutate(FS.trash, { path: normalizePath(path), recursive, user });
  }
  restoreFromTrash(src: string, dst?: string) {
    return this.mutate(FS.trashRestore, { src: normalizePath(src), ...(dst !== undefined ? { dst: normalizePath(dst) } : {}) });
  }
  /** Sets a directory's quotas: a number sets, null removes, undefined keeps. */
  setQuota(path: string, limits: { files?: number | null; bytes?: number | null }) {
    return this.mutate(FS.quotaSet, { path: normalizePath(path), ...limits });
  }
  quota(path: string) {
    return this.read(FS.quota, { path: normalizePath(path) });
  }
  /** Joins complete files into `target` by their chunk lists, moving no bytes (the master's concat); the sources go. */
  concat(sources: string[], target: string, overwrite = false) {
    return this.mutate(FS.concat, { sources: sources.map((p) => normalizePath(p)), target: normalizePath(target), overwrite });
  }
}
