import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { BOOTSTRAP_CHUNK_KEY_ID, type ChunkKey, type ChunkKeyLookup } from './chunk-keys.js';
import { DfsError } from './errors.js';

/**
 * Chunk access tokens, as HDFS block access tokens: the master signs (handle, version, operation,
 * expiry, and for writes and copies the servers) with a chunk key of the masters' replicated key
 * set (common/chunk-keys.ts; k0 is the cluster secret itself) and hands the token out
 * with every allocation (mode 'write', naming the pipeline it allocated, in order), every location
 * lookup (mode 'read') and every copy order (mode 'copy-source', naming the source server). A
 * chunkserver stores no byte and serves no byte without a valid token for exactly that chunk,
 * version and operation, naming itself where the token names servers; a pipeline hop forwards
 * only to the hops after it that the token names. So a process that merely reaches a chunkserver
 * can neither read chunks by guessing handles, nor write chunks the master never allocated, nor
 * replay a write token on a server outside its allocation, nor make a chunkserver dial an address
 * of its choosing. A token is checked when a request starts: a transfer under way is not cut when
 * its token expires.
 */
export type ChunkAccessMode = 'read' | 'write' | 'copy-source';
/** A chunkserver a token names: its id (checked by the server itself) and address (checked by the hop before it). */
export interface ChunkTokenServer { id: string; addr: string }
export interface ChunkGrant {
  handle: number;
  version: number;
  mode: ChunkAccessMode;
  expiresAtMs: number;
  /** write: the pipeline the master allocated, first hop first; copy-source: the source; read: absent (any replica). */
  servers?: ChunkTokenServer[];
}

/** Longest token accepted: a grant naming a pipeline of up to 16 servers fits well within it. */
export const MAX_CHUNK_TOKEN_CHARS = 4096;

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

/**
 * A token for `grant`, signed with `key`: a bare secret or key k0 (the cluster secret) makes
 * `payload.sig`; a rotated key kN (common/chunk-keys.ts) makes `kN.payload.sig`, its id signed too.
 */
export function signChunkToken(key: Buffer | ChunkKey, grant: ChunkGrant): string {
  const payload = Buffer.from(JSON.stringify(grant)).toString('base64url');
  if (Buffer.isBuffer(key) || key.id === BOOTSTRAP_CHUNK_KEY_ID) return `${payload}.${sign(Buffer.isBuffer(key) ? key : key.secret, payload)}`;
  return `${key.id}.${payload}.${sign(key.secret, `${key.id}.${payload}`)}`;
}

/** What a chunkserver asks of a token: the chunk, the version (when the request names one), the operations it serves, and itself. */
export interface ChunkTokenWant {
  handle: number;
  version?: number;
  /** The operations this route serves: a GET serves 'read' and 'copy-source'. */
  mode: ChunkAccessMode | readonly ChunkAccessMode[];
  /** This chunkserver's id: a token that names servers must name it (a write token always does). */
  server?: string;
}

/**
 * Throws unless `token` is a token this cluster signed for `want.handle`, for one of `want.mode`,
 * not expired at `nowMs`, (when `want.version` is given) for that version, and (when `want.server`
 * is given) usable on that server. Each refusal has its own code (common/errors.ts):
 * CHUNK_TOKEN_INVALID (missing, malformed, forged), CHUNK_TOKEN_WRONG_CHUNK,
 * CHUNK_TOKEN_WRONG_VERSION, CHUNK_TOKEN_WRONG_OPERATION, CHUNK_TOKEN_EXPIRED and
 * CHUNK_TOKEN_WRONG_SERVER. Returns the grant: a caller that gave no version must check
 * `grant.version` itself.
 */
export function verifyChunkToken(keys: Buffer | ChunkKeyLookup, token: unknown, want: ChunkTokenWant, nowMs: number): ChunkGrant {
  const modes: readonly ChunkAccessMode[] = typeof want.mode === 'string' ? [want.mode] : want.mode;
  const what = `${modes.join(' or ')} token`;
  const lookup: ChunkKeyLookup = Buffer.isBuffer(keys) ? (id) => (id === BOOTSTRAP_CHUNK_KEY_ID ? keys : undefined) : keys;
  const grant = decodeChunkToken(lookup, token, what);
  if (grant.handle !== want.handle) throw new DfsError('CHUNK_TOKEN_WRONG_CHUNK', `${what} is for another chunk`);
  if (!Number.isSafeInteger(grant.version) || (want.version !== undefined && grant.version !== want.version)) {
    throw new DfsError('CHUNK_TOKEN_WRONG_VERSION', `${what} is for another version of chunk ${want.handle}`);
  }
  if (!modes.includes(grant.mode)) throw new DfsError('CHUNK_TOKEN_WRONG_OPERATION', `the token grants ${String(grant.mode)}, not ${modes.join(' or ')}`, { reason: 'mode' });
  if (!(grant.expiresAtMs > nowMs)) {
    const next = grant.mode === 'write' ? 'allocate the chunk again' : grant.mode === 'copy-source' ? 'the master orders the copy again' : 'stat the file again (with chunks) for a fresh one';
    throw new DfsError('CHUNK_TOKEN_EXPIRED', `${what} has expired; ${next}`, { reason: 'expired' });
  }
  const named = grant.servers !== undefined || grant.mode !== 'read';
  if (want.server !== undefined && named && !(grant.servers ?? []).some((s) => s.id === want.server)) {
    throw new DfsError('CHUNK_TOKEN_WRONG_SERVER', `the ${grant.mode} token does not name this server (${want.server})`, { server: want.server });
  }
  return grant;
}

/** The signed grant in `token`, of the right form; CHUNK_TOKEN_INVALID otherwise. */
function decodeChunkToken(keys: ChunkKeyLookup, token: unknown, what: string): ChunkGrant {
  if (typeof token !== 'string' || token.length > MAX_CHUNK_TOKEN_CHARS || !/^(k[1-9][0-9]{0,8}\.)?[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/.test(token)) {
    throw new DfsError('CHUNK_TOKEN_INVALID', `missing or malformed ${what} (header ${CHUNK_TOKEN_HEADER})`);
  }
  const parts = token.split('.');
  const keyId = parts.length === 3 ? parts[0]! : BOOTSTRAP_CHUNK_KEY_ID;
  const [payload, sig] = parts.slice(-2) as [string, string];
  const secret = keys(keyId);
  if (!secret) {
    throw new DfsError('CHUNK_TOKEN_INVALID', `${what} is signed with key ${keyId}, which this server does not hold (dropped, or newer than its last heartbeat)`, { reason: 'unknown-key' });
  }
  const expected = Buffer.from(sign(secret, parts.length === 3 ? `${keyId}.${payload}` : payload));
  const got = Buffer.from(sig);
  if (expected.length !== got.length || !timingSafeEqual(expected, got)) throw new DfsError('CHUNK_TOKEN_INVALID', `${what} signature is invalid`);
  let grant: ChunkGrant;
  try {
    grant = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as ChunkGrant;
  } catch {
    throw new DfsError('CHUNK_TOKEN_INVALID', `${what} payload is malformed`);
  }
  if (typeof grant !== 'object' || grant === null || (grant.servers !== undefined && !validServers(grant.servers))) {
    throw new DfsError('CHUNK_TOKEN_INVALID', `${what} payload is malformed`);
  }
  return grant;
}

function validServers(servers: unknown): servers is ChunkTokenServer[] {
  return Array.isArray(servers) && servers.every((s: ChunkTokenServer | null) => typeof s === 'object' && s !== null && typeof s.id === 'string' && typeof s.addr === 'string');
}

/**
 * Throws PIPELINE_HOP_NOT_ALLOWED unless every hop of `next` (host:port, in order) is a server the
 * write token names after `self`, in the token's order: a hop forwards only down the pipeline the
 * master allocated, never to an address a caller made up. Call before dialling anything.
 */
export function checkNextHops(grant: ChunkGrant, self: string, next: readonly string[]): void {
  const servers = grant.servers ?? [];
  const at = servers.findIndex((s) => s.id === self);
  let from = at + 1;
  for (const hop of next) {
    const i = at < 0 ? -1 : servers.findIndex((s, k) => k >= from && s.addr === hop);
    if (i < 0) {
      const allowed = at < 0 ? [] : servers.slice(at + 1).map((s) => s.addr);
      throw new DfsError('PIPELINE_HOP_NOT_ALLOWED', `next hop ${hop.slice(0, 300)} is not in the pipeline the write token names after this server (${allowed.join(', ') || 'none'})`, { hop: hop.slice(0, 300) });
    }
    from = i + 1;
  }
}

/**
 * Whether a chunkserver refused a chunk access token (any CHUNK_TOKEN_* code): every replica
 * refuses it alike, so the fix is a fresh token from the master (stat again, allocate again), once.
 */
export function isChunkTokenRefusal(code: string): boolean {
  return code.startsWith('CHUNK_TOKEN_');
}

// Calls between cluster members are signed per request: common/peer-auth.ts.
