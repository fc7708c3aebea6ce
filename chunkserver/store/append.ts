import { BLOCK_SIZE_BYTES } from '../../common/checksum.js';
import { DfsError } from '../../common/errors.js';
import type { ChunkMeta } from '../format.js';
import type { ChunkWriter, ChunkWriterOptions, StoredChunk } from './writer.js';

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
  /** The stored chunk's trailer, verified. */
  readMeta(handle: number): Promise<ChunkMeta>;
  /** A writer of a chunk's tail from a block boundary (ChunkWriterOptions.from). */
  openTail(from: NonNullable<ChunkWriterOptions['from']>, publish: (tmp: string, chunk: StoredChunk) => Promise<void>): Promise<ChunkWriter>;
  /** Writes the finished tail over the replica `base` from `at` on, crash-safely, unless that replica changed meanwhile. */
  applyTail(tmp: string, chunk: StoredChunk, base: StoredChunk, at: number): Promise<void>;
}

/**
 * Starts an append. The usual one, at the end of the replica's bytes, is written in place: the
 * caller's bytes go to a temporary file after the kept part of the last block (verified), with
 * the whole chunk's new trailer; once that is durable the store applies it over the replica's
 * tail under a redo record (chunk-store.ts, applyTail), so an append costs its own bytes, not the
 * chunk's. Any other (a copy-on-write `from` another chunk, or an offset before the replica's
 * end: a retry after a failed append left more here) is a new file: the kept bytes are copied
 * (verified block by block as every read is), the caller writes the new bytes after them, and
 * finish() checksums every 64 KiB block, fsyncs it and renames it over the old file. A crash at
 * any point leaves the old replica whole, or the new one whole. A replica at a later version than
 * `baseVersion` (a failed append's) serves, as its first `offset` bytes are the same; one at an
 * earlier version missed an append and is stale: refused.
 */
export async function startAppend(a: AppendWrite, store: AppendStore): Promise<ChunkWriter> {
  const source = a.from ?? a.handle;
  const base = store.stored(source);
  if (!base) throw new DfsError('CHUNK_NOT_FOUND', `chunk ${source} is not stored here`);
  if (base.version < a.baseVersion) throw new DfsError('STALE_VERSION', `chunk ${a.handle} here is version ${base.version}, older than ${a.baseVersion}: this replica missed an append`);
  // The same version again is the same append retried (a version is issued once); an earlier one is an old append arriving late.
  if (a.newVersion < base.version) throw new DfsError('STALE_VERSION', `chunk ${a.handle} here is version ${base.version} already, newer than ${a.newVersion}`);
  if (base.length < a.offset) throw new DfsError('INVALID_ARGUMENT', `chunk ${a.handle} here has ${base.length} bytes, fewer than the append's offset ${a.offset}`);
  if ((a.from === undefined || a.from === a.handle) && base.length === a.offset) return startTail(a, base, store);
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

/** An append at the replica's end, written as the chunk's new tail from the last block's start. */
async function startTail(a: AppendWrite, base: StoredChunk, store: AppendStore): Promise<ChunkWriter> {
  const meta = await store.readMeta(a.handle);
  if (meta.version !== base.version || meta.length !== base.length) throw new DfsError('STALE_VERSION', `chunk ${a.handle} changed here as the append started`);
  const at = a.offset - (a.offset % BLOCK_SIZE_BYTES);
  const blocks = at / BLOCK_SIZE_BYTES;
  const writer = await store.openTail({ offset: at, blockHashes: meta.blockHashes.slice(0, blocks) }, (tmp, chunk) => store.applyTail(tmp, chunk, base, at));
  try {
    if (a.offset > at) await store.readRange(a.handle, at, a.offset - at, (bytes) => writer.write(bytes));
  } catch (err) {
    await writer.abort();
    throw err;
  }
  return writer;
}
