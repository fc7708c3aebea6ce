// The redo record of an append in place (append.ts, chunk-store.ts applyTail): a chunk's new
// tail from a block boundary `at`, then the whole chunk's new trailer, exactly as the chunk file
// will hold them from `at` on. It is fsynced before it is renamed to `<handle>.redo` in the chunk
// folder: that rename is the append's commit on this replica. Applying it writes it over the
// chunk file from `at` and cuts the file there, which is the same whether done once or again, so
// a crash while applying is mended at start by applying it again.
import { rm, open, type FileHandle } from 'node:fs/promises';
import { BLOCK_SIZE_BYTES, hashBlock } from '../../common/checksum.js';
import { DfsError } from '../../common/errors.js';
import { decodeTrailer, FOOTER_BYTES, trailerBytes } from '../format.js';
import { readChunkMeta } from './reader.js';

export const REDO_SUFFIX = '.redo';
/** A redo record's name in the chunk folder: the handle, then the suffix. */
export const REDO_NAME = /^(\d+)\.redo$/;
/** Bytes copied per read and write when a record is applied. */
const APPLY_PIECE_BYTES = 1024 * 1024;

/** Writes the record at `redo` over the chunk file from `at` on, cuts the file after it, and fsyncs it. */
export async function applyRedo(redo: string, chunkPath: string, at: number): Promise<void> {
  const src = await open(redo, 'r');
  let dst: FileHandle | undefined;
  try {
    dst = await open(chunkPath, 'r+');
    const { size } = await src.stat();
    const buf = Buffer.allocUnsafe(Math.max(1, Math.min(size, APPLY_PIECE_BYTES)));
    for (let p = 0; p < size;) {
      const n = Math.min(buf.length, size - p);
      const { bytesRead } = await src.read(buf, 0, n, p);
      if (bytesRead !== n) throw new DfsError('IO_ERROR', `redo record ${redo}: short read`);
      await writeAll(dst, buf.subarray(0, n), at + p, chunkPath);
      p += n;
    }
    await dst.truncate(at + size);
    await dst.sync();
  } finally {
    await src.close();
    await dst?.close();
  }
}

/** A record's facts, checked: its trailer's own checksum, and every block of its tail against the trailer. */
export async function readRedo(redo: string, handle: number): Promise<{ at: number; version: number; length: number }> {
  const fh = await open(redo, 'r');
  try {
    const { size } = await fh.stat();
    if (size < FOOTER_BYTES) throw new Error('shorter than a footer');
    const footer = Buffer.alloc(FOOTER_BYTES);
    await fh.read(footer, 0, FOOTER_BYTES, size - FOOTER_BYTES);
    const nBlocks = footer.readUInt32LE(32);
    const length = Number(footer.readBigUInt64LE(24));
    const trailerLength = trailerBytes(nBlocks);
    const at = length + trailerLength - size;
    if (trailerLength > size || at < 0 || at % BLOCK_SIZE_BYTES !== 0 || nBlocks !== Math.ceil(length / BLOCK_SIZE_BYTES)) throw new Error('its size does not match its footer');
    const trailer = Buffer.alloc(trailerLength);
    await fh.read(trailer, 0, trailerLength, size - trailerLength);
    const meta = decodeTrailer(trailer);
    if (meta.handle !== handle) throw new Error(`it holds handle ${meta.handle}`);
    const block = Buffer.allocUnsafe(BLOCK_SIZE_BYTES);
    for (let b = at / BLOCK_SIZE_BYTES; b < nBlocks; b++) {
      const start = b * BLOCK_SIZE_BYTES;
      const n = Math.min(BLOCK_SIZE_BYTES, length - start);
      await fh.read(block, 0, n, start - at);
      if (hashBlock(block.subarray(0, n)) !== meta.blockHashes[b]) throw new Error(`block ${b} fails its checksum`);
    }
    return { at, version: meta.version, length };
  } finally {
    await fh.close();
  }
}

/**
 * At start: applies a record found in the chunk folder again (its append was committed, and may
 * not have been wholly applied), unless the chunk file is gone or holds a later version already;
 * then removes it. A damaged record is removed unapplied (it was fsynced before its rename, so
 * this takes a damaged disk): the chunk file's own check then decides whether the replica serves.
 * Answers what was done, for the log. Throws, the record kept, when the chunk file cannot be
 * opened or the record not applied (a full disk): the caller moves both aside.
 */
export async function replayRedo(redo: string, chunkPath: string, handle: number): Promise<string> {
  let r: Awaited<ReturnType<typeof readRedo>>;
  try {
    r = await readRedo(redo, handle);
  } catch (err) {
    await rm(redo, { force: true });
    return `damaged (${(err as Error).message}): record dropped`;
  }
  const current = await chunkVersion(chunkPath, handle);
  let outcome: string;
  if (current === undefined) outcome = 'the chunk file is gone: record dropped';
  else if (current !== 'torn' && current > r.version) outcome = `the chunk is at version ${current} already: record dropped`;
  else {
    await applyRedo(redo, chunkPath, r.at);
    outcome = `applied: version ${r.version}, ${r.length} bytes`;
  }
  await rm(redo, { force: true });
  return outcome;
}

/** The version a chunk file's trailer holds, 'torn' when it fails its check, undefined when there is no file; other failures throw. */
async function chunkVersion(chunkPath: string, handle: number): Promise<number | 'torn' | undefined> {
  let fh: FileHandle;
  try {
    fh = await open(chunkPath, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  try {
    return await readChunkMeta(fh, handle).then((m) => m.version, () => 'torn' as const);
  } finally {
    await fh.close();
  }
}

/** The bytes of the file at `path` from `offset` to its end (a chunk file's trailer, for a roll-back). */
export async function readFrom(path: string, offset: number): Promise<Buffer> {
  const fh = await open(path, 'r');
  try {
    const { size } = await fh.stat();
    const buf = Buffer.alloc(Math.max(0, size - offset));
    const { bytesRead } = await fh.read(buf, 0, buf.length, offset);
    if (bytesRead !== buf.length) throw new DfsError('IO_ERROR', `${path}: short read`);
    return buf;
  } finally {
    await fh.close();
  }
}

/** Puts `tail` back at `offset` of the file at `path`, cuts the file after it, and fsyncs it. */
export async function restoreTail(path: string, offset: number, tail: Buffer): Promise<void> {
  const fh = await open(path, 'r+');
  try {
    await writeAll(fh, tail, offset, path);
    await fh.truncate(offset + tail.length);
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Writes all of `buf` at `position`, resuming after a short write. */
async function writeAll(fh: FileHandle, buf: Buffer, position: number, path: string): Promise<void> {
  for (let done = 0; done < buf.length;) {
    const { bytesWritten } = await fh.write(buf, done, buf.length - done, position + done);
    if (bytesWritten <= 0) throw new DfsError('IO_ERROR', `${path}: the disk took no bytes`);
    done += bytesWritten;
  }
}
