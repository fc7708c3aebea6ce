import { call } from '../common/contract/call.js';
import { CS } from '../common/contract/index.js';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { loadSecret } from '../common/auth.js';
import { ChunkKeyRing } from '../common/chunk-keys.js';
import { allowedHostNames } from '../common/http-limits.js';
import { loadServerTls, useClientTls, type TlsFiles } from '../common/tls.js';
import { chunkserverSigner } from '../common/peer-auth.js';
import { initChecksums } from '../common/checksum.js';
import { parseAddr } from '../common/config.js';
import { DfsError } from '../common/errors.js';
import { LeaderClient } from '../common/leader.js';
import { CHUNK_TIMEOUT_MS, checkLimits, STOPPING_NOTICE_TIMEOUT_MS, WRITE_TOKEN_TTL_MS } from '../common/limits.js';
import { secureDataDir } from '../common/data-dir.js';
import { createLogger, type Logger } from '../common/log.js';
import { parseRateMiBps, RateLimiter } from '../common/rate.js';
import { CHUNKSERVER_DEFAULTS } from '../common/defaults.js';
import { createApp, installErrorHandler, listen, newMetricsRegistry } from '../common/server.js';
import { Copier } from './copier.js';
import { Heartbeat } from './heartbeat.js';
import { LeaderLink } from './link.js';
import { fsyncHook, watchDisk } from './metrics.js';
import { NamespaceRecord } from './namespace.js';
import { Activity, mountChunkRoutes } from './routes/index.js';
import { MAX_SCRUB_INTERVAL_MS, MIN_SCRUB_INTERVAL_MS, SCRUB_DEFAULTS, Scrubber } from './scrubber.js';
import { ChunkStore } from './store/index.js';

export interface ChunkserverOptions {
  /** Stable identity; defaults to the one stored in the data folder (made on first start). */
  id?: string;
  listen: string;
  /** host:port the masters and clients reach this server at, when not the listen address. */
  advertise?: string;
  dataDir: string;
  masters: string[];
  secretFile?: string;
  maxChunkBytes: number;
  heartbeatIntervalMs: number;
  /** Background verification rate in MiB/s; 0 turns the scrubber off. See chunkserver/scrubber.ts. */
  scrubRateMiBps?: number;
  /** Least time between the starts of two full scrub passes. */
  scrubIntervalMs?: number;
  /** Cap on re-replication bytes received, all copies together, in MiB/s; 0 or absent: no cap. */
  copyRateMiBps?: number;
  /** This server's failure domain, reported when it registers (absent: the default rack). */
  rack?: string;
  /** TLS on the listener; with a CA, mutual TLS towards the masters and the other chunkservers. */
  tls?: TlsFiles;
}

export { CHUNKSERVER_DEFAULTS };

function checkScrubIntervalMs(ms: number): number {
  if (!Number.isInteger(ms) || ms < MIN_SCRUB_INTERVAL_MS || ms > MAX_SCRUB_INTERVAL_MS) {
    throw new DfsError('INVALID_ARGUMENT', `--scrub-interval-ms must be a whole number from ${MIN_SCRUB_INTERVAL_MS} to ${MAX_SCRUB_INTERVAL_MS} (a week), not ${ms}`);
  }
  return ms;
}

/** The id is kept in the data folder so a restarted server is recognised as the same one. */
function loadOrCreateId(dataDir: string, wanted?: string): string {
  const file = join(dataDir, 'id');
  if (existsSync(file)) {
    const id = readFileSync(file, 'utf8').trim();
    if (wanted && wanted !== id) throw new Error(`data folder ${dataDir} belongs to chunkserver ${id}, not ${wanted}`);
    return id;
  }
  const id = wanted ?? `cs-${randomBytes(4).toString('hex')}`;
  writeFileSync(file, id + '\n');
  return id;
}

export interface RunningChunkserver { id: string; addr: string; server: Server; close(): Promise<void> }

/**
 * Tells the leader this is a clean stop, before the link closes, so that it never takes the stop
 * for a crash: it holds the server restarting instead of copying its chunks. One try, to the
 * leader the link follows, bounded: a whole cluster stopping at once (dfs cluster's Ctrl-C) must
 * not wait on masters that are gone. A failure is logged, never thrown: the stop goes on.
 */
async function tellLeaderStopping(leader: string, id: string, secret: Buffer, log: Logger): Promise<void> {
  await call(leader, CS.stopping, { id }, { timeoutMs: STOPPING_NOTICE_TIMEOUT_MS, sign: chunkserverSigner(secret, id) }).then(
    (r) => log.info({ held: r.held, restartGraceMs: r.restartGraceMs ?? null }, r.held ? 'told the leader this is a restart: no copies for its absence within the restart grace' : 'the leader does not hold this stop as a restart'),
    (err: Error) => log.warn({ err: err.message }, 'could not tell the leader this is a restart; it will take it for a crash'),
  );
}

export async function runChunkserver(opts: ChunkserverOptions): Promise<RunningChunkserver> {
  const { host, port } = parseAddr(opts.listen, '--listen', true);
  checkLimits({ heartbeatIntervalMs: opts.heartbeatIntervalMs, chunkTimeoutMs: CHUNK_TIMEOUT_MS, writeTokenTtlMs: WRITE_TOKEN_TTL_MS });
  const scrubRateMiBps = parseRateMiBps(opts.scrubRateMiBps ?? CHUNKSERVER_DEFAULTS.scrubRateMiBps, '--scrub-rate', 'no scrubbing');
  const scrubIntervalMs = checkScrubIntervalMs(opts.scrubIntervalMs ?? CHUNKSERVER_DEFAULTS.scrubIntervalMs);
  const copyRateMiBps = parseRateMiBps(opts.copyRateMiBps ?? CHUNKSERVER_DEFAULTS.copyRateMiBps, '--copy-rate');
  const opened = secureDataDir(opts.dataDir);
  const id = loadOrCreateId(opts.dataDir, opts.id);
  const log = createLogger('chunkserver', id);
  if (opened) log.warn({ dir: opts.dataDir }, 'data folder was open to other users; it is 0700 now (its files are reached only through it)');
  const secret = loadSecret(opts.secretFile);
  await initChecksums();
  const metrics = newMetricsRegistry('chunkserver');
  const store = new ChunkStore(opts.dataDir, log, { onFsync: fsyncHook(metrics) });
  await store.open();
  watchDisk(metrics, store);
  const activity = new Activity();
  const tls = loadServerTls(opts.tls ?? {});
  if (tls) useClientTls({ ca: tls.ca, cert: tls.cert, key: tls.key });
  const masters = new LeaderClient(opts.masters, { maxWaitMs: 3_000, sign: chunkserverSigner(secret, id) });
  const hostNames = allowedHostNames([opts.listen, opts.advertise]);
  const app = createApp(log, metrics, { hostNames: () => hostNames });
  const chunkKeys = new ChunkKeyRing(secret, id);
  const cfg = {
    id, addr: opts.listen, secret, chunkKeys: chunkKeys.lookup, maxChunkBytes: opts.maxChunkBytes, maxActiveWrites: 64, maxActiveReads: 256,
    chunkTimeoutMs: CHUNK_TIMEOUT_MS, maxPipelineLength: 16,
  };
  let heartbeat: Heartbeat | undefined;
  // A client read and the scrubber find damage the same way and hand it over the same way.
  const onCorrupt = (handle: number, reason: string): void => {
    store.moveToCorrupt(handle)
      .then(() => call(masters, CS.corrupt, { id, handle, reason: reason.slice(0, 500) }))
      .catch((err) => log.warn({ err: (err as Error).message, handle }, 'could not report corrupt replica'));
  };
  mountChunkRoutes(app, cfg, store, activity, { onStored: () => heartbeat?.beat(), onCorrupt }, log, metrics);
  installErrorHandler(app, log);
  // A whole chunk PUT may take up to the chunk timeout to arrive.
  const server = await listen(app, host, port, { tls, requestTimeoutMs: CHUNK_TIMEOUT_MS });
  // With port 0 the kernel picks the port; advertise the one we got.
  cfg.addr = opts.advertise ?? `${host}:${(server.address() as AddressInfo).port}`;
  const copier = new Copier(store, {
    concurrency: 4, maxQueued: 64, timeoutMs: cfg.chunkTimeoutMs, maxChunkBytes: opts.maxChunkBytes,
    rate: copyRateMiBps > 0 ? new RateLimiter(copyRateMiBps) : undefined,
  }, () => heartbeat?.beat(), log);
  heartbeat = new Heartbeat(id, cfg.addr, masters, store, activity, copier, opts.heartbeatIntervalMs, log, new NamespaceRecord(join(opts.dataDir, 'namespace-id')));
  if (opts.rack !== undefined) heartbeat.rack = opts.rack; // rack rule
  heartbeat.chunkKeys = chunkKeys;
  heartbeat.start();
  const link = new LeaderLink({ id, masters, sign: chunkserverSigner(secret, id), log, onBeatAsked: () => heartbeat?.beat() });
  link.start();
  const scrubber = scrubRateMiBps > 0 ? new Scrubber(store, { rateMiBps: scrubRateMiBps, intervalMs: scrubIntervalMs, stateFile: join(opts.dataDir, 'scrub.json') }, onCorrupt, log, metrics) : undefined;
  scrubber?.start();
  log.info({ addr: cfg.addr, dataDir: opts.dataDir, chunks: store.count, scrubRateMiBps, scrubIntervalMs, copyRateMiBps }, 'chunkserver started');
  return {
    id,
    addr: cfg.addr,
    server,
    async close() {
      await heartbeat?.stop(STOPPING_NOTICE_TIMEOUT_MS);
      await tellLeaderStopping(masters.leader, id, secret, log);
      await link.stop();
      await scrubber?.close();
      await new Promise<void>((r) => server.close(() => r()));
      server.closeAllConnections();
    },
  };
}
