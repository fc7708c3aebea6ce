// `dfs s3`: the S3-compatible gateway process. A DfsClient to the masters, the HTTP server, and
// the sweep that deletes abandoned multipart uploads.
import type { AddressInfo } from 'node:net';
import { DfsClient } from '../cli/client.js';
import { initChecksums } from '../common/checksum.js';
import { DfsError } from '../common/errors.js';
import { parseAddr } from '../common/config.js';
import { createLogger } from '../common/log.js';
import { loadServerTls } from '../common/tls.js';
import type { GatewayConfig } from './context.js';
import { KeyFile } from './credentials.js';
import { KeyScopes } from './scope.js';
import { sweepUploads } from './multipart.js';
import { createS3Server } from './server.js';

export { writeCredentialsFile } from './credentials.js';

export interface S3GatewayOptions extends Partial<GatewayConfig> {
  listen: string;
  masters: string[];
  credentialsFile: string;
  /** The dfs client token the gateway sends to the masters (`--token-file`; default: as any client finds one). */
  token?: string;
  /** Serve HTTPS with this certificate and key (PEM files). */
  tls?: { cert?: string; key?: string };
  /** How often abandoned uploads are looked for; the expiry itself is multipartExpiryMs. */
  sweepIntervalMs?: number;
}

/** How often the credentials file is checked for changes (keys added by dfs token create --s3-credentials). */
const CREDENTIALS_RECHECK_MS = 1_000;

export const S3_DEFAULTS = {
  region: 'us-east-1',
  minPartBytes: 5 * 1024 * 1024,
  /** S3 has no default expiry (a lifecycle rule sets one); a day is what most gateways pick. */
  multipartExpiryMs: 24 * 3600_000,
  sweepIntervalMs: 3600_000,
};

/** A DNS name for virtual-host addressing: lower-case labels of letters, digits and '-'. */
export function checkDomain(domain: string): string {
  const d = domain.toLowerCase();
  if (!/^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/.test(d)) {
    throw new DfsError('INVALID_ARGUMENT', `--domain ${JSON.stringify(domain)} is not a DNS name (for example s3.local)`);
  }
  return d;
}

export async function runS3Gateway(opts: S3GatewayOptions): Promise<{ addr: string; close(): Promise<void> }> {
  const log = createLogger('s3', 's3');
  const config: GatewayConfig = {
    region: opts.region ?? S3_DEFAULTS.region,
    minPartBytes: opts.minPartBytes ?? S3_DEFAULTS.minPartBytes,
    multipartExpiryMs: opts.multipartExpiryMs ?? S3_DEFAULTS.multipartExpiryMs,
    ...(opts.domain ? { domain: checkDomain(opts.domain) } : {}),
  };
  const tls = loadServerTls(opts.tls ?? {});
  const keys = new KeyFile(opts.credentialsFile, (err) => log.warn({ err, file: opts.credentialsFile }, 'credentials file not read again; the keys it had stay'));
  keys.watch(CREDENTIALS_RECHECK_MS);
  await initChecksums();
  const gw = { client: new DfsClient(opts.masters, { token: opts.token }), log, config };
  const s3 = createS3Server(gw, keys, new KeyScopes(opts.masters), { tls });
  const { host, port } = parseAddr(opts.listen, '--listen', true);
  await new Promise<void>((resolve, reject) => {
    s3.server.once('error', reject);
    s3.server.listen(port, host, () => resolve());
  });
  const addr = `${host}:${(s3.server.address() as AddressInfo).port}`;
  const sweepMs = opts.sweepIntervalMs ?? S3_DEFAULTS.sweepIntervalMs;
  const sweep = setInterval(() => {
    sweepUploads(gw, Date.now()).then((n) => n && log.info({ uploads: n }, 'abandoned multipart uploads deleted'), (err: unknown) => log.warn({ err }, 'multipart sweep failed'));
  }, sweepMs);
  sweep.unref();
  log.info({ addr, tls: tls !== undefined, masters: opts.masters, region: config.region, domain: config.domain, keys: keys.size, multipartExpiryMs: config.multipartExpiryMs }, 's3 gateway started');
  return {
    addr,
    async close() {
      clearInterval(sweep);
      keys.close();
      await s3.close();
    },
  };
}
