import type { Request, RequestHandler, Response } from 'express';
import type { Counter, Histogram } from 'prom-client';
import { CHUNK_TOKEN_HEADER, checkNextHops, verifyChunkToken } from '../../common/auth.js';
import { ChunkPut, FROM_TOKEN_HEADER, type ChunkAppend } from '../../common/chunk-put.js';
import { parseAddrList } from '../../common/config.js';
import { DfsError, toDfsError } from '../../common/errors.js';
import type { ReplicaInfo, WriteChunkReply } from '../../common/protocol.js';
import { parseIntParam, requestLog, route, sendError } from '../../common/server.js';
import { signStoreReceipt } from '../../common/store-receipt.js';
import type { ChunkWriter, StoredChunk } from '../store/index.js';
import { parseHandle, type ChunkRouteConfig, type ChunkRouteContext } from './context.js';

export interface WriteMetrics {
  bytesIn: Counter;
  hopSeconds: Histogram<'forwarded' | 'outcome'>;
}

/** A checked chunk write request: what to store, and the hops after this one; `append` for an append to a stored chunk. */
interface WriteRequest { handle: number; version: number; next: string[]; token: string; append?: ChunkAppend }

function discardBody(req: Request, limitBytes: number): void {
  void (async () => {
    let seen = 0;
    for await (const piece of req) {
      seen += (piece as Buffer).length;
      if (seen > limitBytes) break; // leaving the loop destroys the request
    }
  })().catch(() => undefined);
}

function parseWriteRequest(req: Request, cfg: ChunkRouteConfig): WriteRequest {
  const handle = parseHandle(req);
  const version = parseIntParam(req.query.version, 'version', { min: 1, max: 0xffffffff })!;
  const nextRaw = req.query.next;
  if (nextRaw !== undefined && typeof nextRaw !== 'string') throw new DfsError('INVALID_ARGUMENT', 'next must be a comma-separated list of host:port');
  const next = nextRaw ? parseAddrList(nextRaw, 'next') : [];
  if (next.length + 1 > cfg.maxPipelineLength) throw new DfsError('INVALID_ARGUMENT', `pipeline longer than ${cfg.maxPipelineLength}`);
  const token = req.get(CHUNK_TOKEN_HEADER);
  // The token names the pipeline: this server must be in it, and each next hop after it, before anything is dialled.
  const grant = verifyChunkToken(cfg.chunkKeys, token, { handle, version, mode: 'write', server: cfg.id }, Date.now());
  checkNextHops(grant, cfg.id, next);
  const append = parseAppend(req, version, cfg);
  const declared = req.get('content-length');
  if (declared !== undefined && Number(declared) + (append?.offset ?? 0) > cfg.maxChunkBytes) throw new DfsError('BODY_TOO_LARGE', `chunk is larger than ${cfg.maxChunkBytes} bytes`);
  return { handle, version, next, token: token!, ...(append ? { append } : {}) };
}

/** `base` and `offset` make a write an append: the stored chunk's first `offset` bytes (at `base` or later), then the body, at the new `version`. */
function parseAppend(req: Request, version: number, cfg: ChunkRouteConfig): ChunkAppend | undefined {
  const maxChunkBytes = cfg.maxChunkBytes;
  const baseVersion = parseIntParam(req.query.base, 'base', { optional: true, min: 1, max: 0xffffffff });
  const offset = parseIntParam(req.query.offset, 'offset', { optional: true, max: maxChunkBytes });
  if (baseVersion === undefined && offset === undefined) return undefined;
  if (baseVersion === undefined || offset === undefined) throw new DfsError('INVALID_ARGUMENT', 'an append names both base (the version appended to) and offset');
  if (baseVersion >= version) throw new DfsError('INVALID_ARGUMENT', `an append's version ${version} must be newer than its base ${baseVersion}`);
  const from = parseIntParam(req.query.from, 'from', { optional: true, min: 1 });
  if (from === undefined) return { baseVersion, offset };
  // Copying a chunk's bytes needs the right to read them, not only to write the copy.
  const fromToken = req.get(FROM_TOKEN_HEADER);
  verifyChunkToken(cfg.chunkKeys, fromToken, { handle: from, version: baseVersion, mode: 'read', server: cfg.id }, Date.now());
  return { baseVersion, offset, from, fromToken: fromToken! };
}

/**
 * PUT /v1/chunks/:handle, a pipelined write: store locally while forwarding to the next hop;
 * answer only when both are durable.
 */
export function writeRoute(ctx: ChunkRouteContext, m: WriteMetrics): RequestHandler {
  const { cfg, activity } = ctx;
  return route(async (req: Request, res: Response) => {
    const w = parseWriteRequest(req, cfg);
    if (activity.writes >= cfg.maxActiveWrites) throw new DfsError('UNAVAILABLE', `chunkserver ${cfg.id} is busy (${activity.writes} writes); try another`);
    activity.writes++;
    const stopHop = m.hopSeconds.startTimer({ forwarded: w.next.length > 0 ? 'yes' : 'no' });
    const hop: Hop = { upstreamGone: false };
    try {
      const reply = await storeAndForward(ctx, req, w, hop);
      m.bytesIn.inc(reply.length);
      res.json(reply);
      stopHop({ outcome: 'ok' });
    } catch (err) {
      stopHop({ outcome: 'failed' });
      hop.downstream?.abort();
      await hop.writer?.abort();
      answerFailure(ctx, req, res, err, { handle: w.handle, upstreamGone: hop.upstreamGone });
    } finally {
      activity.writes--;
    }
  });
}

/** What a write holds while it runs: the local file and the next hop, until they are done with. */
interface Hop { writer?: ChunkWriter; downstream?: ChunkPut; upstreamGone: boolean }

/** Receives the chunk into a local writer and the next hop at once; answers once both have it durable. */
async function storeAndForward(ctx: ChunkRouteContext, req: Request, w: WriteRequest, hop: Hop): Promise<WriteChunkReply> {
  const { cfg, store } = ctx;
  // The next hop is dialled first: its connection and its own file creation overlap ours
  // instead of adding up hop by hop (creating a file took 0.3 to 1.5 ms here).
  if (w.next.length > 0) hop.downstream = new ChunkPut({ pipeline: w.next, handle: w.handle, version: w.version, token: w.token, timeoutMs: cfg.chunkTimeoutMs, ...(w.append ? { append: w.append } : {}) });
  hop.writer = w.append
    ? await store.createAppendWriter({ handle: w.handle, newVersion: w.version, ...w.append }, cfg.maxChunkBytes)
    : await store.createWriter(w.handle, w.version, cfg.maxChunkBytes);
  const { writer, downstream } = hop;
  req.setTimeout(cfg.chunkTimeoutMs);
  req.once('close', () => {
    if (!req.complete) hop.upstreamGone = true;
  });
  // destroyOnReturn: false, so that leaving the loop because the downstream failed does not
  // hang up on the upstream: it must still get our answer naming the failed node.
  for await (const piece of req.iterator({ destroyOnReturn: false })) {
    const buf = piece as Buffer;
    if (downstream) await Promise.all([writer.write(buf), downstream.write(buf)]);
    else await writer.write(buf);
  }
  downstream?.end();
  // This replica is made durable and published (fsync, rename, folder fsync) while the hops
  // after it do the same, not after they answer: a pipeline costs about one hop's sync, not
  // one per hop. If a later hop then fails, the replica published here belongs to an
  // allocation the client abandons for a new one, and is collected as garbage.
  const publish = async (): Promise<StoredChunk> => {
    const l = await writer.finish();
    await writer.commit(l);
    return l;
  };
  const [stored, after] = await Promise.allSettled([publish(), downstream?.result]);
  if (stored.status === 'rejected') throw stored.reason;
  hop.writer = undefined;
  const local = stored.value;
  if (after.status === 'rejected') throw after.reason;
  const rest = after.value;
  if (rest && (rest.checksum !== local.checksum || rest.length !== local.length)) {
    throw new DfsError('PIPELINE_FAILED', `replica ${w.next[0]} stored different bytes`, { failed: w.next[0] });
  }
  ctx.hooks.onStored(local);
  const receipt = signStoreReceipt(cfg.secret, { server: cfg.id, handle: w.handle, version: w.version, length: local.length, checksum: local.checksum });
  const self: ReplicaInfo = { id: cfg.id, addr: cfg.addr, receipt };
  return { handle: w.handle, version: w.version, length: local.length, checksum: local.checksum, replicas: [self, ...(rest?.replicas ?? [])] };
}

/** Answers a failed write with PIPELINE_FAILED naming the node to blame, or hangs up on an upstream that left. */
function answerFailure(ctx: ChunkRouteContext, req: Request, res: Response, err: unknown, w: { handle: number; upstreamGone: boolean }): void {
  const { cfg } = ctx;
  const log = requestLog(res, ctx.log);
  if (w.upstreamGone) {
    // The upstream hung up mid-chunk: nothing to answer, nothing kept.
    log.info({ handle: w.handle }, 'upstream aborted a chunk write; temporary file removed');
    res.destroy();
    return;
  }
  const e = toDfsError(err, `storing chunk ${w.handle}`);
  const failed = e.code === 'PIPELINE_FAILED' ? e : new DfsError('PIPELINE_FAILED', `replica ${cfg.addr} failed: ${e.message}`, { failed: cfg.addr, cause: e.code });
  if (e.code !== 'PIPELINE_FAILED') log.warn({ handle: w.handle, err: e.message }, 'chunk write failed here');
  sendError(res, failed);
  // Read and drop the rest of the body (at most a chunk): an upstream still sending must get
  // to our answer naming the failed node. Closing instead can reset the connection before
  // the upstream reads it, and the blame would fall on this healthy node.
  discardBody(req, cfg.maxChunkBytes);
}
