// Record appends (GFS §3.3): an append that carries one framed record, whose offset the open
// picks in the replicated log. A record never straddles two chunks: one that does not fit in the
// last chunk's room goes to the start of a new chunk, and the room left is padding (zeros the
// writer sends first), which the record reader skips (common/record-format.ts).
import type { FileNode } from './nodes.js';
import { fail } from './failure.js';
import type { MasterState } from './master-state.js';

/** Where an opened record append puts its record. */
export interface RecordPlace {
  /** The record's offset in the file: the file's size, or the start of the next chunk. */
  offset: number;
  /** Zero bytes that fill the last chunk first (0 when the record fits in its room). */
  pad: number;
  /** The framed record's length. */
  length: number;
}

/**
 * The largest record: a quarter of the chunk size, as GFS bounds it, so padding wastes at most a
 * quarter of a chunk (and on average far less).
 */
export function maxRecordBytes(chunkSizeBytes: number): number {
  return Math.floor(chunkSizeBytes / 4);
}

/** Picks the record's place at the end of `file`; RECORD_TOO_LARGE (nothing changed) when it is over a quarter chunk. */
export function placeRecord(s: MasterState, path: string, file: FileNode, length: number): RecordPlace {
  const max = maxRecordBytes(file.chunkSizeBytes);
  if (length < 1 || length > max) fail('RECORD_TOO_LARGE', `a record of ${length} bytes does not fit: ${path} takes records of 1 to ${max} bytes (a quarter of its ${file.chunkSizeBytes}-byte chunks, framing included)`);
  const chunks = file.chunks;
  const last = chunks[chunks.length - 1];
  // An inline file's bytes become the start of its first chunk (an append rewrites them as chunks).
  const lastLength = file.inline ? file.size : last === undefined ? undefined : s.chunks.get(last)?.length;
  const room = lastLength === undefined ? 0 : Math.max(0, file.chunkSizeBytes - lastLength);
  const pad = room >= length ? 0 : room;
  return { offset: file.size + pad, pad, length };
}
