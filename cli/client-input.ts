import type { Readable } from 'node:stream';
import { DfsError } from '../common/errors.js';

/** The iterator of an input given as bytes: nothing past them. */
const NOTHING_MORE: AsyncIterator<Buffer> = { next: () => Promise.resolve({ done: true, value: undefined }) };

/**
 * Cuts an input stream (or bytes in memory) into chunk-sized pieces and keeps the current chunk's
 * bytes (and no more) so that a failed pipeline can be retried.
 */
export class ChunkInput {
  private readonly it: AsyncIterator<Buffer>;
  private carry: Buffer | undefined;
  private keptPieces: Buffer[] = [];
  private keptBytes = 0;
  private ended = false;
  /** Size of the chunk last handed over by detach(). */
  lastChunkBytes = 0;
  /** Set once the master has said (the first byte is read before the file is created). */
  chunkSizeBytes = 0;

  /**
   * Bytes in memory are read as they are, without a stream around them: a small file's put then
   * reads its input in no turn of the event loop (through Readable.from, an empty input took
   * 40 µs to end), and the caller keeps them unchanged until the put resolves.
   */
  constructor(source: Readable | Uint8Array) {
    if (source instanceof Uint8Array) {
      this.it = NOTHING_MORE;
      this.ended = true;
      if (source.byteLength > 0) this.carry = Buffer.from(source.buffer, source.byteOffset, source.byteLength);
      return;
    }
    // Any async iterable of bytes reads as a stream does (a web stream, a generator, a stream of another package).
    if (typeof (source as Partial<AsyncIterable<unknown>>)?.[Symbol.asyncIterator] !== 'function') {
      throw new DfsError('INVALID_ARGUMENT', 'the input must be a Readable (or another async iterable of bytes) or a Uint8Array');
    }
    this.it = (source[Symbol.asyncIterator]() as AsyncIterator<Buffer | string>) as AsyncIterator<Buffer>;
  }

  /** Whether the input has any byte at all; what it read is kept for the first chunk. */
  async hasData(): Promise<boolean> {
    for (;;) {
      const p = await this.pull();
      if (!p) return false;
      if (p.length > 0) {
        this.carry = p;
        return true;
      }
    }
  }

  /**
   * The whole input when it has at most `maxBytes` (a small file, sent inline: common/inline.ts);
   * undefined when it has more. Either way what it read stays for the chunks, so the caller can
   * still write the input as chunks. Holds at most `maxBytes` and one piece more.
   */
  async readWhole(maxBytes: number): Promise<Buffer | undefined> {
    const pieces: Buffer[] = [];
    let total = 0;
    for (let p = await this.pull(); p; p = total > maxBytes ? undefined : await this.pull()) {
      pieces.push(p);
      total += p.length;
    }
    const read = pieces.length === 1 ? pieces[0]! : Buffer.concat(pieces);
    if (read.length > 0) this.carry = read;
    return total <= maxBytes ? read : undefined;
  }

  private async pull(): Promise<Buffer | undefined> {
    if (this.carry) {
      const c = this.carry;
      this.carry = undefined;
      return c;
    }
    if (this.ended) return undefined;
    const r = await this.it.next();
    if (r.done) {
      this.ended = true;
      return undefined;
    }
    return typeof r.value === 'string' ? Buffer.from(r.value) : r.value;
  }

  /** Puts `bytes` before what is left of the input (an inline file's bytes, before an append's). */
  unshift(bytes: Buffer): void {
    this.carry = this.carry ? Buffer.concat([bytes, this.carry]) : bytes;
  }

  /** Starts the next chunk with its first bytes; false at the end of input. */
  async startChunk(): Promise<boolean> {
    if (!(await this.hasData())) return false;
    const first = this.carry!;
    this.carry = undefined;
    this.take(first);
    return true;
  }

  /** Takes the next piece of the current chunk, split at the chunk boundary, and keeps it. */
  private take(p: Buffer): Buffer {
    const room = this.chunkSizeBytes - this.keptBytes;
    if (p.length > room) {
      this.carry = p.subarray(room);
      p = p.subarray(0, room);
    }
    this.keptPieces.push(p);
    this.keptBytes += p.length;
    return p;
  }

  /** The current chunk's bytes: those kept so far, then more from the input as they arrive. */
  async *pieces(): AsyncGenerator<Buffer> {
    for (let i = 0; i < this.keptPieces.length; i++) yield this.keptPieces[i]!;
    while (this.keptBytes < this.chunkSizeBytes) {
      const p = await this.pull();
      if (!p) return;
      yield this.take(p);
    }
  }

  /** Reads the rest of the current chunk into memory (after a failed attempt), for the retry. */
  async drainChunk(): Promise<void> {
    while (this.keptBytes < this.chunkSizeBytes) {
      const p = await this.pull();
      if (!p) return;
      this.take(p);
    }
  }

  /** Hands over the current chunk's bytes (for retries) and makes room for the next chunk. */
  detach(): Buffer[] {
    const pieces = this.keptPieces;
    this.lastChunkBytes = this.keptBytes;
    this.keptPieces = [];
    this.keptBytes = 0;
    return pieces;
  }
}
