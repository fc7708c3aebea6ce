// TLS for every listener and every call, one setting away (issue 15). A server given a
// certificate and key serves HTTPS; given a CA as well, it asks each caller for a client
// certificate signed by that CA, and the peer routes (a chunkserver's calls to a master, Raft
// streams) refuse a caller without one: mutual TLS between members, on top of their per-request
// signatures (common/peer-auth.ts). Clients (the CLI, the S3 gateway) need only trust the CA.
// A process speaks either TLS or plain HTTP to everyone: addresses stay host:port, and the scheme
// is this process-wide setting (`https://` in DFS_MASTERS or cluster.json turns it on).
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import type { ServerOptions } from 'node:https';
import { join } from 'node:path';
import type { ConnectionOptions, TLSSocket } from 'node:tls';
import { DfsError } from './errors.js';

/** The files, as configured (`--tls-cert`, `--tls-key`, `--tls-ca`, or the config file's keys). */
export interface TlsFiles { cert?: string; key?: string; ca?: string }
export interface LoadedTls { cert: Buffer; key: Buffer; ca?: Buffer }

function read(file: string, what: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new DfsError('INVALID_ARGUMENT', `${what} ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

/** Server-side TLS from the configured files; undefined when TLS is off. A key without a certificate (or the reverse) is an error. */
export function loadServerTls(files: TlsFiles): LoadedTls | undefined {
  if (!files.cert && !files.key) {
    if (files.ca) throw new DfsError('INVALID_ARGUMENT', '--tls-ca needs --tls-cert and --tls-key on a server');
    return undefined;
  }
  if (!files.cert || !files.key) throw new DfsError('INVALID_ARGUMENT', 'TLS needs both --tls-cert and --tls-key');
  return { cert: read(files.cert, '--tls-cert'), key: read(files.key, '--tls-key'), ca: files.ca ? read(files.ca, '--tls-ca') : undefined };
}

export function serverTlsOptions(tls: LoadedTls): ServerOptions {
  // The certificate is asked for but not demanded at the handshake: clients have none, and the
  // peer routes check `peerCertProblem` themselves.
  return { cert: tls.cert, key: tls.key, ca: tls.ca, requestCert: tls.ca !== undefined, rejectUnauthorized: false, minVersion: 'TLSv1.2' };
}

/** Why `req` may not call a peer route: with mutual TLS on, a caller without a valid client certificate. */
export function peerCertProblem(req: IncomingMessage, tls: LoadedTls | undefined): string | undefined {
  if (tls?.ca === undefined) return undefined;
  const socket = req.socket as TLSSocket;
  if (socket.authorized === true) return undefined;
  return `peer calls need a client certificate signed by the cluster CA (${socket.authorizationError ? String(socket.authorizationError) : 'none given'})`;
}

let client: ConnectionOptions | undefined;
const listeners = new Set<() => void>();

/** Turns TLS on for every outbound call of this process: trust `ca` (absent: the system's CAs); present cert/key (a member's) if given. */
export function useClientTls(opts: { ca?: Buffer; cert?: Buffer; key?: Buffer }): void {
  client = { ca: opts.ca, cert: opts.cert, key: opts.key, minVersion: 'TLSv1.2' };
  for (const l of listeners) l();
}

/** The outbound TLS options, or undefined when this process speaks plain HTTP. */
export function clientTls(): ConnectionOptions | undefined {
  return client;
}

/** Called when the client TLS setting changes (common/http.ts drops its connection pool). */
export function onClientTlsChange(fn: () => void): void {
  listeners.add(fn);
}

/** The URL scheme of this process's calls. */
export function scheme(): 'http' | 'https' {
  return client ? 'https' : 'http';
}

/**
 * The client side for a command-line process: a CA from `--tls-ca` or DFS_TLS_CA turns TLS on;
 * so does an https:// master address (then a CA is needed unless the servers' certificates are
 * publicly trusted). Answers the addresses without their scheme.
 */
export function clientTlsFromEnv(caFile: string | undefined, addrs: readonly string[]): string[] {
  const file = caFile ?? process.env.DFS_TLS_CA;
  const https = addrs.some((a) => a.startsWith('https://'));
  if (file) useClientTls({ ca: read(file, 'DFS_TLS_CA / --tls-ca') });
  else if (https) useClientTls({});
  return addrs.map((a) => a.replace(/^https?:\/\//, '').replace(/\/$/, ''));
}

/** Where `makeClusterCerts` writes, under a folder. */
export function clusterCertFiles(dir: string): { ca: string; cert: string; key: string } {
  return { ca: join(dir, 'ca.pem'), cert: join(dir, 'node.pem'), key: join(dir, 'node-key.pem') };
}

/**
 * A throw-away CA and one certificate for every node of a local cluster (`dfs cluster --tls`),
 * made with openssl: EC P-256, valid for `hosts` (IP addresses or names) as server and client.
 * Keys are written 0600. Not for production: its CA key sits beside the cluster.
 */
export function makeClusterCerts(dir: string, hosts: readonly string[], openssl = process.env.DFS_OPENSSL ?? 'openssl'): { ca: string; cert: string; key: string } {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const f = clusterCertFiles(dir);
  const caKey = join(dir, 'ca-key.pem');
  const run = (args: string[]): void => {
    try {
      execFileSync(openssl, args, { stdio: ['ignore', 'ignore', 'pipe'], timeout: 30_000 });
    } catch (err) {
      throw new DfsError('INVALID_ARGUMENT', `could not make TLS certificates with ${openssl} (is openssl installed?): ${String((err as { stderr?: Buffer }).stderr ?? (err as Error).message).trim().split('\n')[0]}`);
    }
  };
  const san = hosts.map((h) => (/^[\d.]+$/.test(h) || h.includes(':') ? `IP:${h}` : `DNS:${h}`)).join(',');
  run(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', caKey, '-out', f.ca, '-days', '365', '-subj', '/CN=dfs local cluster CA']);
  const ext = join(dir, 'node.ext');
  writeFileSync(ext, `subjectAltName=${san}\nextendedKeyUsage=serverAuth,clientAuth\nbasicConstraints=CA:FALSE\n`);
  const csr = join(dir, 'node.csr');
  run(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', f.key, '-out', csr, '-subj', '/CN=dfs node']);
  run(['x509', '-req', '-in', csr, '-CA', f.ca, '-CAkey', caKey, '-CAcreateserial', '-out', f.cert, '-days', '365', '-extfile', ext]);
  for (const k of [caKey, f.key]) chmodSync(k, 0o600);
  return f;
}

/**
 * For a command-line process (yargs middleware): TLS from `--tls-ca` / DFS_TLS_CA or from
 * https:// master addresses, which are then given on without their scheme. The server roles
 * configure themselves from their own settings and are left alone.
 */
export function configureCliTls(a: { _: (string | number)[]; masters?: unknown; 'tls-ca'?: unknown }): void {
  const command = String(a._[0] ?? '');
  if (command === 'master' || command === 'chunkserver') return;
  const fromFlag = typeof a.masters === 'string';
  const raw = fromFlag ? (a.masters as string) : process.env.DFS_MASTERS;
  const list = raw ? raw.split(',').map((x) => x.trim()) : [];
  const stripped = clientTlsFromEnv(typeof a['tls-ca'] === 'string' ? a['tls-ca'] : undefined, list);
  if (list.length === 0) return;
  if (fromFlag) a.masters = stripped.join(',');
  else process.env.DFS_MASTERS = stripped.join(',');
}
