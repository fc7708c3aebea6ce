// The master's side of client credentials: who a request's token names (after checking its
// signature, expiry and revocation against the replicated state), the session ids bound to it,
// and the admin operations (make, list and revoke tokens; rotate and drop keys), which are
// commands through Raft like any mutation.
import { FS, routeKey } from '../../common/contract/index.js';
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Request } from 'express';
import {
  AUTHORIZATION_HEADER, bearerToken, checkGrant, newTokenId, signClientToken, VerifiedTokens, type ClientGrant, type Principal,
} from '../../common/credentials.js';
import type { Clock } from '../../common/clock.js';
import { DfsError } from '../../common/errors.js';
import { SESSION_HEADER } from '../../common/leader.js';
import type { Command } from '../commands.js';
import type { SessionRef } from '../replicator.js';
import type { MasterService } from '../service/index.js';
import type { CredentialAction, KeyInfo, TokenRecord } from './state.js';

/** A session id as clients see it: the Raft session's id, a dot, a MAC binding it to the token that opened it. */
const BOUND_SESSION = /^([A-Za-z0-9_-]{1,40})\.([A-Za-z0-9_-]{22}):(\d{1,15})$/;
/**
 * Bound session ids already checked against their token, remembered (the MAC is a pure function
 * of the secret, the id and the token's id, so a pair once right stays right under that secret):
 * an HMAC per mutation was 1.4 % of a busy leader's CPU. A full table starts over.
 */
const MAX_CHECKED_SESSIONS = 4096;

export interface TokenRequest { name?: string; readOnly?: boolean; prefix?: string; ttlMs?: number; admin?: boolean }
export interface TokenListing extends TokenRecord { revoked: boolean }

export class CredentialService {
  /** The term in which this leader last caught up with the log: until then a revocation may be committed but not yet applied here. */
  private caughtUpTerm = -1;

  private readonly verified = new VerifiedTokens();
  /** `<bound id>\n<token id>` pairs whose MAC was right, under `checkedUnder` (see MAX_CHECKED_SESSIONS). */
  private readonly checkedSessions = new Set<string>();
  private checkedUnder?: Buffer;

  constructor(private readonly svc: MasterService) {}

  private get secret(): Buffer {
    return this.svc.config.secret;
  }

  private get clock(): Clock {
    return this.svc.leadership.clock;
  }

  private get state() {
    return this.svc.leadership.state.credentials;
  }

  /**
   * The caller a request's bearer token names, or undefined when it sends none. Throws
   * UNAUTHORIZED for a malformed, forged, expired or revoked token, or one whose key was dropped.
   * A new leader first waits until it has applied everything committed, so a revocation the old
   * leader acknowledged holds here too.
   */
  async authenticate(req: Request): Promise<Principal | undefined> {
    const token = bearerToken(req.get(AUTHORIZATION_HEADER));
    if (token === undefined) return undefined;
    const term = this.svc.replicator.status().term;
    if (term !== this.caughtUpTerm) {
      await this.svc.replicator.readBarrier();
      this.caughtUpTerm = term;
    }
    const p = this.verified.verify(token, (id) => this.state.verifyingKey(this.secret, id), this.clock.nowMs());
    if (this.state.isRevoked(p.id)) throw new DfsError('UNAUTHORIZED', `token ${p.id} (${p.name}) has been revoked`, { reason: 'revoked' });
    return p;
  }

  // ---- sessions ----

  /** The key session ids are bound under, derived once per cluster secret (every request with a session checks one). */
  private sessionKeyFor?: { secret: Buffer; key: Buffer };

  private sessionMac(rawId: string, p: Principal): string {
    if (this.sessionKeyFor?.secret !== this.secret) this.sessionKeyFor = { secret: this.secret, key: createHmac('sha256', this.secret).update('dfs client sessions').digest() };
    const key = this.sessionKeyFor.key;
    return createHmac('sha256', key).update(`${rawId}\n${p.id}`).digest().subarray(0, 16).toString('base64url');
  }

  /** The id a client gets for a new session: unguessable (a MAC under a key derived from the cluster secret) and good only with this token. */
  bindSession(rawId: string, p: Principal): string {
    return `${rawId}.${this.sessionMac(rawId, p)}`;
  }

  /**
   * Checks a request's session header against the caller and hands the routes the bare Raft
   * session id: a session another token opened, or a made-up one, is refused before anything
   * is looked up, so no one can answer another client's retry from the session table.
   */
  unbindSessionHeader(req: Request, p: Principal): void {
    const raw = req.get(SESSION_HEADER);
    if (raw === undefined) return;
    req.headers[SESSION_HEADER] = this.unbindSession(raw, p);
  }

  /** unbindSessionHeader's check of one session (a header, or a batched call's `session`): answers the bare `<id>:<seq>`. */
  unbindSession(raw: string, p: Principal): string {
    // Not even <id>:<seq> is a malformed request; a well-formed id this token did not open is refused as unauthorized.
    if (!/^[A-Za-z0-9_.-]{1,64}:[1-9]\d{0,14}$/.test(raw)) throw new DfsError('INVALID_ARGUMENT', `${SESSION_HEADER} must be <session id>:<sequence number from 1>`);
    const m = BOUND_SESSION.exec(raw);
    if (this.checkedUnder !== this.secret) {
      this.checkedSessions.clear();
      this.checkedUnder = this.secret;
    }
    const pair = m ? `${m[1]}.${m[2]}\n${p.id}` : '';
    if (!m || !this.checkedSessions.has(pair)) {
      const want = m ? Buffer.from(this.sessionMac(m[1]!, p)) : undefined;
      if (!m || !want || want.length !== m[2]!.length || !timingSafeEqual(want, Buffer.from(m[2]!))) {
        throw new DfsError('UNAUTHORIZED', `${SESSION_HEADER} names no session this token opened (${routeKey(FS.session)} opens one)`, { reason: 'session' });
      }
      if (this.checkedSessions.size >= MAX_CHECKED_SESSIONS) this.checkedSessions.clear();
      this.checkedSessions.add(pair);
    }
    return `${m[1]}:${m[3]}`;
  }

  // ---- admin operations ----

  private async commit(action: CredentialAction, session?: SessionRef): Promise<unknown> {
    const cmd: Command = { op: 'credentials', action, nowMs: this.clock.nowMs() };
    return this.svc.leadership.commit(cmd, session);
  }

  /** Records a new token and answers it signed with the current signing key. */
  async createToken(req: TokenRequest, session?: SessionRef): Promise<{ token: string; info: TokenRecord }> {
    const now = this.clock.nowMs();
    const admin = req.admin === true;
    const grant: ClientGrant = checkGrant({
      id: newTokenId(), name: req.name ?? (admin ? 'admin' : 'token'), admin, readOnly: req.readOnly === true, prefix: req.prefix ?? '/', issuedAtMs: now,
      ...(req.ttlMs !== undefined ? { expiresAtMs: now + req.ttlMs } : {}),
    });
    const keyId = this.state.signingKeyId();
    // A retry of the same session seq answers the first record: the token is signed from it.
    const info = (await this.commit({ kind: 'recordToken', grant, keyId }, session)) as TokenRecord;
    const key = this.state.signingKey(this.secret);
    if (key.id !== info.keyId) throw new DfsError('UNAVAILABLE', 'the signing key rotated while the token was made; make it again');
    const { keyId: _k, ...signed } = info;
    return { token: signClientToken(key, signed), info };
  }

  listTokens(): TokenListing[] {
    this.svc.leadership.requireLeader();
    return [...this.state.tokens.values()].map((t) => ({ ...t, revoked: this.state.isRevoked(t.id) }));
  }

  async revoke(id: string, session?: SessionRef): Promise<{ id: string; known: boolean }> {
    return (await this.commit({ kind: 'revokeToken', id }, session)) as { id: string; known: boolean };
  }

  async rotateKeys(session?: SessionRef): Promise<KeyInfo[]> {
    return (await this.commit({ kind: 'addKey', secretHex: randomBytes(32).toString('hex') }, session)) as KeyInfo[];
  }

  async dropOldKeys(session?: SessionRef): Promise<KeyInfo[]> {
    return (await this.commit({ kind: 'dropOldKeys' }, session)) as KeyInfo[];
  }

  keys(): KeyInfo[] {
    this.svc.leadership.requireLeader();
    return this.state.keyInfo();
  }
}
