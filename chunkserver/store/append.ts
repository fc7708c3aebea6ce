import { DfsError } from '../../common/errors.js';
import type { ChunkWriter, StoredChunk } from './writer.js';

/**
 * An append to a stored chunk: the chunk's bytes [0, `offset`) as this replica has them at
 * `baseVersion` or later, then the appended bytes, become the chunk at `newVersion`.
 */
export interface AppendWrite {
  handle: number; baseVersion: number; offset: number; newVersion: number;
  /**
   * Copy-on-write (a chunk shared by a snapshot): the kept bytes come from this stored chunk and
   * the result is a new chunk `handle`, made here from local bytes; `from` stays as it is.
   */
  from?: number;
}

/** What an append needs of the store. */
export interface AppendStore {
  stored(handle: number): StoredChunk | undefined;
  /** A writer whose finished file is published by `publish`. */
  open(publish: (tmp: string, chunk: StoredChunk) => Promise<void>): Promise<ChunkWriter>;
  /** Publishes a finished file as a chunk not stored here before. */
  publishNew(tmp: string, chunk: StoredChunk): Promise<void>;
  readRange(handle: number, offset: number, length: number, sink: (bytes: Buffer) => Promise<void>): Promise<void>;
  /** Renames the finished file over the replica `base`, unless that replica changed meanwhile. */
  replace(tmp: string, chunk: StoredChunk, base: StoredChunk): Promise<void>;
}

/**
 * Starts an append as a new file, never a write into the served one: the kept bytes are copied
 * (verified block by block as every read is) into a temporary file, the caller writes the new
 * bytes after them, and finish() checksums every 64 KiB block, fsyncs it and renames it over the
 * old file. A crash at any point leaves the old replica whole, or the new one whole. A replica
 * at a later version than `baseVersion` (a failed append's) serves, as its first `offset` bytes
 * are the same; one at an earlier version missed an append and is stale: refused.
 */
export async function startAppend(a: AppendWrite, store: AppendStore): Promise<ChunkWriter> {
  const source = a.from ?? a.handle;
  const base = store.stored(source);
  if (!base) throw new DfsError('CHUNK_NOT_FOUND', `chunk ${source} is not stored here`);
  if (base.version < a.baseVersion) throw new DfsError('STALE_VERSION', `chunk ${a.handle} here is version ${base.version}, older than ${a.baseVersion}: this replica missed an append`);
  // The same version again is the same append retried (a version is issued once); an earlier one is an old append arriving late.
  if (a.newVersion < base.version) throw new DfsError('STALE_VERSION', `chunk ${a.handle} here is version ${base.version} already, newer than ${a.newVersion}`);
  if (base.length < a.offset) throw new DfsError('INVALID_ARGUMENT', `chunk ${a.handle} here has ${base.length} bytes, fewer than the append's offset ${a.offset}`);
  const writer = await store.open(publisher(a, base, store));
  try {
    if (a.offset > 0) await store.readRange(source, 0, a.offset, (bytes) => writer.write(bytes));
  } catch (err) {
    await writer.abort();
    throw err;
  }
  return writer;
}

/**
 * Where the finished file goes: over the replica it was made from; for a copy, a new chunk (or,
 * when the same copy was made here before and its pipeline failed further on, over that one).
 */
function publisher(a: AppendWrite, base: StoredChunk, store: AppendStore): (tmp: string, chunk: StoredChunk) => Promise<void> {
  if (a.from === undefined || a.from === a.handle) return (tmp, chunk) => store.replace(tmp, chunk, base);
  const earlier = store.stored(a.handle);
  if (earlier && earlier.version !== a.newVersion) throw new DfsError('CHUNK_EXISTS', `chunk ${a.handle} is already stored here`);
  return earlier ? (tmp, chunk) => store.replace(tmp, chunk, earlier) : (tmp, chunk) => store.publishNew(tmp, chunk);
}
