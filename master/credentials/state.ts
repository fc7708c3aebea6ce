// The replicated half of client credentials: the signing keys, the tokens made with
// `dfs token create`, and the revocations. A part of MasterState, changed only by the
// `credentials` command, so every master holds the same keys and refuses the same tokens, and
// all of it rides in snapshots. Deterministic: the time and the new key come in the command.
import { BOOTSTRAP_KEY_ID, bootstrapKey, checkGrant, TOKEN_ID, type ClientGrant, type SigningKey } from '../../common/credentials.js';
import { DfsError } from '../../common/errors.js';

/** Tokens recorded (for `dfs token list`) at most; an expired one is forgotten when the next is made. */
export const MAX_TOKENS = 10_000;
/** Revocations kept at most; one of an expired token is forgotten (the token is refused anyway). */
export const MAX_REVOCATIONS = 10_000;
/** Signing keys at most: rotate, then drop the old ones. */
export const MAX_KEYS = 16;

/** A change to the credentials, as a command carries it (master/commands.ts, op 'credentials'). */
export type CredentialAction =
  /** A new signing key (32 random bytes drawn by the leader, hex): it signs from now on. */
  | { kind: 'addKey'; secretHex: string }
  /** Every key but the newest stops verifying (the bootstrap key too). */
  | { kind: 'dropOldKeys' }
  | { kind: 'recordToken'; grant: ClientGrant; keyId: string }
  | { kind: 'revokeToken'; id: string };

export interface KeyRecord { id: string; secretHex: string; createdAtMs: number }
export interface TokenRecord extends ClientGrant { keyId: string }
export interface Revocation { atMs: number; expiresAtMs?: number }
/** What `dfs admin keys` shows of a key: never its secret. */
export interface KeyInfo { id: string; createdAtMs: number | null; signing: boolean }

const fail = (code: 'INVALID_ARGUMENT' | 'NOT_FOUND', message: string): never => {
  throw new DfsError(code, message);
};

export class CredentialState {
  keys: KeyRecord[] = [];
  /** The bootstrap key (derived from the cluster secret) was dropped: it verifies nothing any more. */
  bootstrapDropped = false;
  nextKeyNumber = 1;
  tokens = new Map<string, TokenRecord>();
  revoked = new Map<string, Revocation>();

  /** Applies one change; throws a DfsError (which MasterState.apply turns into a refusal) and changes nothing when refused. */
  apply(action: CredentialAction, nowMs: number): unknown {
    switch (action.kind) {
      case 'addKey': return this.addKey(action.secretHex, nowMs);
      case 'dropOldKeys': return this.dropOldKeys();
      case 'recordToken': return this.recordToken(action.grant, action.keyId, nowMs);
      case 'revokeToken': return this.revoke(action.id, nowMs);
    }
  }

  private addKey(secretHex: string, nowMs: number): KeyInfo[] {
    if (!/^[0-9a-f]{64}$/.test(secretHex)) fail('INVALID_ARGUMENT', 'a signing key is 32 bytes in hex');
    if (this.keys.length + (this.bootstrapDropped ? 0 : 1) >= MAX_KEYS) fail('INVALID_ARGUMENT', `the cluster holds ${MAX_KEYS} signing keys; drop the old ones first (dfs admin drop-old-keys)`);
    this.keys.push({ id: `k${this.nextKeyNumber++}`, secretHex, createdAtMs: nowMs });
    return this.keyInfo();
  }

  private dropOldKeys(): KeyInfo[] {
    if (this.keys.length === 0) fail('INVALID_ARGUMENT', 'there is only the bootstrap key; rotate first (dfs admin rotate-keys), then drop the old keys');
    this.keys = this.keys.slice(-1);
    this.bootstrapDropped = true;
    return this.keyInfo();
  }

  private recordToken(grant: ClientGrant, keyId: string, nowMs: number): TokenRecord {
    checkGrant(grant);
    if (this.tokens.has(grant.id) || this.revoked.has(grant.id)) fail('INVALID_ARGUMENT', `token id ${grant.id} is taken`);
    if (this.signingKeyId() !== keyId) fail('INVALID_ARGUMENT', `key ${keyId} is not the signing key any more (the keys rotated meanwhile); make the token again`);
    this.forgetExpired(nowMs);
    if (this.tokens.size >= MAX_TOKENS) fail('INVALID_ARGUMENT', `the cluster records ${MAX_TOKENS} tokens; revoke some, or give new ones a --ttl`);
    const record: TokenRecord = { ...grant, keyId };
    this.tokens.set(grant.id, record);
    return record;
  }

  private revoke(id: string, nowMs: number): { id: string; known: boolean } {
    if (!TOKEN_ID.test(id)) fail('INVALID_ARGUMENT', 'a token id is 1 to 64 letters, digits, - or _');
    if (this.revoked.has(id)) return { id, known: this.tokens.has(id) };
    this.forgetExpired(nowMs);
    if (this.revoked.size >= MAX_REVOCATIONS) fail('INVALID_ARGUMENT', `the cluster holds ${MAX_REVOCATIONS} revocations; rotate the keys and drop the old ones instead`);
    const expiresAtMs = this.tokens.get(id)?.expiresAtMs;
    this.revoked.set(id, { atMs: nowMs, ...(expiresAtMs !== undefined ? { expiresAtMs } : {}) });
    return { id, known: this.tokens.has(id) };
  }

  /** Tokens and revocations of tokens that expired: they verify nowhere whatever this says. */
  private forgetExpired(nowMs: number): void {
    for (const [id, t] of this.tokens) if (t.expiresAtMs !== undefined && t.expiresAtMs <= nowMs) this.tokens.delete(id);
    for (const [id, r] of this.revoked) if (r.expiresAtMs !== undefined && r.expiresAtMs <= nowMs) this.revoked.delete(id);
  }

  // ---- reads ----

  signingKeyId(): string {
    return this.keys.at(-1)?.id ?? BOOTSTRAP_KEY_ID;
  }

  /** The key new tokens are signed with: the newest, or the bootstrap key before any rotation. */
  signingKey(clusterSecret: Buffer): SigningKey {
    const newest = this.keys.at(-1);
    return newest ? { id: newest.id, secret: Buffer.from(newest.secretHex, 'hex') } : bootstrapKey(clusterSecret);
  }

  /** The secret of key `id`, if it still verifies. */
  verifyingKey(clusterSecret: Buffer, id: string): Buffer | undefined {
    if (id === BOOTSTRAP_KEY_ID) return this.bootstrapDropped ? undefined : bootstrapKey(clusterSecret).secret;
    const k = this.keys.find((r) => r.id === id);
    return k ? Buffer.from(k.secretHex, 'hex') : undefined;
  }

  isRevoked(id: string): boolean {
    return this.revoked.has(id);
  }

  keyInfo(): KeyInfo[] {
    const signing = this.signingKeyId();
    return [
      ...(this.bootstrapDropped ? [] : [{ id: BOOTSTRAP_KEY_ID, createdAtMs: null, signing: signing === BOOTSTRAP_KEY_ID }]),
      ...this.keys.map((k) => ({ id: k.id, createdAtMs: k.createdAtMs, signing: k.id === signing })),
    ];
  }

  isEmpty(): boolean {
    return this.keys.length === 0 && !this.bootstrapDropped && this.tokens.size === 0 && this.revoked.size === 0;
  }

  // ---- snapshot ----

  toJSON(): unknown {
    return { keys: this.keys, bootstrapDropped: this.bootstrapDropped, nextKeyNumber: this.nextKeyNumber, tokens: [...this.tokens.values()], revoked: [...this.revoked] };
  }

  static fromJSON(raw: unknown): CredentialState {
    const r = raw as { keys: KeyRecord[]; bootstrapDropped: boolean; nextKeyNumber: number; tokens: TokenRecord[]; revoked: [string, Revocation][] };
    const s = new CredentialState();
    s.keys = r.keys;
    s.bootstrapDropped = r.bootstrapDropped;
    s.nextKeyNumber = r.nextKeyNumber;
    s.tokens = new Map(r.tokens.map((t) => [t.id, t]));
    s.revoked = new Map(r.revoked);
    return s;
  }
}
