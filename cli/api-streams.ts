// The Node streams of the Node API (cli/api.ts): a file read as a Readable, a file written as a
// Writable. Both are thin: DfsClient moves the bytes; these adapt its push into a sink (getRange)
// and its pull from a source (put) to Node's stream contracts, back-pressure included.
import { PassThrough, Readable, Writable } from 'node:stream';
import type { DfsClient } from './client.js';
import { initChecksums } from '../common/checksum.js';
import { DfsError, toDfsError } from '../common/errors.js';
import type { EntryInfo, StatReply } from '../common/protocol.js';

export interface ReadStreamOptions {
  /** First byte to read (default 0). Past the end of the file: an INVALID_ARGUMENT error. */
  start?: number;
  /** Last byte to read, inclusive as in `fs.createReadStream` (default: the file's last byte; past it, the read stops at the end). */
  end?: number;
  /**
   * Bytes the stream buffers ahead of its consumer before it stops asking for more. Larger reads
   * fewer pauses; each stream may also hold about 1 MiB in its HTTP response and the kernel's socket buffers.
   */
  highWaterMark?: number;
}

export interface WriteStreamOptions {
  /** Replace a file that exists (default: EXISTS). The old file stays readable until the new one completes. */
  overwrite?: boolean;
  /** Copies of each chunk (default: the master's). */
  replication?: number;
  /** Create missing parent directories (default: NOT_FOUND). */
  parents?: boolean;
  /**
   * Bytes the stream buffers before `write()` returns false. The client also holds up to two
   * chunks of the file (for retries on fresh chunkservers), whatever this is.
   */
  highWaterMark?: number;
}

/** Default read-ahead of a read stream: a few of undici's 64 KiB pieces. */
const READ_STREAM_HIGH_WATER_MARK_BYTES = 256 * 1024;

function checkOffset(value: number | undefined, name: string): void {
  if (value !== undefined && !(Number.isSafeInteger(value) && value >= 0)) {
    throw new DfsError('INVALID_ARGUMENT', `${name} must be a whole number of bytes, 0 or more (got ${String(value)})`);
  }
}

/** Throws INVALID_ARGUMENT for a range no file has (as fs throws ERR_OUT_OF_RANGE); answers `opts`. */
function checkRange(opts: ReadStreamOptions): ReadStreamOptions {
  checkOffset(opts.start, 'start');
  checkOffset(opts.end, 'end');
  if (opts.start !== undefined && opts.end !== undefined && opts.start > opts.end) {
    throw new DfsError('INVALID_ARGUMENT', `start (${opts.start}) is after end (${opts.end})`);
  }
  return opts;
}

/**
 * A file, or a range of it, as a Readable. It stats the file when it is made (so a missing file
 * fails before the first read) and asks chunkservers for bytes only once it is read: each piece
 * is pushed as it arrives and, while the stream's buffer is full, the next is not taken, so the
 * response pauses and its socket stops reading.
 */
export class DfsReadStream extends Readable {
  readonly path: string;
  /** The file as it was when the stream opened; the bytes read are that version's. */
  file: StatReply | undefined;
  /** Bytes handed to the stream so far. */
  bytesRead = 0;
  private readonly start: number;
  private readonly end: number | undefined;
  private started = false;
  /** The write callback held while the stream's buffer is full: calling it takes the next piece. */
  private takeNext: ((err?: Error) => void) | undefined;
  private stopped: Error | undefined;

  constructor(private readonly client: DfsClient, path: string, opts: ReadStreamOptions = {}) {
    // Checked before super(): a Readable schedules _construct as it is made, and a stream that
    // throws from its constructor must not go on to fail with nobody listening.
    super({ highWaterMark: checkRange(opts).highWaterMark ?? READ_STREAM_HIGH_WATER_MARK_BYTES });
    this.path = path;
    this.start = opts.start ?? 0;
    this.end = opts.end;
  }

  override _construct(callback: (err?: Error | null) => void): void {
    Promise.resolve().then(() => this.client.stat(this.path, true)).then((file) => {
      if (file.type === 'dir') throw new DfsError('IS_A_DIRECTORY', `${file.path} is a directory`);
      if (file.state !== 'complete') throw new DfsError('FILE_NOT_READY', `${file.path} is still being written; it is readable once its writer completes it`);
      if (this.start > file.size) throw new DfsError('INVALID_ARGUMENT', `start (${this.start}) is past the end of ${file.path} (${file.size} bytes)`);
      this.file = file;
      callback();
    }).catch((err: unknown) => callback(toDfsError(err)));
  }

  override _read(): void {
    if (this.started) {
      const take = this.takeNext;
      this.takeNext = undefined;
      take?.();
      return;
    }
    this.started = true;
    const file = this.file!;
    const endExclusive = this.end === undefined ? file.size : Math.min(this.end + 1, file.size);
    this.client.getRange(file.path, this.sink(), this.start, endExclusive, file).then(() => this.push(null), (err: unknown) => this.destroy(toDfsError(err)));
  }

  /** What getRange writes into: pieces go straight to the stream; its callback waits while the stream is full. */
  private sink(): Writable {
    const sink = new Writable({
      write: (piece: Buffer, _encoding, done) => {
        if (this.stopped) return done(this.stopped);
        this.bytesRead += piece.length;
        if (this.push(piece)) done();
        else this.takeNext = done;
      },
    });
    sink.on('error', () => undefined); // getRange hears it through its own listener, or the next write
    return sink;
  }

  override _destroy(err: Error | null, callback: (err?: Error | null) => void): void {
    // The transfer stops at its next piece (or now, if it waits for room): getRange then drops the response.
    this.stopped = new DfsError('INTERRUPTED', `the read of ${this.path} was stopped`);
    const take = this.takeNext;
    this.takeNext = undefined;
    take?.(this.stopped);
    callback(err);
  }
}

/**
 * A new file as a Writable. What is written goes through a PassThrough that DfsClient.put
 * consumes, so `write()` returns false while put is not taking more. 'finish' comes only once the
 * master has completed the file (`_final` waits for put); a failed put destroys the stream with
 * its DfsError; a stream destroyed before it finished abandons the write, and its 'close' comes
 * once the path is free again.
 */
export class DfsWriteStream extends Writable {
  readonly path: string;
  /** The file once it is complete (set before 'finish'). */
  file: EntryInfo | undefined;
  private readonly input = new PassThrough();
  private readonly stop = new AbortController();
  private readonly stored: Promise<EntryInfo>;

  constructor(client: DfsClient, path: string, opts: WriteStreamOptions = {}) {
    super(opts.highWaterMark !== undefined ? { highWaterMark: opts.highWaterMark } : {});
    this.path = path;
    const putOptions = { overwrite: opts.overwrite, parents: opts.parents, replication: opts.replication, signal: this.stop.signal };
    // put hashes each block as it sends it: the wasm hasher loads first (once per process).
    this.stored = initChecksums().then(() => client.put(this.input, path, putOptions));
    this.stored.then((file) => (this.file = file), (err: unknown) => this.destroy(toDfsError(err)));
  }

  override _write(piece: Buffer, _encoding: BufferEncoding, done: (err?: Error | null) => void): void {
    if (this.input.write(piece)) done();
    else this.input.once('drain', () => done());
  }

  override _final(done: (err?: Error | null) => void): void {
    this.input.end();
    this.stored.then(() => done(), (err: unknown) => done(toDfsError(err)));
  }

  override _destroy(err: Error | null, done: (err?: Error | null) => void): void {
    if (this.file) return done(err); // complete: nothing to undo
    this.stop.abort();
    this.input.destroy();
    // put abandons the write before it settles: 'close' means the path is free.
    this.stored.then(() => done(err), () => done(err));
  }
}
