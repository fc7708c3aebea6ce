// Group commit of record appends: records one client is asked to append to one file while an
// append of that file is out go together in the next append, frame after frame, as Kafka's
// producer batches (GFS §3.3 leaves batching to its applications). Each record keeps its own
// frame, id and offset, so readers see nothing new: consecutive frames. A batch is one record
// append to the master (at most a quarter chunk, never straddling two chunks), so a record costs
// one append's two log commits and one pipeline only when it comes alone.
import { DfsError, toDfsError } from '../common/errors.js';
import { normalizePath } from '../common/paths.js';
import { RECORD_HEADER_BYTES } from '../common/record-format.js';
import type { AppendedRecord, RecordAppendOptions } from './client-records.js';

/** Records one append carries at most (the quarter chunk bounds its bytes). */
export const DEFAULT_BATCH_RECORDS = 1024;
/** Records queued for one file in one client, beyond which new ones are refused (FILE_BUSY) until some finish. */
export const MAX_QUEUED_RECORDS = 65_536;
/** Bytes of records queued for one file in one client, likewise. */
export const MAX_QUEUED_BYTES = 64 * 1024 * 1024;

/** A framed record waiting for its append. */
export interface QueuedRecord {
  frame: Buffer;
  id: string;
  length: number;
  opts: RecordAppendOptions;
  resolve: (r: AppendedRecord) => void;
  reject: (e: DfsError) => void;
}

/** What a batcher needs: one append of several frames (with retries), and the file's chunk size. */
export interface BatchSink {
  /** Appends the frames as one record append (retrying as one), and answers where the first starts and the file's size after. */
  appendFrames(path: string, frames: Buffer[], ids: string[], opts: RecordAppendOptions): Promise<{ path: string; offset: number; size: number }>;
  /** The file's chunk size: a batch's frames take at most a quarter of it. */
  chunkSizeOf(path: string): Promise<number>;
}

/** The records of one file waiting in one client, and the append out for it. */
class FileBatcher {
  private readonly queue: QueuedRecord[] = [];
  private queuedBytes = 0;
  private busy = false;
  private maxBatchBytes: number | undefined;

  constructor(private readonly sink: BatchSink, private readonly path: string, private readonly maxRecords: number, private readonly onIdle: () => void) {}

  add(r: QueuedRecord): void {
    // A record alone in the queue is taken whatever its size (the master bounds it: a quarter chunk).
    if (this.queue.length >= MAX_QUEUED_RECORDS || (this.queue.length > 0 && this.queuedBytes + r.frame.length > MAX_QUEUED_BYTES)) {
      r.reject(new DfsError('FILE_BUSY', `${this.queue.length} records (${this.queuedBytes} bytes) wait to be appended to ${this.path} in this client already; wait for some of them before asking for more`));
      return;
    }
    this.queue.push(r);
    this.queuedBytes += r.frame.length;
    if (!this.busy) void this.drain();
  }

  /** Sends batches until the queue is empty: each one the records queued when it leaves. */
  private async drain(): Promise<void> {
    this.busy = true;
    try {
      while (this.queue.length > 0) {
        const batch = await this.take();
        await this.send(batch);
      }
    } finally {
      this.busy = false;
      this.onIdle();
    }
  }

  /** The next batch: the queue's head, and those after it that fit in a quarter chunk. A lone record needs no chunk size. */
  private async take(): Promise<QueuedRecord[]> {
    if (this.queue.length > 1 && this.maxRecords > 1 && this.maxBatchBytes === undefined) {
      try {
        this.maxBatchBytes = Math.floor((await this.sink.chunkSizeOf(this.path)) / 4);
      } catch {
        this.maxBatchBytes = 0; // unknown: one record an append; the append itself says what is wrong
      }
    }
    const head = this.queue[0]!;
    let bytes = head.frame.length;
    let n = 1;
    const fits = (r: QueuedRecord): boolean => bytes + r.frame.length <= (this.maxBatchBytes ?? 0) && sameOptions(head.opts, r.opts);
    while (n < this.queue.length && n < this.maxRecords && fits(this.queue[n]!)) bytes += this.queue[n++]!.frame.length;
    const batch = this.queue.splice(0, n);
    this.queuedBytes -= bytes;
    return batch;
  }

  private async send(batch: QueuedRecord[]): Promise<void> {
    try {
      const at = await this.sink.appendFrames(this.path, batch.map((r) => r.frame), batch.map((r) => r.id), batch[0]!.opts);
      let offset = at.offset;
      for (const r of batch) {
        r.resolve({ path: at.path, offset, id: r.id, length: r.length, size: at.size });
        offset += r.frame.length;
      }
    } catch (err) {
      const e = toDfsError(err, 'appending records');
      for (const r of batch) r.reject(e);
    }
  }
}

/** Whether two records may share an append: neither has a signal of its own, and they retry alike. */
function sameOptions(a: RecordAppendOptions, b: RecordAppendOptions): boolean {
  return a.signal === undefined && b.signal === undefined && a.maxAttempts === b.maxAttempts && a.onRetry === b.onRetry;
}

/**
 * A client's batchers, one per file with records waiting (dropped when its queue empties).
 * Records share an append only when they retry alike; one with a signal goes alone.
 */
export class RecordBatchers {
  private readonly files = new Map<string, FileBatcher>();

  constructor(private readonly sink: BatchSink, private readonly maxRecords = DEFAULT_BATCH_RECORDS) {
    if (!Number.isSafeInteger(maxRecords) || maxRecords < 1) throw new DfsError('INVALID_ARGUMENT', `records a batch: a whole number ≥ 1, not ${maxRecords}`);
  }

  /** Queues a framed record for `path`; settles when the append that carries it does. */
  append(path: string, frame: Buffer, id: string, opts: RecordAppendOptions = {}): Promise<AppendedRecord> {
    const key = normalizePath(path);
    return new Promise<AppendedRecord>((resolve, reject) => {
      let f = this.files.get(key);
      if (!f) {
        f = new FileBatcher(this.sink, key, this.maxRecords, () => this.files.delete(key));
        this.files.set(key, f);
      }
      f.add({ frame, id, length: frame.length - RECORD_HEADER_BYTES, opts, resolve, reject });
    });
  }
}
