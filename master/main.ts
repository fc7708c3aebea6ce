import { mkdirSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { loadSecret } from '../common/auth.js';
import { parseAddr } from '../common/config.js';
import { createLogger } from '../common/log.js';
import { createApp, installErrorHandler, listen, newMetricsRegistry } from '../common/server.js';
import { LocalLog } from './local-log.js';
import { mountMasterRoutes } from './routes.js';
import { MasterService } from './service.js';
import { MasterState } from './state.js';

export interface MasterOptions {
  id: string;
  /** host:port to listen on (and to advertise). */
  listen: string;
  dataDir: string;
  chunkSizeBytes: number;
  replication: number;
  secretFile?: string;
  deadTimeoutMs: number;
  writeLeaseMs: number;
  snapshotEveryRecords: number;
}

export const MASTER_DEFAULTS = {
  chunkSizeBytes: 64 * 1024 * 1024,
  replication: 3,
  /** GFS/HDFS use tens of seconds; the local cluster passes a shorter value for quick demos. */
  deadTimeoutMs: 30_000,
  writeLeaseMs: 60_000,
  snapshotEveryRecords: 10_000,
};

export interface RunningMaster { addr: string; server: Server; close(): Promise<void> }

/** Starts a master: replays its log, serves the API, and expires abandoned writes. */
export async function runMaster(opts: MasterOptions): Promise<RunningMaster> {
  const { host, port } = parseAddr(opts.listen, '--listen', true);
  const log = createLogger('master', opts.id);
  mkdirSync(opts.dataDir, { recursive: true });
  const secret = loadSecret(opts.secretFile);
  const opened = LocalLog.open(opts.dataDir, () => new MasterState(), (b) => MasterState.restore(b), { snapshotEveryRecords: opts.snapshotEveryRecords });
  const state = opened.state;
  const metrics = newMetricsRegistry('master');
  const config = {
      id: opts.id, addr: opts.listen, chunkSizeBytes: opts.chunkSizeBytes, defaultReplication: opts.replication,
      writeLeaseMs: opts.writeLeaseMs, deadTimeoutMs: opts.deadTimeoutMs, writeTokenTtlMs: 10 * 60_000, secret,
  };
  const svc = new MasterService(config, () => state, opened.log, log);
  const app = createApp(log, metrics);
  mountMasterRoutes(app, svc, metrics);
  installErrorHandler(app, log);
  const server = await listen(app, host, port);
  config.addr = `${host}:${(server.address() as AddressInfo).port}`;
  const leaseTimer = setInterval(() => {
    svc.expireLeases().catch((err) => log.warn({ err }, 'lease expiry failed'));
  }, Math.max(250, Math.floor(opts.writeLeaseMs / 4)));
  log.info({ addr: config.addr, dataDir: opts.dataDir, chunks: state.chunks.size }, 'master started');
  return {
    addr: config.addr,
    server,
    async close() {
      clearInterval(leaseTimer);
      await new Promise<void>((r) => server.close(() => r()));
      server.closeAllConnections();
      await opened.log.close();
    },
  };
}
