// dfs append --record (one record, or one a line with --lines) and dfs cat --records: record
// files as GFS §3.3 has them (cli/client-records.ts, common/record-format.ts).
import { createReadStream, statSync } from 'node:fs';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { DfsError } from '../common/errors.js';
import { normalizePath } from '../common/paths.js';
import { RECORD_HEADER_BYTES } from '../common/record-format.js';
import type { AppendedRecord, DfsClient } from './client.js';
import { STDIO, type FsArgs } from './fs-commands.js';
import { MAX_QUEUED_BYTES } from './record-batch.js';

/** Lines `--lines` has handed to the client and not yet seen answered, and their bytes: bounds what it holds (within the client's queue: record-batch.ts). */
export const LINES_IN_FLIGHT = 4096;
export const BYTES_IN_FLIGHT = MAX_QUEUED_BYTES / 2;

/** The largest record payload a file takes: a quarter of its chunk size, less the frame's header. */
function maxPayload(chunkSizeBytes: number): number {
  return Math.floor(chunkSizeBytes / 4) - RECORD_HEADER_BYTES;
}

function openInput(srcArg: string): Readable {
  if (srcArg === STDIO || srcArg === '-') return process.stdin;
  let isFile = false;
  try {
    isFile = statSync(srcArg).isFile();
  } catch {
    throw new DfsError('NOT_FOUND', `local file ${srcArg} does not exist`);
  }
  if (!isFile) throw new DfsError('INVALID_ARGUMENT', `local path ${srcArg} is not a regular file`);
  return createReadStream(srcArg, { highWaterMark: 1024 * 1024 });
}

/** The whole input as one record, refused (nothing appended) once it passes `max` bytes. */
async function readOneRecord(input: Readable, max: number, path: string): Promise<Buffer> {
  const pieces: Buffer[] = [];
  let n = 0;
  for await (const piece of input) {
    n += (piece as Buffer).length;
    if (n > max) {
      input.destroy();
      throw new DfsError('RECORD_TOO_LARGE', `the record is over ${max} bytes, the most ${path} takes (a quarter of its chunk size, less ${RECORD_HEADER_BYTES} bytes of framing); nothing was appended`);
    }
    pieces.push(piece as Buffer);
  }
  return Buffer.concat(pieces);
}

function report(args: FsArgs, r: AppendedRecord): void {
  process.stdout.write(args.json ? `${JSON.stringify(r)}\n` : `${r.path}: record at offset ${r.offset} (${r.length} bytes)\n`);
}

/** `dfs append --record [--lines] <local|-> <path>`: each record's offset on stdout (a JSON line each with --json). */
export async function appendRecords(client: DfsClient, args: FsArgs): Promise<void> {
  const path = normalizePath(String(args.path));
  const st = await client.stat(path);
  if (st.type !== 'file') throw new DfsError('IS_A_DIRECTORY', `${path} is a directory; append records to a file`);
  const max = maxPayload(st.chunkSizeBytes);
  const input = openInput(String(args.src));
  const onRetry = (msg: string): void => {
    if (!args.quiet) process.stderr.write(`dfs: ${msg}\n`);
  };
  if (!args.lines) {
    const data = await readOneRecord(input, max, path);
    if (data.length === 0) throw new DfsError('INVALID_ARGUMENT', 'the input is empty: a record has at least one byte; nothing was appended');
    return report(args, await client.recordAppend(path, data, { onRetry }));
  }
  // Each line is handed to the client as it is read, at most LINES_IN_FLIGHT ahead of the oldest
  // unanswered one: the client sends those queued behind an append in the next (record-batch.ts).
  // Offsets are printed in input order. After a failure no more lines are read; the records
  // already handed over are waited for (each acknowledged one printed), then the failure is told.
  const inFlight: { pending: Promise<AppendedRecord>; bytes: number }[] = [];
  let bytesInFlight = 0;
  let failure: unknown;
  const settleOldest = async (): Promise<void> => {
    const oldest = inFlight.shift()!;
    bytesInFlight -= oldest.bytes;
    try {
      report(args, await oldest.pending);
    } catch (err) {
      failure ??= err;
    }
  };
  let lineNo = 0;
  try {
    for await (const line of createInterface({ input, crlfDelay: Infinity })) {
      if (failure !== undefined) break;
      lineNo++;
      const data = Buffer.from(line, 'utf8');
      if (data.length === 0) continue;
      if (data.length > max) throw new DfsError('RECORD_TOO_LARGE', `line ${lineNo} is ${data.length} bytes, over the ${max} a record of ${path} may have; the lines before it were appended, it and the rest were not`);
      // Within the client's queue bounds, so that no line is refused for want of room.
      while (inFlight.length >= LINES_IN_FLIGHT || (inFlight.length > 0 && bytesInFlight + data.length > BYTES_IN_FLIGHT)) await settleOldest();
      const pending = client.recordAppend(path, data, { onRetry });
      pending.catch(() => undefined); // awaited in order below; a later one may fail first
      inFlight.push({ pending, bytes: data.length });
      bytesInFlight += data.length;
    }
  } finally {
    // The lines read so far are appended (or fail) whatever stops the reading; their offsets are printed.
    while (inFlight.length > 0) await settleOldest();
  }
  if (failure !== undefined) throw failure;
}

/** `dfs cat --records <path>`: each record once, followed by a newline (a JSON line each with --json: offset, id, data in base64). */
export async function catRecords(client: DfsClient, args: FsArgs): Promise<void> {
  const skips = { paddingBytes: 0, corruptBytes: 0, corruptRecords: 0, duplicateRecords: 0 };
  for await (const r of client.readRecords(String(args.path), { skips })) {
    const line = args.json ? Buffer.from(`${JSON.stringify({ offset: r.offset, id: r.id, data: r.data.toString('base64') })}\n`) : Buffer.concat([r.data, Buffer.from('\n')]);
    if (!process.stdout.write(line)) await new Promise((resolve) => process.stdout.once('drain', resolve));
  }
  if (skips.corruptRecords > 0) process.stderr.write(`dfs: skipped ${skips.corruptRecords} damaged record${skips.corruptRecords === 1 ? '' : 's'} (${skips.corruptBytes} bytes)\n`);
}
