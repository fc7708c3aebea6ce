// Record appends and the record reader (GFS §3.3): many clients append records to one file with
// no lease of their own; each learns its record's offset; a reader gets every record at least
// once, intact, and skips padding, damage and the second copy of a retried record.
import type { Writable } from 'node:stream';
import { Writable as WritableStream } from 'node:stream';
import { initChecksums } from '../common/checksum.js';
import { DfsError, toDfsError } from '../common/errors.js';
import { RECORD_HEADER_BYTES, SeenIds, frameRecord, scanChunk, type RecordEntry, type ScanSkips } from '../common/record-format.js';
import type { StatReply } from '../common/protocol.js';
import type { PutOptions, Uploader } from './client-upload.js';

export type { RecordEntry, ScanSkips } from '../common/record-format.js';

/** Record appends tried before one fails (each a fresh open; the same record id throughout). */
export const DEFAULT_RECORD_ATTEMPTS = 10;
/** Waits between attempts grow from this, doubling, to RECORD_RETRY_MAX_MS, with jitter. */
const RECORD_RETRY_BASE_MS = 50;
const RECORD_RETRY_MAX_MS = 2000;
/** Record ids a reader remembers to skip duplicates: a retried record's copy lands soon after the first. */
export const DEFAULT_DEDUP_WINDOW = 100_000;

/** Failures a fresh attempt may get past: the turn did not come, a pipeline or the master was unreachable, the lease was lost. */
const RETRYABLE = new Set(['FILE_BUSY', 'PIPELINE_FAILED', 'UNAVAILABLE', 'TIMEOUT', 'NO_REPLICAS', 'SAFE_MODE', 'WRITE_NOT_FOUND', 'NO_SPACE']);

export interface RecordAppendOptions {
  /** Attempts before the record append fails (default 10). */
  maxAttempts?: number;
  onRetry?: (message: string) => void;
  signal?: AbortSignal;
}

/** A record that was appended: it is durable on the replicas that acknowledged it, and readers see it. */
export interface AppendedRecord {
  path: string;
  /** Where its frame starts in the file: readRecords yields it with this offset. */
  offset: number;
  /** Its unique id (hex): the same on every copy a retry may have left. */
  id: string;
  /** The record's own bytes (without framing). */
  length: number;
  /** The file's size once it was appended. */
  size: number;
}

/** What a record append needs of the client. */
export interface RecordWriter { uploader: Uploader }

/** A record framed for appending (its id, header and checksum): what appendRecord and the batcher send. */
export function framedRecord(data: Uint8Array): { frame: Buffer; id: string } {
  if (data.length === 0) throw new DfsError('INVALID_ARGUMENT', 'a record has at least one byte');
  if (data.length > 0xffffffff - RECORD_HEADER_BYTES) throw new DfsError('RECORD_TOO_LARGE', `a record of ${data.length} bytes is too large`);
  return frameRecord(data);
}

/**
 * Appends `data` as one record, at least once: a failed attempt is tried again (a new open, the
 * same record id), so a record whose complete applied but whose answer was lost may appear twice;
 * readers skip the second copy by its id. A failure that no retry can fix (RECORD_TOO_LARGE,
 * NOT_FOUND, ...) is thrown at once, the file unchanged by this record.
 */
export async function appendRecord(w: RecordWriter, path: string, data: Uint8Array, opts: RecordAppendOptions = {}): Promise<AppendedRecord> {
  await initChecksums();
  const { frame, id } = framedRecord(data);
  const at = await appendFrames(w, path, [frame], [id], opts);
  return { path: at.path, offset: at.offset, id, length: data.length, size: at.size };
}

/**
 * Appends framed records, one after another, as one record append, at least once (each attempt
 * a fresh open with the same frames): all of them at consecutive offsets, or none. Answers where
 * the first one starts and the file's size after.
 */
export async function appendFrames(w: RecordWriter, path: string, frames: Buffer[], ids: string[], opts: RecordAppendOptions = {}): Promise<{ path: string; offset: number; size: number }> {
  const frame = frames.length === 1 ? frames[0]! : Buffer.concat(frames);
  const max = opts.maxAttempts ?? DEFAULT_RECORD_ATTEMPTS;
  const putOpts: PutOptions = { ...(opts.signal ? { signal: opts.signal } : {}), ...(opts.onRetry ? { onRetry: opts.onRetry } : {}) };
  const what = ids.length === 1 ? `record ${ids[0]}` : `records ${ids.join(',')}`;
  let last: DfsError | undefined;
  for (let attempt = 0; attempt < max; attempt++) {
    try {
      const { file, offset } = await w.uploader.appendRecord(frame, path, putOpts);
      return { path: file.path, offset, size: file.size };
    } catch (err) {
      last = toDfsError(err, 'appending a record');
      if (!RETRYABLE.has(last.code) || opts.signal?.aborted) throw last;
      opts.onRetry?.(`${what}: ${last.message}; trying again (attempt ${attempt + 2} of ${max})`);
      const waitMs = Math.min(RECORD_RETRY_MAX_MS, RECORD_RETRY_BASE_MS * 2 ** attempt);
      await new Promise((r) => setTimeout(r, waitMs / 2 + Math.random() * (waitMs / 2)));
    }
  }
  throw new DfsError(last!.code, `the ${ids.length === 1 ? 'record was' : `${ids.length} records were`} not appended after ${max} attempts: ${last!.message}`);
}

/** What the reader needs of the client: a stat with chunks, and a range read. */
export interface RecordSource {
  stat(path: string, chunks?: boolean): Promise<StatReply>;
  getRange(path: string, sink: Writable, start: number, end: number, known?: StatReply): Promise<StatReply>;
}

export interface ReadRecordsOptions {
  /** Ids remembered to skip duplicates (default 100,000): a duplicate further apart than this is yielded again. */
  dedupWindow?: number;
  /** Filled in as the scan goes: padding, damaged frames, duplicates skipped. */
  skips?: ScanSkips & { duplicateRecords: number };
}

/**
 * The records of the file at `path` as it is when the read starts (its length then: records
 * appended later are not read), in file order, each once within the dedup window. It holds one
 * chunk in memory at a time: records never straddle chunks.
 */
export async function* readRecords(src: RecordSource, path: string, opts: ReadRecordsOptions = {}): AsyncGenerator<RecordEntry> {
  await initChecksums();
  const skips = opts.skips ?? { paddingBytes: 0, corruptBytes: 0, corruptRecords: 0, duplicateRecords: 0 };
  const seen = new SeenIds(opts.dedupWindow ?? DEFAULT_DEDUP_WINDOW);
  const st = await src.stat(path, true);
  let start = 0;
  // An inline file (common/inline.ts) is read as one chunk of its size: it has no chunks.
  for (const c of st.inline ? [{ length: st.size }] : st.chunks ?? []) {
    const bytes = await readAll(src, path, start, start + c.length, st);
    for (const r of scanChunk(bytes, start, skips)) {
      if (seen.seen(r.id)) skips.duplicateRecords++;
      else yield r;
    }
    start += c.length;
  }
}

async function readAll(src: RecordSource, path: string, start: number, end: number, known: StatReply): Promise<Buffer> {
  const pieces: Buffer[] = [];
  const sink = new WritableStream({
    write(chunk: Buffer, _enc, done) {
      pieces.push(chunk);
      done();
    },
  });
  await src.getRange(path, sink, start, end, known);
  return Buffer.concat(pieces);
}
