import { routeUrl } from '../common/contract/call.js';
import { CHUNKS } from '../common/contract/index.js';
import { request } from 'undici';
import { CHUNK_TOKEN_HEADER } from '../common/auth.js';
import { DfsError, errorFromBody, toDfsError } from '../common/errors.js';
import { httpAgent, readJson } from '../common/http.js';
import type { Logger } from '../common/log.js';
import type { CopyOrder } from '../common/protocol.js';
import type { RateLimiter } from '../common/rate.js';
import { isWellFormedRequestId, newRequestId, REQUEST_ID_HEADER } from '../common/request-id.js';
import type { ChunkStore, ChunkWriter, StoredChunk } from './store/index.js';

export interface CopierLimits {
  /** Copies running at once on this server: re-replication must not starve client traffic. */
  concurrency: number;
  /** Orders waiting; beyond it new orders are refused (the master re-plans them). */
  maxQueued: number;
  /**
   * For orders without their own time (a master from before CopyOrder.timeoutMs): one whole
   * chunk must arrive within this (plus what the rate cap makes it take).
   */
  timeoutMs: number;
  maxChunkBytes: number;
  /**
   * Caps the bytes all copies into this server receive together (`--copy-rate`), so repair after
   * a failure does not take a disk or link from client traffic; it makes repair take longer.
   * Absent: as fast as source, network and disk go.
   */
  rate?: RateLimiter;
}

/**
 * Re-replication on the receiving side: pulls a chunk from a chunkserver that holds a good
 * replica (which verifies every block it sends), hashes it as it arrives, checks length and
 * checksum against the master's chunk table, and publishes it as a write would (fsync, rename,
 * fsync the folder). A failed copy leaves nothing behind and is reported to the master.
 */
export class Copier {
  /** Orders waiting, each with its deadline (started when it arrived: see CopyOrder.timeoutMs). */
  private readonly queue: { order: CopyOrder; deadline: AbortSignal }[] = [];
  /** Copies running: handle → the version being copied. */
  private readonly active = new Map<number, number>();
  private failed: number[] = [];
  copiedBytes = 0;

  constructor(
    private readonly store: ChunkStore,
    private readonly limits: CopierLimits,
    private readonly onStored: (chunk: StoredChunk) => void,
    private readonly log: Logger,
  ) {}

  /** The cap on copy traffic received here, in bytes a second (0: none), for the master's timeouts. */
  get rateBytesPerSec(): number {
    return this.limits.rate ? Math.floor(this.limits.rate.bytesPerSec) : 0;
  }

  get running(): number {
    return this.active.size;
  }

  /**
   * Queues orders; an order for a chunk already here, queued or being copied, at its version or
   * a later one, is dropped. A replica here of an older version is replaced by the copy: a server
   * back from a restart holds such replicas of chunks appended to meanwhile, and may be the only
   * place a copy can go. An order for a later version than one queued takes its place; one for a
   * later version than a copy running waits for it to finish.
   */
  add(orders: CopyOrder[]): void {
    for (const o of orders) {
      const have = this.store.get(o.handle);
      if (have && have.version >= o.version) {
        // The master lost track of our replica (e.g. a delete it queued never reached us): report it again.
        this.store.restoreChanges({ added: [{ handle: have.handle, version: have.version, length: have.length }], removed: [] });
        this.onStored(have);
        continue;
      }
      const queued = this.queue.findIndex((q) => q.order.handle === o.handle);
      if (queued >= 0) {
        if (this.queue[queued]!.order.version < o.version) this.queue[queued] = { order: o, deadline: AbortSignal.timeout(this.timeoutOf(o)) };
        continue;
      }
      if ((this.active.get(o.handle) ?? -1) >= o.version) continue;
      if (this.queue.length >= this.limits.maxQueued) {
        this.failed.push(o.handle);
        continue;
      }
      this.queue.push({ order: o, deadline: AbortSignal.timeout(this.timeoutOf(o)) });
    }
    this.pump();
  }

  /** Handles whose copy failed since the last call, at most `max` (the rest wait): for the next heartbeat. */
  takeFailed(max = Number.POSITIVE_INFINITY): number[] {
    const f = this.failed.slice(0, max);
    this.failed = this.failed.slice(f.length);
    return f;
  }

  private pump(): void {
    while (this.active.size < this.limits.concurrency) {
      // The first order whose chunk is not being copied already (a later version waits for it).
      const next = this.queue.findIndex((q) => !this.active.has(q.order.handle));
      if (next < 0) return;
      const { order, deadline } = this.queue.splice(next, 1)[0]!;
      this.active.set(order.handle, order.version);
      // The leader's decision id (a master from before it sends none, a bad one is not logged).
      const reqId = isWellFormedRequestId(order.reqId) ? order.reqId : newRequestId();
      const log = this.log.child({ reqId });
      this.copy(order, deadline, reqId)
        .then((chunk) => {
          this.copiedBytes += chunk.length;
          log.info({ handle: order.handle, from: order.source, bytes: chunk.length }, 'replica copied');
          this.onStored(chunk);
        })
        .catch((err: unknown) => {
          this.failed.push(order.handle);
          log.warn({ handle: order.handle, from: order.source, err: toDfsError(err).message }, 'replica copy failed');
        })
        .finally(() => {
          this.active.delete(order.handle);
          this.pump();
        });
    }
  }

  /** The master's time for the copy; a master from before CopyOrder.timeoutMs sends none: this server's own. */
  private timeoutOf(o: CopyOrder): number {
    if (typeof o.timeoutMs === 'number' && o.timeoutMs > 0) return o.timeoutMs;
    const { rate } = this.limits;
    // Under a cap the copies running here share it, so each may take that long on top.
    const cappedMs = rate ? Math.ceil((o.length * this.limits.concurrency * 1000) / rate.bytesPerSec) : 0;
    return this.limits.timeoutMs + cappedMs;
  }

  private async copy(o: CopyOrder, signal: AbortSignal, reqId: string): Promise<StoredChunk> {
    if (o.length > this.limits.maxChunkBytes) throw new DfsError('BODY_TOO_LARGE', `chunk ${o.handle} is larger than this server's chunk size`);
    signal.throwIfAborted();
    // The length too: a source at a later version (an append under way) has more bytes after these.
    const url = routeUrl(o.source, CHUNKS.read, { handle: o.handle }, { version: o.version, length: o.length });
    const { rate } = this.limits;
    const res = await request(url, { method: 'GET', dispatcher: httpAgent(), signal, headers: { [CHUNK_TOKEN_HEADER]: o.token, [REQUEST_ID_HEADER]: reqId } });
    if (res.statusCode !== 200) throw errorFromBody(await readJson(res.body).catch(() => undefined), res.statusCode);
    let writer: ChunkWriter | undefined;
    try {
      writer = await this.store.createCopyWriter(o.handle, o.version, this.limits.maxChunkBytes);
      for await (const piece of res.body) {
        const buf = piece as Buffer;
        // Not reading on while we wait holds the socket, so TCP slows the source down as well.
        await rate?.take(buf.length, signal);
        await writer.write(buf);
      }
      const local = await writer.finish();
      if (local.length !== o.length || local.checksum !== o.checksum) {
        throw new DfsError('CHECKSUM_MISMATCH', `copy of chunk ${o.handle} from ${o.source} has length ${local.length} and checksum ${local.checksum}, expected ${o.length} and ${o.checksum}`);
      }
      await writer.commit(local);
      writer = undefined;
      return local;
    } finally {
      res.body.destroy();
      await writer?.abort();
    }
  }
}
