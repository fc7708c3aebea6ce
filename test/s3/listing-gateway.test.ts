// Listings of a bucket with a few thousand keys through a real gateway and cluster, by the AWS
// SDK v3: ListObjectsV2 (continuation tokens, start-after) and V1 (markers) with prefixes,
// delimiters and page sizes, each paged to the end and checked page by page against a model
// (every key in one sorted array). The keys are written with the dfs client directly (they are
// objects as any file is); some sort differently as UTF-8 than as UTF-16, some only as "a-b" <
// "a/" < "a0", and empty directories must show as nothing.
import { Readable } from 'node:stream';
import { HeadObjectCommand, ListObjectsCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import t from 'tap';
import { DfsClient } from '../../cli/client.js';
import { startGateway } from './gateway.js';
import { sdkClient } from './sdk.js';

const utf8Order = (a: string, b: string) => Buffer.compare(Buffer.from(a), Buffer.from(b));

function makeKeys(): string[] {
  const keys: string[] = [];
  for (let d = 0; d < 5; d++) for (let s = 0; s < 8; s++) for (let k = 0; k < 40; k++) keys.push(`d${d}/s${s}/k${k}`);
  for (let f = 0; f < 300; f++) keys.push(`flat/f${String(f).padStart(4, '0')}`);
  keys.push('a-b', 'a0', 'a/x', 'x-1', 'x0', 'x/1', 'u/\uff5e', 'u/𝄞', 'u/ü', 'deep/1/2/3/4/5/f', 'top file.txt');
  return keys;
}

/** Every page the model gives for a listing paged to the end. */
function modelPages(keys: string[], q: { prefix: string; delimiter?: string; maxKeys: number; after?: string }) {
  const entries: { value: string; prefix: boolean }[] = [];
  for (const k of keys) {
    if (!k.startsWith(q.prefix) || (q.after !== undefined && utf8Order(k, q.after) <= 0)) continue;
    const i = q.delimiter ? k.indexOf(q.delimiter, q.prefix.length) : -1;
    const value = i >= 0 ? k.slice(0, i + q.delimiter!.length) : k;
    // A common prefix that is the start itself was the last page's last: not given again.
    if (value !== q.after && entries.at(-1)?.value !== value) entries.push({ value, prefix: i >= 0 });
  }
  const pages = [];
  for (let i = 0; i === 0 || i < entries.length; i += q.maxKeys) {
    const page = entries.slice(i, i + q.maxKeys);
    pages.push({ keys: page.filter((e) => !e.prefix).map((e) => e.value), prefixes: page.filter((e) => e.prefix).map((e) => e.value) });
  }
  return pages;
}

t.test('paged listings of a few thousand keys match the model', async (t) => {
  const gw = await startGateway({ chunkservers: 1, replication: 1 });
  t.teardown(() => gw.stop());
  const { s3 } = sdkClient(gw);
  const client = new DfsClient(gw.cluster.masters.split(','));
  const files = makeKeys().sort(utf8Order);
  await client.mkdir('/lst');
  let next = 0;
  await Promise.all(Array.from({ length: 16 }, async () => {
    while (next < files.length) {
      const key = files[next++]!;
      await client.put(Readable.from([]), `/lst/${key}`, { parents: true });
    }
  }));
  await client.mkdir('/lst/empty/dir', true);
  await client.mkdir('/lst/d2/s3/nothing', true);
  await client.mkdir('/lst/x-0/in/x', true);
  const keys = [...files, 'empty/dir/', 'd2/s3/nothing/', 'x-0/in/x/'].sort(utf8Order);

  const cases = [
    { prefix: '', maxKeys: 1000 },
    { prefix: '', delimiter: '/', maxKeys: 2 },
    { prefix: 'd2/', delimiter: '/', maxKeys: 3 },
    { prefix: 'd2/s', delimiter: '/', maxKeys: 5 },
    { prefix: 'd3/s4/k1', maxKeys: 4 },
    { prefix: 'x', delimiter: '/', maxKeys: 1 },
    { prefix: 'u/', maxKeys: 1 },
    { prefix: 'flat/f01', maxKeys: 33 },
    { prefix: '', maxKeys: 50, after: 'd4/s7/k3' },
    { prefix: '', delimiter: '/', maxKeys: 3, after: 'd1/s3/k5' },
    { prefix: 'd0/', delimiter: '/', maxKeys: 1000, after: 'd0/s' },
    { prefix: 'no/such/', maxKeys: 10 },
    { prefix: 'a-b/', maxKeys: 10 },
    { prefix: 'empty/', delimiter: '/', maxKeys: 10 },
    { prefix: 'empty/dir/', delimiter: '/', maxKeys: 10 },
    { prefix: 'empty/dir', maxKeys: 10 },
    { prefix: 'd2/s3/', delimiter: '/', maxKeys: 8, after: 'd2/s3/k8' },
    { prefix: 'd2/s3/n', maxKeys: 1 },
    { prefix: 'x', maxKeys: 1 },
    { prefix: '', delimiter: '/', maxKeys: 1, after: 'deep/' },
    { prefix: '', maxKeys: 7, after: 'd2/s3/nothing/' },
    { prefix: '', maxKeys: 7, after: 'd2/s3/nothing' },
  ];
  for (const q of cases) {
    const want = modelPages(keys, q);
    const got: { keys: string[]; prefixes: string[] }[] = [];
    let token: string | undefined;
    do {
      const r = await s3.send(new ListObjectsV2Command({
        Bucket: 'lst', Prefix: q.prefix, Delimiter: q.delimiter, MaxKeys: q.maxKeys, StartAfter: q.after, ContinuationToken: token,
      }));
      got.push({ keys: (r.Contents ?? []).map((o) => o.Key!), prefixes: (r.CommonPrefixes ?? []).map((p) => p.Prefix!) });
      t.equal(r.KeyCount, got.at(-1)!.keys.length + got.at(-1)!.prefixes.length, 'KeyCount counts keys and prefixes');
      token = r.IsTruncated ? r.NextContinuationToken : undefined;
    } while (token && got.length <= want.length);
    t.same(got, want, `V2 ${JSON.stringify(q)}: ${want.length} pages`);
  }

  const v1 = { prefix: 'd0/', delimiter: '/', maxKeys: 3 };
  const want = modelPages(keys, v1);
  const got: { keys: string[]; prefixes: string[] }[] = [];
  let marker: string | undefined;
  do {
    const r = await s3.send(new ListObjectsCommand({ Bucket: 'lst', Prefix: v1.prefix, Delimiter: v1.delimiter, MaxKeys: v1.maxKeys, Marker: marker }));
    got.push({ keys: (r.Contents ?? []).map((o) => o.Key!), prefixes: (r.CommonPrefixes ?? []).map((p) => p.Prefix!) });
    marker = r.IsTruncated ? r.NextMarker : undefined;
  } while (marker && got.length <= want.length);
  t.same(got, want, 'V1 with markers');

  // A folder object as the listing and HEAD show it: 0 bytes, the MD5 of nothing, the directory's mtime.
  const folder = (await s3.send(new ListObjectsV2Command({ Bucket: 'lst', Prefix: 'empty/dir/' }))).Contents?.[0];
  const head = await s3.send(new HeadObjectCommand({ Bucket: 'lst', Key: 'empty/dir/' }));
  t.same([folder?.Key, folder?.Size, folder?.ETag], ['empty/dir/', 0, '"d41d8cd98f00b204e9800998ecf8427e"'], 'listed: 0 bytes, the empty MD5');
  t.equal(head.ETag, folder?.ETag, 'HEAD gives the same ETag');
  t.equal(Math.floor(folder!.LastModified!.getTime() / 1000), Math.floor(head.LastModified!.getTime() / 1000), 'and the same LastModified (to the second HEAD gives)');
  const { mtimeMs } = await client.stat('/lst/empty/dir');
  t.equal(folder!.LastModified!.getTime(), Math.floor(mtimeMs / 1000) * 1000, "the directory's mtime (to the second S3 lists)");
});
