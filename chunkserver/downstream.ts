import { once } from 'node:events';
import { PassThrough } from 'node:stream';
import { request } from 'undici';
import { CHUNK_TOKEN_HEADER } from '../common/auth.js';
import { DfsError, errorFromBody, toDfsError } from '../common/errors.js';
import { buildUrl, httpAgent, readJson } from '../common/http.js';
import type { WriteChunkReply } from '../common/protocol.js';

/** How much of a chunk may sit between us and a slow downstream before we stop reading. */
const FORWARD_BUFFER_BYTES = 4 * 1024 * 1024;

/**
 * The next hop of a write pipeline: the same bytes, streamed on as they arrive. Its result
 * names the node that failed (`failed`: host:port), whether that is the next hop or one further on.
 */
export class Downstream {
  private readonly body = new PassThrough({ highWaterMark: FORWARD_BUFFER_BYTES });
  private readonly abortController = new AbortController();
  readonly result: Promise<WriteChunkReply>;
  failure?: DfsError;

  constructor(readonly next: string[], handle: number, version: number, token: string, timeoutMs: number) {
    const [addr, ...rest] = next as [string, ...string[]];
    const url = buildUrl(addr, `/v1/chunks/${handle}`, { version, next: rest.length ? rest.join(',') : undefined });
    const signal = AbortSignal.any([this.abortController.signal, AbortSignal.timeout(timeoutMs)]);
    this.result = request(url, {
      method: 'PUT',
      dispatcher: httpAgent(),
      headers: { 'content-type': 'application/octet-stream', [CHUNK_TOKEN_HEADER]: token },
      body: this.body,
      signal,
    }).then(
      async (res) => {
        const body = await readJson(res.body).catch(() => undefined);
        if (res.statusCode === 200) return body as WriteChunkReply;
        const err = errorFromBody(body, res.statusCode);
        if (err.code === 'PIPELINE_FAILED' && typeof err.details.failed === 'string') throw err;
        throw new DfsError('PIPELINE_FAILED', `replica ${addr} failed: ${err.message}`, { failed: addr, cause: err.code });
      },
      (err) => {
        throw new DfsError('PIPELINE_FAILED', `replica ${addr} failed: ${toDfsError(err).message}`, { failed: addr });
      },
    );
    this.result.catch((e: DfsError) => {
      this.failure = e;
      this.body.destroy();
    });
  }

  /** Forwards bytes, waiting while the downstream buffer is full; throws once the downstream failed. */
  async write(chunk: Buffer): Promise<void> {
    if (this.failure) throw this.failure;
    if (!this.body.write(chunk)) {
      await Promise.race([once(this.body, 'drain'), this.result.then(() => undefined)]);
    }
    if (this.failure) throw this.failure;
  }

  end(): void {
    this.body.end();
  }

  abort(): void {
    this.abortController.abort();
    this.body.destroy();
  }
}
