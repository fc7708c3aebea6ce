import type { Argv } from 'yargs';
import { DEFAULT_BASE_PORT, parseAddrList, parseSize } from '../common/config.js';
import { DfsError } from '../common/errors.js';

function size(v: unknown, what: string): number {
  return parseSize(v as string | number, what);
}

function positiveInt(v: unknown, what: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) throw new DfsError('INVALID_ARGUMENT', `${what} must be a whole number ≥ 1`);
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
    .command('master', 'run a master server', (y) => y
      .option('id', { type: 'string', default: 'm1', describe: 'this master\'s id' })
      .option('listen', { type: 'string', default: `127.0.0.1:${DEFAULT_BASE_PORT}`, describe: 'host:port to listen on (port 0: any free port)' })
      .option('data', { type: 'string', demandOption: true, describe: 'data folder (log and snapshot)' })
      .option('chunk-size', { type: 'string', default: '64MiB', describe: 'chunk size for new files' })
      .option('replication', { type: 'number', default: 3, describe: 'default replicas per chunk' })
      .option('secret-file', { type: 'string', describe: 'file with the cluster secret (or $DFS_CLUSTER_SECRET)' })
      .option('dead-timeout-ms', { type: 'number', default: 30_000, describe: 'a chunkserver silent this long is dead' })
      .option('lease-ms', { type: 'number', default: 60_000, describe: 'a writer silent this long loses its unfinished file' }), async (a) => {
      const { runMaster } = await import('../master/main.js');
      const m = await runMaster({
        id: a.id, listen: a.listen, dataDir: a.data, chunkSizeBytes: size(a['chunk-size'], '--chunk-size'),
        replication: positiveInt(a.replication, '--replication'), secretFile: a['secret-file'],
        deadTimeoutMs: positiveInt(a['dead-timeout-ms'], '--dead-timeout-ms'), writeLeaseMs: positiveInt(a['lease-ms'], '--lease-ms'),
        snapshotEveryRecords: 10_000,
      });
      closeOnSignal(m.close);
    })
    .command('chunkserver', 'run a chunkserver', (y) => y
      .option('id', { type: 'string', describe: 'stable id (default: the one in the data folder, or a new one)' })
      .option('listen', { type: 'string', default: `127.0.0.1:${DEFAULT_BASE_PORT + 100}`, describe: 'host:port to listen on (port 0: any free port)' })
      .option('data', { type: 'string', demandOption: true, describe: 'data folder for chunk files' })
      .option('secret-file', { type: 'string', describe: 'file with the cluster secret (or $DFS_CLUSTER_SECRET)' })
      .option('chunk-size', { type: 'string', default: '64MiB', describe: 'largest chunk accepted (the cluster\'s chunk size)' })
      .option('heartbeat-ms', { type: 'number', default: 1000, describe: 'heartbeat interval' }), async (a) => {
      const { runChunkserver } = await import('../chunkserver/main.js');
      const masters = parseAddrList((a.masters as string | undefined) ?? process.env.DFS_MASTERS ?? `127.0.0.1:${DEFAULT_BASE_PORT}`, '--masters');
      const cs = await runChunkserver({
        id: a.id, listen: a.listen, dataDir: a.data, masters, secretFile: a['secret-file'],
        maxChunkBytes: size(a['chunk-size'], '--chunk-size'), heartbeatIntervalMs: positiveInt(a['heartbeat-ms'], '--heartbeat-ms'),
      });
      closeOnSignal(cs.close);
    })
    .command('cluster', 'run a local cluster in the foreground (what npm start runs)', (y) => y
      .option('masters', { type: 'number', default: 1, describe: 'number of masters' })
      .option('chunkservers', { type: 'number', default: 4, describe: 'number of chunkservers' })
      .option('data', { type: 'string', default: './data', describe: 'folder for all data, logs and cluster.json' })
      .option('base-port', { type: 'number', default: DEFAULT_BASE_PORT, describe: 'masters listen on base-port+i, chunkservers on base-port+100+i' })
      .option('chunk-size', { type: 'string', default: '64MiB', describe: 'chunk size' })
      .option('replication', { type: 'number', default: 3, describe: 'default replicas per chunk' })
      .option('dead-timeout-ms', { type: 'number', default: 5000, describe: 'a chunkserver silent this long is dead (short, for demos)' }), async (a) => {
      const { runCluster } = await import('./cluster.js');
      const basePort = positiveInt(a['base-port'], '--base-port');
      if (basePort + 100 + (a.chunkservers as number) > 65535) throw new DfsError('INVALID_ARGUMENT', '--base-port is too high for that many servers');
      await runCluster({
        masters: positiveInt(a.masters, '--masters'), chunkservers: positiveInt(a.chunkservers, '--chunkservers'), dataDir: a.data,
        basePort, chunkSizeBytes: size(a['chunk-size'], '--chunk-size'), replication: positiveInt(a.replication, '--replication'),
        deadTimeoutMs: positiveInt(a['dead-timeout-ms'], '--dead-timeout-ms'), host: '127.0.0.1',
      });
    });
}
