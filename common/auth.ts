import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { DfsError } from './errors.js';

/**
 * Write tokens: the master signs (handle, version, expiry) with the cluster secret, and a
 * chunkserver accepts a chunk only with a valid token for it, so a stray client cannot write
 * chunks the master never allocated.
 */
export interface WriteGrant { handle: number; version: number; expiresAtMs: number }

export function loadSecret(file: string | undefined): Buffer {
  const fromEnv = process.env.DFS_CLUSTER_SECRET;
  if (file) {
    const s = readFileSync(file, 'utf8').trim();
    if (s.length < 16) throw new DfsError('INVALID_ARGUMENT', `cluster secret in ${file} is shorter than 16 characters`);
    return Buffer.from(s);
  }
  if (fromEnv && fromEnv.length >= 16) return Buffer.from(fromEnv);
  throw new DfsError('INVALID_ARGUMENT', 'no cluster secret: pass --secret-file or set DFS_CLUSTER_SECRET (16+ characters)');
}

export function newSecret(): string {
  return randomBytes(32).toString('hex');
}

function sign(secret: Buffer, payload: string): string {
  return createHmac('sha256', secret).update(payload).digest('base64url');
}

export function signWriteToken(secret: Buffer, grant: WriteGrant): string {
  const payload = Buffer.from(JSON.stringify(grant)).toString('base64url');
  return `${payload}.${sign(secret, payload)}`;
}

export function verifyWriteToken(secret: Buffer, token: unknown, handle: number, version: number, nowMs: number): void {
  if (typeof token !== 'string' || token.length > 1024 || !/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/.test(token)) {
    throw new DfsError('UNAUTHORIZED', 'missing or malformed write token');
  }
  const [payload, sig] = token.split('.') as [string, string];
  const want = Buffer.from(sign(secret, payload));
  const got = Buffer.from(sig);
  if (want.length !== got.length || !timingSafeEqual(want, got)) throw new DfsError('UNAUTHORIZED', 'write token signature is invalid');
  let grant: WriteGrant;
  try {
    grant = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as WriteGrant;
  } catch {
    throw new DfsError('UNAUTHORIZED', 'write token payload is malformed');
  }
  if (typeof grant !== 'object' || grant === null) throw new DfsError('UNAUTHORIZED', 'write token payload is malformed');
  if (grant.handle !== handle || grant.version !== version) throw new DfsError('UNAUTHORIZED', 'write token is for another chunk');
  if (!(grant.expiresAtMs > nowMs)) throw new DfsError('UNAUTHORIZED', 'write token has expired; allocate the chunk again');
}

/** The header a cluster member (master or chunkserver) puts on its calls to a master. */
export const PEER_AUTH_HEADER = 'x-dfs-peer-auth';

/** Proof that the caller holds the cluster secret, for calls between cluster members. */
export function peerAuthToken(secret: Buffer, role: 'raft' | 'chunkserver'): string {
  return createHmac('sha256', secret).update(`dfs peer ${role}`).digest('base64url');
}

/** Throws UNAUTHORIZED unless `got` is the peer token for `role` (compared in constant time). */
export function verifyPeerAuth(secret: Buffer, role: 'raft' | 'chunkserver', got: unknown): void {
  const want = Buffer.from(peerAuthToken(secret, role));
  const have = Buffer.from(typeof got === 'string' ? got : '');
  if (have.length !== want.length || !timingSafeEqual(have, want)) {
    throw new DfsError('UNAUTHORIZED', `${role === 'raft' ? 'raft messages' : 'chunkserver calls'} need the cluster secret (--secret-file)`);
  }
}
