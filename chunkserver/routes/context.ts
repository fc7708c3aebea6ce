import type { Request } from 'express';
import type { ChunkKeyLookup } from '../../common/chunk-keys.js';
import type { Logger } from '../../common/log.js';
import { parseIntParam } from '../../common/server.js';
import type { ChunkStore, StoredChunk } from '../store/index.js';

export interface ChunkRouteConfig {
  id: string;
  addr: string;
  /** Signs write receipts (common/store-receipt.ts). */
  secret: Buffer;
  /** The chunk keys tokens are verified with (common/chunk-keys.ts): k0 is the secret; rotated ones come with heartbeat replies. */
  chunkKeys: ChunkKeyLookup;
  /** Largest chunk accepted: the cluster's chunk size. */
  maxChunkBytes: number;
  /** Writes received at once; more get UNAVAILABLE so the client picks another pipeline. */
  maxActiveWrites: number;
  /** Reads served at once; more get UNAVAILABLE and the client tries another replica. */
  maxActiveReads: number;
  /** A whole chunk must pass through a pipeline hop within this time. */
  chunkTimeoutMs: number;
  /** Longest pipeline accepted (this hop plus the ones after it). */
  maxPipelineLength: number;
}

export interface ChunkRouteHooks {
  /** A replica failed verification: quarantine it and tell the master. */
  onCorrupt(handle: number, reason: string): void;
  /** A chunk was stored: report it to the master soon. */
  onStored(chunk: StoredChunk): void;
}

/** Reads and writes in progress (the heartbeat reports them; the routes bound them). */
export class Activity {
  writes = 0;
  reads = 0;
}

/** What every chunk route works with. */
export interface ChunkRouteContext {
  cfg: ChunkRouteConfig;
  store: ChunkStore;
  activity: Activity;
  hooks: ChunkRouteHooks;
  log: Logger;
}

export function parseHandle(req: Request): number {
  return parseIntParam(req.params.handle, 'handle', { min: 1 })!;
}
