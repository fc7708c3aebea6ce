// Object operations: PutObject, GetObject and HeadObject (ranges, conditions), DeleteObject,
// DeleteObjects and CopyObject. Bytes stream between the client and the chunkservers through
// the gateway; an object and its metadata record are two dfs files (see meta.ts).
import { createHash } from 'node:crypto';
import { PassThrough, Transform, type TransformCallback } from 'node:stream';
import { DfsError } from '../common/errors.js';
import { parentOf } from '../common/paths.js';
import { MAX_STAT_MANY_PATHS, type StatReply } from '../common/protocol.js';
import { readBody, readSmallBody } from './body.js';
import { header, httpDate, isoDate, MAX_OBJECT_PUT_BYTES, quoted, sendEmpty, sendXml, type Ctx, type Gateway } from './context.js';
import { fromDfsError, S3Error } from './errors.js';
import { bucketPath, checkKey, checkObjectKey, folderOf, metaPath, objectPath } from './keys.js';
import { metaFromHeaders, metaOf, readMeta, readMetaRecord, writeMeta, type ObjectMeta } from './meta.js';
import { mayWrite } from './scope.js';
import { elements, requireRoot, text } from './xml.js';

/** DeleteObjects takes at most this many keys (S3's limit). */
const MAX_DELETE_KEYS = 1000;
const MAX_DELETE_BODY_BYTES = 2 * 1024 * 1024;
/** Deletes of one DeleteObjects in flight at once. */
const DELETE_CONCURRENCY = 8;

export async function requireBucket(gw: Gateway, bucket: string): Promise<void> {
  const info = await gw.client.stat(bucketPath(bucket)).catch((err: unknown) => {
    if (err instanceof DfsError && err.code === 'NOT_FOUND') return undefined;
    throw fromDfsError(err);
  });
  if (info?.type !== 'dir') throw new S3Error('NoSuchBucket', 'The specified bucket does not exist', { BucketName: bucket });
}

/** The complete object at bucket/key with its chunks; NoSuchKey (or NoSuchBucket) when there is none. */
export async function statObject(gw: Gateway, bucket: string, key: string): Promise<StatReply> {
  checkKey(key);
  const info = await gw.client.stat(objectPath(bucket, key), true).catch(async (err: unknown) => {
    if (!(err instanceof DfsError) || (err.code !== 'NOT_FOUND' && err.code !== 'NOT_A_DIRECTORY')) throw fromDfsError(err);
    return undefined;
  });
  if (!info || info.type !== 'file' || info.state !== 'complete') {
    await requireBucket(gw, bucket);
    throw new S3Error('NoSuchKey', 'The specified key does not exist.', { Key: key });
  }
  return info;
}

/** The MD5 of no bytes: a folder object's ETag (HEAD, GET, PUT and listings). */
export const FOLDER_ETAG = createHash('md5').digest('hex');

/** The directory a folder key names (keys.ts, folderOf), or undefined when it is not there. */
async function statFolder(gw: Gateway, bucket: string, dir: string): Promise<StatReply | undefined> {
  const info = await gw.client.stat(objectPath(bucket, dir)).catch((err: unknown) => {
    if (err instanceof DfsError && (err.code === 'NOT_FOUND' || err.code === 'NOT_A_DIRECTORY')) return undefined;
    throw fromDfsError(err);
  });
  return info?.type === 'dir' ? info : undefined;
}

/** PutObject of a folder key: an empty body makes the directory (and those above it); bytes are refused. */
async function putFolder(ctx: Ctx, dir: string): Promise<void> {
  const { gw, req, res, bucket, key } = ctx;
  if (header(req, 'x-amz-copy-source') !== undefined) throw new S3Error('InvalidArgument', 'a key ending in "/" names a dfs directory: it cannot be copied to', { Key: key });
  await requireBucket(gw, bucket);
  try {
    // Read to its end with room for no byte: a declared or sent byte fails it (EntityTooLarge).
    const { stream, check } = readBody(req, ctx.auth, 0, true);
    try {
      for await (const _ of stream) { /* none */ }
    } catch (err) {
      throw check.failure() ?? (err instanceof S3Error ? err : new S3Error('IncompleteBody', 'the request body could not be read'));
    }
  } catch (err) {
    if (err instanceof S3Error && err.code === 'EntityTooLarge') throw new S3Error('InvalidArgument', 'a key ending in "/" names a dfs directory: its object must be empty', { Key: key });
    throw err;
  }
  await gw.client.mkdir(objectPath(bucket, dir), true).catch((err: unknown) => {
    throw fromDfsError(err);
  });
  sendEmpty(res, 200, { etag: quoted(FOLDER_ETAG) });
}

export async function putObject(ctx: Ctx): Promise<void> {
  const { gw, req, res, bucket, key } = ctx;
  const folder = folderOf(key);
  if (folder !== undefined) return putFolder(ctx, folder);
  checkKey(key);
  if (header(req, 'x-amz-copy-source') !== undefined) return copyObject(ctx);
  const meta = metaFromHeaders(req.headers);
  await requireBucket(gw, bucket);
  // Asked and answered before the write starts (a read sent beside it may be served after the
  // write's create applied), and before the body is read: a body stream must have its reader from
  // the start, or a body that fails its checks while nobody reads it (a small one with a wrong
  // Content-MD5) errors with no listener, which ends the process.
  const before = await parentsBefore(gw, bucket, key);
  const { stream, check } = readBody(req, ctx.auth, MAX_OBJECT_PUT_BYTES, true);
  let info;
  try {
    info = await gw.client.put(stream, objectPath(bucket, key), { overwrite: true, parents: true });
  } catch (err) {
    stream.destroy();
    await dropMadeParents(gw, bucket, key, before);
    throw check.failure() ?? fromDfsError(err);
  }
  const etag = check.md5Hex();
  await writeMeta(gw.client, bucket, key, info, { ...meta, etag });
  sendEmpty(res, 200, { etag: quoted(etag) });
}

function etagMatches(list: string, etag: string): boolean {
  return list.split(',').map((s) => s.trim().replace(/^W\//, '').replace(/^"|"$/g, '')).some((e) => e === '*' || e === etag);
}

/** S3's (RFC 7232's) conditional request rules; throws 412 or answers 304 (returns false). */
function checkConditions(ctx: Ctx, info: StatReply, meta: ObjectMeta, prefix = ''): boolean {
  const h = (n: string) => header(ctx.req, prefix + n);
  const modifiedS = Math.floor(info.mtimeMs / 1000);
  const since = (n: string): number | undefined => {
    const v = h(n);
    const ms = v === undefined ? NaN : Date.parse(v);
    return Number.isNaN(ms) ? undefined : Math.floor(ms / 1000);
  };
  const ifMatch = h('if-match');
  if (ifMatch !== undefined) {
    if (!etagMatches(ifMatch, meta.etag)) throw new S3Error('PreconditionFailed', 'At least one of the pre-conditions you specified did not hold', { Condition: 'If-Match' });
  } else {
    const s = since('if-unmodified-since');
    if (s !== undefined && modifiedS > s) throw new S3Error('PreconditionFailed', 'At least one of the pre-conditions you specified did not hold', { Condition: 'If-Unmodified-Since' });
  }
  const ifNoneMatch = h('if-none-match');
  if (ifNoneMatch !== undefined) {
    if (etagMatches(ifNoneMatch, meta.etag)) return notModified(ctx, prefix, info, meta);
  } else {
    const s = since('if-modified-since');
    if (s !== undefined && modifiedS <= s) return notModified(ctx, prefix, info, meta);
  }
  return true;
}

function notModified(ctx: Ctx, prefix: string, info: StatReply, meta: ObjectMeta): false {
  // A copy answers 412 where a read answers 304.
  if (prefix) throw new S3Error('PreconditionFailed', 'At least one of the pre-conditions you specified did not hold');
  ctx.res.writeHead(304, { etag: quoted(meta.etag), 'last-modified': httpDate(info.mtimeMs) });
  ctx.res.end();
  return false;
}

/** The one byte range asked for, [start, end); undefined for the whole object (no Range, or one S3 ignores). */
export function parseRange(raw: string | undefined, size: number): { start: number; end: number } | undefined {
  if (raw === undefined) return undefined;
  const m = /^bytes=(\d*)-(\d*)$/.exec(raw.trim());
  if (!m || (m[1] === '' && m[2] === '')) return undefined;
  if (m[1] === '') {
    const n = Number(m[2]);
    if (n === 0 || size === 0) throw new S3Error('InvalidRange', 'The requested range is not satisfiable', { ActualObjectSize: String(size) });
    return { start: Math.max(0, size - n), end: size };
  }
  const start = Number(m[1]);
  const last = m[2] === '' ? size - 1 : Number(m[2]);
  if (m[2] !== '' && last < start) return undefined;
  if (start >= size) throw new S3Error('InvalidRange', 'The requested range is not satisfiable', { ActualObjectSize: String(size) });
  return { start, end: Math.min(last + 1, size) };
}

function objectHeaders(info: StatReply, meta: ObjectMeta): Record<string, string> {
  const h: Record<string, string> = {
    etag: quoted(meta.etag), 'last-modified': httpDate(info.mtimeMs), 'accept-ranges': 'bytes',
    'content-type': meta.contentType ?? 'binary/octet-stream', ...meta.headers,
  };
  for (const [k, v] of Object.entries(meta.userMeta)) h[`x-amz-meta-${k}`] = v;
  return h;
}

const RESPONSE_OVERRIDES = ['content-type', 'content-language', 'expires', 'cache-control', 'content-disposition', 'content-encoding'];

export async function getObject(ctx: Ctx, head: boolean): Promise<void> {
  const { gw, res, bucket, key } = ctx;
  const folder = folderOf(key);
  if (folder !== undefined) {
    const dir = await statFolder(gw, bucket, folder);
    if (!dir) {
      await requireBucket(gw, bucket);
      throw new S3Error('NoSuchKey', 'The specified key does not exist.', { Key: key });
    }
    res.writeHead(200, { etag: quoted(FOLDER_ETAG), 'last-modified': httpDate(dir.mtimeMs), 'content-type': 'application/x-directory', 'content-length': '0' });
    res.end();
    return;
  }
  // The record is read beside the object, not after it: one round trip to the master fewer before
  // the bytes start (a record is checked against the object it sits beside, so a race is harmless).
  const record = readMetaRecord(gw.client, bucket, key);
  const info = await statObject(gw, bucket, key);
  const meta = metaOf(await record, info);
  if (!checkConditions(ctx, info, meta)) return;
  const headers = objectHeaders(info, meta);
  if (!head) for (const name of RESPONSE_OVERRIDES) {
    const v = ctx.query.get(`response-${name}`);
    if (v !== undefined) headers[name] = v;
  }
  let range: { start: number; end: number } | undefined;
  try {
    range = parseRange(header(ctx.req, 'range'), info.size);
  } catch (err) {
    if (err instanceof S3Error) res.setHeader('content-range', `bytes */${info.size}`);
    throw err;
  }
  const { start, end } = range ?? { start: 0, end: info.size };
  if (range) headers['content-range'] = `bytes ${start}-${end - 1}/${info.size}`;
  res.writeHead(range ? 206 : 200, { ...headers, 'content-length': String(end - start) });
  if (head || end === start) {
    res.end();
    return;
  }
  await gw.client.getRange(info.path, res, start, end, info);
  res.end();
}

/**
 * Removes the object and its record, then the "directories" it leaves empty: S3 has none to leave
 * behind, and here an empty one would list as a folder object (`d/`). So a folder key put before
 * a key below it goes with that key's delete, where S3 keeps the folder object.
 */
export async function deleteKey(gw: Gateway, bucket: string, key: string): Promise<void> {
  // A folder key's object is its directory: removed when empty; kept while keys below it imply it, as in S3.
  const folder = folderOf(key);
  // `a/b/` is not the object `a/b`: a file there is no folder, and stays (the master removes only a directory: NOT_A_DIRECTORY).
  const path = objectPath(bucket, folder ?? key);
  const removed = await (folder === undefined ? gw.client.remove(path) : removeDir(gw, path)).catch((err: unknown) => {
    if (err instanceof DfsError && ['NOT_FOUND', 'DIRECTORY_NOT_EMPTY', 'NOT_A_DIRECTORY'].includes(err.code)) return undefined;
    throw fromDfsError(err);
  });
  if (folder !== undefined) {
    // Nor does a folder object's delete leave the directory above it as a folder object of its own.
    if (removed) await removeEmptyParents(gw, objectPath(bucket, ''), folder);
    return;
  }
  await gw.client.remove(metaPath(bucket, key)).catch(() => undefined);
  if (!removed) return;
  for (const root of [objectPath(bucket, ''), metaPath(bucket, '')]) await removeEmptyParents(gw, root, key);
}

/**
 * Which of `key`'s parent directories are there now, before a write to it: the deepest one, as a
 * dfs path, or the bucket's when none is; undefined when the question failed. Only the deepest
 * MAX_STAT_MANY_PATHS are asked about. One linearizable stat-many, skipped for a key directly in
 * the bucket.
 */
function parentsBefore(gw: Gateway, bucket: string, key: string): Promise<string | undefined> {
  const parents: string[] = [];
  for (let dir = parentOf(objectPath(bucket, key)); dir.length > bucketPath(bucket).length && parents.length < MAX_STAT_MANY_PATHS; dir = parentOf(dir)) parents.push(dir);
  if (parents.length === 0) return Promise.resolve(bucketPath(bucket));
  return gw.client.statMany(parents).then(
    (reply) => {
      const i = reply.entries.findIndex((info) => info !== null);
      if (i >= 0) return parents[i];
      // None of those asked about was there: the bucket's, if they reach it; else unknown.
      return parentOf(parents.at(-1)!) === bucketPath(bucket) ? bucketPath(bucket) : undefined;
    },
    () => undefined,
  );
}

/**
 * After a write to `key` failed: the directories it made (a put makes its parents), which left
 * empty would list as folder objects, go; those that were there before it (`before`, from
 * parentsBefore), an empty folder a user made among them, stay, as S3 changes nothing for a
 * refused PUT. Nothing goes when that is unknown. A directory another writer made meanwhile goes
 * only if it is still empty, and a file that took a directory's place never (removeEmptyParents).
 */
async function dropMadeParents(gw: Gateway, bucket: string, key: string, kept: string | undefined): Promise<void> {
  if (kept === undefined || kept === parentOf(objectPath(bucket, key))) return;
  await removeEmptyParents(gw, objectPath(bucket, ''), key, kept);
}

/**
 * Removes the empty directory `path`: never a file there (NOT_A_DIRECTORY), nor a directory that
 * holds anything (DIRECTORY_NOT_EMPTY). Masters from before 2026-12-07 do not know a typed delete
 * (INVALID_ARGUMENT naming `type`): against them, a stat and a plain delete, which a file that
 * takes the directory's place in between would not survive (docs/DEPLOY.md).
 */
export async function removeDir(gw: Gateway, path: string): Promise<{ files: number }> {
  try {
    return await gw.client.remove(path, false, 'dir');
  } catch (err) {
    if (!(err instanceof DfsError) || err.code !== 'INVALID_ARGUMENT' || !/Unrecognized keys?: .*"type"/.test(err.message)) throw err;
  }
  const info = await gw.client.stat(path);
  if (info.type !== 'dir') throw new DfsError('NOT_A_DIRECTORY', `${path} is a file`);
  return gw.client.remove(path);
}

/**
 * Removes the directories between `root` (the bucket's, or its records') and `key` that hold
 * nothing, deepest first, up to `stop` (kept, with those above it) when given. Only directories:
 * the master refuses to remove a file there (a key below a file, KeyConflict; or a file that
 * another client put in a directory's place meanwhile), and one that holds anything.
 */
async function removeEmptyParents(gw: Gateway, root: string, key: string, stop?: string): Promise<void> {
  for (let dir = parentOf(root + key); dir.length >= root.length && dir !== stop; dir = parentOf(dir)) {
    // Fails once a directory still holds something (or is a file): then so do the ones above it.
    if (!(await removeDir(gw, dir).then(() => true, () => false))) break;
  }
}

export async function deleteObject(ctx: Ctx): Promise<void> {
  checkObjectKey(ctx.key);
  await requireBucket(ctx.gw, ctx.bucket);
  await deleteKey(ctx.gw, ctx.bucket, ctx.key);
  sendEmpty(ctx.res, 204);
}

export async function deleteObjects(ctx: Ctx): Promise<void> {
  const { gw, bucket } = ctx;
  await requireBucket(gw, bucket);
  const doc = requireRoot((await readSmallBody(ctx.req, ctx.auth, MAX_DELETE_BODY_BYTES)).toString('utf8'), 'Delete');
  const quiet = text(doc, 'Quiet') === 'true';
  const keys = elements(doc, 'Object').map((o) => text(o, 'Key'));
  if (keys.length === 0) throw new S3Error('MalformedXML', 'Delete names no Object');
  if (keys.length > MAX_DELETE_KEYS) throw new S3Error('MalformedXML', `Delete names ${keys.length} objects; at most ${MAX_DELETE_KEYS} are allowed`);
  const results: ({ Key: string } | { Key: string; Code: string; Message: string })[] = new Array(keys.length);
  let next = 0;
  await Promise.all(Array.from({ length: DELETE_CONCURRENCY }, async () => {
    while (next < keys.length) {
      const i = next++;
      const key = keys[i] ?? '';
      try {
        checkObjectKey(key);
        if (!mayWrite(ctx.scope, objectPath(bucket, key))) throw new S3Error('AccessDenied', `${bucket}/${key} is outside the access key's dfs token prefix`);
        await deleteKey(gw, bucket, key);
        results[i] = { Key: key };
      } catch (err) {
        const e = fromDfsError(err);
        results[i] = { Key: key, Code: e.code, Message: e.message };
      }
    }
  }));
  sendXml(ctx.res, 200, 'DeleteResult', {
    Deleted: results.filter((r) => !('Code' in r) && !quiet),
    Error: results.filter((r) => 'Code' in r),
  });
}

/** Bytes as they pass, hashed: a copy's ETag is the MD5 of what it wrote. */
export class Md5Pass extends Transform {
  private readonly hash = createHash('md5');
  hex = '';
  override _transform(b: Buffer, _e: BufferEncoding, done: TransformCallback): void {
    this.hash.update(b);
    done(null, b);
  }
  override _flush(done: TransformCallback): void {
    this.hex = this.hash.digest('hex');
    done();
  }
}

/** `x-amz-copy-source`: `[/]bucket/key[?versionId=null]`, percent-encoded. */
export function parseCopySource(raw: string): { bucket: string; key: string } {
  let s = raw;
  const q = s.indexOf('?');
  if (q >= 0) {
    const version = /(?:^|&)versionId=([^&]*)/.exec(s.slice(q + 1));
    if (version && version[1] !== 'null') throw new S3Error('NotImplemented', 'dfs keeps no object versions');
    s = s.slice(0, q);
  }
  try {
    s = decodeURIComponent(s);
  } catch {
    throw new S3Error('InvalidArgument', 'x-amz-copy-source is not valid percent-encoding');
  }
  s = s.replace(/^\//, '');
  const i = s.indexOf('/');
  if (i <= 0 || i === s.length - 1) throw new S3Error('InvalidArgument', 'x-amz-copy-source must be bucket/key');
  return { bucket: s.slice(0, i), key: s.slice(i + 1) };
}

/**
 * Streams bytes [start, end) of a stat'ed object into a new dfs file at `path`; resolves with its
 * entry and MD5. `inline: false` for a multipart part, which concat joins by its chunks.
 */
export async function copyBytes(gw: Gateway, src: StatReply, start: number, end: number, path: string, opts: { inline?: boolean } = {}) {
  const md5 = new Md5Pass();
  const pass = new PassThrough();
  pass.pipe(md5);
  const reading = gw.client.getRange(src.path, pass, start, end, src).then(() => void pass.end(), (err: unknown) => {
    md5.destroy(err as Error);
    throw err;
  });
  const [, info] = await Promise.all([reading, gw.client.put(md5, path, { overwrite: true, parents: true, ...opts })]).catch((err: unknown) => {
    throw fromDfsError(err);
  });
  return { info, md5Hex: md5.hex };
}

export async function copyObject(ctx: Ctx): Promise<void> {
  const { gw, req, bucket, key } = ctx;
  const src = parseCopySource(header(req, 'x-amz-copy-source')!);
  const directive = (header(req, 'x-amz-metadata-directive') ?? 'COPY').toUpperCase();
  if (directive !== 'COPY' && directive !== 'REPLACE') throw new S3Error('InvalidArgument', 'x-amz-metadata-directive must be COPY or REPLACE');
  await requireBucket(gw, bucket);
  const srcInfo = await statObject(gw, src.bucket, src.key);
  const srcMeta = await readMeta(gw.client, src.bucket, src.key, srcInfo);
  checkConditions(ctx, srcInfo, srcMeta, 'x-amz-copy-source-');
  if (src.bucket === bucket && src.key === key && directive === 'COPY') {
    throw new S3Error('InvalidRequest', 'This copy request is illegal because it is trying to copy an object to itself without changing the object\'s metadata, storage class, website redirect location or encryption attributes.');
  }
  const meta = directive === 'REPLACE' ? metaFromHeaders(req.headers) : { contentType: srcMeta.contentType, userMeta: srcMeta.userMeta, headers: srcMeta.headers };
  const before = await parentsBefore(gw, bucket, key);
  const { info, md5Hex } = await copyBytes(gw, srcInfo, 0, srcInfo.size, objectPath(bucket, key)).catch(async (err: unknown) => {
    await dropMadeParents(gw, bucket, key, before);
    throw err;
  });
  await writeMeta(gw.client, bucket, key, info, { ...meta, etag: md5Hex });
  sendXml(ctx.res, 200, 'CopyObjectResult', { LastModified: isoDate(info.mtimeMs), ETag: quoted(md5Hex) });
}
