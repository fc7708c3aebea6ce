// Authentication between cluster members (chunkserver → master, master → master), per request
// and per Raft stream. A member signs each call with the cluster secret over what makes it this
// call and no other: the method, the path with its query, its own id, the cluster id it believes
// in, a timestamp, a random nonce and the SHA-256 of the body. The receiver accepts a signature
// only within PEER_AUTH_WINDOW_MS of its own clock and only once (a bounded cache of the nonces
// it has seen), so a captured request or stream opening is worthless a moment later, and a
// changed body, path or sender breaks the signature. This replaces a fixed HMAC of a constant
// string, which anyone who saw one request could replay for ever (issue 15). The secret never
// travels; with TLS on (common/tls.ts) nothing travels in clear either.
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { DfsError } from './errors.js';

/** The request header that carries a member's signature: `v1 id=...,ts=...,nonce=...,sig=...`. */
export const PEER_AUTH_HEADER = 'x-dfs-peer-auth';
/** A signature older or newer than this (by the receiver's clock) is refused: bounds clock skew and replay. */
export const PEER_AUTH_WINDOW_MS = 60_000;
/** Nonces remembered at most; each is kept for the window after its timestamp. */
export const PEER_NONCE_CACHE_MAX = 200_000;
/** The header is short; anything longer is not ours (and is not parsed). */
const MAX_HEADER_CHARS = 512;
const SHA256_OF_NOTHING = createHash('sha256').digest('hex');

export type PeerRole = 'raft' | 'chunkserver';

export interface PeerRequest {
  method: string;
  /** The path with its query string, as sent (`req.originalUrl` on the receiving side). */
  path: string;
  /** SHA-256 of the body, hex; absent: no body. */
  bodySha256?: string;
  /** The cluster id the sender believes in; '' when it does not know one yet (a new chunkserver). */
  clusterId?: string;
}

export function sha256Hex(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex');
}

function canonical(role: PeerRole, id: string, ts: number, nonce: string, r: PeerRequest): string {
  return ['dfs-peer-v1', role, r.method.toUpperCase(), r.path, id, r.clusterId ?? '', String(ts), nonce, r.bodySha256 ?? SHA256_OF_NOTHING].join('\n');
}

function hmac(secret: Buffer, text: string): string {
  return createHmac('sha256', secret).update(text).digest('base64url');
}

/** The header value for one call by member `id`; a fresh nonce each time. */
export function signPeerRequest(secret: Buffer, role: PeerRole, id: string, r: PeerRequest, nowMs = Date.now()): string {
  const nonce = randomBytes(16).toString('base64url');
  return `v1 id=${id},ts=${nowMs},nonce=${nonce},sig=${hmac(secret, canonical(role, id, nowMs, nonce, r))}`;
}

interface Parsed { id: string; ts: number; nonce: string; sig: string }

function parseHeader(value: unknown): Parsed {
  if (typeof value !== 'string' || value.length > MAX_HEADER_CHARS) throw invalid('missing or malformed');
  const m = /^v1 id=([A-Za-z0-9._-]{1,64}),ts=(\d{1,16}),nonce=([A-Za-z0-9_-]{16,64}),sig=([A-Za-z0-9_-]{43})$/.exec(value);
  if (!m) throw invalid('missing or malformed');
  return { id: m[1]!, ts: Number(m[2]), nonce: m[3]!, sig: m[4]! };
}

function invalid(why: string): DfsError {
  return new DfsError('PEER_AUTH_INVALID', `peer authentication (header ${PEER_AUTH_HEADER}) ${why}; cluster members need the same cluster secret (--secret-file)`);
}

/**
 * What a receiver checks peer signatures with: the secret, and the nonces it has accepted within
 * the window. One per process role (a master has one for chunkservers and Raft together).
 */
export class PeerVerifier {
  /** nonce → the time after which it cannot be replayed anyway (its timestamp + the window). */
  private readonly seen = new Map<string, number>();

  constructor(private readonly secret: Buffer, private readonly opts: { windowMs?: number; maxNonces?: number; now?: () => number } = {}) {}

  get rememberedNonces(): number {
    return this.seen.size;
  }

  /**
   * Checks one call's header; answers the sender's id. Throws PEER_AUTH_INVALID (no header, bad
   * form, wrong secret, another body or path), PEER_AUTH_EXPIRED (outside the window) or
   * PEER_AUTH_REPLAYED (a nonce already accepted). A nonce is remembered only once its signature
   * is good, so a stranger cannot fill the cache.
   */
  verify(role: PeerRole, header: unknown, r: PeerRequest): string {
    const p = parseHeader(header);
    const want = Buffer.from(hmac(this.secret, canonical(role, p.id, p.ts, p.nonce, r)));
    const got = Buffer.from(p.sig);
    if (want.length !== got.length || !timingSafeEqual(want, got)) throw invalid(`signature does not match (another secret, or the request was changed)`);
    const now = this.opts.now?.() ?? Date.now();
    const window = this.opts.windowMs ?? PEER_AUTH_WINDOW_MS;
    if (Math.abs(now - p.ts) > window) {
      throw new DfsError('PEER_AUTH_EXPIRED', `peer signature is ${Math.round((now - p.ts) / 1000)} s off this server's clock (at most ${window / 1000} s): check the clocks (NTP)`);
    }
    if (this.seen.has(p.nonce)) throw new DfsError('PEER_AUTH_REPLAYED', 'peer request was replayed (its nonce was already used)');
    this.remember(p.nonce, p.ts + window, now);
    return p.id;
  }

  private remember(nonce: string, until: number, now: number): void {
    // Nonces arrive roughly in time order: drop the expired ones at the front as we go.
    for (const [n, t] of this.seen) {
      if (t >= now) break;
      this.seen.delete(n);
    }
    const max = this.opts.maxNonces ?? PEER_NONCE_CACHE_MAX;
    if (this.seen.size >= max) {
      for (const [n, t] of this.seen) if (t < now) this.seen.delete(n);
      // Still full: only authenticated members fill it, so this is a member flooding us.
      if (this.seen.size >= max) throw new DfsError('UNAVAILABLE', 'too many peer requests in the last minute; retry shortly');
    }
    this.seen.set(nonce, until);
  }
}

/** A chunkserver's signer for its calls to the masters (LeaderClient's `sign`). */
export function chunkserverSigner(secret: Buffer, id: string) {
  return (method: string, path: string, body: Buffer | undefined): Record<string, string> => ({
    [PEER_AUTH_HEADER]: signPeerRequest(secret, 'chunkserver', id, { method, path, bodySha256: body === undefined ? undefined : sha256Hex(body) }),
  });
}
