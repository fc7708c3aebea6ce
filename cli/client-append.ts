import { ChunkPut } from '../common/chunk-put.js';
import { DfsError, toDfsError } from '../common/errors.js';
import type { AppendReply, CompletedChunk, ReplicaInfo } from '../common/protocol.js';
import type { ChunkInput } from './client-input.js';

/** What filling an append's last chunk works with. */
export interface FillJob {
  fill: NonNullable<AppendReply['fill']>;
  chunkSizeBytes: number;
  input: ChunkInput;
  signal: AbortSignal;
  timeoutMs: number;
  /** Replica sets tried before the append fails: each retry leaves out the replica that failed. */
  maxAttempts: number;
  onBytes: (n: number) => void;
  onRetry?: (message: string) => void;
  /** A replica could not be reached: tell the master (see MetaClient.reportUnreachable). */
  reportUnreachable: (addr: string, err: DfsError) => void;
}

/** Errors a retry on the other replicas may get past; anything else ends the append. */
const RETRYABLE = new Set(['PIPELINE_FAILED', 'UNAVAILABLE', 'TIMEOUT', 'UNAUTHORIZED']);

/**
 * Fills the last chunk of a file: the first bytes of the input, up to the chunk size, go to the
 * replicas that hold the chunk, as one pipelined append write (each makes the chunk's new version
 * as a new file: its old bytes, then these). A replica that fails is left out and the rest are
 * tried again with the kept bytes; it stays at the old version, which the complete makes stale.
 * Answers the chunk as the complete names it: its whole new length and checksum, and who stored it.
 */
export async function fillLastChunk(job: FillJob): Promise<CompletedChunk> {
  const { fill, input } = job;
  input.chunkSizeBytes = job.chunkSizeBytes - fill.offset;
  let kept: Buffer[] | undefined;
  let replicas: ReplicaInfo[] = [...fill.replicas];
  let lastError: DfsError | undefined;
  const target = fill.copyTo ?? fill.handle;
  try {
    if (!(await input.startChunk())) throw new DfsError('INTERNAL', 'the input ended before the append began');
    for (let attempt = 0; attempt < job.maxAttempts && replicas.length > 0; attempt++) {
      // A shared last chunk (a snapshot's) is not changed: each replica makes the filled copy from its own bytes.
      const copy = fill.copyTo !== undefined ? { from: fill.handle, fromToken: fill.fromToken } : {};
      const put = new ChunkPut({
        pipeline: replicas.map((r) => r.addr), handle: target, version: fill.newVersion, token: fill.token,
        timeoutMs: job.timeoutMs, signal: job.signal, append: { baseVersion: fill.version, offset: fill.offset, ...copy },
      });
      try {
        let sent = 0;
        for await (const piece of kept ?? input.pieces()) {
          await put.write(piece);
          sent += piece.length;
          job.onBytes(sent);
        }
        kept ??= input.detach();
        put.end();
        const reply = await put.result;
        if (reply.length !== fill.offset + sent) throw new DfsError('PIPELINE_FAILED', `the last chunk came back with ${reply.length} bytes, not ${fill.offset + sent}`, { failed: replicas[0]!.addr });
        const receipts = reply.replicas.flatMap((r) => (typeof r.receipt === 'string' ? [r.receipt] : []));
        return { handle: target, length: reply.length, checksum: reply.checksum, replicas: reply.replicas.map((r) => r.id), receipts };
      } catch (err) {
        put.abort();
        job.signal.throwIfAborted();
        if (!kept) {
          await input.drainChunk();
          kept = input.detach();
        }
        lastError = toDfsError(err, 'appending to the last chunk');
        if (!RETRYABLE.has(lastError.code)) throw lastError;
        const failed = typeof lastError.details.failed === 'string' ? lastError.details.failed : replicas[0]!.addr;
        replicas = replicas.filter((r) => r.addr !== failed);
        job.reportUnreachable(failed, lastError);
        job.onRetry?.(`last chunk: ${lastError.message}; leaving out ${failed}${replicas.length > 0 ? ' and trying the other replicas' : ''}`);
      }
    }
  } finally {
    input.chunkSizeBytes = job.chunkSizeBytes;
  }
  throw new DfsError('PIPELINE_FAILED', `the last chunk of the file (handle ${fill.handle}) could not be appended to on any replica${lastError ? `: ${lastError.message}` : ''}; the file is as it was`);
}
