// Decodes an `aws-chunked` request body (Content-Encoding: aws-chunked) as it streams:
//   <hex size>[;chunk-signature=<sig>]\r\n<bytes>\r\n ... 0[;chunk-signature=<sig>]\r\n[<trailer>\r\n]*\r\n
// With a seed signature, each chunk's signature is checked against its bytes, chained from the
// one before (STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER]); trailing headers (a checksum) are
// collected, and with a signed trailer their signature checked. A body that ends early, a bad
// signature or a malformed frame fails the stream, so whatever consumes it never completes.
import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { S3Error } from './errors.js';
import { chunkSignature, sameSignature, trailerSignature } from './sigv4.js';

export interface ChunkSigning { key: Buffer; amzDate: string; scope: string; seedSignature: string }

/** Longest chunk header or trailer line accepted: a hex size and a signature take about 90 bytes. */
const MAX_LINE_BYTES = 4096;
/** All trailing headers together. */
const MAX_TRAILER_BYTES = 16 * 1024;
/** One chunk's size: clients send 8 KiB to 1 MiB; the bound stops a size that overflows arithmetic. */
const MAX_CHUNK_BYTES = 1024 ** 3;

type State = 'header' | 'data' | 'data-end' | 'trailer' | 'done';

export class AwsChunkedDecoder extends Transform {
  private state: State = 'header';
  private line: Buffer[] = [];
  private lineBytes = 0;
  private remaining = 0;
  private chunkHash: Hash | undefined;
  private chunkSig: string | undefined;
  private previousSig: string | undefined;
  private trailerBytes = 0;
  private readonly trailerLines: string[] = [];
  /** Trailing headers by lower-case name, once the body has ended. */
  readonly trailers = new Map<string, string>();
  decodedBytes = 0;

  constructor(private readonly signing: ChunkSigning | undefined, private readonly signedTrailer = false) {
    super();
    this.previousSig = signing?.seedSignature;
  }

  override _transform(data: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    try {
      this.consume(data);
      done();
    } catch (err) {
      done(err as Error);
    }
  }

  override _flush(done: TransformCallback): void {
    if (this.state !== 'done') done(new S3Error('IncompleteBody', 'the aws-chunked body ended before its final chunk'));
    else done();
  }

  private consume(data: Buffer): void {
    let i = 0;
    while (i < data.length) {
      if (this.state === 'data') {
        const n = Math.min(this.remaining, data.length - i);
        const piece = data.subarray(i, i + n);
        this.chunkHash?.update(piece);
        this.push(piece);
        this.decodedBytes += n;
        this.remaining -= n;
        i += n;
        if (this.remaining === 0) this.state = 'data-end';
        continue;
      }
      if (this.state === 'done') {
        // Some clients end with one more CRLF; anything else after the end is not ours to guess at.
        if (data.subarray(i).toString('latin1').trim() !== '') throw new S3Error('InvalidRequest', 'bytes follow the end of the aws-chunked body');
        return;
      }
      const nl = data.indexOf(0x0a, i);
      const end = nl < 0 ? data.length : nl + 1;
      this.lineBytes += end - i;
      if (this.lineBytes > MAX_LINE_BYTES) throw new S3Error('InvalidRequest', 'an aws-chunked header line is too long');
      this.line.push(data.subarray(i, end));
      i = end;
      if (nl < 0) continue;
      const text = Buffer.concat(this.line).toString('latin1');
      this.line = [];
      this.lineBytes = 0;
      if (!text.endsWith('\r\n')) throw new S3Error('InvalidRequest', 'aws-chunked lines must end with CRLF');
      this.onLine(text.slice(0, -2));
    }
  }

  private onLine(line: string): void {
    switch (this.state) {
      case 'header': return this.onChunkHeader(line);
      case 'data-end':
        if (line !== '') throw new S3Error('IncompleteBody', 'an aws-chunked chunk is longer than its declared size');
        this.finishChunk();
        this.state = 'header';
        return;
      case 'trailer': return this.onTrailerLine(line);
      default: throw new Error(`unexpected line in state ${this.state}`);
    }
  }

  private onChunkHeader(line: string): void {
    const m = /^([0-9a-fA-F]{1,16})(?:;chunk-signature=([0-9a-f]{64}))?$/.exec(line);
    if (!m) throw new S3Error('InvalidRequest', `malformed aws-chunked chunk header ${JSON.stringify(line.slice(0, 100))}`);
    const size = parseInt(m[1]!, 16);
    if (size > MAX_CHUNK_BYTES) throw new S3Error('InvalidRequest', `an aws-chunked chunk of ${size} bytes is over the ${MAX_CHUNK_BYTES} accepted`);
    if (this.signing && !m[2]) throw new S3Error('SignatureDoesNotMatch', 'a chunk of a signed aws-chunked body has no chunk-signature');
    this.chunkSig = m[2];
    this.chunkHash = this.signing ? createHash('sha256') : undefined;
    if (size === 0) {
      this.finishChunk();
      this.state = 'trailer';
      return;
    }
    this.remaining = size;
    this.state = 'data';
  }

  /** Checks the chunk just read against its signature, chained from the one before. */
  private finishChunk(): void {
    if (!this.signing) return;
    const sig = chunkSignature(this.signing.key, this.signing.amzDate, this.signing.scope, this.previousSig!, this.chunkHash!.digest('hex'));
    if (!sameSignature(sig, this.chunkSig!)) throw new S3Error('SignatureDoesNotMatch', 'an aws-chunked chunk signature does not match its bytes');
    this.previousSig = this.chunkSig;
  }

  private onTrailerLine(line: string): void {
    if (line === '') {
      this.checkTrailerSignature();
      this.state = 'done';
      return;
    }
    this.trailerBytes += line.length;
    if (this.trailerBytes > MAX_TRAILER_BYTES) throw new S3Error('InvalidRequest', 'the aws-chunked trailing headers are too long');
    const i = line.indexOf(':');
    if (i <= 0) throw new S3Error('InvalidRequest', `malformed aws-chunked trailer ${JSON.stringify(line.slice(0, 100))}`);
    const name = line.slice(0, i).trim().toLowerCase();
    const value = line.slice(i + 1).trim();
    this.trailers.set(name, value);
    if (name !== 'x-amz-trailer-signature') this.trailerLines.push(`${name}:${value}`);
  }

  private checkTrailerSignature(): void {
    if (!this.signing || !this.signedTrailer) return;
    const sent = this.trailers.get('x-amz-trailer-signature');
    if (!sent) throw new S3Error('SignatureDoesNotMatch', 'the signed aws-chunked trailer has no x-amz-trailer-signature');
    const text = this.trailerLines.map((l) => `${l}\n`).join('');
    const expected = trailerSignature(this.signing.key, this.signing.amzDate, this.signing.scope, this.previousSig!, text);
    if (!sameSignature(expected, sent)) throw new S3Error('SignatureDoesNotMatch', 'the aws-chunked trailer signature does not match');
  }
}
