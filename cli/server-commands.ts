import type { Argv } from 'yargs';
import { DEFAULT_BASE_PORT, DEFAULT_MASTERS, parseAddr, parseAddrList, parseSize } from '../common/config.js';
import { DfsError } from '../common/errors.js';
import { parseRateMiBps } from '../common/rate.js';

function size(v: unknown, what: string): number {
  return parseSize(v as string | number, what);
}

function positiveInt(v: unknown, what: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) throw new DfsError('INVALID_ARGUMENT', `${what} must be a whole number ≥ 1`);
  return v;
}

function nonNegativeInt(v: unknown, what: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) throw new DfsError('INVALID_ARGUMENT', `${what} must be a whole number ≥ 0`);
  return v;
}

function fraction(v: unknown, what: string): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || v > 10) throw new DfsError('INVALID_ARGUMENT', `${what} must be a number from 0 to 10`);
  return v;
}

/** Stops a server role cleanly on SIGTERM/SIGINT. */
function closeOnSignal(close: () => Promise<void>): void {
  const stop = () => {
    close().then(() => process.exit(0), () => process.exit(1));
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

/** `m1=127.0.0.1:9400,m2=...`: 1, 3 or 5 masters with distinct ids and addresses. */
export function parsePeers(raw: string): Record<string, string> {
  const peers: Record<string, string> = {};
  for (const part of raw.split(',')) {
    const m = /^([A-Za-z0-9_-]{1,32})=(.+)$/.exec(part.trim());
    if (!m) throw new DfsError('INVALID_ARGUMENT', `--peers: ${JSON.stringify(part)} is not id=host:port`);
    const [, id, addr] = m as unknown as [string, string, string];
    const { host, port } = parseAddr(addr, '--peers');
    if (peers[id] !== undefined) throw new DfsError('INVALID_ARGUMENT', `--peers names ${id} twice`);
    peers[id] = `${host}:${port}`;
  }
  const n = Object.keys(peers).length;
  if (new Set(Object.values(peers)).size !== n) throw new DfsError('INVALID_ARGUMENT', '--peers gives two masters the same address');
  if (n > 7) throw new DfsError('INVALID_ARGUMENT', '--peers: at most 7 masters');
  return peers;
}

export function serverCommands(cli: Argv): Argv {
  return cli
    .command('master', 'run a master server', (y) => y
      .option('id', { type: 'string', default: 'm1', describe: 'this master\'s id' })
      .option('listen', { type: 'string', default: `127.0.0.1:${DEFAULT_BASE_PORT}`, describe: 'host:port to listen on (port 0: any free port)' })
      .option('data', { type: 'string', demandOption: true, describe: 'data folder (log and snapshot)' })
      .option('chunk-size', { type: 'string', default: '64MiB', describe: 'chunk size for new files' })
      .option('replication', { type: 'number', default: 3, describe: 'default replicas per chunk' })
      .option('secret-file', { type: 'string', describe: 'file with the cluster secret (or $DFS_CLUSTER_SECRET)' })
      .option('dead-timeout-ms', { type: 'number', default: 30_000, describe: 'a chunkserver silent this long is dead' })
      .option('lease-ms', { type: 'number', default: 60_000, describe: 'a writer silent this long loses its unfinished file' })
      .option('peers', { type: 'string', describe: 'the Raft group: id=host:port,... with this master included. Needed on a master\'s first start only: the group is recorded in its data folder, and a later --peers must match it (a new folder without it: a group of one)' })
      .option('snapshot-every', { type: 'number', default: 10_000, describe: 'Raft log entries between snapshots' })
      .option('tick-ms', { type: 'number', default: 100, describe: 'Raft tick; elections time out after 10-20 ticks' })
      .option('gc-grace-ms', { type: 'number', default: 60_000, describe: 'unreferenced or stale replicas are deleted after this long' })
      .option('copies-per-server', { type: 'number', default: 4, describe: 're-replication and balancing copies one chunkserver takes part in at once' })
      .option('balance-threshold', { type: 'number', default: 0.1, describe: 'move replicas when a server\'s use strays from the mean by more than this share of it (0: never)' }), async (a) => {
      const { runMaster, MASTER_DEFAULTS } = await import('../master/main.js');
      const m = await runMaster({
        id: a.id, listen: a.listen, dataDir: a.data, chunkSizeBytes: size(a['chunk-size'], '--chunk-size'),
        replication: positiveInt(a.replication, '--replication'), secretFile: a['secret-file'],
        deadTimeoutMs: positiveInt(a['dead-timeout-ms'], '--dead-timeout-ms'), writeLeaseMs: positiveInt(a['lease-ms'], '--lease-ms'),
        snapshotEveryEntries: positiveInt(a['snapshot-every'], '--snapshot-every'), tickIntervalMs: positiveInt(a['tick-ms'], '--tick-ms'),
        safeModeMs: MASTER_DEFAULTS.safeModeMs, peers: a.peers === undefined ? undefined : parsePeers(a.peers),
        gcGraceMs: nonNegativeInt(a['gc-grace-ms'], '--gc-grace-ms'), copiesPerServer: positiveInt(a['copies-per-server'], '--copies-per-server'),
        balanceThreshold: fraction(a['balance-threshold'], '--balance-threshold'),
      });
      closeOnSignal(m.close);
    })
    .command('chunkserver', 'run a chunkserver', (y) => y
      .option('id', { type: 'string', describe: 'stable id (default: the one in the data folder, or a new one)' })
      .option('listen', { type: 'string', default: `127.0.0.1:${DEFAULT_BASE_PORT + 100}`, describe: 'host:port to listen on (port 0: any free port)' })
      .option('data', { type: 'string', demandOption: true, describe: 'data folder for chunk files' })
      .option('secret-file', { type: 'string', describe: 'file with the cluster secret (or $DFS_CLUSTER_SECRET)' })
      .option('chunk-size', { type: 'string', default: '64MiB', describe: 'largest chunk accepted (the cluster\'s chunk size)' })
      .option('heartbeat-ms', { type: 'number', default: 1000, describe: 'heartbeat interval' })
      .option('scrub-rate', { type: 'string', default: '16', describe: 'MiB/s of stored chunks re-verified in the background (fractions allowed); 0: no scrubbing' })
      .option('scrub-interval-ms', { type: 'number', default: 30_000, describe: 'least time between the starts of two full scrub passes (1000 to a week); a store larger than rate × interval is scrubbed back to back' })
      .option('copy-rate', { type: 'string', default: '0', describe: 'cap in MiB/s on re-replication copies received, all together; 0: no cap' }), async (a) => {
      const { runChunkserver } = await import('../chunkserver/main.js');
      const masters = parseAddrList((a.masters as string | undefined) ?? process.env.DFS_MASTERS ?? DEFAULT_MASTERS.join(','), '--masters');
      const cs = await runChunkserver({
        id: a.id, listen: a.listen, dataDir: a.data, masters, secretFile: a['secret-file'],
        maxChunkBytes: size(a['chunk-size'], '--chunk-size'), heartbeatIntervalMs: positiveInt(a['heartbeat-ms'], '--heartbeat-ms'),
        scrubRateMiBps: parseRateMiBps(a['scrub-rate'], '--scrub-rate', 'no scrubbing'), scrubIntervalMs: a['scrub-interval-ms'],
        copyRateMiBps: parseRateMiBps(a['copy-rate'], '--copy-rate'),
      });
      closeOnSignal(cs.close);
    })
    .command('s3', 'run the S3-compatible gateway (docs/S3.md)', (y) => y
      .option('listen', { type: 'string', default: '127.0.0.1:9000', describe: 'host:port to listen on (port 0: any free port)' })
      .option('credentials', { type: 'string', demandOption: true, describe: 'JSON file of access keys: [{"accessKeyId": ..., "secretAccessKey": ...}]' })
      .option('region', { type: 'string', default: 'us-east-1', describe: 'region reported to clients (requests signed for any region are accepted)' })
      .option('multipart-expiry-ms', { type: 'number', default: 24 * 3600_000, describe: 'a multipart upload with no activity this long is deleted with its parts' })
      .option('sweep-interval-ms', { type: 'number', default: 3600_000, describe: 'how often abandoned multipart uploads are looked for' }), async (a) => {
      const { runS3Gateway } = await import('../s3/main.js');
      const masters = parseAddrList((a.masters as string | undefined) ?? process.env.DFS_MASTERS ?? DEFAULT_MASTERS.join(','), '--masters');
      const gw = await runS3Gateway({
        listen: a.listen, masters, credentialsFile: a.credentials, region: a.region,
        multipartExpiryMs: positiveInt(a['multipart-expiry-ms'], '--multipart-expiry-ms'), sweepIntervalMs: positiveInt(a['sweep-interval-ms'], '--sweep-interval-ms'),
      });
      closeOnSignal(gw.close);
    })
    .command('cluster', 'run a local cluster in the foreground (what npm start runs)', (y) => y
      .option('masters', { type: 'number', default: 3, describe: 'number of masters (1, 3 or 5): a Raft group' })
      .option('chunkservers', { type: 'number', default: 4, describe: 'number of chunkservers' })
      .option('data', { type: 'string', default: './data', describe: 'folder for all data, logs and cluster.json' })
      .option('base-port', { type: 'number', default: DEFAULT_BASE_PORT, describe: 'masters listen on base-port+i, chunkservers on base-port+100+i' })
      .option('chunk-size', { type: 'string', default: '64MiB', describe: 'chunk size' })
      .option('replication', { type: 'number', default: 3, describe: 'default replicas per chunk' })
      .option('dead-timeout-ms', { type: 'number', default: 3000, describe: 'a chunkserver silent this long is dead (three missed heartbeats: short, for demos)' }), async (a) => {
      const { runCluster } = await import('./cluster.js');
      const basePort = positiveInt(a['base-port'], '--base-port');
      if (basePort + 100 + (a.chunkservers as number) > 65535) throw new DfsError('INVALID_ARGUMENT', '--base-port is too high for that many servers');
      await runCluster({
        masters: positiveInt(Number(a.masters), '--masters'), chunkservers: positiveInt(a.chunkservers, '--chunkservers'), dataDir: a.data,
        basePort, chunkSizeBytes: size(a['chunk-size'], '--chunk-size'), replication: positiveInt(a.replication, '--replication'),
        deadTimeoutMs: positiveInt(a['dead-timeout-ms'], '--dead-timeout-ms'), host: '127.0.0.1',
      });
    });
}
