// Client credentials (docs/SECURITY.md, "Client credentials"): bearer tokens a client sends to the
// masters, HMAC-SHA256 signed under a signing key the masters share. The format, the signature and
// the scope rules live here, pure (no clock, no state): the masters keep the keys and the
// revocations in replicated state (master/credentials/) and pass them in.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { DfsError } from './errors.js';
import { isWithin, normalizePath } from './paths.js';

/** The request header that carries a client token: `Authorization: Bearer <token>`. */
export const AUTHORIZATION_HEADER = 'authorization';
/** The first part of every client token: the format's version. */
export const TOKEN_FORMAT = 'dfs1';
/** Longest token a master reads: a payload with a long prefix and name fits with room to spare. */
export const MAX_TOKEN_CHARS = 4096;
/** A token's prefix is at most this long (a token travels in a header on every call). */
export const MAX_PREFIX_BYTES = 1024;
/** Longest token name (`dfs token create --name`). */
export const MAX_TOKEN_NAME_CHARS = 64;
/** Longest lifetime `--ttl` may ask for: a year and a day. */
export const MAX_TOKEN_TTL_MS = 366 * 24 * 3600_000;
/** The key id of the bootstrap key, derived from the cluster secret (see bootstrapKey). */
export const BOOTSTRAP_KEY_ID = 'k0';

export const KEY_ID = /^k\d{1,9}$/;
export const TOKEN_ID = /^[A-Za-z0-9_-]{1,64}$/;
const TOKEN_NAME = /^[A-Za-z0-9._@-]{1,64}$/;

/** What a token grants, as signed into it. */
export interface ClientGrant {
  /** Unique per token: what `dfs token revoke` names. */
  id: string;
  name: string;
  /** May create and revoke tokens, rotate keys and run cluster commands (decommission). */
  admin: boolean;
  /** May read only: every mutation is refused. */
  readOnly: boolean;
  /** Sees and touches nothing outside this path ('/' for all). */
  prefix: string;
  issuedAtMs: number;
  /** Absent: never expires (until revoked or its key is dropped). */
  expiresAtMs?: number;
}

/** A signing key: its id travels in every token it signs. */
export interface SigningKey { id: string; secret: Buffer }

/** The caller a master authenticated: the grant and the key that signed it. */
export interface Principal extends ClientGrant { keyId: string }

/**
 * The bootstrap key: derived from the cluster secret, so that whoever holds the secret (the
 * launcher, `dfs token bootstrap` on a host) can mint the first admin token before any master
 * runs. It verifies until `dfs admin drop-old-keys` drops it after a rotation.
 */
/** The last derivation: a master checks every client request's token under this key (it was 2 % of a busy leader's CPU). */
let lastBootstrap: { clusterSecret: Buffer; secret: Buffer } | undefined;

export function bootstrapKey(clusterSecret: Buffer): SigningKey {
  if (!lastBootstrap || !lastBootstrap.clusterSecret.equals(clusterSecret)) {
    lastBootstrap = { clusterSecret: Buffer.from(clusterSecret), secret: createHmac('sha256', clusterSecret).update('dfs client signing key k0').digest() };
  }
  return { id: BOOTSTRAP_KEY_ID, secret: lastBootstrap.secret };
}

/**
 * A token's id: 96 random bits, base64url. Never one starting with '-': `dfs token revoke <id>`
 * would read it as options (one id in 64 did, and CI once drew one).
 */
export function newTokenId(): string {
  for (;;) {
    const id = randomBytes(12).toString('base64url');
    if (!id.startsWith('-')) return id;
  }
}

function mac(key: Buffer, data: string): string {
  return createHmac('sha256', key).update(data).digest('base64url');
}

/** A grant's fields checked: what a token create asks for, and what a verified payload must hold. */
export function checkGrant(g: ClientGrant): ClientGrant {
  if (!TOKEN_ID.test(g.id)) throw new DfsError('INVALID_ARGUMENT', 'a token id is 1 to 64 letters, digits, - or _');
  if (!TOKEN_NAME.test(g.name)) throw new DfsError('INVALID_ARGUMENT', `a token name is 1 to ${MAX_TOKEN_NAME_CHARS} letters, digits, or . _ @ -`);
  if (typeof g.admin !== 'boolean' || typeof g.readOnly !== 'boolean') throw new DfsError('INVALID_ARGUMENT', 'admin and readOnly are true or false');
  if (g.admin && (g.readOnly || g.prefix !== '/')) throw new DfsError('INVALID_ARGUMENT', 'an admin token is neither read-only nor limited to a prefix');
  if (normalizePath(g.prefix) !== g.prefix) throw new DfsError('INVALID_PATH', `the prefix ${JSON.stringify(g.prefix)} is not a normalised path`);
  if (Buffer.byteLength(g.prefix) > MAX_PREFIX_BYTES) throw new DfsError('INVALID_PATH', `a token's prefix is at most ${MAX_PREFIX_BYTES} bytes`);
  if (!Number.isSafeInteger(g.issuedAtMs)) throw new DfsError('INVALID_ARGUMENT', 'issuedAtMs must be a time in ms');
  if (g.expiresAtMs !== undefined && !(Number.isSafeInteger(g.expiresAtMs) && g.expiresAtMs > g.issuedAtMs)) throw new DfsError('INVALID_ARGUMENT', 'a token expires after it is issued');
  return g;
}

/** `dfs1.<key id>.<payload>.<signature>`: the payload is the grant's JSON in base64url. */
export function signClientToken(key: SigningKey, grant: ClientGrant): string {
  const payload = Buffer.from(JSON.stringify(checkGrant(grant))).toString('base64url');
  const head = `${TOKEN_FORMAT}.${key.id}.${payload}`;
  return `${head}.${mac(key.secret, head)}`;
}

/** The token in an `Authorization: Bearer` header; undefined when there is none. */
export function bearerToken(header: unknown): string | undefined {
  if (header === undefined) return undefined;
  const m = typeof header === 'string' ? /^Bearer +(\S+)$/i.exec(header) : null;
  if (!m) throw new DfsError('UNAUTHORIZED', 'the Authorization header must be "Bearer <token>"', { reason: 'malformed' });
  return m[1];
}

const unauthorized = (message: string, reason: string) => new DfsError('UNAUTHORIZED', message, { reason });

/**
 * The grant of a token signed under one of `keys` (by key id) and not expired at `nowMs`; throws
 * UNAUTHORIZED with a `reason` (malformed, unknown-key, signature, expired) otherwise. Revocation
 * is the caller's: it holds the replicated list.
 */
export function verifyClientToken(token: string, keys: (id: string) => Buffer | undefined, nowMs: number): Principal {
  const parts = token.length <= MAX_TOKEN_CHARS ? token.split('.') : [];
  if (parts.length !== 4 || parts[0] !== TOKEN_FORMAT || !KEY_ID.test(parts[1]!) || !/^[A-Za-z0-9_-]+$/.test(parts[2]! + parts[3]!)) {
    throw unauthorized('the token is malformed: a dfs token is dfs1.<key>.<payload>.<signature> (dfs token create makes one)', 'malformed');
  }
  const [, keyId, payload, sig] = parts as [string, string, string, string];
  const key = keys(keyId);
  if (!key) throw unauthorized(`the token was signed with key ${keyId}, which this cluster does not have (dropped after a rotation?); ask an admin for a new token`, 'unknown-key');
  const want = Buffer.from(mac(key, `${TOKEN_FORMAT}.${keyId}.${payload}`));
  const got = Buffer.from(sig);
  if (want.length !== got.length || !timingSafeEqual(want, got)) throw unauthorized('the token\'s signature is invalid', 'signature');
  let grant: ClientGrant;
  try {
    grant = checkGrant(JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as ClientGrant);
  } catch {
    throw unauthorized('the token\'s payload is malformed', 'malformed');
  }
  if (grant.expiresAtMs !== undefined && grant.expiresAtMs <= nowMs) throw unauthorized(`token ${grant.id} (${grant.name}) has expired; ask an admin for a new one`, 'expired');
  return { ...grant, keyId };
}

/** Tokens a master remembers as verified: 4,096 × at most 4 KiB each. */
export const MAX_VERIFIED_TOKENS = 4096;

/**
 * Tokens whose signature this process has checked, so that a busy master does not check the same
 * token again on every request (an HMAC, a base64 decode and a JSON parse: 3 % of a leader's CPU
 * under 64 clients' mkdirs). A remembered token answers only while the key that verified it is
 * still the cluster's key of that id, byte for byte, and before it expires; any other case is
 * verified afresh, which refuses it with its reason. Revocation stays the caller's check, on every
 * request.
 */
export class VerifiedTokens {
  private readonly seen = new Map<string, { principal: Principal; key: Buffer }>();

  constructor(private readonly max = MAX_VERIFIED_TOKENS) {}

  verify(token: string, keys: (id: string) => Buffer | undefined, nowMs: number): Principal {
    const hit = this.seen.get(token);
    if (hit) {
      const key = keys(hit.principal.keyId);
      if (key && key.equals(hit.key) && (hit.principal.expiresAtMs === undefined || hit.principal.expiresAtMs > nowMs)) return { ...hit.principal };
      this.seen.delete(token);
    }
    const principal = verifyClientToken(token, keys, nowMs);
    // Bounded the simple way: a full table starts over (tokens are few; a flood of distinct valid ones costs only the HMACs saved).
    if (this.seen.size >= this.max) this.seen.clear();
    this.seen.set(token, { principal: { ...principal }, key: Buffer.from(keys(principal.keyId)!) });
    return principal;
  }

  get size(): number {
    return this.seen.size;
  }
}

/** `30s`, `15m`, `24h`, `7d` (or a bare number of seconds) in ms, at most MAX_TOKEN_TTL_MS. */
export function parseTtl(raw: string): number {
  const m = /^(\d{1,9})([smhd]?)$/.exec(raw.trim());
  const unit = { '': 1000, s: 1000, m: 60_000, h: 3600_000, d: 86_400_000 }[m?.[2] ?? ''];
  const ms = m ? Number(m[1]) * unit! : NaN;
  if (!(ms > 0) || ms > MAX_TOKEN_TTL_MS) throw new DfsError('INVALID_ARGUMENT', `--ttl must be a duration like 30m, 24h or 7d, up to ${MAX_TOKEN_TTL_MS / 86_400_000}d`);
  return ms;
}

// ---- scope ----

/** May this caller read or change `path`: it lies within the token's prefix. */
export function inScope(p: Pick<ClientGrant, 'prefix'>, path: string): boolean {
  return isWithin(path, p.prefix);
}

/** May this caller see that `path` exists: it is within the prefix, or a directory on the way to it. */
export function leadsToScope(p: Pick<ClientGrant, 'prefix'>, path: string): boolean {
  return inScope(p, path) || isWithin(p.prefix, path);
}

export function requireInScope(p: Principal, path: string): void {
  if (!inScope(p, path)) throw new DfsError('FORBIDDEN', `token ${p.id} (${p.name}) is limited to ${p.prefix}; ${path} is outside it`);
}

export function requireWritable(p: Principal): void {
  if (p.readOnly) throw new DfsError('FORBIDDEN', `token ${p.id} (${p.name}) is read-only`);
}

export function requireAdmin(p: Principal): void {
  if (!p.admin) throw new DfsError('FORBIDDEN', `this needs an admin token; token ${p.id} (${p.name}) is not one`);
}


