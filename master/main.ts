import { mkdirSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { loadSecret } from '../common/auth.js';
import { parseAddr } from '../common/config.js';
import { allowedHostNames } from '../common/http-limits.js';
import { secureDataDir } from '../common/data-dir.js';
import { createLogger, type Logger } from '../common/log.js';
import type { Registry } from 'prom-client';
import { PeerVerifier } from '../common/peer-auth.js';
import { clientTls, loadServerTls, useClientTls, type TlsFiles } from '../common/tls.js';
import { createApp, installErrorHandler, listen, newMetricsRegistry, sendError } from '../common/server.js';
import { DfsError } from '../common/errors.js';
import { initChecksums } from '../common/checksum.js';
import { MASTER_DEFAULTS } from '../common/defaults.js';
import { INLINE_MAX_BYTES_LIMIT } from '../common/inline.js';
import { CHUNK_TIMEOUT_MS, checkLimits, WRITE_TOKEN_TTL_MS } from '../common/limits.js';
import { REPAIR_DEFAULTS } from './repair/index.js';
import { RaftReplicator } from './raft-replicator.js';
import { chunkserverGuard, groupRouteGuard, raftStreamAuthorizer } from './peer-guard.js';
import { acceptRaftStreams, type MessageSink } from './raft/index.js';
import { hasMembershipRecord, recordMembers, resolveMembership } from './membership.js';
import { fetchJoin, joinIsAddress, watchForRemoval } from './group-join.js';
import { raftHooks, watchLeader, watchRaft } from './metrics.js';
import { mountMasterRoutes } from './routes.js';
import { mountMembershipRoutes } from './membership-routes.js';
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
  /** A chunkserver that stopped cleanly to restart is held this long before its copies start (default MASTER_DEFAULTS). */
  restartGraceMs?: number;
  writeLeaseMs: number;
  /** Raft log entries between snapshots (and log compaction). */
  snapshotEveryEntries: number;
  /** Raft log entries kept behind a snapshot, for followers a little behind (default MASTER_DEFAULTS). */
  compactKeepEntries?: number;
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
  /** trash-quota: trash checkpoints older than this are expunged (default a day). */
  trashIntervalMs?: number;
  /** Files of at most this many bytes are kept inline in the replicated state (0: none; default MASTER_DEFAULTS.inlineMaxBytes). */
  inlineMaxBytes?: number;
  /** TLS on the listener and (with a CA) mutual TLS with chunkservers and the other masters. */
  tls?: TlsFiles;
  /** `--join <cluster id>`: an empty data folder joins the running group `peers` names, as a learner. */
  join?: string;
}

export { MASTER_DEFAULTS } from '../common/defaults.js';

export interface RunningMaster {
  addr: string;
  server: Server;
  close(): Promise<void>;
  /** Resolves when a committed configuration no longer names this master: it should stop then. */
  removed: Promise<void>;
}

/** Starts a master: replays its log, serves the API, and expires abandoned writes. */
export async function runMaster(opts: MasterOptions): Promise<RunningMaster> {
  const { host, port } = parseAddr(opts.listen, '--listen', true);
  // The copy's report slack is the dead timeout (see LeaderCore): checked as the core will use it.
  checkLimits({
    deadTimeoutMs: opts.deadTimeoutMs, connectionGraceMs: opts.connectionGraceMs, restartGraceMs: opts.restartGraceMs ?? MASTER_DEFAULTS.restartGraceMs, gcGraceMs: opts.gcGraceMs, writeTokenTtlMs: WRITE_TOKEN_TTL_MS, chunkTimeoutMs: CHUNK_TIMEOUT_MS,
    copyTimeoutMs: REPAIR_DEFAULTS.copyTimeoutMs, copyReportSlackMs: opts.deadTimeoutMs,
  });
  const inline = opts.inlineMaxBytes ?? MASTER_DEFAULTS.inlineMaxBytes;
  if (!Number.isInteger(inline) || inline < 0 || inline > INLINE_MAX_BYTES_LIMIT) throw new DfsError('INVALID_ARGUMENT', `--inline-max-bytes must be a whole number from 0 to ${INLINE_MAX_BYTES_LIMIT}, not ${inline}`);
  await initChecksums(); // the leader checks inline bytes against their checksum before it proposes them
  const log = createLogger('master', opts.id);
  secureDataDir(opts.dataDir, log);
  const secret = loadSecret(opts.secretFile);
  const metrics = newMetricsRegistry('master');
  checkPeers(opts);
  const { app, tls, verifier, names } = masterApp(opts, secret, log, metrics);
  // Until the service is mounted (Raft still loading its log), say so in JSON, so clients move
  // on to another master instead of failing on an HTML 404.
  let ready = false;
  app.use((_req, res, next) => (ready ? next() : sendError(res, new DfsError('UNAVAILABLE', 'master is starting'))));
  const server = await listen(app, host, port, { tls });
  // Raft traffic between masters: one upgraded stream per peer, authenticated once when it
  // opens and bound to the member that opened it (master/peer-guard.ts).
  let raftSink: MessageSink | undefined;
  let group: { peers: Record<string, string>; clusterId: string } | undefined;
  const raftStreams = acceptRaftStreams(server, {
    authorize: raftStreamAuthorizer({ verifier, tls, selfId: opts.id, group: () => group, log }),
    sink: () => raftSink,
    onForged: (member, from) => log.error({ member, from }, 'refused a raft message whose sender is not the stream\'s member; stream closed'),
    onBadFrame: (err) => log.warn({ err: err.message }, 'closed a raft stream that sent a bad frame'),
  });
  const addr = opts.advertise ?? `${host}:${(server.address() as AddressInfo).port}`;
  const membership = await membershipOrClose(server, () => membershipInput(opts, addr, secret, log));
  const peers = membership.membership.members;
  const clusterId = membership.membership.clusterId;
  group = { peers, clusterId };
  names.current = allowedHostNames([opts.listen, opts.advertise, ...Object.values(peers)]);
  let onRemoved = (): void => undefined;
  const removed = new Promise<void>((r) => (onRemoved = r));
  const replicator = await RaftReplicator.open({
    id: opts.id, peers, clusterId, dataDir: opts.dataDir, secret, tls: clientTls(), tickIntervalMs: opts.tickIntervalMs, snapshotEveryEntries: opts.snapshotEveryEntries,
    compactKeepEntries: opts.compactKeepEntries ?? MASTER_DEFAULTS.compactKeepEntries, hooks: raftHooks(metrics, Object.keys(peers).filter((p) => p !== opts.id)),
    joinedVoters: membership.membership.joinedVoters, onMembers: membersRecorder(opts.dataDir, log), onRemoved: () => onRemoved(),
  }, log);
  raftSink = replicator.inbound;
  watchRaft(metrics, replicator);
  const config = serviceConfig(opts, { addr, clusterId, peers, secret });
  const svc = new MasterService({ config, getState: () => replicator.state, replicator, log });
  mountMasterRoutes(app, svc, metrics);
  mountMembershipRoutes(app, replicator, clusterId);
  const stopPromoting = replicator.promoteLearners(log);
  const stopWatching = watchForRemoval({ replicator, id: opts.id, secret, clusterId, log, onRemoved: () => onRemoved() });
  watchLeader(metrics, svc);
  installErrorHandler(app, log);
  ready = true;
  // The leader core's timer: repair scans and lease expiry (master/leader/core.ts decides when).
  svc.start();
  log.info({ addr, dataDir: opts.dataDir, peers, clusterId, membership: membership.source, chunks: replicator.state.chunks.size }, 'master started');
  const close = closer(svc, server, raftStreams, replicator, log);
  return { addr, server, removed, close: () => (stopPromoting(), stopWatching(), close()) };
}

/** Writes membership.json each time a configuration commits, one write at a time, in order. */
function membersRecorder(dataDir: string, log: Logger): (members: Record<string, string>) => void {
  let chain = Promise.resolve();
  return (members) => {
    chain = chain.then(() => recordMembers(dataDir, members)).then(
      () => log.info({ members }, 'recorded the master group'),
      (err: Error) => log.error({ err: err.message }, 'could not record the master group in membership.json'),
    );
  };
}

/**
 * What decides the group: the flags, except that `--join <addr>` on a folder without a record
 * stands for the cluster id and group that member gives (master/group-join.ts). On a folder with
 * a record, --join is done with: the recorded group is used.
 */
async function membershipInput(opts: MasterOptions, addr: string, secret: Buffer, log: Logger): Promise<Parameters<typeof resolveMembership>[0]> {
  const base = { dataDir: opts.dataDir, id: opts.id, listen: addr, peers: opts.peers, secret, join: opts.join };
  if (!joinIsAddress(opts.join)) return base;
  if (await hasMembershipRecord(opts.dataDir)) return { ...base, join: undefined };
  if (opts.peers !== undefined) throw new DfsError('INVALID_ARGUMENT', '--join <address> fetches the group from that master: leave --peers out');
  const fetched = await fetchJoin(opts.join, { id: opts.id, self: addr, secret, log });
  return { ...base, peers: fetched.peers, join: fetched.clusterId };
}

/** The group from the data folder (or the flags, the first time); the listener is closed if that fails. */
async function membershipOrClose(server: Server, input: () => Promise<Parameters<typeof resolveMembership>[0]>): Promise<Awaited<ReturnType<typeof resolveMembership>>> {
  try {
    return await resolveMembership(await input());
  } catch (err) {
    await new Promise<void>((r) => server.close(() => r()));
    throw err;
  }
}

function closer(svc: MasterService, server: Server, raftStreams: { close(): void }, replicator: RaftReplicator, log: Logger): () => Promise<void> {
  return async () => {
    // A leader stopping cleanly (SIGTERM) hands over first: a rolling restart costs no election timeout.
    await replicator.handOver(log);
    svc.stop();
    const closed = new Promise<void>((r) => server.close(() => r()));
    // Upgraded raft streams are no longer the HTTP server's: close them, or close() waits on them.
    raftStreams.close();
    server.closeAllConnections();
    await closed;
    await replicator.close();
  };
}

/**
 * The master's app and TLS: chunkserver calls and Raft streams must be signed with the cluster
 * secret, each once (master/peer-guard.ts), checked before their bodies are parsed; the host
 * names it answers to grow to the whole group once the membership is known.
 */
function masterApp(opts: MasterOptions, secret: Buffer, log: Logger, metrics: Registry) {
  const tls = loadServerTls(opts.tls ?? {});
  // This master's own calls (Raft streams, status probes) go out over TLS too, with its certificate.
  if (tls) useClientTls({ ca: tls.ca, cert: tls.cert, key: tls.key });
  const verifier = new PeerVerifier(secret);
  const names = { current: allowedHostNames([opts.listen, opts.advertise, ...Object.values(opts.peers ?? {})]) };
  const app = createApp(log, metrics, { hostNames: () => names.current, guards: [chunkserverGuard(verifier, tls), groupRouteGuard(verifier, tls)],
    // The master's routes call no peer (Raft has its own streams), so no async request context:
    // its routes log through requestLog(res) (common/server.ts, requestContext).
    requestContext: false,
  });
  return { app, tls, verifier, names };
}

/** --peers, when given, must name this master at the address it is reached at. */
function checkPeers(opts: MasterOptions): void {
  if (!opts.peers) return;
  const self = opts.advertise ?? opts.listen;
  if (opts.peers[opts.id] === undefined) throw new DfsError('INVALID_ARGUMENT', `--peers does not name this master (${opts.id})`);
  if (opts.peers[opts.id] !== self) throw new DfsError('INVALID_ARGUMENT', `--peers gives ${opts.id} the address ${opts.peers[opts.id]}, but it ${opts.advertise ? 'advertises' : 'listens on'} ${self}`);
}

/** The service's settings, from the options and what the membership resolved. */
function serviceConfig(opts: MasterOptions, m: { addr: string; clusterId: string; peers: Record<string, string>; secret: Buffer }): MasterConfig {
  return {
    id: opts.id, addr: m.addr, clusterId: m.clusterId, chunkSizeBytes: opts.chunkSizeBytes, defaultReplication: opts.replication,
    writeLeaseMs: opts.writeLeaseMs, deadTimeoutMs: opts.deadTimeoutMs, connectionGraceMs: opts.connectionGraceMs, restartGraceMs: opts.restartGraceMs ?? MASTER_DEFAULTS.restartGraceMs, writeTokenTtlMs: WRITE_TOKEN_TTL_MS, readTokenTtlMs: READ_TOKEN_TTL_MS, secret: m.secret,
    peers: m.peers, safeModeMs: opts.safeModeMs, gcGraceMs: opts.gcGraceMs, trashIntervalMs: opts.trashIntervalMs,
    inlineMaxBytes: opts.inlineMaxBytes ?? MASTER_DEFAULTS.inlineMaxBytes,
    repair: { perServerCopies: opts.copiesPerServer, balanceThreshold: opts.balanceThreshold },
  };
}
