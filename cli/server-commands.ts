import type { Argv } from 'yargs';
import { DEFAULT_BASE_PORT, DEFAULT_MASTERS, parseAddrList, parseSize } from '../common/config.js';
import { MASTER_DEFAULTS } from '../common/defaults.js';
import { DfsError } from '../common/errors.js';
import { resolveSettings, roleOptions } from '../common/server-settings.js';
import { findToken } from './token-source.js';

function size(v: unknown, what: string): number {
  return parseSize(v as string | number, what);
}

function positiveInt(v: unknown, what: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) throw new DfsError('INVALID_ARGUMENT', `${what} must be a whole number ≥ 1`);
  return v;
}

function s3Port(v: unknown): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 65535) throw new DfsError('INVALID_ARGUMENT', '--s3-port must be a port number (0: no gateway)');
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

export function serverCommands(cli: Argv): Argv {
  return cli
    .command('master', 'run a master server', (y) => y.options(roleOptions('master'))
      .option('join', { type: 'string', describe: 'join a running group as a learner, with an empty --data, after dfs admin masters add: the address of any master of the group (it gives the cluster id and the group), or the cluster id with --peers' }), async (a) => {
      const { runMaster } = await import('../master/main.js');
      const o = resolveSettings('master', a);
      const m = await runMaster({
        id: o.id, listen: o.listen, advertise: o.advertise, dataDir: o.data, chunkSizeBytes: o.chunkSize, replication: o.replication,
        secretFile: o.secretFile, deadTimeoutMs: o.deadTimeoutMs, connectionGraceMs: o.connectionGraceMs, restartGraceMs: o.restartGraceMs, writeLeaseMs: o.leaseMs, snapshotEveryEntries: o.snapshotEvery, compactKeepEntries: o.compactKeep,
        tickIntervalMs: o.tickMs, safeModeMs: MASTER_DEFAULTS.safeModeMs, peers: o.peers, gcGraceMs: o.gcGraceMs,
        copiesPerServer: o.copiesPerServer, balanceThreshold: o.balanceThreshold, trashIntervalMs: o.trashIntervalMs, inlineMaxBytes: o.inlineMaxBytes,
        tls: { cert: o.tlsCert, key: o.tlsKey, ca: o.tlsCa }, join: a.join as string | undefined,
      });
      closeOnSignal(m.close);
      // A master removed from the group stops on its own (dfs admin masters remove).
      void m.removed.then(() => m.close()).then(() => process.exit(0), () => process.exit(1));
    })
    .command('chunkserver', 'run a chunkserver', (y) => y.options(roleOptions('chunkserver')), async (a) => {
      const { runChunkserver } = await import('../chunkserver/main.js');
      const o = resolveSettings('chunkserver', a);
      const cs = await runChunkserver({
        id: o.id, listen: o.listen, advertise: o.advertise, dataDir: o.data, masters: o.masters, secretFile: o.secretFile,
        maxChunkBytes: o.chunkSize, heartbeatIntervalMs: o.heartbeatMs, scrubRateMiBps: o.scrubRate, scrubIntervalMs: o.scrubIntervalMs,
        copyRateMiBps: o.copyRate, tls: { cert: o.tlsCert, key: o.tlsKey, ca: o.tlsCa }, rack: o.rack, // rack rule
      });
      closeOnSignal(cs.close);
    })
    .command('s3', 'run the S3-compatible gateway (docs/S3.md)', (y) => y
      .option('listen', { type: 'string', default: '127.0.0.1:9000', describe: 'host:port to listen on (port 0: any free port)' })
      .option('credentials', { type: 'string', demandOption: true, describe: 'JSON file of access keys: [{"accessKeyId": ..., "secretAccessKey": ...}]' })
      .option('region', { type: 'string', default: 'us-east-1', describe: 'region reported to clients (requests signed for any region are accepted)' })
      .option('multipart-expiry-ms', { type: 'number', default: 24 * 3600_000, describe: 'a multipart upload with no activity this long is deleted with its parts' })
      .option('sweep-interval-ms', { type: 'number', default: 3600_000, describe: 'how often abandoned multipart uploads are looked for' })
      .option('domain', { type: 'string', describe: 'virtual-host addressing: a request to <bucket>.DOMAIN names that bucket' })
      .option('tls-cert', { type: 'string', describe: 'PEM certificate: serve HTTPS (with --tls-key)' })
      .option('tls-key', { type: 'string', describe: 'PEM private key of --tls-cert' }), async (a) => {
      const { runS3Gateway } = await import('../s3/main.js');
      const masters = parseAddrList((a.masters as string | undefined) ?? process.env.DFS_MASTERS ?? DEFAULT_MASTERS.join(','), '--masters');
      const gw = await runS3Gateway({
        listen: a.listen, masters, credentialsFile: a.credentials, region: a.region, token: findToken({ tokenFile: a['token-file'] as string | undefined }),
        multipartExpiryMs: positiveInt(a['multipart-expiry-ms'], '--multipart-expiry-ms'), sweepIntervalMs: positiveInt(a['sweep-interval-ms'], '--sweep-interval-ms'),
        domain: a.domain, tls: { cert: a['tls-cert'], key: a['tls-key'] },
      });
      closeOnSignal(gw.close);
    })
    .command('cluster', 'run a local cluster in the foreground (what npm start runs)', (y) => y
      .option('masters', { type: 'number', default: 3, describe: 'number of masters (1, 3 or 5): a Raft group' })
      .option('chunkservers', { type: 'number', default: 4, describe: 'number of chunkservers' })
      .option('racks', { type: 'number', default: 1, describe: 'deal the chunkservers over this many racks (rack1, rack2, ... in turn): replicas are spread over racks' })
      .option('data', { type: 'string', default: './data', describe: 'folder for all data, logs and cluster.json' })
      .option('base-port', { type: 'number', default: DEFAULT_BASE_PORT, describe: 'masters listen on base-port+i, chunkservers on base-port+100+i' })
      .option('chunk-size', { type: 'string', default: '64MiB', describe: 'chunk size' })
      .option('replication', { type: 'number', default: 3, describe: 'default replicas per chunk' })
      .option('dead-timeout-ms', { type: 'number', default: 3000, describe: 'a chunkserver silent this long is dead (three missed heartbeats: short, for demos)' })
      .option('s3-port', { type: 'number', describe: 'port of the S3 gateway (0: none)', defaultDescription: '9000; with another --base-port, base-port+200' })
      .option('s3-domain', { type: 'string', describe: 'the S3 gateway\'s --domain: <bucket>.DOMAIN names a bucket' })
      .option('tls', { type: 'boolean', default: false, describe: 'TLS everywhere, mutual between servers, with a throw-away CA made in <data>/tls (needs openssl)' }), async (a) => {
      const { runCluster } = await import('./cluster.js');
      const basePort = positiveInt(a['base-port'], '--base-port');
      if (basePort + 100 + (a.chunkservers as number) > 65535) throw new DfsError('INVALID_ARGUMENT', '--base-port is too high for that many servers');
      const racks = positiveInt(a.racks, '--racks'); // rack rule
      if (racks > (a.chunkservers as number)) throw new DfsError('INVALID_ARGUMENT', `--racks ${racks} is more than the ${a.chunkservers} chunkservers: each rack needs one at least`);
      await runCluster({
        racks, masters: positiveInt(Number(a.masters), '--masters'), chunkservers: positiveInt(a.chunkservers, '--chunkservers'), dataDir: a.data,
        basePort, chunkSizeBytes: size(a['chunk-size'], '--chunk-size'), replication: positiveInt(a.replication, '--replication'),
        deadTimeoutMs: positiveInt(a['dead-timeout-ms'], '--dead-timeout-ms'), host: '127.0.0.1', tls: a.tls,
        ...(a['s3-port'] !== undefined ? { s3Port: s3Port(a['s3-port']) } : {}),
        ...(a['s3-domain'] !== undefined ? { s3Domain: a['s3-domain'] } : {}),
      });
    });
}
