import { Readable } from 'node:stream';
import { isChunkTokenRefusal } from '../common/auth.js';
import { BlockHasher, chunkChecksum, initChecksums } from '../common/checksum.js';
import { ChunkPut } from '../common/chunk-put.js';
import { DfsError, toDfsError } from '../common/errors.js';
import { normalizePath } from '../common/paths.js';
import { FS } from '../common/contract/index.js';
import type { AllocateReply, AppendReply, CompletedChunk, CreateReply, CreateRequest, EntryInfo } from '../common/protocol.js';
import { fillLastChunk } from './client-append.js';
import { decodeInline, inlineBody } from '../common/inline.js';
import { ChunkInput } from './client-input.js';
import type { MetaClient } from './client-meta.js';
import { LeaseRenewer } from './lease-renewer.js';

export interface PutOptions {
  overwrite?: boolean;
  /** Create missing parent directories. */
  parents?: boolean;
  replication?: number;
  /** The source's size when known (a local file): the master checks quotas against it at create, before a chunk is written. */
  sizeBytes?: number;
  onProgress?: (bytes: number) => void;
  /**
   * Something failed and is being tried again: a chunk's pipeline (says why and who is left out),
   * or a renewal of the write's lease.
   */
  onRetry?: (message: string) => void;
  /** The master completes the file only if every chunk has this many live replicas (else TOO_FEW_REPLICAS, and the write is abandoned). */
  minReplicas?: number;
  /**
   * false: always write chunks, never send the file inline in its create (a file concat will
   * join, as an S3 multipart part). Default: a file within the leader's inline limit goes inline.
   */
  inline?: boolean;
  /** Every chunk is stored: each with the replicas its pipeline reached. Called just before the file is completed. */
  onStored?: (chunks: readonly CompletedChunk[]) => void;
  /**
   * Stops the upload: the write is abandoned (the path is freed at once) and put rejects with
   * INTERRUPTED, whose `abandoned` detail says whether the master confirmed it.
   */
  signal?: AbortSignal;
}

export interface UploadLimits {
  /** Pipelines tried per chunk before the upload fails: each retry excludes the nodes that failed. */
  maxChunkAttempts: number;
  /** Time allowed for one chunk to pass through its whole pipeline. */
  chunkTimeoutMs: number;
  /** The writer's rack, sent with each allocate: the chunk's first replica goes there when it can. */
  rack?: string;
}

/** One chunk of an upload: where it belongs, where its bytes come from, and whom to tell. */
interface ChunkJob {
  writeId: string;
  index: number;
  input: ChunkInput;
  /** Servers that failed this upload: left out of its later pipelines too (as HDFS's excludedNodes). */
  exclude: Set<string>;
  signal: AbortSignal;
  onBytes: (n: number) => void;
  onRetry?: (message: string) => void;
  /** Where the first attempt goes, when the master allocated the chunk already (a create's chunk 0). */
  allocated?: AllocateReply;
}

/** A chunk's bytes once they have all left the input, kept for retries; `markSent` lets the next chunk start. */
interface ChunkBytes { kept?: Buffer[]; markSent: () => void }

/**
 * A create's reply as the call asked for it: an open write, or (with `empty`) the file. Both fit
 * the contract's reply; the other one here is a server that ignored `empty`.
 */
function createdAs<K extends 'write' | 'file'>(want: K, reply: CreateReply | { file: EntryInfo }): K extends 'file' ? { file: EntryInfo } : CreateReply {
  if (('file' in reply) !== (want === 'file')) throw new DfsError('BAD_REPLY', `POST ${FS.create.path}: the master answered ${want === 'file' ? 'an open write' : 'a complete file'} to a create that asked for ${want === 'file' ? 'an empty file' : 'a write'}`);
  return reply as K extends 'file' ? { file: EntryInfo } : CreateReply;
}

/** Uploads: a file's chunks streamed straight to chunkserver pipelines, retried on fresh servers. */
export class Uploader {
  /** Renews the leases of this client's open writes in the background. */
  private readonly leases: LeaseRenewer;
  /** Whether a create asks for its chunk 0 too (createWrite): until a master says it does not know how. */
  private createAllocates = true;

  constructor(private readonly meta: MetaClient, private readonly limits: UploadLimits) {
    this.leases = new LeaseRenewer({ renew: (writeIds) => meta.mutate(FS.renew, { writeIds }) });
  }

  /**
   * Streams `source` into a new file at `path`. Each chunk goes straight to the first chunkserver
   * of its pipeline. The client keeps a chunk's bytes until it is acknowledged, so a failed
   * pipeline is retried on fresh servers; while one chunk waits for its acknowledgement (every
   * replica fsyncing), the next one already streams, so at most two chunks are held. The file
   * becomes visible only on complete. An empty source makes an empty file in one master call.
   * `source` may be bytes in memory, read as they are (keep them unchanged until this resolves).
   */
  async put(source: Readable | Uint8Array, path: string, opts: PutOptions = {}): Promise<EntryInfo> {
    await initChecksums(); // blocks are hashed as they are sent; a program using the package has not loaded the hasher
    const halt = new Halt(opts.signal);
    try {
      const input = new ChunkInput(source);
      // Bytes in memory are known at once; a stream is read until its first byte (or its end).
      const empty = source instanceof Uint8Array ? source.byteLength === 0 : !(await halt.race(input.hasData()));
      const body = {
        path: normalizePath(path), overwrite: opts.overwrite ?? false, parents: opts.parents ?? false, ...(opts.replication ? { replication: opts.replication } : {}),
      };
      halt.check();
      if (empty) return createdAs('file', await this.meta.mutate(FS.create, { ...body, empty: true })).file;
      const inline = await this.putInline(input, body, halt, opts);
      if (inline) return inline;
      // Not raced: once asked for, the write must be known, so that a stop abandons it.
      const created = createdAs('write', await this.createWrite({ ...body, ...(opts.sizeBytes !== undefined ? { expectedBytes: opts.sizeBytes } : {}) }));
      return await this.writeFile(created, input, halt, opts);
    } finally {
      halt.dispose();
    }
  }

  /**
   * Opens a write with its chunk 0 allocated in the same call (CreateRequest.allocate). A master
   * from before that field refuses it (INVALID_ARGUMENT naming it, before anything happens): then,
   * and from then on, the create alone, and chunk 0 is allocated as any chunk.
   */
  private async createWrite(body: Omit<CreateRequest, 'overwrite' | 'parents' | 'empty'> & { overwrite: boolean; parents: boolean }): Promise<CreateReply | { file: EntryInfo }> {
    if (!this.createAllocates) return this.meta.mutate(FS.create, body);
    try {
      return await this.meta.mutate(FS.create, { ...body, allocate: this.limits.rack !== undefined ? { rack: this.limits.rack } : {} });
    } catch (err) {
      // zod's word for a key a strict schema does not know (master/ parseInput passes it on).
      if (!(err instanceof DfsError) || err.code !== 'INVALID_ARGUMENT' || !/Unrecognized keys?: .*"allocate"/.test(err.message)) throw err;
      this.createAllocates = false;
      return this.meta.mutate(FS.create, body);
    }
  }

  /**
   * A small file in one master call: when the whole input fits the leader's inline limit, its
   * bytes and checksum go in the create (common/inline.ts) and the file is complete at once, with
   * no chunkserver involved. Undefined when it does not fit, or the leader refused it
   * (INLINE_REFUSED: off, too large, the namespace's cap reached): the caller writes chunks, and
   * the input still holds every byte read here.
   */
  private async putInline(input: ChunkInput, body: { path: string; overwrite: boolean; parents: boolean; replication?: number }, halt: Halt, opts: PutOptions): Promise<EntryInfo | undefined> {
    if (opts.inline === false) return undefined;
    const max = await halt.race(this.meta.inlineMaxBytes());
    if (max === 0 || (opts.sizeBytes !== undefined && opts.sizeBytes > max)) return undefined;
    const bytes = await halt.race(input.readWhole(max));
    halt.check();
    if (!bytes) return undefined;
    try {
      const file = createdAs('file', await this.meta.mutate(FS.create, { ...body, inline: inlineBody(bytes) })).file;
      opts.onProgress?.(bytes.length);
      return file;
    } catch (err) {
      if (!(err instanceof DfsError) || err.code !== 'INLINE_REFUSED') throw err;
      this.meta.learnInlineRefusal(err);
      return undefined;
    }
  }

  /**
   * Adds `source`'s bytes to the end of the complete file at `path`, holding the file's lease
   * meanwhile (one appender at a time): the last chunk is filled first (cli/client-append.ts),
   * then new chunks are streamed as put's are. Readers see the new length only once complete
   * succeeds; a failed append is abandoned and leaves the file as it was. Options as put's
   * (`overwrite`, `parents` and `replication` do not apply: the file has its own).
   */
  async append(source: Readable | Uint8Array, path: string, opts: PutOptions = {}): Promise<EntryInfo> {
    await initChecksums();
    const halt = new Halt(opts.signal);
    try {
      const input = new ChunkInput(source);
      await halt.race(input.hasData()); // an empty input still opens and completes: the path is checked as for any append
      halt.check();
      const opened = await this.meta.mutate(FS.append, { path: normalizePath(path), ...(opts.sizeBytes !== undefined ? { expectedBytes: opts.sizeBytes } : {}) });
      const inline = await this.inlinePrefix(opened);
      if (inline) input.unshift(inline);
      return await this.writeFile(opened, input, halt, opts, opened);
    } finally {
      halt.dispose();
    }
  }

  /**
   * One record append (cli/client-records.ts): the master picks the record's place when it opens
   * the append (after `pad` zeros when the record does not fit in the last chunk's room), and the
   * padding and the framed record go as that append's bytes. Answers the file and the offset.
   */
  async appendRecord(frame: Buffer, path: string, opts: PutOptions = {}): Promise<{ file: EntryInfo; offset: number }> {
    await initChecksums();
    const halt = new Halt(opts.signal);
    try {
      const opened = await this.meta.mutate(FS.append, { path: normalizePath(path), record: frame.length });
      const place = opened.record;
      if (!place) {
        await this.meta.mutate(FS.abandon, { writeId: opened.writeId }).catch(() => undefined);
        throw new DfsError('INTERNAL', 'the master opened a record append without saying where the record goes; it was abandoned');
      }
      const inline = await this.inlinePrefix(opened);
      const input = new ChunkInput(Readable.from([...(inline ? [inline] : []), ...(place.pad > 0 ? [Buffer.alloc(place.pad)] : []), frame]));
      return { file: await this.writeFile(opened, input, halt, opts, opened), offset: place.offset };
    } finally {
      halt.dispose();
    }
  }

  /**
   * An append opened on an inline file: its bytes, checked against their checksum, which the
   * append writes again before the appended ones, so the file becomes one of chunks. Bytes that
   * fail their checksum are never written: the append is abandoned.
   */
  private async inlinePrefix(opened: AppendReply): Promise<Buffer | undefined> {
    if (!opened.inline) return undefined;
    const bytes = decodeInline(opened.inline);
    if (bytes) return bytes;
    await this.meta.mutate(FS.abandon, { writeId: opened.writeId }).catch(() => undefined);
    throw new DfsError('CHECKSUM_MISMATCH', `the inline bytes of ${opened.path} the master sent fail their checksum; nothing was appended`);
  }

  /** The body of put (and append) once the write exists: stream its chunks, then complete it, or abandon it. */
  private async writeFile(created: CreateReply, input: ChunkInput, halt: Halt, opts: PutOptions, append?: AppendReply): Promise<EntryInfo> {
    const { writeId } = created;
    input.chunkSizeBytes = created.chunkSizeBytes;
    // However slowly the input comes, the lease stays ours while this process lives.
    this.leases.add(writeId, { leaseMs: created.leaseMs, onLost: (err) => halt.stop(err), onTrouble: opts.onRetry });
    try {
      const last = append?.fill && (await halt.race(input.hasData())) ? await halt.race(this.fill(append, input, halt.signal, opts)) : undefined;
      const filled = last ? last.length - append!.fill!.offset : 0;
      const chunks = await halt.race(this.sendChunks(writeId, input, halt.signal, opts, filled, created.first));
      halt.check();
      const total = chunks.reduce((n, c) => n + c.length, filled);
      opts.onProgress?.(total);
      opts.onStored?.(last ? [last, ...chunks] : chunks);
      // Complete renews the lease itself; a renewal answered meanwhile must not fail a write that finished.
      this.leases.remove(writeId);
      return await this.meta.mutate(FS.complete, {
        // An inline file's bytes are in the new chunks (inlinePrefix): they are in `total` already.
        writeId, length: (append && !append.inline ? append.size : 0) + total, chunks, ...(last ? { last } : {}), ...(opts.minReplicas !== undefined && opts.minReplicas > 1 ? { minReplicas: opts.minReplicas } : {}),
      });
    } catch (err) {
      this.leases.remove(writeId);
      halt.stop(err as Error); // pipelines still open stop too
      // Free the path and the chunks now rather than when the lease expires.
      const abandoned = await this.meta.mutate(FS.abandon, { writeId }).then(() => undefined, (e: unknown) => toDfsError(e, 'abandoning the write'));
      if (opts.signal?.aborted) {
        throw new DfsError('INTERRUPTED', abandoned && abandoned.code !== 'WRITE_NOT_FOUND'
          ? `the upload was stopped, but abandoning it failed (${abandoned.message}); ${created.path} stays being written until its lease expires (within ${Math.ceil(created.leaseMs / 1000)} s)`
          : 'the upload was stopped and abandoned; nothing was stored', { abandoned: !abandoned || abandoned.code === 'WRITE_NOT_FOUND' });
      }
      throw err;
    }
  }

  /** An append's first bytes into the file's last chunk (see fillLastChunk). */
  private fill(append: AppendReply, input: ChunkInput, signal: AbortSignal, opts: PutOptions): Promise<CompletedChunk> {
    return fillLastChunk({
      fill: append.fill!, chunkSizeBytes: append.chunkSizeBytes, input, signal, timeoutMs: this.limits.chunkTimeoutMs, maxAttempts: this.limits.maxChunkAttempts,
      onBytes: (n) => opts.onProgress?.(n), onRetry: opts.onRetry, reportUnreachable: (addr, err) => this.meta.reportUnreachable(addr, err),
    });
  }

  /**
   * Streams every chunk of the input; answers them, acknowledged, in order. `sentBytes`: bytes the
   * progress counts before them. `first`: chunk 0's allocation, made with the create.
   */
  private async sendChunks(writeId: string, input: ChunkInput, signal: AbortSignal, opts: PutOptions, sentBytes = 0, first?: AllocateReply): Promise<CompletedChunk[]> {
    const chunks: CompletedChunk[] = [];
    const exclude = new Set<string>();
    let unacked: Promise<CompletedChunk> | undefined;
    for (let index = 0; ; index++) {
      if (!(await input.startChunk())) break;
      signal.throwIfAborted();
      const base = sentBytes;
      const { sent, stored } = this.writeChunk({ writeId, index, input, exclude, signal, onBytes: (n) => opts.onProgress?.(base + n), onRetry: opts.onRetry, ...(index === 0 && first ? { allocated: first } : {}) });
      stored.catch(() => undefined); // awaited below; this only keeps an early failure from going unhandled
      await Promise.race([sent, stored]);
      sentBytes += input.lastChunkBytes;
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
  private writeChunk(job: ChunkJob): { sent: Promise<void>; stored: Promise<CompletedChunk> } {
    let markSent!: () => void;
    const sent = new Promise<void>((r) => (markSent = r));
    const bytes: ChunkBytes = { markSent };
    const stored = (async () => {
      let lastError: DfsError | undefined;
      for (let attempt = 0; attempt < this.limits.maxChunkAttempts; attempt++) {
        job.signal.throwIfAborted(); // the upload stopped: no new chunk for a write being abandoned
        const alloc = attempt === 0 && job.allocated ? job.allocated : await this.meta.mutate(FS.allocate, {
          writeId: job.writeId, index: job.index, exclude: [...job.exclude], ...(this.limits.rack !== undefined ? { rack: this.limits.rack } : {}), // rack rule
        });
        try {
          return await this.sendToPipeline(job, alloc, bytes);
        } catch (err) {
          lastError = await this.afterFailedPipeline(job, alloc, bytes, err);
        }
      }
      throw new DfsError('PIPELINE_FAILED', `chunk ${job.index} could not be stored after ${this.limits.maxChunkAttempts} pipelines: ${lastError?.message}`);
    })();
    return { sent, stored };
  }

  /** One attempt: the chunk's bytes (kept ones, or from the input as they come) through the pipeline `alloc` names. */
  private async sendToPipeline(job: ChunkJob, alloc: AllocateReply, bytes: ChunkBytes): Promise<CompletedChunk> {
    const send = new ChunkPut({
      pipeline: alloc.replicas.map((r) => r.addr), handle: alloc.handle, version: alloc.version, token: alloc.token,
      timeoutMs: this.limits.chunkTimeoutMs, signal: job.signal,
    });
    const hasher = new BlockHasher();
    try {
      for await (const piece of bytes.kept ?? job.input.pieces()) {
        hasher.update(piece);
        await send.write(piece);
        job.onBytes(hasher.bytes);
      }
      if (!bytes.kept) {
        bytes.kept = job.input.detach();
        bytes.markSent();
      }
      send.end();
      const reply = await send.result;
      const checksum = chunkChecksum(hasher.finish());
      if (reply.checksum !== checksum || reply.length !== hasher.bytes) {
        throw new DfsError('PIPELINE_FAILED', `chunk ${job.index} came back with another checksum`, { failed: alloc.replicas[0]!.addr });
      }
      const receipts = reply.replicas.flatMap((r) => (typeof r.receipt === 'string' ? [r.receipt] : []));
      return { handle: alloc.handle, length: reply.length, checksum, replicas: reply.replicas.map((r) => r.id), receipts };
    } catch (err) {
      send.abort();
      throw err;
    }
  }

  /** After a failed attempt: keep the chunk's bytes, leave the failed node out, and say why; throws what is not worth a retry. */
  private async afterFailedPipeline(job: ChunkJob, alloc: AllocateReply, bytes: ChunkBytes, err: unknown): Promise<DfsError> {
    // The upload stopped: no retry, so no reading on into input that may never come.
    job.signal.throwIfAborted();
    if (!bytes.kept) {
      // Keep reading the input to the chunk's end so a retry has every byte of it.
      await job.input.drainChunk();
      bytes.kept = job.input.detach();
      bytes.markSent();
    }
    const e = toDfsError(err, `writing chunk ${job.index}`);
    if (e.code !== 'PIPELINE_FAILED' && e.code !== 'UNAVAILABLE' && e.code !== 'TIMEOUT' && !isChunkTokenRefusal(e.code)) throw e;
    const failedAddr = typeof e.details.failed === 'string' ? e.details.failed : alloc.replicas[0]!.addr;
    // An expired write token is refused by every hop alike: a fresh allocation is the fix, not leaving a healthy server out.
    const expired = e.code === 'CHUNK_TOKEN_EXPIRED' || e.details.cause === 'CHUNK_TOKEN_EXPIRED';
    const failed = expired ? undefined : alloc.replicas.find((r) => r.addr === failedAddr);
    if (failed) job.exclude.add(failed.id);
    this.meta.reportUnreachable(failedAddr, e);
    job.onRetry?.(`chunk ${job.index}: ${e.message}; ${failed ? `leaving out ${failed.id} and ` : ''}trying a new pipeline`);
    return e;
  }
}

/**
 * Why a put stops early: its caller aborted it, or the master dropped its write. Work raced
 * against it is given up at once (it finishes on its own, its pipelines aborted by `signal`).
 */
class Halt {
  /** Made on first need: a put of bytes that nothing stops never makes one (~20 µs of a small file's put). */
  private ac: AbortController | undefined;
  private halted: Promise<never> | undefined;
  private readonly onOuterAbort = (): void => this.stop(new DfsError('INTERRUPTED', 'the upload was stopped'));

  constructor(private readonly outer?: AbortSignal) {
    if (outer?.aborted) this.onOuterAbort();
    else outer?.addEventListener('abort', this.onOuterAbort, { once: true });
  }

  private controller(): AbortController {
    if (this.ac === undefined) {
      const ac = (this.ac = new AbortController());
      this.halted = new Promise<never>((_, reject) => ac.signal.addEventListener('abort', () => reject(ac.signal.reason), { once: true }));
      this.halted.catch(() => undefined); // raced, or never awaited
    }
    return this.ac;
  }

  get signal(): AbortSignal {
    return this.controller().signal;
  }

  stop(reason: Error): void {
    const ac = this.controller();
    if (!ac.signal.aborted) ac.abort(reason);
  }

  /** Throws why the put stopped, if it did. */
  check(): void {
    this.ac?.signal.throwIfAborted();
  }

  race<T>(work: Promise<T>): Promise<T> {
    this.controller();
    return Promise.race([work, this.halted!]);
  }

  dispose(): void {
    this.outer?.removeEventListener('abort', this.onOuterAbort);
  }
}
