// `dfs cluster --tls`: a throw-away CA and node certificate in <data>/tls (made once, kept for
// restarts), every master and chunkserver started with them (mutual TLS between peers), the S3
// gateway trusting the CA and serving HTTPS with the node certificate, and cluster.json naming https:// master addresses and the CA.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { clusterCertFiles, makeClusterCerts, useClientTls } from '../common/tls.js';

export interface ClusterTls {
  /** Flags for `dfs master` and `dfs chunkserver`. */
  serverArgs: string[];
  /** Flags for a client of the cluster (the S3 gateway). */
  clientArgs: string[];
  /** Flags for the S3 gateway's own listener (HTTPS with the node certificate). */
  s3Args: string[];
  /** Extra cluster.json fields. */
  files: { tlsCa?: string };
  /** Master addresses as cluster.json and DFS_MASTERS give them. */
  masters: (addrs: string[]) => string[];
}

export function clusterTlsArgs(dataDir: string, opts: { tls?: boolean; host: string }): ClusterTls {
  if (!opts.tls) return { serverArgs: [], clientArgs: [], s3Args: [], files: {}, masters: (m) => m };
  const dir = join(dataDir, 'tls');
  const f = existsSync(clusterCertFiles(dir).cert) ? clusterCertFiles(dir) : makeClusterCerts(dir, [...new Set([opts.host, '127.0.0.1', 'localhost'])]);
  // The launcher's own readiness checks speak TLS too, as a member (it checks peers' health).
  useClientTls({ ca: readFileSync(f.ca), cert: readFileSync(f.cert), key: readFileSync(f.key) });
  return {
    serverArgs: ['--tls-cert', f.cert, '--tls-key', f.key, '--tls-ca', f.ca],
    clientArgs: ['--tls-ca', f.ca],
    s3Args: ['--tls-cert', f.cert, '--tls-key', f.key],
    files: { tlsCa: f.ca },
    masters: (m) => m.map((a) => `https://${a}`),
  };
}
