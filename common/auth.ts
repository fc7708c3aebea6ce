import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { DfsError } from './errors.js';

/**
 * Chunk access tokens, as HDFS block access tokens: the master signs (handle, version, mode,
 * expiry) with the cluster secret and hands the token out with every allocation (mode 'write'),
 * every location lookup and every copy order (mode 'read'). A chunkserver stores no byte and
 * serves no byte without a valid token for exactly that chunk, version and mode, so a process
 * that merely reaches it can neither read chunks by guessing handles nor write chunks the master
 * never allocated. A token is checked when a request starts: a transfer under way is not cut
 * when its token expires.
 */
export type ChunkAccessMode = 'read' | 'write';
export interface ChunkGrant { handle: number; version: number; mode: ChunkAccessMode; expiresAtMs: number }

/** The request header that carries a chunk access token to a chunkserver. */
export const CHUNK_TOKEN_HEADER = 'x-dfs-token';

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

export function signChunkToken(secret: Buffer, grant: ChunkGrant): string {
  const payload = Buffer.from(JSON.stringify(grant)).toString('base64url');
  return `${payload}.${sign(secret, payload)}`;
}

/**
 * Throws UNAUTHORIZED unless `token` is a token this cluster signed for `want.handle`, for
 * `want.mode`, not expired at `nowMs`, and (when `want.version` is given) for that version.
 * Returns the grant: a caller that gave no version must check `grant.version` itself.
 */
export function verifyChunkToken(
  secret: Buffer, token: unknown, want: { handle: number; version?: number; mode: ChunkAccessMode }, nowMs: number,
): ChunkGrant {
  const what = `${want.mode} token`;
  if (typeof token !== 'string' || token.length > 1024 || !/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/.test(token)) {
    throw new DfsError('UNAUTHORIZED', `missing or malformed ${what} (header ${CHUNK_TOKEN_HEADER})`);
  }
  const [payload, sig] = token.split('.') as [string, string];
  const expected = Buffer.from(sign(secret, payload));
  const got = Buffer.from(sig);
  if (expected.length !== got.length || !timingSafeEqual(expected, got)) throw new DfsError('UNAUTHORIZED', `${what} signature is invalid`);
  let grant: ChunkGrant;
  try {
    grant = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as ChunkGrant;
  } catch {
    throw new DfsError('UNAUTHORIZED', `${what} payload is malformed`);
  }
  if (typeof grant !== 'object' || grant === null) throw new DfsError('UNAUTHORIZED', `${what} payload is malformed`);
  if (grant.handle !== want.handle || (want.version !== undefined && grant.version !== want.version) || !Number.isSafeInteger(grant.version)) {
    throw new DfsError('UNAUTHORIZED', `${what} is for another chunk or version`);
  }
  if (grant.mode !== want.mode) throw new DfsError('UNAUTHORIZED', `the token grants ${String(grant.mode)}, not ${want.mode}`, { reason: 'mode' });
  if (!(grant.expiresAtMs > nowMs)) {
    const next = want.mode === 'write' ? 'allocate the chunk again' : 'stat the file again (with chunks) for a fresh one';
    throw new DfsError('UNAUTHORIZED', `${what} has expired; ${next}`, { reason: 'expired' });
  }
  return grant;
}

// Calls between cluster members are signed per request: common/peer-auth.ts.
