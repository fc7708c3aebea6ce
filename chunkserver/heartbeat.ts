import { call } from '../common/contract/call.js';
import { CS } from '../common/contract/index.js';
import { randomBytes } from 'node:crypto';
import type { ChunkKeyRing } from '../common/chunk-keys.js';
import { DfsError } from '../common/errors.js';
import { MAX_COPY_FAILED, MAX_REPORT_PAGE_CHUNKS } from '../common/limits.js';
import { LeaderClient } from '../common/leader.js';
import type { Logger } from '../common/log.js';
import { DEFAULT_RACK } from '../common/racks.js';
import type { HeartbeatReply, ReportedChunk } from '../common/protocol.js';
import type { Activity } from './routes/index.js';
import type { Copier } from './copier.js';
import type { NamespaceRecord } from './namespace.js';
import type { ChunkStore } from './store/index.js';

/** Deletions applied per heartbeat reply: a huge garbage list is worked off over several beats. */
const MAX_DELETES_PER_BEAT = 10_000;

/**
 * Keeps the master informed: a full chunk report at registration (and whenever the master
 * asks, e.g. after it restarted or a new leader took over), sent in pages of at most
 * MAX_REPORT_PAGE_CHUNKS, then heartbeats with stats and the chunks added or removed since the
 * last one (at most MAX_HEARTBEAT_CHANGES of each a beat; a backlog past MAX_CHANGE_BACKLOG is
 * dropped for a full report). Replies carry chunks to delete.
 */
export class Heartbeat {
  private timer?: NodeJS.Timeout;
  private registered = false;
  private inFlight = false;
  /** The exchange under way, settled either way: stop() waits for it. */
  private current?: Promise<void>;
  private again = false;
  private stopped = false;
  /**
   * Replies' copy orders and deletes, applied in the order the replies came but off the
   * heartbeat path: unlinking many 64 MiB files on a busy disk can take seconds, and a server
   * that stopped beating meanwhile would be declared dead (and every upload refused).
   */
  private applying: Promise<void> = Promise.resolve();
  /** The failure domain it registers with; set before start(). */
  rack: string = DEFAULT_RACK;
  /** The chunk keys the routes verify tokens with: reported in each beat, replaced by what replies carry; set before start(). */
  chunkKeys?: ChunkKeyRing;

  constructor(
    private readonly id: string,
    private readonly addr: string,
    private readonly masters: LeaderClient,
    private readonly store: ChunkStore,
    private readonly activity: Activity,
    private readonly copier: Copier,
    private readonly intervalMs: number,
    private readonly log: Logger,
    private readonly namespace?: NamespaceRecord,
  ) {}

  start(): void {
    this.timer = setInterval(() => this.beat(), this.intervalMs);
    this.beat();
  }

  /**
   * No beat after this; resolves once the exchange under way (if any) has ended, or after
   * `waitMs`: a stop notice sent before a registration still in flight lands would be undone by it.
   */
  async stop(waitMs = 0): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    if (!this.current || waitMs <= 0) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.current, new Promise((r) => (timer = setTimeout(r, waitMs)))]);
    clearTimeout(timer);
  }

  /** Sends a heartbeat now (or right after the one in flight), e.g. after storing a chunk. */
  beat(): void {
    if (this.stopped) return;
    if (this.inFlight) {
      this.again = true;
      return;
    }
    this.inFlight = true;
    this.current = this.send()
      .catch((err: DfsError) => this.log.warn({ err: err.message }, 'heartbeat failed'))
      .finally(() => {
        this.inFlight = false;
        if (this.again) {
          this.again = false;
          this.beat();
        }
      });
  }

  private async stats() {
    const disk = await this.store.diskStats();
    const namespaceId = this.namespace?.get();
    return {
      id: this.id, addr: this.addr, ...(namespaceId !== undefined ? { namespaceId } : {}), ...disk, usedBytes: this.store.usedBytes(), activeWrites: this.activity.writes, activeReads: this.activity.reads,
      copyRateBytesPerSec: this.copier.rateBytesPerSec, ...(this.chunkKeys ? { chunkKeys: this.chunkKeys.ids() } : {}),
    };
  }

  private async send(): Promise<void> {
    try {
      await this.exchange();
    } catch (err) {
      if (err instanceof DfsError && err.code === 'WRONG_CLUSTER') this.refuseMaster(err.message);
      throw err;
    }
  }

  /** That master serves another namespace: ask the next one, and register afresh wherever we land. */
  private refuseMaster(why: string): void {
    this.log.error({ master: this.masters.leader, why }, 'a master of another namespace answered; its orders are ignored');
    this.masters.moveOn();
    this.registered = false;
  }

  /**
   * Whether a reply may be obeyed: it names this server's namespace, or it is the first to name
   * one (recorded now), or it names none (a master from before namespace ids).
   */
  private async acceptNamespace(reply: HeartbeatReply): Promise<boolean> {
    if (!this.namespace || reply.namespaceId === undefined) return true;
    const known = this.namespace.get();
    if (known === undefined) {
      await this.namespace.record(reply.namespaceId);
      this.log.info({ namespaceId: reply.namespaceId }, 'recorded the namespace this server stores chunks for');
      return true;
    }
    if (known === reply.namespaceId) return true;
    this.refuseMaster(`it serves namespace ${reply.namespaceId}; this server's chunks are namespace ${known}'s`);
    return false;
  }

  private async exchange(): Promise<void> {
    if (this.registered && this.store.changesOverflowed) {
      this.log.warn({ chunks: this.store.count }, 'too many changes waiting for heartbeats; registering again with a full report');
      this.registered = false;
    }
    let reply: HeartbeatReply | undefined;
    if (!this.registered) {
      reply = await this.register();
      if (!reply) return;
    } else {
      const changes = this.store.takeChanges();
      const copyFailed = this.copier.takeFailed(MAX_COPY_FAILED);
      try {
        reply = await call(this.masters, CS.heartbeat, { ...(await this.stats()), ...changes, copyFailed });
      } catch (err) {
        this.store.restoreChanges(changes);
        throw err; // the master forgets unreported copies by their timeout
      }
      if (!(await this.acceptNamespace(reply))) return;
      if (reply.reregister) {
        this.registered = false;
        this.again = true;
        return;
      }
      if (this.store.pendingChanges > 0) this.again = true; // the rest of a backlog, in the next beat
    }
    const work = reply;
    // At once, not queued behind deletes: a token signed with a new key may arrive any moment.
    if (work.chunkKeys !== undefined && this.chunkKeys && !this.chunkKeys.update(work.chunkKeys)) this.log.warn({}, 'ignored chunk keys in a heartbeat reply (not sealed for this server, or older than those held)');
    this.applying = this.applying.then(() => this.apply(work)).catch((err: Error) => this.log.warn({ err: err.message }, 'applying a heartbeat reply failed'));
  }

  /**
   * A full report, in pages: the list is taken at once with the changes cleared, so what changes
   * while the pages go out is in the next heartbeat. The master applies the report when its
   * final page arrives; the final reply is returned (undefined if the report must start over).
   */
  private async register(): Promise<HeartbeatReply | undefined> {
    this.store.clearChanges();
    const chunks = this.store.list();
    const stats = await this.stats();
    const id = randomBytes(8).toString('hex');
    const pages = Math.max(1, Math.ceil(chunks.length / MAX_REPORT_PAGE_CHUNKS));
    for (let page = 0; page < pages; page++) {
      const part: ReportedChunk[] = chunks.slice(page * MAX_REPORT_PAGE_CHUNKS, (page + 1) * MAX_REPORT_PAGE_CHUNKS);
      const final = page === pages - 1;
      const reply = await call(this.masters, CS.register, { ...stats, rack: this.rack, report: { id, page, final }, chunks: part });
      if (!(await this.acceptNamespace(reply))) return undefined;
      if (reply.reregister) {
        this.again = true; // the master lost the report (a new leader, a page lost): from page 0
        return undefined;
      }
      if (final) {
        this.registered = true;
        this.log.info({ master: this.masters.leader, chunks: chunks.length, pages }, 'registered with master');
        return reply;
      }
    }
    return undefined;
  }

  /** Resolves once every reply received so far has been applied (for tests). */
  settled(): Promise<void> {
    return this.applying;
  }

  private async apply(reply: HeartbeatReply): Promise<void> {
    this.copier.add(reply.copies ?? []);
    let kept = 0;
    for (const h of reply.deletes.slice(0, MAX_DELETES_PER_BEAT)) if (!(await this.store.removeOrdered(h))) kept++;
    if (reply.deletes.length > 0) {
      this.log.info({ count: reply.deletes.length - kept, ...(kept > 0 ? { kept } : {}) }, 'deleted chunks the master no longer references');
    }
  }
}
