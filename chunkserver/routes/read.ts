import type { Request, RequestHandler, Response } from 'express';
import type { Counter } from 'prom-client';
import { CHUNK_TOKEN_HEADER, verifyChunkToken } from '../../common/auth.js';
import { DfsError, toDfsError } from '../../common/errors.js';
import { parseIntParam, requestLog, route, sendError } from '../../common/server.js';
import { parseHandle, type ChunkRouteContext } from './context.js';

export interface ReadMetrics {
  bytesOut: Counter;
  checksumFailures: Counter;
}

/** GET /v1/chunks/:handle, a range read: every block is verified before any byte of it is sent. */
export function readRoute(ctx: ChunkRouteContext, m: ReadMetrics): RequestHandler {
  const { cfg, store, activity, hooks, log } = ctx;
  return route(async (req: Request, res: Response) => {
    const handle = parseHandle(req);
    const wantVersion = parseIntParam(req.query.version, 'version', { optional: true });
    // The token comes first: without one for this chunk a caller learns not even whether it is here.
    const grant = verifyChunkToken(cfg.chunkKeys, req.get(CHUNK_TOKEN_HEADER), { handle, version: wantVersion, mode: ['read', 'copy-source'], server: cfg.id }, Date.now());
    const chunk = store.get(handle);
    if (!chunk) throw new DfsError('CHUNK_NOT_FOUND', `chunk ${handle} is not stored on ${cfg.id}`);
    // An older replica missed an append: stale, never served. A newer one (an append under way or
    // one that failed) begins with the same bytes, and readers ask for a range of those.
    if (chunk.version < grant.version) throw new DfsError('STALE_VERSION', `chunk ${handle} here is version ${chunk.version}, older than ${grant.version}`);
    const offset = parseIntParam(req.query.offset, 'offset', { optional: true, max: chunk.length }) ?? 0;
    const length = parseIntParam(req.query.length, 'length', { optional: true, max: chunk.length - offset }) ?? chunk.length - offset;
    if (activity.reads >= cfg.maxActiveReads) throw new DfsError('UNAVAILABLE', `chunkserver ${cfg.id} is busy; try another replica`);
    activity.reads++;
    try {
      await sendRange(ctx, res, { handle, offset, length }, m.bytesOut);
    } catch (err) {
      const e = toDfsError(err, `reading chunk ${handle}`);
      if (e.code === 'CHECKSUM_MISMATCH') {
        m.checksumFailures.inc();
        requestLog(res, log).error({ handle, err: e.message }, 'replica failed verification on read');
        hooks.onCorrupt(handle, e.message);
      }
      // After the first byte the only honest signal left is a cut connection (content-length unmet).
      sendError(res, e);
    } finally {
      activity.reads--;
    }
  });
}

/** Streams the verified range to the reader; the status and length go out with the first bytes. */
async function sendRange(ctx: ChunkRouteContext, res: Response, r: { handle: number; offset: number; length: number }, bytesOut: Counter): Promise<void> {
  // A reader that hangs up fails the write in progress (one listener per response, not per batch).
  let failWrite: ((err: Error) => void) | undefined;
  const onClose = (): void => failWrite?.(new DfsError('UNAVAILABLE', 'reader went away'));
  res.once('close', onClose);
  try {
    let started = false;
    // The store lends each batch until this settles: wait for the socket to have taken the
    // bytes (the write's callback), not merely for room in its queue.
    await ctx.store.readRange(r.handle, r.offset, r.length, (bytes) => {
      if (!started) {
        started = true;
        res.status(200).setHeader('content-type', 'application/octet-stream');
        res.setHeader('content-length', String(r.length));
      }
      bytesOut.inc(bytes.length);
      return new Promise<void>((resolve, reject) => {
        failWrite = reject;
        res.write(bytes, (err) => (err ? reject(err) : resolve()));
      });
    });
    if (!started) res.status(200).setHeader('content-length', '0');
    res.end();
  } finally {
    res.off('close', onClose);
  }
}
