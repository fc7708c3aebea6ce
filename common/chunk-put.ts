import { once } from 'node:events';
import { PassThrough } from 'node:stream';
import { request } from 'undici';
import { CHUNK_TOKEN_HEADER } from './auth.js';
import { DfsError, errorFromBody, toDfsError } from './errors.js';
import { checkReply, routeUrl } from './contract/call.js';
import { CHUNKS } from './contract/index.js';
import { httpAgent, readJson } from './http.js';
import type { WriteChunkReply } from './protocol.js';
import { outgoingRequestId, replyRequestId, REQUEST_ID_HEADER, traceCall } from './request-id.js';

/** How much of a chunk may sit between a sender and a slow first hop before the sender stops reading its input. */
const CHUNK_PUT_BUFFER_BYTES = 4 * 1024 * 1024;

export interface ChunkPutOptions {
  /** The pipeline's chunkservers (host:port), first hop first; the first forwards to the rest. */
  pipeline: readonly string[];
  handle: number;
  version: number;
  /** The write token the master granted for this chunk version. */
  token: string;
  /** The whole chunk must pass through the whole pipeline within this time. */
  timeoutMs: number;
  /** Stops the put from outside (an upload that was stopped). */
  signal?: AbortSignal;
  /** An append to a stored chunk: the body follows its first `offset` bytes, and `version` is newer than `baseVersion`. */
  append?: ChunkAppend;
}

/** Where an append's bytes go in a stored chunk (query parameters `base` and `offset`). */
export interface ChunkAppend {
  baseVersion: number; offset: number;
  /** Copy-on-write: the kept bytes come from this chunk (query parameter `from`), and `handle` is made from them. */
  from?: number;
  /** With `from`: a read token for it at `baseVersion` (header FROM_TOKEN_HEADER), so a write token alone copies nothing. */
  fromToken?: string;
}

/** The header that carries a copy-on-write append's read token for the chunk it copies. */
export const FROM_TOKEN_HEADER = 'x-dfs-from-token';

/**
 * One chunk streamed to the first hop of a write pipeline (PUT /v1/chunks/:handle, the rest of
 * the pipeline in `next`): the client's upload and a chunkserver's forward to its next hop both
 * send through this. Bytes are written as they arrive; `result` is the pipeline's answer, or a
 * PIPELINE_FAILED naming the node that failed (`failed`: host:port), whether that is the first
 * hop or one further on.
 */
export class ChunkPut {
  private readonly body = new PassThrough({ highWaterMark: CHUNK_PUT_BUFFER_BYTES });
  private readonly abortController = new AbortController();
  readonly result: Promise<WriteChunkReply>;
  private failure?: DfsError;

  constructor(o: ChunkPutOptions) {
    const [addr, ...rest] = o.pipeline as [string, ...string[]];
    const url = routeUrl(addr, CHUNKS.write, { handle: o.handle }, {
      version: o.version, next: rest.length ? rest.join(',') : undefined, base: o.append?.baseVersion, offset: o.append?.offset, from: o.append?.from,
    });
    const signals = [this.abortController.signal, AbortSignal.timeout(o.timeoutMs), ...(o.signal ? [o.signal] : [])];
    // Every hop carries the operation's id (a chunkserver forwards the one it was sent).
    const reqId = outgoingRequestId();
    const startMs = performance.now();
    const trace = (status: number, id: string) => traceCall({ method: 'PUT', target: url.replace(/^[a-z]+:\/\//, ''), status, ms: performance.now() - startMs, requestId: id });
    this.result = request(url, {
      method: 'PUT',
      dispatcher: httpAgent(),
      headers: { 'content-type': 'application/octet-stream', [CHUNK_TOKEN_HEADER]: o.token, [REQUEST_ID_HEADER]: reqId, ...(o.append?.fromToken ? { [FROM_TOKEN_HEADER]: o.append.fromToken } : {}) },
      body: this.body,
      signal: AbortSignal.any(signals),
    }).then(
      async (res) => {
        trace(res.statusCode, replyRequestId(res.headers, reqId));
        const body = await readJson(res.body).catch(() => undefined);
        if (res.statusCode === 200) return checkReply(CHUNKS.write, body, addr);
        const err = errorFromBody(body, res.statusCode);
        if (err.code === 'PIPELINE_FAILED' && typeof err.details.failed === 'string') throw err;
        throw new DfsError('PIPELINE_FAILED', `replica ${addr} failed: ${err.message}`, { failed: addr, cause: err.code });
      },
      (err) => {
        trace(0, reqId);
        throw new DfsError('PIPELINE_FAILED', `replica ${addr} failed: ${toDfsError(err).message}`, { failed: addr });
      },
    );
    this.result.catch((e: DfsError) => {
      this.failure = e;
      this.body.destroy();
    });
  }

  /** Sends bytes, waiting while the send buffer is full; throws once the pipeline failed. */
  async write(chunk: Buffer): Promise<void> {
    if (this.failure) throw this.failure;
    if (!this.body.write(chunk)) {
      await Promise.race([once(this.body, 'drain'), this.result.then(() => undefined)]);
    }
    if (this.failure) throw this.failure;
  }

  /** Every byte is written: the pipeline answers once each hop has the chunk durable. */
  end(): void {
    this.body.end();
  }

  abort(): void {
    this.abortController.abort();
    this.body.destroy();
  }
}
