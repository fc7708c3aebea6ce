// Chunk access tokens: what the master signs so that chunkservers serve a chunk to its bearer.
import { signChunkToken, type ChunkAccessMode, type ChunkTokenServer } from '../../common/auth.js';
import { BOOTSTRAP_CHUNK_KEY_ID, chunkKeyOf, keyNumber, sealChunkKeys, type ChunkKey, type ChunkKeySet } from '../../common/chunk-keys.js';
import type { Clock } from '../../common/clock.js';
import type { CredentialState } from '../credentials/state.js';
import type { MasterConfig } from './config.js';

/**
 * How long a read token stays valid. Longer lets a reader (a slow download, an S3 client that
 * stat'ed a while ago, a queued copy order) start more chunk reads on one stat; shorter makes a
 * leaked token (a log line, a copied URL) useful for less time. A reader whose token expired
 * stats the file again, so this costs a stat per this long per reader, not a failed read.
 */
export const READ_TOKEN_TTL_MS = 10 * 60_000;

/** What the tokens are signed with: the replicated key set, and the chunkservers that must hold a key before it signs. */
export interface ChunkKeySource {
  credentials(): CredentialState;
  liveServers(): string[];
}

export class ChunkTokens {
  /** The chunk keys each chunkserver said in its last beat that it holds. */
  private readonly held = new Map<string, ReadonlySet<string>>();

  constructor(private readonly config: MasterConfig, private readonly clock: Clock, private readonly keys?: ChunkKeySource) {}

  /**
   * A chunk access token (common/auth.ts) for `mode`, valid from now for that mode's TTL; `servers`
   * (a write's pipeline in order, a copy's source) are the only servers that accept it.
   */
  sign(handle: number, version: number, mode: 'read'): string;
  sign(handle: number, version: number, mode: 'write' | 'copy-source', servers: ChunkTokenServer[]): string;
  sign(handle: number, version: number, mode: ChunkAccessMode, servers?: ChunkTokenServer[]): string {
    const ttlMs = mode === 'write' ? this.config.writeTokenTtlMs : this.config.readTokenTtlMs;
    const named = servers ? { servers: servers.map((s) => ({ id: s.id, addr: s.addr })) } : {};
    return signChunkToken(this.signingKey(), { handle, version, mode, expiresAtMs: this.clock.nowMs() + ttlMs, ...named });
  }

  /** The chunk keys that verify now: k0 (the cluster secret) until dropped, and one derived from each rotated key. */
  keySet(): ChunkKeySet {
    const creds = this.keys?.credentials();
    return { bootstrap: !(creds?.bootstrapDropped ?? false), keys: (creds?.keys ?? []).map((k) => chunkKeyOf(k.id, Buffer.from(k.secretHex, 'hex'))) };
  }

  /** The key set sealed for one chunkserver's heartbeat reply. */
  sealFor(serverId: string): string {
    return sealChunkKeys(this.config.secret, serverId, this.keySet());
  }

  /** A chunkserver's beat said which chunk keys it holds (absent: a server from before chunk keys, which holds k0 only). */
  noteHeld(serverId: string, ids: string[] | undefined): void {
    this.held.set(serverId, new Set(ids ?? [BOOTSTRAP_CHUNK_KEY_ID]));
  }

  /**
   * The newest verifying key that every live chunkserver that reported its keys holds (so no
   * server refuses a token for a key it has not learned yet); the newest when none is held by all
   * (just after keys were dropped: those servers learn the set with their next beat).
   */
  private signingKey(): Buffer | ChunkKey {
    const set = this.keySet();
    const all: ChunkKey[] = [...(set.bootstrap ? [{ id: BOOTSTRAP_CHUNK_KEY_ID, secret: this.config.secret }] : []), ...set.keys];
    all.sort((a, b) => keyNumber(b.id) - keyNumber(a.id));
    const reported = (this.keys?.liveServers() ?? []).flatMap((id) => this.held.get(id) ?? []);
    return all.find((k) => reported.every((h) => h.has(k.id))) ?? all[0] ?? this.config.secret;
  }
}
