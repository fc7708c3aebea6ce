import { Readable, Writable } from 'node:stream';
import { DfsError } from '../common/errors.js';
import type { EntryInfo, StatReply } from '../common/protocol.js';
import { Downloader, type GetOptions } from './client-download.js';
import { MetaClient } from './client-meta.js';
import { Uploader, type PutOptions } from './client-upload.js';
import { initChecksums } from '../common/checksum.js';
import { appendFrames, framedRecord, readRecords, type AppendedRecord, type ReadRecordsOptions, type RecordAppendOptions, type RecordEntry } from './client-records.js';
import { DEFAULT_BATCH_RECORDS, RecordBatchers } from './record-batch.js';
import { findToken } from './token-source.js';
import { currentRequestId, newRequestId, runWithRequestId } from '../common/request-id.js';

export type { GetOptions } from './client-download.js';
export type { PutOptions } from './client-upload.js';
export type { AppendedRecord, ReadRecordsOptions, RecordAppendOptions, RecordEntry } from './client-records.js';

export interface ClientOptions {
  /** Pipelines tried per chunk before the upload fails: each retry excludes the nodes that failed. */
  maxChunkAttempts?: number;
  /** Time allowed for one chunk to pass through its whole pipeline. */
  chunkTimeoutMs?: number;
  /** The client's rack: each chunk's first replica goes to a server there when one can take it, and reads try replicas there first (the CLI reads $DFS_RACK). */
  rack?: string;
  /**
   * The client token sent to the masters (docs/SECURITY.md). Default: found as the CLI finds it
   * ($DFS_TOKEN, $DFS_TOKEN_FILE, ~/.config/dfs/token); none found means anonymous.
   */
  token?: string;
  /**
   * Records one append may carry (default 1,024; 1 turns batching off): record appends to one
   * file asked for while one is out go together in the next append (cli/record-batch.ts).
   */
  recordBatch?: number;
}

/** Default of ClientOptions.maxChunkAttempts. */
const DEFAULT_MAX_CHUNK_ATTEMPTS = 5;
/** Default of ClientOptions.chunkTimeoutMs: a 64 MiB chunk over a slow link, with room. */
const DEFAULT_CHUNK_TIMEOUT_MS = 10 * 60_000;

/**
 * The client library under the `dfs` CLI: metadata from the master (client-meta.ts), bytes
 * straight to chunkservers (client-upload.ts, client-download.ts).
 */
export class DfsClient extends MetaClient {
  private readonly uploader: Uploader;
  private readonly downloader: Downloader;
  private readonly records: RecordBatchers;

  constructor(masters: string[], opts: ClientOptions = {}) {
    super(masters, opts.token ?? findToken()); // credentials hook
    const chunkTimeoutMs = opts.chunkTimeoutMs ?? DEFAULT_CHUNK_TIMEOUT_MS;
    this.uploader = new Uploader(this, { maxChunkAttempts: opts.maxChunkAttempts ?? DEFAULT_MAX_CHUNK_ATTEMPTS, chunkTimeoutMs, rack: opts.rack });
    this.downloader = new Downloader(this, chunkTimeoutMs, opts.rack); // rack rule
    this.records = new RecordBatchers({
      appendFrames: (path, frames, ids, o) => appendFrames({ uploader: this.uploader }, path, frames, ids, o),
      chunkSizeOf: async (path) => (await this.stat(path)).chunkSizeBytes,
    }, opts.recordBatch ?? DEFAULT_BATCH_RECORDS);
  }

  /** See Uploader.put: streams `source` (or writes bytes in memory) into a new file at `path`. */
  put(source: Readable | Uint8Array, path: string, opts: PutOptions = {}): Promise<EntryInfo> {
    return asOneOperation(() => this.uploader.put(source, path, opts));
  }

  /** See Uploader.append: adds `source`'s bytes to the end of the complete file at `path`. */
  append(source: Readable | Uint8Array, path: string, opts: PutOptions = {}): Promise<EntryInfo> {
    return this.uploader.append(source, path, opts);
  }

  /**
   * Appends `data` as one record, at least once, and answers its offset (see cli/client-records.ts).
   * Calls for one file made while an append of it is out go together in the next append
   * (cli/record-batch.ts), each record still in its own frame at its own offset.
   */
  recordAppend(path: string, data: Uint8Array, opts: RecordAppendOptions = {}): Promise<AppendedRecord> {
    return asOneOperation(async () => {
      await initChecksums();
      const { frame, id } = framedRecord(data);
      return this.records.append(path, frame, id, opts);
    });
  }

  /** The records of a record file, each once, skipping padding, damage and duplicates (see cli/client-records.ts). */
  readRecords(path: string, opts: ReadRecordsOptions = {}): AsyncGenerator<RecordEntry> {
    return readRecords(this, path, opts);
  }

  /**
   * Joins complete files into `target` by their chunk lists (see MetaClient.concat). A source
   * kept inline (common/inline.ts) has no chunks: it is written again as chunks (its bytes
   * checked against their checksum) and the concat tried once more. A writer that replaces such
   * a source in between loses to this rewrite; concat's sources are the caller's to hold still.
   */
  override async concat(sources: string[], target: string, overwrite = false): Promise<EntryInfo> {
    try {
      return await super.concat(sources, target, overwrite);
    } catch (err) {
      if (!(err instanceof DfsError) || err.code !== 'INLINE_REFUSED') throw err;
    }
    for (const path of sources) {
      const info = await this.stat(path, true);
      if (!info.inline) continue;
      const bytes = await collect((sink) => this.getRange(path, sink, 0, info.size, info));
      await this.put(bytes, path, { overwrite: true, inline: false, replication: info.replication });
    }
    return super.concat(sources, target, overwrite);
  }

  /** See Downloader.get: streams a complete file to `sink`. */
  get(path: string, sink: Writable, opts: GetOptions = {}): Promise<StatReply> {
    return asOneOperation(() => this.downloader.get(path, sink, opts));
  }

  /** See Downloader.getRange: streams bytes `start` to `end` (exclusive) of a complete file to `sink`. */
  getRange(path: string, sink: Writable, start: number, end: number, known?: StatReply): Promise<StatReply> {
    return this.downloader.getRange(path, sink, start, end, known);
  }
}

/** What `write` writes into a sink, in one buffer (an inline file's bytes: a few KiB). */
async function collect(write: (sink: Writable) => Promise<unknown>): Promise<Buffer> {
  const pieces: Buffer[] = [];
  await write(new Writable({ write(piece: Buffer, _enc, done) { pieces.push(piece); done(); } }));
  return Buffer.concat(pieces);
}

/** Runs a put or get as one operation: all its calls carry one request id (the caller's, if it runs in one). */
function asOneOperation<T>(fn: () => Promise<T>): Promise<T> {
  return currentRequestId() === undefined ? runWithRequestId(newRequestId(), fn) : fn();
}
