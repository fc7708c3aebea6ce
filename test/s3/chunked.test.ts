// aws-chunked bodies: AWS's published signed example decodes; a flipped chunk signature, a
// truncated body, a malformed frame and a wrong trailing checksum fail the stream.
import { Readable } from 'node:stream';
import t from 'tap';
import { readBody } from '../../s3/body.js';
import { crc32c, Crc64Nvme } from '../../s3/checksums.js';
import { AwsChunkedDecoder } from '../../s3/chunked.js';
import { S3Error } from '../../s3/errors.js';
import { signingKey, type Authenticated } from '../../s3/sigv4.js';

const SIGNING = {
  key: signingKey('wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY', '20130524', 'us-east-1', 's3'),
  amzDate: '20130524T000000Z', scope: '20130524/us-east-1/s3/aws4_request',
  seedSignature: '4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9',
};
const SIGS = [
  'ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648',
  '0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497',
  'b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9',
];

/** AWS's example body: 64 KiB then 1 KiB of 'a', then the final chunk. */
function exampleBody(sigs = SIGS): Buffer {
  return Buffer.concat([
    Buffer.from(`10000;chunk-signature=${sigs[0]}\r\n`), Buffer.alloc(65536, 'a'), Buffer.from('\r\n'),
    Buffer.from(`400;chunk-signature=${sigs[1]}\r\n`), Buffer.alloc(1024, 'a'), Buffer.from('\r\n'),
    Buffer.from(`0;chunk-signature=${sigs[2]}\r\n\r\n`),
  ]);
}

/** Feeds `body` in pieces of `step` bytes; resolves with the decoded bytes or the S3 error code. */
async function decode(decoder: AwsChunkedDecoder, body: Buffer, step = 997): Promise<Buffer | string> {
  const pieces: Buffer[] = [];
  for (let i = 0; i < body.length; i += step) pieces.push(body.subarray(i, i + step));
  const out: Buffer[] = [];
  try {
    for await (const b of Readable.from(pieces).pipe(decoder)) out.push(b as Buffer);
    return Buffer.concat(out);
  } catch (err) {
    return err instanceof S3Error ? err.code : `not an S3Error: ${String(err)}`;
  }
}

t.test('AWS example: a signed aws-chunked body decodes, split anywhere', async (t) => {
  for (const step of [1, 7, 1000, 100_000]) {
    const out = await decode(new AwsChunkedDecoder(SIGNING), exampleBody(), step);
    t.ok(Buffer.isBuffer(out) && out.equals(Buffer.alloc(66560, 'a')), `pieces of ${step} bytes`);
  }
});

t.test('a bad chunk signature, a truncated body, a malformed frame, trailing junk', async (t) => {
  t.equal(await decode(new AwsChunkedDecoder(SIGNING), exampleBody([SIGS[0]!, SIGS[1]!.replace(/^0/, '1'), SIGS[2]!])), 'SignatureDoesNotMatch', 'second chunk');
  t.equal(await decode(new AwsChunkedDecoder(SIGNING), exampleBody([SIGS[0]!, SIGS[1]!, SIGS[0]!])), 'SignatureDoesNotMatch', 'final chunk');
  const body = exampleBody();
  t.equal(await decode(new AwsChunkedDecoder(SIGNING), body.subarray(0, 40_000)), 'IncompleteBody', 'cut in a chunk');
  t.equal(await decode(new AwsChunkedDecoder(SIGNING), body.subarray(0, body.length - 2)), 'IncompleteBody', 'cut before the last CRLF');
  const swapped = Buffer.from(body);
  swapped[30_000] = 'b'.charCodeAt(0);
  t.equal(await decode(new AwsChunkedDecoder(SIGNING), swapped), 'SignatureDoesNotMatch', 'a byte of data changed');
  t.equal(await decode(new AwsChunkedDecoder(undefined), Buffer.from('zz\r\nabc\r\n0\r\n\r\n')), 'InvalidRequest', 'not a hex size');
  t.equal(await decode(new AwsChunkedDecoder(undefined), Buffer.from('3\r\nabcd\r\n0\r\n\r\n')), 'IncompleteBody', 'a chunk longer than its size');
  t.equal(await decode(new AwsChunkedDecoder(SIGNING), Buffer.from('3\r\nabc\r\n0\r\n\r\n')), 'SignatureDoesNotMatch', 'unsigned chunks where signatures are due');
  t.equal(await decode(new AwsChunkedDecoder(undefined), Buffer.from('3\r\nabc\r\n0\r\n\r\nmore')), 'InvalidRequest', 'bytes after the end');
});

/** A request as readBody sees it: a stream with headers. */
function fakeRequest(body: Buffer, headers: Record<string, string>): Parameters<typeof readBody>[0] {
  return Object.assign(Readable.from([body]), { headers, complete: false }) as unknown as Parameters<typeof readBody>[0];
}
const UNSIGNED_TRAILER: Authenticated = { accessKeyId: 'k', payload: { kind: 'streaming-unsigned-trailer' }, seedSignature: '', signingKey: Buffer.alloc(0), amzDate: '', scope: '' };

async function readAll(req: ReturnType<typeof fakeRequest>): Promise<string> {
  const { stream, check } = readBody(req, UNSIGNED_TRAILER, 1 << 20, true);
  try {
    for await (const _ of stream) void _;
    return `OK ${check.bytes()} ${check.md5Hex()}`;
  } catch (err) {
    return check.failure()?.code ?? String(err);
  }
}

t.test('STREAMING-UNSIGNED-PAYLOAD-TRAILER: the trailing checksum is checked', async (t) => {
  const data = Buffer.from('hello world');
  const crc = (v: number) => { const b = Buffer.alloc(4); b.writeUInt32BE(v); return b.toString('base64'); };
  const { crc32 } = await import('node:zlib');
  const body = (trailer: string) => Buffer.from(`b\r\nhello world\r\n0\r\n${trailer}\r\n\r\n`);
  const headers = { 'x-amz-trailer': 'x-amz-checksum-crc32', 'x-amz-decoded-content-length': '11', 'content-encoding': 'aws-chunked' };
  t.match(await readAll(fakeRequest(body(`x-amz-checksum-crc32:${crc(crc32(data))}`), headers)), /^OK 11 5eb63bbbe01eeed093cb22bb8f5acdc3$/, 'the right CRC32');
  t.equal(await readAll(fakeRequest(body(`x-amz-checksum-crc32:${crc(crc32(data) ^ 1)}`), headers)), 'BadDigest', 'a wrong CRC32');
  t.equal(await readAll(fakeRequest(body('x-amz-checksum-crc32:AAAAAA=='), { ...headers, 'x-amz-decoded-content-length': '12' })), 'IncompleteBody', 'shorter than declared');
  const c32c = { ...headers, 'x-amz-trailer': 'x-amz-checksum-crc32c' };
  t.match(await readAll(fakeRequest(body(`x-amz-checksum-crc32c:${crc(crc32c(data))}`), c32c)), /^OK/, 'CRC32C');
  const c64 = { ...headers, 'x-amz-trailer': 'x-amz-checksum-crc64nvme' };
  const crc64 = new Crc64Nvme().update(data).digest();
  t.match(await readAll(fakeRequest(body(`x-amz-checksum-crc64nvme:${crc64.toString('base64')}`), c64)), /^OK 11/, 'CRC64NVME');
  crc64[7]! ^= 1;
  t.equal(await readAll(fakeRequest(body(`x-amz-checksum-crc64nvme:${crc64.toString('base64')}`), c64)), 'BadDigest', 'a wrong CRC64NVME');
  t.equal(await readAll(fakeRequest(body('x-amz-checksum-crc16:AAA='), { ...headers, 'x-amz-trailer': 'x-amz-checksum-crc16' })).catch((e: unknown) => (e as S3Error).code), 'InvalidRequest', 'an algorithm S3 does not have is refused, not ignored');
});

t.test('CRC-64/NVME check value', async (t) => {
  // The CRC catalogue's check value for "123456789".
  t.equal(new Crc64Nvme().update(Buffer.from('123456789')).digest().toString('hex'), 'ae8b14860a799888', 'the standard check value');
  t.equal(new Crc64Nvme().update(Buffer.from('1234')).update(Buffer.from('56789')).digest().toString('hex'), 'ae8b14860a799888', 'incremental');
  t.equal(new Crc64Nvme().digest().toString('hex'), '0000000000000000', 'of nothing');
});

t.test('CRC-32C check value', async (t) => {
  t.equal(crc32c(Buffer.from('123456789')), 0xe3069283, 'the standard check value');
  t.equal(crc32c(Buffer.from('56789'), crc32c(Buffer.from('1234'))), 0xe3069283, 'incremental');
});
