// The master's trash and quota operations, between their routes (master/trash-quota-routes.ts)
// and the replicated state, and the leader's trash expiry: MasterService's tick calls tick() here,
// which proposes an expungeTrash when a checkpoint has outlived the trash interval.
import { MASTER_DEFAULTS } from '../common/defaults.js';
import { DfsError } from '../common/errors.js';
import type { Logger } from '../common/log.js';
import { normalizePath } from '../common/paths.js';
import { inTrash, TRASH_ROOT, type QuotaReply, type QuotaSetRequest, type TrashReply, type TrashRequest, type TrashRestoreReply, type TrashRestoreRequest } from '../common/trash-quota-protocol.js';
import type { Command } from './commands.js';
import { quotaOf, treeUsage } from './quotas.js';
import type { SessionRef } from './replicator.js';
import type { MasterState } from './state/index.js';
import { expiredCheckpoints } from './trash.js';

/** HDFS's fs.trash.interval is often a day: deleted things stay restorable that long. */
export const DEFAULT_TRASH_INTERVAL_MS = MASTER_DEFAULTS.trashIntervalMs;
/** How often the leader looks for expired checkpoints (a look is a pass over /.trash's two top levels). */
const TRASH_CHECK_INTERVAL_MS = 1000;
/** Checkpoints one expungeTrash deletes: a large trash is emptied over several ticks, not in one long entry. */
export const MAX_EXPUNGE_PER_TICK = 16;

/** What the service takes from MasterService: its commit, read barrier, state, clock and log. */
export interface TrashQuotaDriver {
  commit(cmd: Command, session?: SessionRef): Promise<unknown>;
  read(): Promise<MasterState>;
  state(): MasterState;
  isLeader(): boolean;
  /** The leader's clock, as commands carry it. */
  nowMs(): number;
  log: Logger;
}

export class TrashQuotaService {
  private nextCheckMs = 0;
  /** An expungeTrash is in flight: no other is proposed meanwhile. */
  private expunging = false;

  constructor(private readonly driver: TrashQuotaDriver, readonly trashIntervalMs = DEFAULT_TRASH_INTERVAL_MS) {}

  /** `dfs rm`: into the user's trash; inside the trash, deleted for good (trashPath is then null). */
  async trash(req: TrashRequest, session?: SessionRef): Promise<TrashReply | { path: string; trashPath: null; files: number }> {
    const path = normalizePath(req.path);
    const nowMs = this.driver.nowMs();
    if (inTrash(path)) {
      const { files } = (await this.driver.commit({ op: 'delete', path, recursive: req.recursive, nowMs }, session)) as { files: number };
      return { path, trashPath: null, files };
    }
    return (await this.driver.commit({ op: 'trash', path, recursive: req.recursive, user: req.user, nowMs }, session)) as TrashReply;
  }

  async restore(req: TrashRestoreRequest, session?: SessionRef): Promise<TrashRestoreReply> {
    const cmd = { op: 'restoreTrash' as const, src: normalizePath(req.src), nowMs: this.driver.nowMs(), ...(req.dst !== undefined ? { dst: normalizePath(req.dst) } : {}) };
    return (await this.driver.commit(cmd, session)) as TrashRestoreReply;
  }

  async setQuota(req: QuotaSetRequest, session?: SessionRef): Promise<QuotaReply> {
    const path = normalizePath(req.path);
    await this.driver.commit({ op: 'setQuota', path, ...(req.files !== undefined ? { files: req.files } : {}), ...(req.bytes !== undefined ? { bytes: req.bytes } : {}) }, session);
    return this.showQuota(path);
  }

  /** A directory's limits and usage; a directory without a quota has its usage counted by a walk, as du. */
  async showQuota(rawPath: string): Promise<QuotaReply> {
    const path = normalizePath(rawPath);
    const state = await this.driver.read();
    const node = state.lookup(path);
    if (!node) throw new DfsError('NOT_FOUND', `${path} does not exist`);
    if (node.type !== 'dir') throw new DfsError('NOT_A_DIRECTORY', `${path} is a file; quotas are on directories`);
    const q = quotaOf(node);
    const used = q ? { files: q.usedFiles, bytes: q.usedBytes } : treeUsage(state, node, path);
    return { path, files: { limit: q?.files ?? null, used: used.files }, bytes: { limit: q?.bytes ?? null, used: used.bytes } };
  }

  /** What the trash holds, for `dfs status`: a walk of /.trash. */
  held(state: MasterState): { files: number; bytes: number; rawBytes: number; intervalMs: number } {
    const held = { files: 0, bytes: 0, rawBytes: 0, intervalMs: this.trashIntervalMs };
    const trash = state.lookup(TRASH_ROOT);
    if (!trash) return held;
    for (const [, n] of state.walk(TRASH_ROOT, trash)) {
      if (n.type !== 'file') continue;
      held.files++;
      held.bytes += n.size;
      held.rawBytes += n.size * n.replication;
    }
    return held;
  }

  /** The leader's trash expiry, once a second: expunges the oldest expired checkpoints, a bounded number per entry. */
  tick(nowMs: number): void {
    if (this.expunging || nowMs < this.nextCheckMs || !this.driver.isLeader()) return;
    this.nextCheckMs = nowMs + TRASH_CHECK_INTERVAL_MS;
    if (expiredCheckpoints(this.driver.state(), nowMs, this.trashIntervalMs, 1).length === 0) return;
    this.expunging = true;
    this.driver.commit({ op: 'expungeTrash', nowMs, intervalMs: this.trashIntervalMs, max: MAX_EXPUNGE_PER_TICK })
      .then((r) => this.driver.log.info(r as object, 'expunged trash checkpoints older than the trash interval'))
      .catch((err: Error) => this.driver.log.warn({ err: err.message }, 'trash expiry failed'))
      .finally(() => (this.expunging = false));
  }
}
