// Bucket operations and listings: ListBuckets, CreateBucket, DeleteBucket, HeadBucket,
// GetBucketLocation, ListObjects (V1) and ListObjectsV2. A bucket is a top-level dfs directory.
import { DfsError } from '../common/errors.js';
import type { ListReply } from '../common/protocol.js';
import { readSmallBody } from './body.js';
import { isoDate, maxItems, quoted, sendEmpty, sendXml, type Ctx, type Gateway } from './context.js';
import { fromDfsError, S3Error } from './errors.js';
import { bucketPath, checkBucketName, compareKeys, isValidBucketName, metaBucketPath, uploadsPath } from './keys.js';
import { firstObject, listPage, walkKeys, type DirLister, type ListedObject } from './listing.js';
import { metaOf, readMetaRecords } from './meta.js';
import { visibleBucket } from './scope.js';
import { FOLDER_ETAG, requireBucket } from './objects.js';
import { uriEncode } from './sigv4.js';
import { escapeXml } from './xml.js';

const OWNER = { ID: 'dfs', DisplayName: 'dfs' };
/** Entries a listing walk asks the master for at once: a full S3 page (and the one past it) from one directory in about one call. */
const LIST_PAGE_ENTRIES = 1001;

export async function listBuckets(ctx: Ctx): Promise<void> {
  const root = await ctx.gw.client.list('/').catch((err: unknown) => {
    throw fromDfsError(err);
  });
  const buckets = root.entries.filter((e) => e.type === 'dir' && isValidBucketName(e.name) && visibleBucket(ctx.scope, e.name)).sort((a, b) => compareKeys(a.name, b.name));
  sendXml(ctx.res, 200, 'ListAllMyBucketsResult', {
    Owner: OWNER,
    Buckets: { Bucket: buckets.map((b) => ({ Name: b.name, CreationDate: isoDate(b.mtimeMs) })) },
  });
}

export async function createBucket(ctx: Ctx): Promise<void> {
  checkBucketName(ctx.bucket);
  await readSmallBody(ctx.req, ctx.auth, 64 * 1024); // CreateBucketConfiguration: a region, which one cluster does not have
  await ctx.gw.client.mkdir(bucketPath(ctx.bucket)).catch((err: unknown) => {
    if (err instanceof DfsError && err.code === 'EXISTS') throw new S3Error('BucketAlreadyOwnedByYou', 'Your previous request to create the named bucket succeeded and you already own it.', { BucketName: ctx.bucket });
    throw fromDfsError(err);
  });
  sendEmpty(ctx.res, 200, { location: `/${ctx.bucket}` });
}

export async function deleteBucket(ctx: Ctx): Promise<void> {
  const { client } = ctx.gw;
  await requireBucket(ctx.gw, ctx.bucket);
  // Any file is an object here (one being written too), and so is an empty directory (its folder key `d/`), as in S3.
  if ((await firstObject(dirLister(ctx.gw, ctx.bucket), '', { completeOnly: false })) !== undefined) throw new S3Error('BucketNotEmpty', 'The bucket you tried to delete is not empty', { BucketName: ctx.bucket });
  await client.remove(bucketPath(ctx.bucket), true).catch((err: unknown) => {
    throw fromDfsError(err, 'NoSuchBucket');
  });
  for (const p of [metaBucketPath(ctx.bucket), uploadsPath(ctx.bucket)]) await client.remove(p, true).catch(() => undefined);
  sendEmpty(ctx.res, 204);
}

export async function headBucket(ctx: Ctx): Promise<void> {
  await requireBucket(ctx.gw, ctx.bucket);
  sendEmpty(ctx.res, 200, { 'x-amz-bucket-region': ctx.gw.config.region });
}

export async function bucketLocation(ctx: Ctx): Promise<void> {
  await requireBucket(ctx.gw, ctx.bucket);
  // us-east-1 is written as an empty constraint, as S3 does.
  const region = ctx.gw.config.region === 'us-east-1' ? '' : escapeXml(ctx.gw.config.region);
  const body = Buffer.from(`<?xml version="1.0" encoding="UTF-8"?>\n<LocationConstraint xmlns="http://s3.amazonaws.com/doc/2006-03-01/">${region}</LocationConstraint>`);
  ctx.res.writeHead(200, { 'content-type': 'application/xml', 'content-length': body.length });
  ctx.res.end(body);
}

/** Lists one directory of the bucket for a walk (listing.ts), a master page at a time; a directory that is not there (or is a file) holds nothing. */
function dirLister(gw: Gateway, bucket: string): DirLister {
  return async function* listDir(dir, after) {
    const path = dir ? `${bucketPath(bucket)}/${dir}` : bucketPath(bucket);
    for (let from = after; ;) {
      let reply: ListReply;
      try {
        reply = await gw.client.listPage(path, from, LIST_PAGE_ENTRIES);
      } catch (err) {
        if (err instanceof DfsError && (err.code === 'NOT_FOUND' || err.code === 'NOT_A_DIRECTORY' || err.code === 'INVALID_PATH')) return;
        throw fromDfsError(err);
      }
      // The master lists a file as itself: that is no entry of a directory.
      for (const e of reply.entries) if (e.path !== path) yield e;
      if (reply.next === undefined) return;
      from = reply.next;
    }
  };
}

/** The ETags of a listing page's objects, from their records (s3/meta.ts), derived where a record is missing or stale; a folder object's is the MD5 of nothing, as HEAD says. */
async function etags(gw: Gateway, bucket: string, objects: ListedObject[]): Promise<string[]> {
  const files = objects.filter((o) => !o.folder);
  const records = await readMetaRecords(gw.client, bucket, files.map((o) => o.key));
  const byKey = new Map(files.map((o, i) => [o.key, records[i]]));
  return objects.map((o) => o.folder ? FOLDER_ETAG : metaOf(byKey.get(o.key), {
    path: `${bucketPath(bucket)}/${o.key}`, name: '', type: 'file', size: o.size, mtimeMs: o.mtimeMs, replication: 0, state: 'complete', chunkCount: 0,
  }).etag);
}

export async function listObjects(ctx: Ctx, version: 1 | 2): Promise<void> {
  const { gw, query, bucket } = ctx;
  await requireBucket(gw, bucket);
  const encoding = query.get('encoding-type');
  if (encoding !== undefined && encoding !== 'url') throw new S3Error('InvalidArgument', 'encoding-type must be url');
  const enc = (s: string | undefined) => (s === undefined || encoding !== 'url' ? s : uriEncode(s, true));
  const prefix = query.get('prefix') ?? '';
  const delimiter = query.get('delimiter') || undefined;
  const maxKeys = maxItems(query, 'max-keys');
  let after: string | undefined;
  const token = query.get('continuation-token');
  if (version === 2 && token !== undefined) {
    after = Buffer.from(token, 'base64url').toString('utf8');
    if (!token || Buffer.from(after, 'utf8').toString('base64url') !== token) throw new S3Error('InvalidArgument', 'The continuation token provided is incorrect');
  } else after = (version === 2 ? query.get('start-after') : query.get('marker')) || undefined;
  const items = walkKeys(dirLister(gw, bucket), { prefix, after, groupDirs: delimiter === '/', completeOnly: true });
  const page = await listPage(items, { prefix, delimiter, maxKeys, after });
  const tags = await etags(gw, bucket, page.contents);
  const contents = page.contents.map((o, i) => ({
    Key: enc(o.key), LastModified: isoDate(o.mtimeMs), ETag: quoted(tags[i]!), Size: o.size, StorageClass: 'STANDARD',
    ...(version === 1 || query.get('fetch-owner') === 'true' ? { Owner: OWNER } : {}),
  }));
  const common = {
    Name: bucket, Prefix: enc(prefix), Delimiter: enc(delimiter), MaxKeys: maxKeys, EncodingType: encoding,
    IsTruncated: page.truncated, Contents: contents, CommonPrefixes: page.commonPrefixes.map((p) => ({ Prefix: enc(p) })),
  };
  if (version === 2) {
    sendXml(ctx.res, 200, 'ListBucketResult', {
      ...common, KeyCount: page.contents.length + page.commonPrefixes.length,
      ContinuationToken: token, NextContinuationToken: page.truncated ? Buffer.from(page.last!, 'utf8').toString('base64url') : undefined,
      StartAfter: enc(query.get('start-after')),
    });
  } else {
    sendXml(ctx.res, 200, 'ListBucketResult', { ...common, Marker: enc(query.get('marker') ?? ''), NextMarker: page.truncated ? enc(page.last) : undefined });
  }
}
