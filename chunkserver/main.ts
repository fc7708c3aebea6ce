import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { loadSecret, PEER_AUTH_HEADER, peerAuthToken } from '../common/auth.js';
import { initChecksums } from '../common/checksum.js';
import { parseAddr } from '../common/config.js';
import { LeaderClient } from '../common/leader.js';
import { createLogger } from '../common/log.js';
import { createApp, installErrorHandler, listen, newMetricsRegistry } from '../common/server.js';
import { Copier } from './copier.js';
import { Heartbeat } from './heartbeat.js';
import { Activity, mountChunkRoutes } from './routes.js';
import { ChunkStore } from './store.js';

export interface ChunkserverOptions {
  /** Stable identity; defaults to the one stored in the data folder (made on first start). */
  id?: string;
  listen: string;
  dataDir: string;
  masters: string[];
  secretFile?: string;
  maxChunkBytes: number;
  heartbeatIntervalMs: number;
}

export const CHUNKSERVER_DEFAULTS = {
  maxChunkBytes: 64 * 1024 * 1024,
  heartbeatIntervalMs: 1000,
};

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

export async function runChunkserver(opts: ChunkserverOptions): Promise<RunningChunkserver> {
  const { host, port } = parseAddr(opts.listen, '--listen', true);
  mkdirSync(opts.dataDir, { recursive: true });
  const id = loadOrCreateId(opts.dataDir, opts.id);
  const log = createLogger('chunkserver', id);
  const secret = loadSecret(opts.secretFile);
  await initChecksums();
  const store = new ChunkStore(opts.dataDir, log);
  await store.open();
  const activity = new Activity();
  const masters = new LeaderClient(opts.masters, { maxWaitMs: 3_000, headers: { [PEER_AUTH_HEADER]: peerAuthToken(secret, 'chunkserver') } });
  const metrics = newMetricsRegistry('chunkserver');
  const app = createApp(log, metrics);
  const cfg = {
    id, addr: opts.listen, secret, maxChunkBytes: opts.maxChunkBytes, maxActiveWrites: 64, maxActiveReads: 256,
    chunkTimeoutMs: 10 * 60_000, maxPipelineLength: 16,
  };
  let heartbeat: Heartbeat | undefined;
  mountChunkRoutes(app, cfg, store, activity, {
    onStored: () => heartbeat?.beat(),
    onCorrupt: (handle, reason) => {
      store.moveToCorrupt(handle)
        .then(() => masters.call('/v1/cs/corrupt', { body: { id, handle, reason: reason.slice(0, 500) } }))
        .catch((err) => log.warn({ err: (err as Error).message, handle }, 'could not report corrupt replica'));
    },
  }, log, metrics);
  installErrorHandler(app, log);
  const server = await listen(app, host, port);
  // With port 0 the kernel picks the port; advertise the one we got.
  cfg.addr = `${host}:${(server.address() as AddressInfo).port}`;
  const copier = new Copier(store, { concurrency: 2, maxQueued: 64, timeoutMs: cfg.chunkTimeoutMs, maxChunkBytes: opts.maxChunkBytes }, () => heartbeat?.beat(), log);
  heartbeat = new Heartbeat(id, cfg.addr, masters, store, activity, copier, opts.heartbeatIntervalMs, log);
  heartbeat.start();
  log.info({ addr: cfg.addr, dataDir: opts.dataDir, chunks: store.count }, 'chunkserver started');
  return {
    id,
    addr: cfg.addr,
    server,
    async close() {
      heartbeat?.stop();
      await new Promise<void>((r) => server.close(() => r()));
      server.closeAllConnections();
    },
  };
}
