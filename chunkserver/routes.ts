import type { Express, Request, Response } from 'express';
import { Counter, Gauge, Histogram, type Registry as MetricsRegistry } from 'prom-client';
import { CHUNK_TOKEN_HEADER, verifyChunkToken } from '../common/auth.js';
import { parseAddrList } from '../common/config.js';
import { DfsError, toDfsError } from '../common/errors.js';
import type { Logger } from '../common/log.js';
import type { ReplicaInfo, WriteChunkReply } from '../common/protocol.js';
import { parseIntParam, route, sendError } from '../common/server.js';
import { Downstream } from './downstream.js';
import type { ChunkStore, ChunkWriter, StoredChunk } from './store.js';

export interface ChunkRouteConfig {
  id: string;
  addr: string;
  secret: Buffer;
  /** Largest chunk accepted: the cluster's chunk size. */
  maxChunkBytes: number;
  /** Writes received at once; more get UNAVAILABLE so the client picks another pipeline. */
  maxActiveWrites: number;
  /** Reads served at once; more get UNAVAILABLE and the client tries another replica. */
  maxActiveReads: number;
  /** A whole chunk must pass through a pipeline hop within this time. */
  chunkTimeoutMs: number;
  /** Longest pipeline accepted (this hop plus the ones after it). */
  maxPipelineLength: number;
}

export interface ChunkRouteHooks {
  /** A replica failed verification: quarantine it and tell the master. */
  onCorrupt(handle: number, reason: string): void;
  /** A chunk was stored: report it to the master soon. */
  onStored(chunk: StoredChunk): void;
}

export class Activity {
  writes = 0;
  reads = 0;
}

/** Seconds: a small chunk crosses a hop in milliseconds, a 64 MiB one in about a second, a slow disk or link in minutes. */
const HOP_SECONDS_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300];

function discardBody(req: Request, limitBytes: number): void {
  void (async () => {
    let seen = 0;
    for await (const piece of req) {
      seen += (piece as Buffer).length;
      if (seen > limitBytes) break; // leaving the loop destroys the request
    }
  })().catch(() => undefined);
}

function parseHandle(req: Request): number {
  return parseIntParam(req.params.handle, 'handle', { min: 1 })!;
}

export function mountChunkRoutes(app: Express, cfg: ChunkRouteConfig, store: ChunkStore, activity: Activity, hooks: ChunkRouteHooks, log: Logger, metrics: MetricsRegistry): void {
  const bytesIn = new Counter({ name: 'dfs_chunkserver_write_bytes_total', help: 'chunk bytes stored', registers: [metrics] });
  const bytesOut = new Counter({ name: 'dfs_chunkserver_read_bytes_total', help: 'chunk bytes served', registers: [metrics] });
  const checksumFailures = new Counter({ name: 'dfs_chunkserver_checksum_failures_total', help: 'blocks that failed verification on read', registers: [metrics] });
  new Gauge({ name: 'dfs_chunkserver_chunks', help: 'chunks stored', registers: [metrics], collect() { this.set(store.count); } });
  const hopSeconds = new Histogram({
    name: 'dfs_chunkserver_pipeline_hop_seconds',
    help: 'a chunk write at this hop, from its request to its answer (this replica durable, every later hop answered), by whether it forwarded and how it ended',
    labelNames: ['forwarded', 'outcome'], buckets: HOP_SECONDS_BUCKETS, registers: [metrics],
  });

  app.get('/v1/health', (_req, res) => {
    res.json({ ok: true, id: cfg.id });
  });

  // Pipelined write: store locally while forwarding to the next hop; answer only when both are durable.
  app.put('/v1/chunks/:handle', route(async (req: Request, res: Response) => {
    const handle = parseHandle(req);
    const version = parseIntParam(req.query.version, 'version', { min: 1, max: 0xffffffff })!;
    const nextRaw = req.query.next;
    if (nextRaw !== undefined && typeof nextRaw !== 'string') throw new DfsError('INVALID_ARGUMENT', 'next must be a comma-separated list of host:port');
    const next = nextRaw ? parseAddrList(nextRaw, 'next') : [];
    if (next.length + 1 > cfg.maxPipelineLength) throw new DfsError('INVALID_ARGUMENT', `pipeline longer than ${cfg.maxPipelineLength}`);
    const token = req.get(CHUNK_TOKEN_HEADER);
    verifyChunkToken(cfg.secret, token, { handle, version, mode: 'write' }, Date.now());
    const declared = req.get('content-length');
    if (declared !== undefined && Number(declared) > cfg.maxChunkBytes) throw new DfsError('BODY_TOO_LARGE', `chunk is larger than ${cfg.maxChunkBytes} bytes`);
    if (activity.writes >= cfg.maxActiveWrites) throw new DfsError('UNAVAILABLE', `chunkserver ${cfg.id} is busy (${activity.writes} writes); try another`);

    activity.writes++;
    const stopHop = hopSeconds.startTimer({ forwarded: next.length > 0 ? 'yes' : 'no' });
    let writer: ChunkWriter | undefined;
    let downstream: Downstream | undefined;
    let upstreamGone = false;
    try {
      // The next hop is dialled first: its connection and its own file creation overlap ours
      // instead of adding up hop by hop (creating a file took 0.3 to 1.5 ms here).
      downstream = next.length > 0 ? new Downstream(next, handle, version, token!, cfg.chunkTimeoutMs) : undefined;
      writer = await store.createWriter(handle, version, cfg.maxChunkBytes);
      req.setTimeout(cfg.chunkTimeoutMs);
      req.once('close', () => {
        if (!req.complete) upstreamGone = true;
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
      const mine = writer;
      const publish = async () => {
        const l = await mine.finish();
        await mine.commit(l);
        return l;
      };
      const [stored, after] = await Promise.allSettled([publish(), downstream?.result]);
      if (stored.status === 'rejected') throw stored.reason;
      writer = undefined;
      const local = stored.value;
      if (after.status === 'rejected') throw after.reason;
      const rest = after.value;
      if (rest && (rest.checksum !== local.checksum || rest.length !== local.length)) {
        throw new DfsError('PIPELINE_FAILED', `replica ${next[0]} stored different bytes`, { failed: next[0] });
      }
      bytesIn.inc(local.length);
      hooks.onStored(local);
      const self: ReplicaInfo = { id: cfg.id, addr: cfg.addr };
      const reply: WriteChunkReply = {
        handle, version, length: local.length, checksum: local.checksum, replicas: [self, ...(rest?.replicas ?? [])],
      };
      res.json(reply);
      stopHop({ outcome: 'ok' });
    } catch (err) {
      stopHop({ outcome: 'failed' });
      downstream?.abort();
      await writer?.abort();
      if (upstreamGone) {
        // The upstream hung up mid-chunk: nothing to answer, nothing kept.
        log.info({ handle }, 'upstream aborted a chunk write; temporary file removed');
        res.destroy();
        return;
      }
      const e = toDfsError(err, `storing chunk ${handle}`);
      const failed = e.code === 'PIPELINE_FAILED' ? e : new DfsError('PIPELINE_FAILED', `replica ${cfg.addr} failed: ${e.message}`, { failed: cfg.addr, cause: e.code });
      if (e.code !== 'PIPELINE_FAILED') log.warn({ handle, err: e.message }, 'chunk write failed here');
      sendError(res, failed);
      // Read and drop the rest of the body (at most a chunk): an upstream still sending must get
      // to our answer naming the failed node. Closing instead can reset the connection before
      // the upstream reads it, and the blame would fall on this healthy node.
      discardBody(req, cfg.maxChunkBytes);
    } finally {
      activity.writes--;
    }
  }));

  // Range read: every block is verified before any byte of it is sent.
  app.get('/v1/chunks/:handle', route(async (req: Request, res: Response) => {
    const handle = parseHandle(req);
    const wantVersion = parseIntParam(req.query.version, 'version', { optional: true });
    // The token comes first: without one for this chunk a caller learns not even whether it is here.
    const grant = verifyChunkToken(cfg.secret, req.get(CHUNK_TOKEN_HEADER), { handle, version: wantVersion, mode: 'read' }, Date.now());
    const chunk = store.get(handle);
    if (!chunk) throw new DfsError('CHUNK_NOT_FOUND', `chunk ${handle} is not stored on ${cfg.id}`);
    if (grant.version !== chunk.version) throw new DfsError('STALE_VERSION', `chunk ${handle} here is version ${chunk.version}, not ${grant.version}`);
    const offset = parseIntParam(req.query.offset, 'offset', { optional: true, max: chunk.length }) ?? 0;
    const length = parseIntParam(req.query.length, 'length', { optional: true, max: chunk.length - offset }) ?? chunk.length - offset;
    if (activity.reads >= cfg.maxActiveReads) throw new DfsError('UNAVAILABLE', `chunkserver ${cfg.id} is busy; try another replica`);
    activity.reads++;
    // A reader that hangs up fails the write in progress (one listener per response, not per batch).
    let failWrite: ((err: Error) => void) | undefined;
    const onClose = (): void => failWrite?.(new DfsError('UNAVAILABLE', 'reader went away'));
    res.once('close', onClose);
    try {
      let started = false;
      // The store lends each batch until this settles: wait for the socket to have taken the
      // bytes (the write's callback), not merely for room in its queue.
      await store.readRange(handle, offset, length, (bytes) => {
        if (!started) {
          started = true;
          res.status(200).setHeader('content-type', 'application/octet-stream');
          res.setHeader('content-length', String(length));
        }
        bytesOut.inc(bytes.length);
        return new Promise<void>((resolve, reject) => {
          failWrite = reject;
          res.write(bytes, (err) => (err ? reject(err) : resolve()));
        });
      });
      if (!started) res.status(200).setHeader('content-length', '0');
      res.end();
    } catch (err) {
      const e = toDfsError(err, `reading chunk ${handle}`);
      if (e.code === 'CHECKSUM_MISMATCH') {
        checksumFailures.inc();
        log.error({ handle, err: e.message }, 'replica failed verification on read');
        hooks.onCorrupt(handle, e.message);
      }
      // After the first byte the only honest signal left is a cut connection (content-length unmet).
      sendError(res, e);
    } finally {
      res.off('close', onClose);
      activity.reads--;
    }
  }));
}
