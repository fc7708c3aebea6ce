// A request body as the gateway reads it: aws-chunked decoded when it is, bounded, and checked
// as it streams against everything the client said about it (x-amz-content-sha256, Content-MD5,
// x-amz-checksum-* as a header or a trailer, the declared length). Every check fails the stream
// before it ends, so a consumer (a dfs write) never completes a body that was not what was sent.
import { createHash, type Hash } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { Transform, type Readable, type TransformCallback } from 'node:stream';
import { AwsChunkedDecoder } from './chunked.js';
import { checksumHeaderAlgorithm, createChecksum, type Checksum } from './checksums.js';
import { S3Error } from './errors.js';
import type { Authenticated } from './sigv4.js';

export interface BodyCheck {
  /** The body's MD5, hex, once it has ended. */
  md5Hex(): string;
  bytes(): number;
  /** The first S3 error the body failed with, if any (a consumer may have wrapped it in its own). */
  failure(): S3Error | undefined;
}

function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/** The body's length as the client declared it (decoded length for aws-chunked); undefined when not declared. */
function declaredLength(req: IncomingMessage, streaming: boolean): number | undefined {
  const raw = streaming ? header(req, 'x-amz-decoded-content-length') : header(req, 'content-length');
  if (raw === undefined) return undefined;
  if (!/^\d{1,16}$/.test(raw)) throw new S3Error('InvalidArgument', `${streaming ? 'x-amz-decoded-content-length' : 'Content-Length'} is not a number`);
  return Number(raw);
}

class Verifier extends Transform implements BodyCheck {
  private readonly md5: Hash = createHash('md5');
  private readonly sha256: Hash | undefined;
  private readonly checksums = new Map<string, Checksum>();
  private count = 0;
  private md5Digest = '';
  private failed: S3Error | undefined;

  constructor(
    private readonly req: IncomingMessage,
    private readonly auth: Authenticated,
    private readonly declared: number | undefined,
    private readonly limitBytes: number,
    private readonly decoder: AwsChunkedDecoder | undefined,
  ) {
    super();
    if (auth.payload.kind === 'sha256') this.sha256 = createHash('sha256');
    for (const name of Object.keys(req.headers)) {
      const alg = checksumHeaderAlgorithm(name);
      if (alg) this.checksums.set(alg, createChecksum(alg));
    }
    const trailer = header(req, 'x-amz-trailer');
    if (trailer) {
      for (const name of trailer.split(',').map((s) => s.trim().toLowerCase())) {
        const alg = checksumHeaderAlgorithm(name);
        if (!alg) throw new S3Error('InvalidRequest', `x-amz-trailer names ${JSON.stringify(name)}; only x-amz-checksum-* trailers are supported`);
        this.checksums.set(alg, createChecksum(alg));
      }
    }
  }

  md5Hex(): string {
    return this.md5Digest;
  }
  bytes(): number {
    return this.count;
  }
  failure(): S3Error | undefined {
    return this.failed;
  }

  fail(err: S3Error): S3Error {
    this.failed ??= err;
    return err;
  }

  override _transform(data: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.count += data.length;
    if (this.count > this.limitBytes) return done(this.fail(new S3Error('EntityTooLarge', `the body is over the ${this.limitBytes} bytes allowed here`)));
    if (this.declared !== undefined && this.count > this.declared) return done(this.fail(new S3Error('IncompleteBody', 'the body is longer than its declared length')));
    this.md5.update(data);
    this.sha256?.update(data);
    for (const c of this.checksums.values()) c.update(data);
    done(null, data);
  }

  override _flush(done: TransformCallback): void {
    try {
      this.check();
      done();
    } catch (err) {
      done(this.fail(err as S3Error));
    }
  }

  private check(): void {
    if (this.declared !== undefined && this.count !== this.declared) throw new S3Error('IncompleteBody', `the body has ${this.count} bytes; ${this.declared} were declared`);
    const md5 = this.md5.digest();
    this.md5Digest = md5.toString('hex');
    if (this.sha256 && this.sha256.digest('hex') !== (this.auth.payload as { hex: string }).hex) {
      throw new S3Error('XAmzContentSHA256Mismatch', 'The provided \'x-amz-content-sha256\' header does not match what was computed.');
    }
    const contentMd5 = header(this.req, 'content-md5');
    if (contentMd5 !== undefined) {
      if (!/^[A-Za-z0-9+/]{22}==$/.test(contentMd5)) throw new S3Error('InvalidDigest', 'The Content-MD5 you specified was invalid.');
      if (contentMd5 !== md5.toString('base64')) throw new S3Error('BadDigest', 'The Content-MD5 you specified did not match what we received.');
    }
    for (const [alg, c] of this.checksums) {
      const name = `x-amz-checksum-${alg}`;
      const sent = header(this.req, name) ?? this.decoder?.trailers.get(name);
      if (sent === undefined) throw new S3Error('InvalidRequest', `${name} was announced but not sent`);
      if (sent !== c.digestBase64()) throw new S3Error('BadDigest', `The ${alg.toUpperCase()} you specified did not match the calculated checksum.`);
    }
  }
}

/**
 * The body of `req`, decoded and checked as it streams (see above); `limitBytes` bounds it.
 * `requireLength`: S3 wants a declared length for object data (MissingContentLength).
 */
export function readBody(req: IncomingMessage, auth: Authenticated, limitBytes: number, requireLength: boolean): { stream: Readable; check: BodyCheck } {
  const streaming = auth.payload.kind === 'streaming-signed' || auth.payload.kind === 'streaming-unsigned-trailer';
  const declared = declaredLength(req, streaming);
  if (declared === undefined && requireLength) throw new S3Error('MissingContentLength', 'You must provide the Content-Length HTTP header.');
  if (declared !== undefined && declared > limitBytes) throw new S3Error('EntityTooLarge', `the body (${declared} bytes) is over the ${limitBytes} bytes allowed here`);
  const decoder = streaming
    ? new AwsChunkedDecoder(auth.payload.kind === 'streaming-signed' ? { key: auth.signingKey, amzDate: auth.amzDate, scope: auth.scope, seedSignature: auth.seedSignature } : undefined,
      auth.payload.kind === 'streaming-signed' && auth.payload.trailer)
    : undefined;
  const verifier = new Verifier(req, auth, declared, limitBytes, decoder);
  const fail = (err: Error) => verifier.destroy(err instanceof S3Error ? err : new S3Error('IncompleteBody', `the request body ended early: ${err.message}`));
  req.on('error', fail);
  req.on('aborted', () => fail(new Error('the client hung up')));
  if (decoder) {
    decoder.on('error', (err) => {
      if (err instanceof S3Error) verifier.fail(err);
      fail(err);
    });
    req.pipe(decoder).pipe(verifier);
  } else req.pipe(verifier);
  return { stream: verifier, check: verifier };
}

/** Reads a small body (an XML document) whole, checked as above. */
export async function readSmallBody(req: IncomingMessage, auth: Authenticated, limitBytes: number): Promise<Buffer> {
  const { stream, check } = readBody(req, auth, limitBytes, false);
  const parts: Buffer[] = [];
  try {
    for await (const p of stream) parts.push(p as Buffer);
  } catch (err) {
    throw check.failure() ?? (err instanceof S3Error ? err : new S3Error('IncompleteBody', 'the request body could not be read'));
  }
  return Buffer.concat(parts);
}
