// Small files kept inline in the replicated master state (as CephFS's inline data): the limits
// and the one checksum the writer, the leader and every reader compute over the bytes.
import { chunkChecksum, hashBlock } from './checksum.js';
import { assert } from './limits.js';

/** The master's default `--inline-max-bytes`: a file of at most this many bytes is kept inline. */
export const DEFAULT_INLINE_MAX_BYTES = 4096;
/**
 * The largest `--inline-max-bytes` a master takes. An inline file's bytes travel in a Raft entry
 * (base64: 4/3 of them), stay in every master's memory and are written in every snapshot, so
 * only small files belong there; past a few KiB a chunk's three fsyncs matter less.
 */
export const INLINE_MAX_BYTES_LIMIT = 16 * 1024;
/**
 * All inline bytes of a namespace together, at most (checked in the replicated apply, so every
 * master agrees): bounds what inline files add to each master's memory and each snapshot. A
 * create that would pass it is INLINE_REFUSED and the client writes chunks instead.
 */
export const INLINE_TOTAL_MAX_BYTES = 256 * 1024 * 1024;
/** base64 length of `n` bytes. */
export const base64Length = (n: number): number => 4 * Math.ceil(n / 3);

// One inline body is one block of the chunk checksum, so its checksum is the one a chunk of the same bytes has.
assert(INLINE_MAX_BYTES_LIMIT <= 64 * 1024, 'an inline file fits one checksum block');
assert(DEFAULT_INLINE_MAX_BYTES <= INLINE_MAX_BYTES_LIMIT, 'the default inline limit is within the largest');

/** Inline bytes as they travel in JSON: base64, their length and their checksum. */
export interface InlineBody { data: string; size: number; checksum: string }

/** The checksum of inline bytes: a chunk's checksum (xxHash64 of its block hashes) over them. Needs initChecksums(). */
export function inlineChecksum(bytes: Uint8Array): string {
  return chunkChecksum([hashBlock(bytes)]);
}

/** The body for `bytes`. Needs initChecksums(). */
export function inlineBody(bytes: Buffer): InlineBody {
  return { data: bytes.toString('base64'), size: bytes.length, checksum: inlineChecksum(bytes) };
}

/** Decodes `body`; undefined when its data is not strict base64 of `size` bytes whose checksum is `checksum`. Needs initChecksums(). */
export function decodeInline(body: InlineBody): Buffer | undefined {
  const bytes = Buffer.from(body.data, 'base64');
  // Buffer.from skips characters that are not base64: re-encoding shows any.
  if (bytes.length !== body.size || bytes.toString('base64') !== body.data) return undefined;
  return inlineChecksum(bytes) === body.checksum ? bytes : undefined;
}
