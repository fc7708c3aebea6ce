import { finished, PassThrough, type Readable, type Writable } from 'node:stream';
import { once } from 'node:events';
import { request, type Dispatcher } from 'undici';
import { CHUNK_TOKEN_HEADER } from '../common/auth.js';
import { BlockHasher, chunkChecksum, initChecksums } from '../common/checksum.js';
import { DfsError, errorFromBody, toDfsError } from '../common/errors.js';
import { buildUrl, httpAgent, readJson } from '../common/http.js';
import { LeaderClient, SESSION_HEADER } from '../common/leader.js';
import { namesDirectory, normalizePath } from '../common/paths.js';
import { LeaseRenewer } from './lease-renewer.js';
import { AUTHORIZATION_HEADER } from '../common/credentials.js';
import { findToken } from './token-source.js';
import type {
  AllocateReply, ChunkInfo, ClusterStatus, CompletedChunk, CreateEmptyReply, CreateReply, DuReply, EntryInfo, FsckReply, ListReply, RenewReply, ReplicaInfo,
  StatReply, WriteChunkReply,
} from '../common/protocol.js';

export interface ClientOptions {
  /** Pipelines tried per chunk before the upload fails: each retry excludes the nodes that failed. */
  maxChunkAttempts?: number;
  /** Time allowed for one chunk to pass through its whole pipeline. */
  chunkTimeoutMs?: number;
  /**
   * The client token sent to the masters (docs/SECURITY.md). Default: found as the CLI finds it
   * ($DFS_TOKEN, $DFS_TOKEN_FILE, ~/.config/dfs/token); none found means anonymous.
   */
  token?: string;
}

export interface PutOptions {
  overwrite?: boolean;
  /** Create missing parent directories. */
  parents?: boolean;
  replication?: number;
  onProgress?: (bytes: number) => void;
  /**
   * Something failed and is being tried again: a chunk's pipeline (says why and who is left out),
   * or a renewal of the write's lease.
   */
  onRetry?: (message: string) => void;
  /** The master completes the file only if every chunk has this many live replicas (else TOO_FEW_REPLICAS, and the write is abandoned). */
  minReplicas?: number;
  /** Every chunk is stored: each with the replicas its pipeline reached. Called just before the file is completed. */
  onStored?: (chunks: readonly CompletedChunk[]) => void;
  /**
   * Stops the upload: the write is abandoned (the path is freed at once) and put rejects with
   * INTERRUPTED, whose `abandoned` detail says whether the master confirmed it.
   */
  signal?: AbortSignal;
}

export interface GetOptions {
  onProgress?: (bytes: number, total: number) => void;
}

/** How far the client streams ahead of a slow first chunkserver before it stops reading input. */
const SEND_BUFFER_BYTES = 4 * 1024 * 1024;
/**
 * Bytes of a chunk read asked for early (while the previous chunk streams) that this process
 * buffers before its socket stops reading; more waits in the kernel's socket buffers.
 */
const READ_AHEAD_BUFFER_BYTES = 1024 * 1024;

/** The client library under the `dfs` CLI: metadata from the master, bytes straight to chunkservers. */
export class DfsClient {
  readonly master: LeaderClient;
  private readonly maxChunkAttempts: number;
  private readonly chunkTimeoutMs: number;
  private readSpread = Math.floor(Math.random() * 1024);
  /** Master sessions not in use. A mutation holds one for its whole call, retries included. */
  private readonly idleSessions: { id: string; seq: number }[] = [];
  /** Renews the leases of this client's open writes in the background. */
  private readonly leases = new LeaseRenewer({ renew: (writeIds) => this.mutate<RenewReply>('/v1/fs/renew', { writeIds }) });

  constructor(masters: string[], opts: ClientOptions = {}) {
    const token = opts.token ?? findToken();
    this.master = new LeaderClient(masters, token ? { headers: { [AUTHORIZATION_HEADER]: `Bearer ${token}` } } : {});
    this.maxChunkAttempts = opts.maxChunkAttempts ?? 5;
    this.chunkTimeoutMs = opts.chunkTimeoutMs ?? 10 * 60_000;
  }

  // ---- metadata ----

  /**
   * A mutating master call, exactly once: it carries a session id and the session's next
   * sequence number, so a retry after a timeout or a leader change gets the first answer
   * instead of being applied twice. Each call in flight uses a session of its own.
   */
  async mutate<T>(path: string, body: unknown): Promise<T> {
    const session = this.idleSessions.pop() ?? { id: (await this.master.call<{ sessionId: string }>('/v1/session', { body: {} })).sessionId, seq: 0 };
    session.seq++;
    try {
      const reply = await this.master.call<T>(path, { body, headers: { [SESSION_HEADER]: `${session.id}:${session.seq}` } });
      this.idleSessions.push(session);
      return reply;
    } catch (err) {
      // A call that failed for good may have been applied or not: its session is not reused.
      if (err instanceof DfsError && err.status >= 400 && err.status < 500 && err.code !== 'SESSION_EXPIRED') this.idleSessions.push(session);
      throw err;
    }
  }

  mkdir(path: string, parents = false): Promise<EntryInfo> {
    return this.mutate('/v1/fs/mkdir', { path: normalizePath(path), parents });
  }
  stat(path: string, chunks = false): Promise<StatReply> {
    return this.master.call('/v1/fs/stat', { query: { path: normalizePath(path), chunks: chunks ? 1 : undefined } });
  }
  list(path: string, recursive = false): Promise<ListReply> {
    return this.master.call('/v1/fs/list', { query: { path: normalizePath(path), recursive: recursive ? 1 : undefined } });
  }
  fsck(path: string, allFiles = false): Promise<FsckReply> {
    return this.master.call('/v1/fs/fsck', { query: { path: normalizePath(path), files: allFiles ? 1 : undefined } });
  }
  setReplication(path: string, replication: number, recursive = false): Promise<{ files: number }> {
    return this.mutate('/v1/fs/setrep', { path: normalizePath(path), replication, recursive });
  }
  decommission(server: string, cancel = false): Promise<{ server: string; decommissioning: string[] }> {
    return this.mutate('/v1/cluster/decommission', { server, cancel });
  }
  du(path: string, summary = false): Promise<DuReply> {
    return this.master.call('/v1/fs/du', { query: { path: normalizePath(path), summary: summary ? 1 : undefined } });
  }
  remove(path: string, recursive = false): Promise<{ files: number }> {
    return this.mutate('/v1/fs/delete', { path: normalizePath(path), recursive });
  }
  rename(src: string, dst: string): Promise<EntryInfo> {
    // A trailing '/' on dst is kept: the master then moves into an existing directory or fails.
    return this.mutate('/v1/fs/rename', { src: normalizePath(src), dst: normalizePath(dst) + (namesDirectory(dst) ? '/' : '') });
  }
  status(): Promise<ClusterStatus> {
    return this.master.call('/v1/cluster/status');
  }

  // ---- write ----

  /**
   * Streams `source` into a new file at `path`. Each chunk goes straight to the first chunkserver
   * of its pipeline. The client keeps a chunk's bytes until it is acknowledged, so a failed
   * pipeline is retried on fresh servers; while one chunk waits for its acknowledgement (every
   * replica fsyncing), the next one already streams, so at most two chunks are held. The file
   * becomes visible only on complete. An empty source makes an empty file in one master call.
   */
  async put(source: Readable, path: string, opts: PutOptions = {}): Promise<EntryInfo> {
    await initChecksums(); // blocks are hashed as they are sent; a program using the package has not loaded the hasher
    const halt = new Halt(opts.signal);
    try {
      const reader = new ChunkReader(source);
      const empty = !(await halt.race(reader.hasData()));
      const body = {
        path: normalizePath(path), overwrite: opts.overwrite ?? false, parents: opts.parents ?? false, ...(opts.replication ? { replication: opts.replication } : {}),
      };
      halt.check();
      if (empty) return (await this.mutate<CreateEmptyReply>('/v1/fs/create', { ...body, empty: true })).file;
      // Not raced: once asked for, the write must be known, so that a stop abandons it.
      const created = await this.mutate<CreateReply>('/v1/fs/create', body);
      return await this.writeFile(created, reader, halt, opts);
    } finally {
      halt.dispose();
    }
  }

  /** The body of put once the write exists: stream its chunks, then complete it, or abandon it. */
  private async writeFile(created: CreateReply, reader: ChunkReader, halt: Halt, opts: PutOptions): Promise<EntryInfo> {
    const { writeId } = created;
    reader.chunkSizeBytes = created.chunkSizeBytes;
    // However slowly the input comes, the lease stays ours while this process lives.
    this.leases.add(writeId, { leaseMs: created.leaseMs, onLost: (err) => halt.stop(err), onTrouble: opts.onRetry });
    try {
      const chunks = await halt.race(this.sendChunks(writeId, reader, halt.signal, opts));
      halt.check();
      const total = chunks.reduce((n, c) => n + c.length, 0);
      opts.onProgress?.(total);
      opts.onStored?.(chunks);
      // Complete renews the lease itself; a renewal answered meanwhile must not fail a write that finished.
      this.leases.remove(writeId);
      return await this.mutate<EntryInfo>('/v1/fs/complete', { writeId, length: total, chunks, ...(opts.minReplicas !== undefined && opts.minReplicas > 1 ? { minReplicas: opts.minReplicas } : {}) });
    } catch (err) {
      this.leases.remove(writeId);
      halt.stop(err as Error); // pipelines still open stop too
      // Free the path and the chunks now rather than when the lease expires.
      const abandoned = await this.mutate('/v1/fs/abandon', { writeId }).then(() => undefined, (e: unknown) => toDfsError(e, 'abandoning the write'));
      if (opts.signal?.aborted) {
        throw new DfsError('INTERRUPTED', abandoned && abandoned.code !== 'WRITE_NOT_FOUND'
          ? `the upload was stopped, but abandoning it failed (${abandoned.message}); ${created.path} stays being written until its lease expires (within ${Math.ceil(created.leaseMs / 1000)} s)`
          : 'the upload was stopped and abandoned; nothing was stored', { abandoned: !abandoned || abandoned.code === 'WRITE_NOT_FOUND' });
      }
      throw err;
    }
  }

  /** Streams every chunk of the input; answers them, acknowledged, in order. */
  private async sendChunks(writeId: string, reader: ChunkReader, signal: AbortSignal, opts: PutOptions): Promise<CompletedChunk[]> {
    const chunks: CompletedChunk[] = [];
    // Servers that failed this upload stay excluded for its later chunks too (as HDFS's excludedNodes).
    const exclude = new Set<string>();
    let sentBytes = 0;
    let unacked: Promise<CompletedChunk> | undefined;
    for (let index = 0; ; index++) {
      if (!(await reader.startChunk())) break;
      signal.throwIfAborted();
      const base = sentBytes;
      const { sent, stored } = this.writeChunk(writeId, index, reader, exclude, signal, (n) => opts.onProgress?.(base + n), opts.onRetry);
      stored.catch(() => undefined); // awaited below; this only keeps an early failure from going unhandled
      await Promise.race([sent, stored]);
      sentBytes += reader.lastChunkBytes;
      if (unacked) chunks.push(await unacked);
      unacked = stored;
    }
    if (unacked) chunks.push(await unacked);
    return chunks;
  }

  /**
   * Sends one chunk. `sent` resolves once every byte of it has left the input (streamed to a
   * pipeline, or read into memory after a failure), so the next chunk may start; `stored` once a
   * pipeline acknowledged it, after retries on fresh servers with the kept bytes.
   */
  private writeChunk(
    writeId: string, index: number, reader: ChunkReader, exclude: Set<string>, signal: AbortSignal, onBytes: (n: number) => void, onRetry?: (message: string) => void,
  ): { sent: Promise<void>; stored: Promise<CompletedChunk> } {
    let markSent!: () => void;
    const sent = new Promise<void>((r) => (markSent = r));
    const stored = (async () => {
      let kept: Buffer[] | undefined;
      let lastError: DfsError | undefined;
      for (let attempt = 0; attempt < this.maxChunkAttempts; attempt++) {
        signal.throwIfAborted(); // the upload stopped: no new chunk for a write being abandoned
        const alloc = await this.mutate<AllocateReply>('/v1/fs/allocate', { writeId, index, exclude: [...exclude] });
        const send = this.openPipeline(alloc, signal);
        const hasher = new BlockHasher();
        try {
          for await (const piece of kept ?? reader.pieces()) {
            hasher.update(piece);
            await send.write(piece);
            onBytes(hasher.bytes);
          }
          if (!kept) {
            kept = reader.detach();
            markSent();
          }
          const reply = await send.finish();
          const checksum = chunkChecksum(hasher.finish());
          if (reply.checksum !== checksum || reply.length !== hasher.bytes) {
            throw new DfsError('PIPELINE_FAILED', `chunk ${index} came back with another checksum`, { failed: alloc.replicas[0]!.addr });
          }
          return { handle: alloc.handle, length: reply.length, checksum, replicas: reply.replicas.map((r) => r.id) };
        } catch (err) {
          send.abort();
          // The upload stopped: no retry, so no reading on into input that may never come.
          signal.throwIfAborted();
          if (!kept) {
            // Keep reading the input to the chunk's end so a retry has every byte of it.
            await reader.drainChunk();
            kept = reader.detach();
            markSent();
          }
          const e = toDfsError(err, `writing chunk ${index}`);
          if (e.code !== 'PIPELINE_FAILED' && e.code !== 'UNAVAILABLE' && e.code !== 'TIMEOUT' && e.code !== 'UNAUTHORIZED') throw e;
          lastError = e;
          const failedAddr = typeof e.details.failed === 'string' ? e.details.failed : alloc.replicas[0]!.addr;
          const failed = alloc.replicas.find((r) => r.addr === failedAddr);
          if (failed) exclude.add(failed.id);
          onRetry?.(`chunk ${index}: ${e.message}; ${failed ? `leaving out ${failed.id} and ` : ''}trying a new pipeline`);
        }
      }
      throw new DfsError('PIPELINE_FAILED', `chunk ${index} could not be stored after ${this.maxChunkAttempts} pipelines: ${lastError?.message}`);
    })();
    return { sent, stored };
  }

  private openPipeline(alloc: AllocateReply, stop: AbortSignal): { write(b: Buffer): Promise<void>; finish(): Promise<WriteChunkReply>; abort(): void } {
    const [head, ...rest] = alloc.replicas as [ReplicaInfo, ...ReplicaInfo[]];
    const body = new PassThrough({ highWaterMark: SEND_BUFFER_BYTES });
    const ac = new AbortController();
    const url = buildUrl(head.addr, `/v1/chunks/${alloc.handle}`, { version: alloc.version, next: rest.length ? rest.map((r) => r.addr).join(',') : undefined });
    let failure: DfsError | undefined;
    const result = request(url, {
      method: 'PUT', dispatcher: httpAgent(), body,
      headers: { 'content-type': 'application/octet-stream', [CHUNK_TOKEN_HEADER]: alloc.token },
      signal: AbortSignal.any([ac.signal, stop, AbortSignal.timeout(this.chunkTimeoutMs)]),
    }).then(
      async (res) => {
        const parsed = await readJson(res.body).catch(() => undefined);
        if (res.statusCode === 200) return parsed as WriteChunkReply;
        const e = errorFromBody(parsed, res.statusCode);
        throw e.code === 'PIPELINE_FAILED' ? e : new DfsError('PIPELINE_FAILED', `${head.addr}: ${e.message}`, { failed: head.addr, cause: e.code });
      },
      (err) => {
        throw new DfsError('PIPELINE_FAILED', `${head.addr}: ${toDfsError(err).message}`, { failed: head.addr });
      },
    );
    result.catch((e: DfsError) => {
      failure = e;
      body.destroy();
    });
    return {
      async write(b) {
        if (failure) throw failure;
        if (!body.write(b)) await Promise.race([once(body, 'drain'), result.then(() => undefined)]);
        if (failure) throw failure;
      },
      async finish() {
        body.end();
        return result;
      },
      abort() {
        ac.abort();
        body.destroy();
      },
    };
  }

  // ---- read ----

  /**
   * Streams a complete file to `sink`, chunk by chunk, failing over between replicas. While one
   * chunk streams, the next one's read is already asked for (from another server where there is
   * one), so its server opens the file and reads its first batches meanwhile: no idle gap at a
   * chunk boundary. That early response waits in its socket, at most `READ_AHEAD_BUFFER_BYTES` of
   * it in this process, until its turn.
   */
  async get(path: string, sink: Writable, opts: GetOptions = {}): Promise<StatReply> {
    let info = await this.stat(path, true);
    if (info.type === 'dir') throw new DfsError('IS_A_DIRECTORY', `${info.path} is a directory`);
    if (info.state !== 'complete') throw new DfsError('FILE_NOT_READY', `${info.path} is still being written; it is readable once its writer completes it`);
    let delivered = 0;
    let early: EarlyRead | undefined;
    try {
      for (let i = 0; i < info.chunks!.length; i++) {
        let chunk = info.chunks![i]!;
        let written = 0;
        const started = early?.index === i ? early : undefined;
        early = undefined;
        // One refresh of the locations when every known replica failed: they may have moved.
        // And one when a replica refused the read token (it expired during a long download):
        // every replica would refuse it alike, so the file is stat'ed again at once.
        let tokenRefreshed = false;
        for (let round = 0, attempt = 0; ; attempt++) {
          const errors: string[] = [];
          let refused = false;
          const order = started && attempt === 0 ? started.order : this.orderReplicas(chunk.replicas);
          for (const [k, replica] of order.entries()) {
            try {
              const res = started && attempt === 0 && k === 0 ? await started.response : await this.openChunkRead(replica, chunk, written);
              const following = info.chunks![i + 1];
              if (!early && following) early = this.readEarly(i + 1, following, replica.id);
              await this.copyBody(res, replica, sink, (n) => {
                written += n;
                opts.onProgress?.(delivered + written, info.size);
              });
              break;
            } catch (err) {
              const e = toDfsError(err);
              errors.push(`${replica.id}: ${e.message}`);
              if (e.code === 'UNAUTHORIZED' && !tokenRefreshed) {
                refused = true;
                break;
              }
            }
          }
          if (written === chunk.length) break;
          if (refused) {
            tokenRefreshed = true;
            info = await this.stat(path, true);
            chunk = info.chunks?.[i] ?? chunk;
            continue;
          }
          if (round++ >= 1) {
            throw new DfsError(chunk.replicas.length === 0 ? 'NO_REPLICAS' : 'UNAVAILABLE',
              `chunk ${i} of ${info.path} (handle ${chunk.handle}) could not be read from any replica${errors.length ? `: ${errors.join('; ')}` : ' (no live replica)'}`);
          }
          await new Promise((r) => setTimeout(r, 500));
          info = await this.stat(path, true);
          chunk = info.chunks?.[i] ?? chunk;
        }
        delivered += chunk.length;
      }
    } finally {
      early?.discard();
    }
    return info;
  }

  private orderReplicas(replicas: ReplicaInfo[]): ReplicaInfo[] {
    if (replicas.length === 0) return replicas;
    const k = this.readSpread++ % replicas.length;
    return [...replicas.slice(k), ...replicas.slice(0, k)];
  }

  /** Starts chunk `index`'s read before its turn, from a replica other than `busyId` if it has one. */
  private readEarly(index: number, chunk: ChunkInfo, busyId: string): EarlyRead | undefined {
    const order = this.orderReplicas(chunk.replicas);
    if (order.length === 0 || chunk.length === 0) return undefined;
    if (order.length > 1 && order[0]!.id === busyId) order.push(order.shift()!);
    // Until its turn nobody listens: a failure then must neither go unhandled nor throw (an
    // 'error' event without a listener); pump() still sees a body that failed while it waited.
    const response = this.openChunkRead(order[0]!, chunk, 0).then((res) => {
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

  /** Asks one replica for chunk bytes from `offset` to its end; resolves once its answer starts. */
  private async openChunkRead(replica: ReplicaInfo, chunk: ChunkInfo, offset: number): Promise<Dispatcher.ResponseData> {
    const url = buildUrl(replica.addr, `/v1/chunks/${chunk.handle}`, { version: chunk.version, offset, length: chunk.length - offset });
    const res = await request(url, {
      method: 'GET', dispatcher: httpAgent(), highWaterMark: READ_AHEAD_BUFFER_BYTES, signal: AbortSignal.timeout(this.chunkTimeoutMs),
      headers: { [CHUNK_TOKEN_HEADER]: chunk.token },
    }).catch((err) => {
      throw toDfsError(err, `read from ${replica.addr}`);
    });
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

  // ---- ranged read and concat (S3 gateway, Node API) ----

  /**
   * Streams bytes `start` to `end` (exclusive) of a complete file to `sink`, failing over between
   * replicas and resuming a chunk where a failed replica left off. Chunk boundaries come from the
   * chunks' own lengths (a concatenated file's chunks may be shorter than the chunk size anywhere).
   * `known` (a stat with chunks) pins the file version read: the headers a caller sent already
   * describe it. Resolves with the stat it read from.
   */
  async getRange(path: string, sink: Writable, start: number, end: number, known?: StatReply): Promise<StatReply> {
    const info = known?.chunks ? known : await this.stat(path, true);
    if (info.type === 'dir') throw new DfsError('IS_A_DIRECTORY', `${info.path} is a directory`);
    if (info.state !== 'complete') throw new DfsError('FILE_NOT_READY', `${info.path} is still being written; it is readable once its writer completes it`);
    if (!(start >= 0 && start <= end && end <= info.size)) throw new DfsError('INVALID_ARGUMENT', `range ${start}-${end} is outside ${info.path} (${info.size} bytes)`);
    let chunkStart = 0;
    // The stat whose read tokens are in use: one refreshed for an expired token serves the rest.
    let current = info;
    for (const [i, chunk] of info.chunks!.entries()) {
      const chunkEnd = chunkStart + chunk.length;
      if (chunkEnd > start && chunkStart < end) {
        current = await this.readChunkRange(current, i, Math.max(start, chunkStart) - chunkStart, Math.min(end, chunkEnd) - chunkStart, sink);
      }
      chunkStart = chunkEnd;
      if (chunkStart >= end) break;
    }
    return info;
  }

  /**
   * Copies bytes `from` to `to` (exclusive) of chunk `i` of `info` to `sink`, from any replica
   * that has them. Resolves with the stat whose token read it: `info`, or a fresh one.
   */
  private async readChunkRange(info: StatReply, i: number, from: number, to: number, sink: Writable): Promise<StatReply> {
    let chunk = info.chunks![i]!;
    let done = from;
    const errors: string[] = [];
    // A refused token (expired since the stat) is refused by every replica alike: stat again, once.
    for (let attempt = 0; attempt < 2; attempt++) {
      let refused = false;
      for (const replica of this.orderReplicas(chunk.replicas)) {
        const url = buildUrl(replica.addr, `/v1/chunks/${chunk.handle}`, { version: chunk.version, offset: done, length: to - done });
        try {
          const res = await request(url, {
            method: 'GET', dispatcher: httpAgent(), highWaterMark: READ_AHEAD_BUFFER_BYTES, signal: AbortSignal.timeout(this.chunkTimeoutMs),
            headers: { [CHUNK_TOKEN_HEADER]: chunk.token },
          });
          if (res.statusCode !== 200) throw errorFromBody(await readJson(res.body).catch(() => undefined), res.statusCode);
          try {
            await pump(res.body, sink, (n) => (done += n));
          } catch (err) {
            dropBody(res.body);
            throw err;
          }
          if (done === to) return info;
          throw new DfsError('UNAVAILABLE', `read ended after ${done - from} of ${to - from} bytes`);
        } catch (err) {
          // A sink that is gone (the reader hung up) is not a replica's fault: stop at once.
          if (sink.destroyed) throw toDfsError(err, `read from ${replica.addr}`);
          const e = toDfsError(err);
          errors.push(`${replica.id}: ${e.message}`);
          if (e.code === 'UNAUTHORIZED') {
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
    const fresh = await this.stat(info.path, true);
    const same = fresh.chunks?.length === info.chunks!.length && fresh.chunks.every((ch, k) => ch.handle === info.chunks![k]!.handle && ch.version === info.chunks![k]!.version);
    if (!same) throw new DfsError('STALE_VERSION', `${info.path} changed while it was being read; read it again`);
    return fresh;
  }

  /** Joins complete files into `target` by their chunk lists, moving no bytes (the master's concat); the sources go. */
  concat(sources: string[], target: string, overwrite = false): Promise<EntryInfo> {
    return this.mutate('/v1/fs/concat', { sources: sources.map((p) => normalizePath(p)), target: normalizePath(target), overwrite });
  }

}

/**
 * Why a put stops early: its caller aborted it, or the master dropped its write. Work raced
 * against it is given up at once (it finishes on its own, its pipelines aborted by `signal`).
 */
class Halt {
  private readonly ac = new AbortController();
  private readonly halted: Promise<never>;
  private readonly onOuterAbort: () => void;

  constructor(private readonly outer?: AbortSignal) {
    this.halted = new Promise<never>((_, reject) => this.ac.signal.addEventListener('abort', () => reject(this.ac.signal.reason), { once: true }));
    this.halted.catch(() => undefined); // raced, or never awaited
    this.onOuterAbort = () => this.stop(new DfsError('INTERRUPTED', 'the upload was stopped'));
    if (outer?.aborted) this.onOuterAbort();
    else outer?.addEventListener('abort', this.onOuterAbort, { once: true });
  }

  get signal(): AbortSignal {
    return this.ac.signal;
  }

  stop(reason: Error): void {
    if (!this.ac.signal.aborted) this.ac.abort(reason);
  }

  /** Throws why the put stopped, if it did. */
  check(): void {
    this.ac.signal.throwIfAborted();
  }

  race<T>(work: Promise<T>): Promise<T> {
    return Promise.race([work, this.halted]);
  }

  dispose(): void {
    this.outer?.removeEventListener('abort', this.onOuterAbort);
  }
}

/** A chunk's read asked for before its turn (see DfsClient.get). */
interface EarlyRead {
  index: number;
  /** Replicas to try, the one already asked first. */
  order: ReplicaInfo[];
  response: Promise<Dispatcher.ResponseData>;
  /** Drops the read unused (the download failed before its turn). */
  discard(): void;
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

/**
 * Cuts an input stream into chunk-sized pieces and keeps the current chunk's bytes (and no more)
 * so that a failed pipeline can be retried.
 */
class ChunkReader {
  private readonly it: AsyncIterator<Buffer>;
  private carry: Buffer | undefined;
  private keptPieces: Buffer[] = [];
  private keptBytes = 0;
  private ended = false;
  /** Size of the chunk last handed over by detach(). */
  lastChunkBytes = 0;
  /** Set once the master has said (the first byte is read before the file is created). */
  chunkSizeBytes = 0;

  constructor(source: Readable) {
    this.it = (source[Symbol.asyncIterator]() as AsyncIterator<Buffer | string>) as AsyncIterator<Buffer>;
  }

  /** Whether the input has any byte at all; what it read is kept for the first chunk. */
  async hasData(): Promise<boolean> {
    for (;;) {
      const p = await this.pull();
      if (!p) return false;
      if (p.length > 0) {
        this.carry = p;
        return true;
      }
    }
  }

  private async pull(): Promise<Buffer | undefined> {
    if (this.carry) {
      const c = this.carry;
      this.carry = undefined;
      return c;
    }
    if (this.ended) return undefined;
    const r = await this.it.next();
    if (r.done) {
      this.ended = true;
      return undefined;
    }
    return typeof r.value === 'string' ? Buffer.from(r.value) : r.value;
  }

  /** Starts the next chunk with its first bytes; false at the end of input. */
  async startChunk(): Promise<boolean> {
    if (!(await this.hasData())) return false;
    const first = this.carry!;
    this.carry = undefined;
    this.take(first);
    return true;
  }

  /** Takes the next piece of the current chunk, split at the chunk boundary, and keeps it. */
  private take(p: Buffer): Buffer {
    const room = this.chunkSizeBytes - this.keptBytes;
    if (p.length > room) {
      this.carry = p.subarray(room);
      p = p.subarray(0, room);
    }
    this.keptPieces.push(p);
    this.keptBytes += p.length;
    return p;
  }

  /** The current chunk's bytes: those kept so far, then more from the input as they arrive. */
  async *pieces(): AsyncGenerator<Buffer> {
    for (let i = 0; i < this.keptPieces.length; i++) yield this.keptPieces[i]!;
    while (this.keptBytes < this.chunkSizeBytes) {
      const p = await this.pull();
      if (!p) return;
      yield this.take(p);
    }
  }

  /** Reads the rest of the current chunk into memory (after a failed attempt), for the retry. */
  async drainChunk(): Promise<void> {
    while (this.keptBytes < this.chunkSizeBytes) {
      const p = await this.pull();
      if (!p) return;
      this.take(p);
    }
  }

  /** Hands over the current chunk's bytes (for retries) and makes room for the next chunk. */
  detach(): Buffer[] {
    const pieces = this.keptPieces;
    this.lastChunkBytes = this.keptBytes;
    this.keptPieces = [];
    this.keptBytes = 0;
    return pieces;
  }
}
