import { routeUrl } from '../common/contract/call.js';
import { CHUNKS } from '../common/contract/index.js';
import { finished, type Readable, type Writable } from 'node:stream';
import { request, type Dispatcher } from 'undici';
import { CHUNK_TOKEN_HEADER, isChunkTokenRefusal } from '../common/auth.js';
import { DfsError, errorFromBody, toDfsError } from '../common/errors.js';
import { httpAgent, readJson } from '../common/http.js';
import type { ChunkInfo, ReplicaInfo, StatReply } from '../common/protocol.js';
import { localFirst } from '../common/racks.js';
import { outgoingRequestId, replyRequestId, REQUEST_ID_HEADER, traceCall } from '../common/request-id.js';
import type { MetaClient } from './client-meta.js';
import { initChecksums } from '../common/checksum.js';
import { decodeInline } from '../common/inline.js';

export interface GetOptions {
  onProgress?: (bytes: number, total: number) => void;
}

/**
 * Bytes of a chunk read asked for early (while the previous chunk streams) that this process
 * buffers before its socket stops reading; more waits in the kernel's socket buffers.
 */
const READ_AHEAD_BUFFER_BYTES = 1024 * 1024;
/** Pause before the second round over a chunk's replicas, with fresh locations. */
const RETRY_ROUND_PAUSE_MS = 500;

/** Orders replicas for a reader: rotate by a per-call offset so readers spread across copies. */
export function orderForRead<T>(replicas: T[], spread: number): T[] {
  if (replicas.length === 0) return replicas;
  const k = ((spread % replicas.length) + replicas.length) % replicas.length;
  return [...replicas.slice(k), ...replicas.slice(0, k)];
}

/** A chunk's read asked for before its turn (see Downloader.get). */
interface EarlyRead {
  index: number;
  /** Replicas to try, the one already asked first. */
  order: ReplicaInfo[];
  response: Promise<Dispatcher.ResponseData>;
  /** Drops the read unused (the download failed before its turn). */
  discard(): void;
}

/** A whole-file download in progress. */
interface Download {
  path: string;
  /** The latest stat: refreshed when replicas moved or a read token expired. */
  info: StatReply;
  sink: Writable;
  /** Bytes of the chunks before the current one. */
  delivered: number;
  early?: EarlyRead;
  onProgress?: GetOptions['onProgress'];
}

/** Downloads: chunk bytes straight from chunkservers, failing over between replicas. */
export class Downloader {
  private readSpread = Math.floor(Math.random() * 1024);

  /** `rack`: the reader's, whose replicas it tries first. */
  constructor(private readonly meta: MetaClient, private readonly chunkTimeoutMs: number, private readonly rack?: string) {}

  /**
   * Streams a complete file to `sink`, chunk by chunk, failing over between replicas. While one
   * chunk streams, the next one's read is already asked for (from another server where there is
   * one), so its server opens the file and reads its first batches meanwhile: no idle gap at a
   * chunk boundary. That early response waits in its socket, at most `READ_AHEAD_BUFFER_BYTES` of
   * it in this process, until its turn.
   */
  async get(path: string, sink: Writable, opts: GetOptions = {}): Promise<StatReply> {
    const info = await this.meta.stat(path, true);
    if (info.type === 'dir') throw new DfsError('IS_A_DIRECTORY', `${info.path} is a directory`);
    if (info.state !== 'complete') throw new DfsError('FILE_NOT_READY', `${info.path} is still being written; it is readable once its writer completes it`);
    if (info.inline) {
      const bytes = await inlineBytes(info);
      sink.write(bytes);
      opts.onProgress?.(bytes.length, info.size);
      return info;
    }
    const d: Download = { path, info, sink, delivered: 0, onProgress: opts.onProgress };
    try {
      for (let i = 0; i < d.info.chunks!.length; i++) d.delivered += await this.readWholeChunk(d, i);
    } finally {
      d.early?.discard();
    }
    return d.info;
  }

  /**
   * Copies chunk `i` of the download to its sink; answers its length. One refresh of the
   * locations when every known replica failed: they may have moved. And one when a replica
   * refused the read token (it expired during a long download): every replica would refuse it
   * alike, so the file is stat'ed again at once.
   */
  private async readWholeChunk(d: Download, i: number): Promise<number> {
    let chunk = d.info.chunks![i]!;
    const progress = { written: 0 };
    const started = d.early?.index === i ? d.early : undefined;
    d.early = undefined;
    let tokenRefreshed = false;
    for (let round = 0, attempt = 0; ; attempt++) {
      const { errors, refused } = await this.tryReplicas(d, i, chunk, progress, { first: attempt === 0 ? started : undefined, stopOnRefusal: !tokenRefreshed });
      if (progress.written === chunk.length) return chunk.length;
      if (refused) {
        tokenRefreshed = true;
        d.info = await this.meta.stat(d.path, true);
        chunk = d.info.chunks?.[i] ?? chunk;
        continue;
      }
      if (round++ >= 1) {
        throw new DfsError(chunk.replicas.length === 0 ? 'NO_REPLICAS' : 'UNAVAILABLE',
          `chunk ${i} of ${d.info.path} (handle ${chunk.handle}) could not be read from any replica${errors.length ? `: ${errors.join('; ')}` : ' (no live replica)'}`);
      }
      await new Promise((r) => setTimeout(r, RETRY_ROUND_PAUSE_MS));
      d.info = await this.meta.stat(d.path, true);
      chunk = d.info.chunks?.[i] ?? chunk;
    }
  }

  /**
   * One round over chunk `i`'s replicas (`first`: a read already asked for early), resuming at
   * `progress.written`; asks for the next chunk early once a replica answers. `refused`: a
   * replica refused the read token and `stopOnRefusal` ended the round there.
   */
  private async tryReplicas(
    d: Download, i: number, chunk: ChunkInfo, progress: { written: number }, o: { first?: EarlyRead; stopOnRefusal: boolean },
  ): Promise<{ errors: string[]; refused: boolean }> {
    const errors: string[] = [];
    const order = o.first ? o.first.order : this.orderReplicas(chunk.replicas);
    for (const [k, replica] of order.entries()) {
      try {
        const res = o.first && k === 0 ? await o.first.response : await this.openChunkRead(replica, chunk, progress.written, chunk.length);
        const following = d.info.chunks![i + 1];
        if (!d.early && following) d.early = this.readEarly(i + 1, following, replica.id);
        await this.copyBody(res, replica, d.sink, (n) => {
          progress.written += n;
          d.onProgress?.(d.delivered + progress.written, d.info.size);
        });
        break;
      } catch (err) {
        const e = toDfsError(err);
        errors.push(`${replica.id}: ${e.message}`);
        this.meta.reportUnreachable(replica.addr, e);
        if (isChunkTokenRefusal(e.code) && o.stopOnRefusal) return { errors, refused: true };
      }
    }
    return { errors, refused: false };
  }

  private orderReplicas(replicas: ReplicaInfo[]): ReplicaInfo[] {
    return localFirst(orderForRead(replicas, this.readSpread++), this.rack); // rack rule
  }

  /** Starts chunk `index`'s read (its first `lengthBytes`) before its turn, from a replica other than `busyId` if it has one. */
  private readEarly(index: number, chunk: ChunkInfo, busyId: string, lengthBytes = chunk.length): EarlyRead | undefined {
    const order = this.orderReplicas(chunk.replicas);
    if (order.length === 0 || lengthBytes === 0) return undefined;
    // Another replica than the busy one, unless that would leave the reader's rack (rack rule).
    if (order.length > 1 && order[0]!.id === busyId && (this.rack === undefined || order[1]!.rack === this.rack)) order.push(order.shift()!);
    // Until its turn nobody listens: a failure then must neither go unhandled nor throw (an
    // 'error' event without a listener); pump() still sees a body that failed while it waited.
    const response = this.openChunkRead(order[0]!, chunk, 0, lengthBytes).then((res) => {
      res.body.on('error', () => undefined);
      return res;
    });
    response.catch(() => undefined);
    return {
      index, order, response,
      discard() {
        response.then((res) => dropBody(res.body), () => undefined);
      },
    };
  }

  /** Asks one replica for chunk bytes `offset` to `end` (exclusive); resolves once its answer starts. */
  private async openChunkRead(replica: ReplicaInfo, chunk: ChunkInfo, offset: number, end: number): Promise<Dispatcher.ResponseData> {
    const url = routeUrl(replica.addr, CHUNKS.read, { handle: chunk.handle }, { version: chunk.version, offset, length: end - offset });
    const reqId = outgoingRequestId(); // the operation's (common/request-id.ts)
    const startMs = performance.now();
    const res = await request(url, {
      method: 'GET', dispatcher: httpAgent(), highWaterMark: READ_AHEAD_BUFFER_BYTES, signal: AbortSignal.timeout(this.chunkTimeoutMs),
      headers: { [CHUNK_TOKEN_HEADER]: chunk.token, [REQUEST_ID_HEADER]: reqId },
    }).catch((err) => {
      traceCall({ method: 'GET', target: url.replace(/^[a-z]+:\/\//, ''), status: 0, ms: performance.now() - startMs, requestId: reqId });
      throw toDfsError(err, `read from ${replica.addr}`);
    });
    traceCall({ method: 'GET', target: url.replace(/^[a-z]+:\/\//, ''), status: res.statusCode, ms: performance.now() - startMs, requestId: replyRequestId(res.headers, reqId) });
    if (res.statusCode !== 200) throw errorFromBody(await readJson(res.body).catch(() => undefined), res.statusCode);
    return res;
  }

  /** Copies a chunk read's body into `sink` as it arrives, pausing while the sink is full. */
  private async copyBody(res: Dispatcher.ResponseData, replica: ReplicaInfo, sink: Writable, onBytes: (n: number) => void): Promise<void> {
    try {
      await pump(res.body, sink, onBytes);
    } catch (err) {
      dropBody(res.body);
      throw toDfsError(err, `read from ${replica.addr}`);
    }
  }

  // ---- ranged read (S3 gateway, Node API) ----

  /**
   * Streams bytes `start` to `end` (exclusive) of a complete file to `sink`, failing over between
   * replicas and resuming a chunk where a failed replica left off. Chunk boundaries come from the
   * chunks' own lengths (a concatenated file's chunks may be shorter than the chunk size anywhere).
   * `known` (a stat with chunks) pins the file version read: the headers a caller sent already
   * describe it. Resolves with the stat it read from.
   */
  async getRange(path: string, sink: Writable, start: number, end: number, known?: StatReply): Promise<StatReply> {
    const info = known?.chunks ? known : await this.meta.stat(path, true);
    if (info.type === 'dir') throw new DfsError('IS_A_DIRECTORY', `${info.path} is a directory`);
    if (info.state !== 'complete') throw new DfsError('FILE_NOT_READY', `${info.path} is still being written; it is readable once its writer completes it`);
    if (!(start >= 0 && start <= end && end <= info.size)) throw new DfsError('INVALID_ARGUMENT', `range ${start}-${end} is outside ${info.path} (${info.size} bytes)`);
    if (info.inline) {
      if (end > start) sink.write((await inlineBytes(info)).subarray(start, end));
      return info;
    }
    let chunkStart = 0;
    // The stat whose read tokens are in use: one refreshed for an expired token serves the rest.
    let current = info;
    // Read-ahead as get's: the next chunk's part of the range is asked for while this one streams.
    let early: EarlyRead | undefined;
    try {
      for (const [i, chunk] of info.chunks!.entries()) {
        const chunkEnd = chunkStart + chunk.length;
        if (chunkEnd > start && chunkStart < end) {
          const first = early?.index === i ? early : undefined;
          early = undefined;
          // `using`: the stat whose token just opened this chunk (a fresh one after an expired token).
          const readNext = (busyId: string, using: StatReply) => {
            const following = chunkEnd < end ? using.chunks![i + 1] : undefined;
            if (!early && following) early = this.readEarly(i + 1, following, busyId, Math.min(end - chunkEnd, following.length));
          };
          current = await this.readChunkRange(current, i, Math.max(start, chunkStart) - chunkStart, Math.min(end, chunkEnd) - chunkStart, sink, { first, onOpened: readNext });
        }
        chunkStart = chunkEnd;
        if (chunkStart >= end) break;
      }
    } finally {
      early?.discard();
    }
    return info;
  }

  /**
   * Copies bytes `from` to `to` (exclusive) of chunk `i` of `info` to `sink`, from any replica
   * that has them (`first`: a read of them asked for early; `onOpened`: told the replica once
   * one answers). Resolves with the stat whose token read it: `info`, or a fresh one.
   */
  private async readChunkRange(
    info: StatReply, i: number, from: number, to: number, sink: Writable, o: { first?: EarlyRead; onOpened?: (replicaId: string, using: StatReply) => void } = {},
  ): Promise<StatReply> {
    let chunk = info.chunks![i]!;
    let done = from;
    const errors: string[] = [];
    // A refused token (expired since the stat) is refused by every replica alike: stat again, once.
    for (let attempt = 0; attempt < 2; attempt++) {
      let refused = false;
      const first = attempt === 0 ? o.first : undefined;
      for (const [k, replica] of (first ? first.order : this.orderReplicas(chunk.replicas)).entries()) {
        try {
          const res = first && k === 0 ? await first.response : await this.openChunkRead(replica, chunk, done, to);
          o.onOpened?.(replica.id, info);
          await this.copyBody(res, replica, sink, (n) => (done += n));
          if (done === to) return info;
          throw new DfsError('UNAVAILABLE', `read ended after ${done - from} of ${to - from} bytes`);
        } catch (err) {
          // A sink that is gone (the reader hung up) is not a replica's fault: stop at once.
          if (sink.destroyed) throw toDfsError(err, `read from ${replica.addr}`);
          const e = toDfsError(err);
          errors.push(`${replica.id}: ${e.message}`);
          this.meta.reportUnreachable(replica.addr, e);
          if (isChunkTokenRefusal(e.code)) {
            refused = true;
            break;
          }
        }
      }
      if (!refused || attempt > 0) break;
      info = await this.restat(info);
      chunk = info.chunks![i]!;
    }
    throw new DfsError(chunk.replicas.length === 0 ? 'NO_REPLICAS' : 'UNAVAILABLE',
      `chunk ${chunk.index} of ${info.path} (handle ${chunk.handle}) could not be read from any replica${errors.length ? `: ${errors.join('; ')}` : ' (no live replica)'}`);
  }

  /**
   * The same file version (every chunk's handle and version) from a fresh stat, with fresh read
   * tokens. A ranged read is pinned to the version it started on: a file that changed fails it.
   */
  private async restat(info: StatReply): Promise<StatReply> {
    const fresh = await this.meta.stat(info.path, true);
    const same = fresh.chunks?.length === info.chunks!.length && fresh.chunks.every((ch, k) => ch.handle === info.chunks![k]!.handle && ch.version === info.chunks![k]!.version);
    if (!same) throw new DfsError('STALE_VERSION', `${info.path} changed while it was being read; read it again`);
    return fresh;
  }
}

/**
 * An inline file's bytes from its stat (common/inline.ts), checked against their length and
 * checksum: bytes that fail are never handed on (CHECKSUM_MISMATCH).
 */
async function inlineBytes(info: StatReply): Promise<Buffer> {
  await initChecksums();
  const bytes = decodeInline(info.inline!);
  if (!bytes || bytes.length !== info.size) throw new DfsError('CHECKSUM_MISMATCH', `the inline bytes of ${info.path} fail their checksum (or are not its ${info.size} bytes); read it again`);
  return bytes;
}

/**
 * Moves `body` into `sink` with 'data' events, pausing the body while the sink is over its high
 * water mark. Unlike `for await`, nothing is concatenated when pieces queue up, and there is no
 * promise per piece. Settles when the body has ended (or failed: `finished` also sees a body that
 * failed while it waited its turn) or the sink fails; `sink` is never ended.
 */
function pump(body: Readable, sink: Writable, onBytes: (n: number) => void): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const resume = (): void => void body.resume();
    const onData = (piece: Buffer): void => {
      onBytes(piece.length);
      if (!sink.write(piece)) {
        body.pause();
        sink.once('drain', resume);
      }
    };
    const settle = (err?: Error | null): void => {
      stopWatching();
      body.off('data', onData);
      sink.off('drain', resume).off('error', settle);
      if (err) reject(err);
      else resolve();
    };
    const stopWatching = finished(body, settle);
    sink.once('error', settle);
    body.on('data', onData);
  });
}

/** Drops a response body unread; destroying it emits an abort error, which nobody needs. */
function dropBody(body: Readable): void {
  body.on('error', () => undefined);
  body.destroy();
}
