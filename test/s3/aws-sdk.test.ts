// The AWS SDK for JavaScript v3 (@aws-sdk/client-s3, lib-storage, s3-request-presigner) against a
// real cluster and gateway, with its default settings: stream bodies go as aws-chunked with a
// trailing CRC32 (checked here by the headers that went out), a body corrupted on the way fails
// with BadDigest and stores nothing; lib-storage's Upload goes multipart; ranged GET, CopyObject,
// DeleteObjects, the ListObjectsV2 paginator, and presigned GET and PUT URLs driven by fetch.
import { createHash } from 'node:crypto';
import { Readable, Transform } from 'node:stream';
import {
  CopyObjectCommand, CreateBucketCommand, DeleteBucketCommand, DeleteObjectsCommand, GetObjectCommand, HeadObjectCommand, ListObjectsV2Command,
  PutObjectCommand, S3ServiceException, paginateListObjectsV2,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import t from 'tap';
import { randomBytesSeeded } from '../helpers/cluster.js';
import { startGateway } from './gateway.js';
import { sdkClient } from './sdk.js';

async function bodyBytes(body: unknown): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const p of body as AsyncIterable<Uint8Array>) parts.push(Buffer.from(p));
  return Buffer.concat(parts);
}

async function errorName(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'OK';
  } catch (err) {
    return err instanceof S3ServiceException ? err.name : String(err);
  }
}

/** Flips one byte of the (aws-chunked) request body as it goes out: corruption on the wire. */
function corruptOneByte(at: number): Transform {
  let seen = 0;
  return new Transform({
    transform(chunk: Buffer, _enc, done) {
      const b = Buffer.from(chunk);
      if (at >= seen && at < seen + b.length) b[at - seen]! ^= 0xff;
      seen += b.length;
      done(null, b);
    },
  });
}

t.test('AWS SDK for JavaScript v3', async (t) => {
  const gw = await startGateway();
  t.teardown(() => gw.stop());
  const { s3, sent } = sdkClient(gw);
  await s3.send(new CreateBucketCommand({ Bucket: 'sdk-bucket' }));

  t.test('a stream body goes aws-chunked with a trailing CRC32, and lands byte-identical', async (t) => {
    const data = randomBytesSeeded(3 * 1024 * 1024 + 77, 31);
    const put = await s3.send(new PutObjectCommand({ Bucket: 'sdk-bucket', Key: 'streamed/one.bin', Body: Readable.from([data.subarray(0, 1_000_000), data.subarray(1_000_000)]), ContentLength: data.length }));
    const h = sent.at(-1)!.headers;
    t.equal(h['x-amz-content-sha256'], 'STREAMING-UNSIGNED-PAYLOAD-TRAILER', 'the SDK sent an unsigned aws-chunked payload');
    t.equal(h['x-amz-trailer'], 'x-amz-checksum-crc32', 'with a CRC32 trailer');
    t.match(h['content-encoding'], /aws-chunked/);
    t.equal(h['x-amz-decoded-content-length'], String(data.length));
    t.equal(put.ETag, `"${createHash('md5').update(data).digest('hex')}"`, 'the ETag is the MD5 of the decoded bytes');
    const got = await s3.send(new GetObjectCommand({ Bucket: 'sdk-bucket', Key: 'streamed/one.bin' }));
    t.ok((await bodyBytes(got.Body)).equals(data), 'GET returns the bytes');
    const fromDfs = await gw.cluster.dfs(['cat', '/sdk-bucket/streamed/one.bin']);
    t.ok(fromDfs.stdout.equals(data), 'dfs cat reads the same bytes: no chunk framing was stored');
  });

  t.test('a byte corrupted on the wire: BadDigest, nothing stored', async (t) => {
    const { s3: bad } = sdkClient(gw);
    bad.middlewareStack.add((next) => async (args) => {
      const req = args.request as { body: Readable };
      req.body = req.body.pipe(corruptOneByte(5000));
      return next(args);
    }, { step: 'deserialize', name: 'corrupt' });
    const data = randomBytesSeeded(100_000, 32);
    t.equal(await errorName(bad.send(new PutObjectCommand({ Bucket: 'sdk-bucket', Key: 'streamed/corrupt.bin', Body: Readable.from([data]), ContentLength: data.length }))), 'BadDigest');
    t.equal(await errorName(s3.send(new HeadObjectCommand({ Bucket: 'sdk-bucket', Key: 'streamed/corrupt.bin' }))), 'NotFound', 'nothing stored');
    t.equal(await errorName(s3.send(new PutObjectCommand({ Bucket: 'sdk-bucket', Key: 'streamed/wrong-sum.bin', Body: data, ChecksumCRC32: 'AAAAAA==' }))), 'BadDigest', 'a CRC32 header that does not match');
    t.equal(await errorName(s3.send(new HeadObjectCommand({ Bucket: 'sdk-bucket', Key: 'streamed/wrong-sum.bin' }))), 'NotFound', 'nothing stored');
  });

  t.test('lib-storage Upload goes multipart; ranged GET; CopyObject; metadata', async (t) => {
    const data = randomBytesSeeded(12 * 1024 * 1024 + 999, 33);
    const before = sent.length;
    const upload = new Upload({
      client: s3, partSize: 5 * 1024 * 1024, queueSize: 2,
      params: { Bucket: 'sdk-bucket', Key: 'multi/big.bin', Body: Readable.from([data]), ContentType: 'application/x-big', Metadata: { origin: 'lib-storage' } },
    });
    const done = await upload.done();
    t.match(done.ETag, /^"[0-9a-f]{32}-3"$/, 'three parts: md5-of-part-md5s-3');
    t.same(sent.slice(before).filter((s) => s.method === 'PUT').map((s) => s.query.partNumber).sort(), ['1', '2', '3'], 'as three UploadParts');
    const head = await s3.send(new HeadObjectCommand({ Bucket: 'sdk-bucket', Key: 'multi/big.bin' }));
    t.equal(head.ContentLength, data.length);
    t.equal(head.ContentType, 'application/x-big');
    t.same(head.Metadata, { origin: 'lib-storage' });
    t.equal(head.ETag, done.ETag, 'HEAD gives the multipart ETag');
    const range = await s3.send(new GetObjectCommand({ Bucket: 'sdk-bucket', Key: 'multi/big.bin', Range: 'bytes=5242000-5243999' }));
    t.equal(range.ContentRange, `bytes 5242000-5243999/${data.length}`);
    t.ok((await bodyBytes(range.Body)).equals(data.subarray(5242000, 5244000)), 'a range across a part boundary');
    const copy = await s3.send(new CopyObjectCommand({ Bucket: 'sdk-bucket', Key: 'copies/big.bin', CopySource: 'sdk-bucket/multi/big.bin' }));
    t.match(copy.CopyObjectResult?.ETag, /^"[0-9a-f]{32}"$/, 'a copy is one object: its ETag is its MD5');
    const copied = await s3.send(new GetObjectCommand({ Bucket: 'sdk-bucket', Key: 'copies/big.bin' }));
    t.ok((await bodyBytes(copied.Body)).equals(data), 'the copy has the same bytes');
    t.same(copied.Metadata, { origin: 'lib-storage' }, 'and the same metadata (directive COPY)');
  });

  t.test('presigned GET and PUT URLs, used by fetch', async (t) => {
    const putUrl = await getSignedUrl(s3, new PutObjectCommand({ Bucket: 'sdk-bucket', Key: 'presigned/a b+c.txt' }), { expiresIn: 60 });
    const put = await fetch(putUrl, { method: 'PUT', body: 'presigned body' });
    t.equal(put.status, 200, await put.text());
    const getUrl = await getSignedUrl(s3, new GetObjectCommand({ Bucket: 'sdk-bucket', Key: 'presigned/a b+c.txt' }), { expiresIn: 60 });
    const got = await fetch(getUrl);
    t.equal(await got.text(), 'presigned body');
    const tampered = await fetch(getUrl.replace('X-Amz-Expires=60', 'X-Amz-Expires=600'));
    t.equal(tampered.status, 403, 'a URL whose expiry was changed after signing is refused');
    t.match(await tampered.text(), /SignatureDoesNotMatch/);
  });

  t.test('ListObjectsV2 paginator, delimiter; DeleteObjects; DeleteBucket', async (t) => {
    const keys = Array.from({ length: 25 }, (_, i) => `many/k${String(i).padStart(3, '0')}`);
    for (const Key of keys) await s3.send(new PutObjectCommand({ Bucket: 'sdk-bucket', Key, Body: Key }));
    const seen: string[] = [];
    let pages = 0;
    for await (const page of paginateListObjectsV2({ client: s3, pageSize: 7 }, { Bucket: 'sdk-bucket', Prefix: 'many/' })) {
      pages++;
      for (const o of page.Contents ?? []) seen.push(o.Key!);
    }
    t.equal(pages, 4, 'pages of 7');
    t.same(seen, keys, 'every key once, in order');
    const top = await s3.send(new ListObjectsV2Command({ Bucket: 'sdk-bucket', Delimiter: '/' }));
    t.same(top.CommonPrefixes?.map((p) => p.Prefix), ['copies/', 'many/', 'multi/', 'presigned/', 'streamed/']);
    const all: string[] = [];
    for await (const page of paginateListObjectsV2({ client: s3 }, { Bucket: 'sdk-bucket' })) for (const o of page.Contents ?? []) all.push(o.Key!);
    const del = await s3.send(new DeleteObjectsCommand({ Bucket: 'sdk-bucket', Delete: { Objects: all.map((Key) => ({ Key })) } }));
    t.equal(del.Deleted?.length, all.length, `DeleteObjects deleted all ${all.length}`);
    t.equal(del.Errors, undefined);
    t.equal((await s3.send(new ListObjectsV2Command({ Bucket: 'sdk-bucket' }))).KeyCount, 0, 'the bucket is empty');
    await s3.send(new DeleteBucketCommand({ Bucket: 'sdk-bucket' }));
    t.equal(await errorName(s3.send(new HeadObjectCommand({ Bucket: 'sdk-bucket', Key: 'x' }))), 'NotFound');
  });
});
