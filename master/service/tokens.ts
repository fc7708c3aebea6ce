// Chunk access tokens: what the master signs so that chunkservers serve a chunk to its bearer.
import { signChunkToken, type ChunkAccessMode, type ChunkTokenServer } from '../../common/auth.js';
import type { Clock } from '../../common/clock.js';
import type { MasterConfig } from './config.js';

/**
 * How long a read token stays valid. Longer lets a reader (a slow download, an S3 client that
 * stat'ed a while ago, a queued copy order) start more chunk reads on one stat; shorter makes a
 * leaked token (a log line, a copied URL) useful for less time. A reader whose token expired
 * stats the file again, so this costs a stat per this long per reader, not a failed read.
 */
export const READ_TOKEN_TTL_MS = 10 * 60_000;

export class ChunkTokens {
  constructor(private readonly config: MasterConfig, private readonly clock: Clock) {}

  /**
   * A chunk access token (common/auth.ts) for `mode`, valid from now for that mode's TTL; `servers`
   * (a write's pipeline in order, a copy's source) are the only servers that accept it.
   */
  sign(handle: number, version: number, mode: 'read'): string;
  sign(handle: number, version: number, mode: 'write' | 'copy-source', servers: ChunkTokenServer[]): string;
  sign(handle: number, version: number, mode: ChunkAccessMode, servers?: ChunkTokenServer[]): string {
    const ttlMs = mode === 'write' ? this.config.writeTokenTtlMs : this.config.readTokenTtlMs;
    const named = servers ? { servers: servers.map((s) => ({ id: s.id, addr: s.addr })) } : {};
    return signChunkToken(this.config.secret, { handle, version, mode, expiresAtMs: this.clock.nowMs() + ttlMs, ...named });
  }
}
