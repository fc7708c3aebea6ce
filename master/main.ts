import type { Express } from 'express';
import { mkdirSync } from 'node:fs';
import type { IncomingMessage, Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { loadSecret, PEER_AUTH_HEADER, verifyPeerAuth } from '../common/auth.js';
import { parseAddr } from '../common/config.js';
import { createLogger, type Logger } from '../common/log.js';
import { createApp, installErrorHandler, listen, newMetricsRegistry, sendError } from '../common/server.js';
import { DfsError } from '../common/errors.js';
import { CHUNK_TIMEOUT_MS, checkLimits, WRITE_TOKEN_TTL_MS } from '../common/limits.js';
import { REPAIR_DEFAULTS } from './repair/index.js';
import { RaftReplicator } from './raft-replicator.js';
import { acceptRaftStreams, type RaftNode } from './raft/index.js';
import { CLUSTER_ID_HEADER, resolveMembership } from './membership.js';
import { raftHooks, watchLeader, watchRaft } from './metrics.js';
import { mountMasterRoutes } from './routes.js';
import { MasterService, READ_TOKEN_TTL_MS, type MasterConfig } from './service/index.js';

export interface MasterOptions {
  id: string;
  /** host:port to listen on (and to advertise, unless `advertise` is given). */
  listen: string;
  /** host:port the other masters and clients reach this one at, when not the listen address. */
  advertise?: string;
  dataDir: string;
  chunkSizeBytes: number;
  replication: number;
  secretFile?: string;
  deadTimeoutMs: number;
  /** A chunkserver whose connection to the leader dropped is dead after this long unless it connects again. */
  connectionGraceMs: number;
  writeLeaseMs: number;
  /** Raft log entries between snapshots (and log compaction). */
  snapshotEveryEntries: number;
  /**
   * The Raft group, id=host:port each, this master included. Absent: the group recorded in the
   * data folder, or for a new folder a group of one. Present: must match the recorded group.
   */
  peers?: Record<string, string>;
  /** One Raft tick; elections time out after 10–20 ticks. */
  tickIntervalMs: number;
  /** Longest safe mode after becoming leader (placement waits for chunkserver reports). */
  safeModeMs: number;
  /** Unreferenced or stale replicas are deleted after being so this long. */
  gcGraceMs: number;
  /** Copies one chunkserver takes part in at once (re-replication and balancing). */
  copiesPerServer: number;
  /** Balance when a server's use strays from the mean by more than this share of it; 0 turns balancing off. */
  balanceThreshold: number;
}

export const MASTER_DEFAULTS = {
  chunkSizeBytes: 64 * 1024 * 1024,
  replication: 3,
  /** GFS/HDFS use tens of seconds; the local cluster passes a shorter value for quick demos. */
  deadTimeoutMs: 30_000,
  /** A crash is seen at once (the connection drops); this long forgives a quick restart. */
  connectionGraceMs: 1500,
  writeLeaseMs: 60_000,
  snapshotEveryEntries: 10_000,
  tickIntervalMs: 100,
  safeModeMs: 5_000,
  /** A minute: long enough to ride out a master that is briefly behind; the local cluster uses 10 s. */
  gcGraceMs: 60_000,
  /** HDFS allows 2 replication streams per DataNode (4 at most); small clusters want lost replicas back fast. */
  copiesPerServer: 4,
  balanceThreshold: 0.1,
};

export interface RunningMaster { addr: string; server: Server; close(): Promise<void> }

/** Starts a master: replays its log, serves the API, and expires abandoned writes. */
export async function runMaster(opts: MasterOptions): Promise<RunningMaster> {
  const { host, port } = parseAddr(opts.listen, '--listen', true);
  // The copy's report slack is the dead timeout (see LeaderCore): checked as the core will use it.
  checkLimits({
    deadTimeoutMs: opts.deadTimeoutMs, connectionGraceMs: opts.connectionGraceMs, gcGraceMs: opts.gcGraceMs, writeTokenTtlMs: WRITE_TOKEN_TTL_MS, chunkTimeoutMs: CHUNK_TIMEOUT_MS,
    copyTimeoutMs: REPAIR_DEFAULTS.copyTimeoutMs, copyReportSlackMs: opts.deadTimeoutMs,
  });
  const log = createLogger('master', opts.id);
  mkdirSync(opts.dataDir, { recursive: true });
  const secret = loadSecret(opts.secretFile);
  const metrics = newMetricsRegistry('master');
  checkPeers(opts);
  const app = createApp(log, metrics);
  requireChunkserverAuth(app, secret);
  // Until the service is mounted (Raft still loading its log), say so in JSON, so clients move
  // on to another master instead of failing on an HTML 404.
  let ready = false;
  app.use((_req, res, next) => (ready ? next() : sendError(res, new DfsError('UNAVAILABLE', 'master is starting'))));
  const server = await listen(app, host, port);
  // Raft traffic between masters: one upgraded stream per peer, checked against the cluster
  // secret once when it opens (master/raft/stream-transport.ts).
  let raftNode: RaftNode | undefined;
  let clusterId: string | undefined;
  const raftStreams = acceptRaftStreams(server, {
    authorize: raftStreamAuthorizer(secret, log, () => clusterId),
    sink: () => raftNode,
    onBadFrame: (err) => log.warn({ err: err.message }, 'closed a raft stream that sent a bad frame'),
  });
  const addr = opts.advertise ?? `${host}:${(server.address() as AddressInfo).port}`;
  let membership;
  try {
    membership = await resolveMembership({ dataDir: opts.dataDir, id: opts.id, listen: addr, peers: opts.peers, secret });
  } catch (err) {
    await new Promise<void>((r) => server.close(() => r()));
    throw err;
  }
  const peers = membership.membership.members;
  clusterId = membership.membership.clusterId;
  const replicator = await RaftReplicator.open({
    id: opts.id, peers, clusterId, dataDir: opts.dataDir, secret, tickIntervalMs: opts.tickIntervalMs, snapshotEveryEntries: opts.snapshotEveryEntries,
    hooks: raftHooks(metrics, Object.keys(peers).filter((p) => p !== opts.id)),
  }, log);
  raftNode = replicator.raftNode;
  watchRaft(metrics, replicator);
  const config = serviceConfig(opts, { addr, clusterId, peers, secret });
  const svc = new MasterService({ config, getState: () => replicator.state, replicator, log });
  mountMasterRoutes(app, svc, metrics);
  watchLeader(metrics, svc);
  installErrorHandler(app, log);
  ready = true;
  // The leader core's timer: repair scans and lease expiry (master/leader/core.ts decides when).
  svc.start();
  log.info({ addr, dataDir: opts.dataDir, peers, clusterId, membership: membership.source, chunks: replicator.state.chunks.size }, 'master started');
  return {
    addr,
    server,
    async close() {
      svc.stop();
      const closed = new Promise<void>((r) => server.close(() => r()));
      // Upgraded raft streams are no longer the HTTP server's: close them, or close() waits on them.
      raftStreams.close();
      server.closeAllConnections();
      await closed;
      await replicator.close();
    },
  };
}

/** --peers, when given, must name this master at the address it is reached at. */
function checkPeers(opts: MasterOptions): void {
  if (!opts.peers) return;
  const self = opts.advertise ?? opts.listen;
  if (opts.peers[opts.id] === undefined) throw new DfsError('INVALID_ARGUMENT', `--peers does not name this master (${opts.id})`);
  if (opts.peers[opts.id] !== self) throw new DfsError('INVALID_ARGUMENT', `--peers gives ${opts.id} the address ${opts.peers[opts.id]}, but it ${opts.advertise ? 'advertises' : 'listens on'} ${self}`);
}

/**
 * Chunkserver calls must prove they hold the cluster secret: a stray server (another
 * cluster's, say) reporting the same handles would otherwise count as replicas.
 */
function requireChunkserverAuth(app: Express, secret: Buffer): void {
  app.use('/v1/cs', (req, res, next) => {
    try {
      verifyPeerAuth(secret, 'chunkserver', req.get(PEER_AUTH_HEADER));
      next();
    } catch (err) {
      sendError(res, err as DfsError);
    }
  });
}

/** Who may open a raft stream: a master holding the secret, of this cluster (undefined: allowed; else why not). */
function raftStreamAuthorizer(secret: Buffer, log: Logger, clusterId: () => string | undefined): (req: IncomingMessage) => string | undefined {
  return (req) => {
    try {
      verifyPeerAuth(secret, 'raft', req.headers[PEER_AUTH_HEADER]);
    } catch (err) {
      return (err as DfsError).message;
    }
    // A master of another cluster that shares the secret must not vote or append here. A
    // master without the header predates cluster ids (a rolling upgrade): the secret suffices.
    const theirs = req.headers[CLUSTER_ID_HEADER];
    const ours = clusterId();
    if (theirs !== undefined && theirs !== ours) {
      log.warn({ theirs, ours }, 'refused a raft stream from a master of another cluster');
      return `this master belongs to cluster ${ours ?? '(starting)'}, not ${String(theirs)}`;
    }
    return undefined;
  };
}

/** The service's settings, from the options and what the membership resolved. */
function serviceConfig(opts: MasterOptions, m: { addr: string; clusterId: string; peers: Record<string, string>; secret: Buffer }): MasterConfig {
  return {
    id: opts.id, addr: m.addr, clusterId: m.clusterId, chunkSizeBytes: opts.chunkSizeBytes, defaultReplication: opts.replication,
    writeLeaseMs: opts.writeLeaseMs, deadTimeoutMs: opts.deadTimeoutMs, connectionGraceMs: opts.connectionGraceMs, writeTokenTtlMs: WRITE_TOKEN_TTL_MS, readTokenTtlMs: READ_TOKEN_TTL_MS, secret: m.secret,
    peers: m.peers, safeModeMs: opts.safeModeMs, gcGraceMs: opts.gcGraceMs,
    repair: { perServerCopies: opts.copiesPerServer, balanceThreshold: opts.balanceThreshold },
  };
}
