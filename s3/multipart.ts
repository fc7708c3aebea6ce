// Multipart uploads. An upload is a dfs directory /.s3/uploads/<bucket>/<uploadId>/ holding
// upload.json (key and metadata) and one dfs file per part, written as the part arrives and named
// <5-digit part number>.<MD5 hex>, so ListParts and Complete read a part's ETag from its name.
// Complete joins the parts with the master's concat: the object's chunk list is the parts' chunk
// lists in order, and no byte is copied. An upload idle for multipartExpiryMs is deleted.
import { createHash, randomBytes } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { DfsError } from '../common/errors.js';
import { parentOf } from '../common/paths.js';
import type { EntryInfo } from '../common/protocol.js';
import { readBody, readSmallBody } from './body.js';
import { header, isoDate, MAX_OBJECT_PUT_BYTES, maxItems, quoted, sendEmpty, sendXml, type Ctx, type Gateway } from './context.js';
import { fromDfsError, S3Error } from './errors.js';
import { checkKey, compareKeys, GATEWAY_DIR, objectPath, uploadPath, uploadsPath } from './keys.js';
import { metaFromHeaders, writeMeta, type ObjectMeta } from './meta.js';
import { copyBytes, parseCopySource, parseRange, requireBucket, statObject } from './objects.js';
import { elements, requireRoot, text } from './xml.js';

/** S3's limits: part numbers 1 to 10,000. */
export const MAX_PARTS = 10_000;
/** A CompleteMultipartUpload document of 10,000 parts with checksums is about 1.5 MB. */
const MAX_COMPLETE_BODY_BYTES = 4 * 1024 * 1024;
const PART_NAME = /^(\d{5})\.([0-9a-f]{32})$/;

interface UploadRecord { key: string; initiatedMs: number; meta: Omit<ObjectMeta, 'etag'> }
interface Part { number: number; etag: string; size: number; mtimeMs: number; path: string }

async function readSmallFile(gw: Gateway, path: string, limitBytes: number): Promise<Buffer> {
  const stat = await gw.client.stat(path, true);
  if (stat.size > limitBytes) throw new S3Error('InternalError', `${path} is larger than expected`);
  const parts: Buffer[] = [];
  await gw.client.getRange(path, new Writable({
    write(b: Buffer, _e, done) {
      parts.push(b);
      done();
    },
  }), 0, stat.size, stat);
  return Buffer.concat(parts);
}

/** Upload records the gateway has read, by bucket and upload id: a record never changes, so UploadPart need not read it again. */
const knownUploads = new Map<string, UploadRecord>();
/** The most records kept; the oldest go first. */
const MAX_KNOWN_UPLOADS = 1024;

const noSuchUpload = (uploadId: string | undefined) => new S3Error('NoSuchUpload', 'The specified multipart upload does not exist. The upload ID might be invalid, or the multipart upload might have been aborted or completed.', { UploadId: uploadId ?? '' });

/**
 * The upload's record; NoSuchUpload unless it exists and is for this key. `known`: a record read
 * before will do (UploadPart, whose write into the upload's directory fails if the upload is gone).
 */
async function loadUpload(ctx: Ctx, uploadId: string | undefined, known = false): Promise<UploadRecord> {
  checkKey(ctx.key);
  if (!uploadId || !/^[0-9a-f]{32}$/.test(uploadId)) throw noSuchUpload(uploadId);
  const cacheKey = `${ctx.bucket}/${uploadId}`;
  let rec = known ? knownUploads.get(cacheKey) : undefined;
  if (!rec) {
    try {
      rec = JSON.parse((await readSmallFile(ctx.gw, `${uploadPath(ctx.bucket, uploadId)}/upload.json`, 64 * 1024)).toString('utf8')) as UploadRecord;
    } catch (err) {
      if (err instanceof DfsError && err.code === 'NOT_FOUND') {
        await requireBucket(ctx.gw, ctx.bucket);
        throw noSuchUpload(uploadId);
      }
      throw fromDfsError(err);
    }
    knownUploads.delete(cacheKey);
    knownUploads.set(cacheKey, rec);
    if (knownUploads.size > MAX_KNOWN_UPLOADS) knownUploads.delete(knownUploads.keys().next().value!);
  }
  if (rec.key !== ctx.key) throw noSuchUpload(uploadId);
  return rec;
}

/** The upload's parts by number (the newest file where a part was sent twice). */
async function listUploadParts(gw: Gateway, bucket: string, uploadId: string): Promise<Map<number, Part>> {
  const entries = await gw.client.list(uploadPath(bucket, uploadId)).then((r) => r.entries, (err: unknown) => {
    throw fromDfsError(err, 'NoSuchUpload');
  });
  const parts = new Map<number, Part>();
  for (const e of entries) {
    const m = PART_NAME.exec(e.name);
    if (!m || e.type !== 'file' || e.state !== 'complete') continue;
    const part = { number: Number(m[1]), etag: m[2]!, size: e.size, mtimeMs: e.mtimeMs, path: e.path };
    const had = parts.get(part.number);
    if (!had || had.mtimeMs <= part.mtimeMs) parts.set(part.number, part);
  }
  return parts;
}

export async function createUpload(ctx: Ctx): Promise<void> {
  checkKey(ctx.key);
  const meta = metaFromHeaders(ctx.req.headers);
  await requireBucket(ctx.gw, ctx.bucket);
  const uploadId = randomBytes(16).toString('hex');
  const rec: UploadRecord = { key: ctx.key, initiatedMs: Date.now(), meta };
  await ctx.gw.client.put(Readable.from([Buffer.from(JSON.stringify(rec))]), `${uploadPath(ctx.bucket, uploadId)}/upload.json`, { parents: true }).catch((err: unknown) => {
    throw fromDfsError(err);
  });
  sendXml(ctx.res, 200, 'InitiateMultipartUploadResult', { Bucket: ctx.bucket, Key: ctx.key, UploadId: uploadId });
}

function partNumber(ctx: Ctx): number {
  const raw = ctx.query.get('partNumber') ?? '';
  const n = /^\d{1,5}$/.test(raw) ? Number(raw) : NaN;
  if (!(n >= 1 && n <= MAX_PARTS)) throw new S3Error('InvalidArgument', `Part number must be an integer between 1 and ${MAX_PARTS}, inclusive`, { ArgumentName: 'partNumber', ArgumentValue: raw });
  return n;
}

/** The files of part `number` in the upload's directory now (from an earlier send of the part): a seek in the master's paged list. */
async function partFiles(gw: Gateway, dir: string, number: number): Promise<string[]> {
  const prefix = `${String(number).padStart(5, '0')}.`;
  const found: string[] = [];
  // Each placed part drops the ones before it, so there are rarely more than one or two.
  for (let after: string | undefined = prefix.slice(0, -1), pages = 0; after !== undefined && pages < 100; pages++) {
    const page = await gw.client.listPage(dir, after, 16);
    const mine = page.entries.filter((e) => e.name.startsWith(prefix));
    found.push(...mine.map((e) => e.name));
    after = mine.length === page.entries.length ? page.next : undefined;
  }
  return found;
}

/** Puts a part's file in place under its final name, and drops the files of the same part number that were there before (`earlier`). */
async function placePart(gw: Gateway, bucket: string, uploadId: string, number: number, tmp: string, md5Hex: string, earlier: string[]): Promise<void> {
  const dir = uploadPath(bucket, uploadId);
  const name = `${String(number).padStart(5, '0')}.${md5Hex}`;
  await gw.client.rename(tmp, `${dir}/${name}`).catch(async (err: unknown) => {
    // The same bytes sent again: the part is already in place.
    if (err instanceof DfsError && err.code === 'EXISTS') return gw.client.remove(tmp);
    throw fromDfsError(err, 'NoSuchUpload');
  });
  for (const old of earlier) if (old !== name) await gw.client.remove(`${dir}/${old}`).catch(() => undefined);
}

export async function uploadPart(ctx: Ctx): Promise<void> {
  const { gw, req, bucket } = ctx;
  const number = partNumber(ctx);
  const uploadId = ctx.query.get('uploadId');
  const source = header(req, 'x-amz-copy-source');
  // A part's bytes go into the upload's directory, which fails once the upload is gone; a copy's
  // failure would name its source, so a copy reads the record.
  await loadUpload(ctx, uploadId, source === undefined);
  const dir = uploadPath(bucket, uploadId!);
  const tmp = `${dir}/tmp-${number}-${randomBytes(6).toString('hex')}`;
  // Looked up while the part's bytes stream, not after: files there before this part are older than it.
  const earlier = partFiles(gw, dir, number).catch((err: unknown) => {
    throw fromDfsError(err, 'NoSuchUpload');
  });
  earlier.catch(() => undefined); // awaited below; this keeps a failure while the body streams from going unhandled
  if (source !== undefined) {
    const src = parseCopySource(source);
    const srcInfo = await statObject(gw, src.bucket, src.key);
    const range = parseRange(header(req, 'x-amz-copy-source-range'), srcInfo.size) ?? { start: 0, end: srcInfo.size };
    const { info, md5Hex } = await copyBytes(gw, srcInfo, range.start, range.end, tmp, { inline: false });
    await placePart(gw, bucket, uploadId!, number, tmp, md5Hex, await earlier);
    sendXml(ctx.res, 200, 'CopyPartResult', { LastModified: isoDate(info.mtimeMs), ETag: quoted(md5Hex) });
    return;
  }
  const { stream, check } = readBody(req, ctx.auth, MAX_OBJECT_PUT_BYTES, true);
  try {
    // A part is joined by concat, which takes files of chunks only: never inline (common/inline.ts).
    await gw.client.put(stream, tmp, { inline: false });
  } catch (err) {
    stream.destroy();
    if (check.failure()) throw check.failure();
    // The upload went (completed, aborted) since its record was read: NoSuchUpload, or NoSuchBucket.
    if (err instanceof DfsError && err.code === 'NOT_FOUND') {
      knownUploads.delete(`${bucket}/${uploadId}`);
      await requireBucket(gw, bucket);
    }
    throw fromDfsError(err, 'NoSuchUpload');
  }
  await placePart(gw, bucket, uploadId!, number, tmp, check.md5Hex(), await earlier);
  sendEmpty(ctx.res, 200, { etag: quoted(check.md5Hex()) });
}

/** The parts a CompleteMultipartUpload document names, checked for order. */
export function parseCompleteParts(xml: string): { number: number; etag: string }[] {
  const doc = requireRoot(xml, 'CompleteMultipartUpload');
  const parts = elements(doc, 'Part').map((p) => {
    const number = Number(text(p, 'PartNumber'));
    const etag = (text(p, 'ETag') ?? '').trim().replace(/^"|"$/g, '');
    if (!Number.isInteger(number) || number < 1 || number > MAX_PARTS) throw new S3Error('InvalidArgument', `Part number must be an integer between 1 and ${MAX_PARTS}, inclusive`);
    return { number, etag };
  });
  if (parts.length === 0) throw new S3Error('MalformedXML', 'The XML you provided was not well-formed or did not validate against our published schema: no Part');
  for (let i = 1; i < parts.length; i++) {
    if (parts[i]!.number <= parts[i - 1]!.number) throw new S3Error('InvalidPartOrder', 'The list of parts was not in ascending order. The parts list must be specified in order by part number.');
  }
  return parts;
}

/** S3's multipart ETag: the MD5 of the parts' binary MD5s, then "-" and the part count. */
export function multipartEtag(partMd5Hex: string[]): string {
  const h = createHash('md5');
  for (const e of partMd5Hex) h.update(Buffer.from(e, 'hex'));
  return `${h.digest('hex')}-${partMd5Hex.length}`;
}

export async function completeUpload(ctx: Ctx): Promise<void> {
  const { gw, bucket, key } = ctx;
  const uploadId = ctx.query.get('uploadId');
  const rec = await loadUpload(ctx, uploadId);
  const asked = parseCompleteParts((await readSmallBody(ctx.req, ctx.auth, MAX_COMPLETE_BODY_BYTES)).toString('utf8'));
  const have = await listUploadParts(gw, bucket, uploadId!);
  // Every part must exist before any size is judged: a missing part is InvalidPart, whatever its neighbours' sizes.
  const chosen = asked.map((p) => {
    const part = have.get(p.number);
    if (!part || part.etag !== p.etag) {
      throw new S3Error('InvalidPart', 'One or more of the specified parts could not be found. The part may not have been uploaded, or the specified entity tag may not have matched the part\'s entity tag.', { PartNumber: String(p.number), ETag: p.etag });
    }
    return part;
  });
  chosen.forEach((part, i) => {
    if (i < chosen.length - 1 && part.size < gw.config.minPartBytes) {
      throw new S3Error('EntityTooSmall', 'Your proposed upload is smaller than the minimum allowed object size.', { PartNumber: String(part.number), ProposedSize: String(part.size), MinSizeAllowed: String(gw.config.minPartBytes) });
    }
  });
  const etag = multipartEtag(chosen.map((p) => p.etag));
  const target = objectPath(bucket, key);
  let info: EntryInfo | undefined;
  // Twice: a DeleteObject pruning empty "directories" may take the parent between mkdir and concat.
  for (let attempt = 0; !info; attempt++) {
    if (key.includes('/')) await gw.client.mkdir(parentOf(target), true).catch((err: unknown) => {
      throw fromDfsError(err);
    });
    info = await gw.client.concat(chosen.map((p) => p.path), target, true).catch((err: unknown) => {
      if (attempt === 0 && err instanceof DfsError && err.code === 'NOT_FOUND') return undefined;
      throw fromDfsError(err);
    });
  }
  await writeMeta(gw.client, bucket, key, info, { ...rec.meta, etag });
  await gw.client.remove(uploadPath(bucket, uploadId!), true).catch(() => undefined);
  sendXml(ctx.res, 200, 'CompleteMultipartUploadResult', { Location: `/${bucket}/${key}`, Bucket: bucket, Key: key, ETag: quoted(etag) });
}

export async function abortUpload(ctx: Ctx): Promise<void> {
  const uploadId = ctx.query.get('uploadId');
  await loadUpload(ctx, uploadId);
  await ctx.gw.client.remove(uploadPath(ctx.bucket, uploadId!), true).catch((err: unknown) => {
    throw fromDfsError(err, 'NoSuchUpload');
  });
  sendEmpty(ctx.res, 204);
}

export async function listParts(ctx: Ctx): Promise<void> {
  const uploadId = ctx.query.get('uploadId')!;
  await loadUpload(ctx, uploadId);
  const marker = Number(ctx.query.get('part-number-marker') ?? 0) || 0;
  const max = maxItems(ctx.query, 'max-parts');
  const all = [...(await listUploadParts(ctx.gw, ctx.bucket, uploadId)).values()].filter((p) => p.number > marker).sort((a, b) => a.number - b.number);
  const page = all.slice(0, max);
  sendXml(ctx.res, 200, 'ListPartsResult', {
    Bucket: ctx.bucket, Key: ctx.key, UploadId: uploadId, Initiator: { ID: 'dfs', DisplayName: 'dfs' }, Owner: { ID: 'dfs', DisplayName: 'dfs' },
    StorageClass: 'STANDARD', PartNumberMarker: marker, NextPartNumberMarker: page.at(-1)?.number ?? marker, MaxParts: max, IsTruncated: all.length > page.length,
    Part: page.map((p) => ({ PartNumber: p.number, LastModified: isoDate(p.mtimeMs), ETag: quoted(p.etag), Size: p.size })),
  });
}

export async function listUploads(ctx: Ctx): Promise<void> {
  const { gw, bucket, query } = ctx;
  await requireBucket(gw, bucket);
  const prefix = query.get('prefix') ?? '';
  const keyMarker = query.get('key-marker') ?? '';
  const idMarker = query.get('upload-id-marker') ?? '';
  const max = maxItems(query, 'max-uploads');
  const dirs = await gw.client.list(uploadsPath(bucket)).then((r) => r.entries.filter((e) => e.type === 'dir'), () => [] as EntryInfo[]);
  const uploads: { key: string; id: string; initiatedMs: number }[] = [];
  for (const d of dirs) {
    const rec = await readSmallFile(gw, `${d.path}/upload.json`, 64 * 1024).then((b) => JSON.parse(b.toString('utf8')) as UploadRecord, () => undefined);
    if (rec && rec.key.startsWith(prefix)) uploads.push({ key: rec.key, id: d.name, initiatedMs: rec.initiatedMs });
  }
  uploads.sort((a, b) => compareKeys(a.key, b.key) || (a.id < b.id ? -1 : 1));
  const after = uploads.filter((u) => !keyMarker || compareKeys(u.key, keyMarker) > 0 || (u.key === keyMarker && idMarker !== '' && u.id > idMarker));
  const page = after.slice(0, max);
  const truncated = after.length > page.length;
  sendXml(ctx.res, 200, 'ListMultipartUploadsResult', {
    Bucket: bucket, KeyMarker: keyMarker, UploadIdMarker: idMarker, NextKeyMarker: truncated ? page.at(-1)!.key : undefined,
    NextUploadIdMarker: truncated ? page.at(-1)!.id : undefined, Prefix: prefix, MaxUploads: max, IsTruncated: truncated,
    Upload: page.map((u) => ({ Key: u.key, UploadId: u.id, Initiator: { ID: 'dfs', DisplayName: 'dfs' }, Owner: { ID: 'dfs', DisplayName: 'dfs' }, StorageClass: 'STANDARD', Initiated: isoDate(u.initiatedMs) })),
  });
}

/** Deletes uploads with no activity (a directory's mtime moves with each part) for the expiry; returns how many. */
export async function sweepUploads(gw: Gateway, nowMs: number): Promise<number> {
  let swept = 0;
  const buckets = await gw.client.list(`${GATEWAY_DIR}/uploads`).then((r) => r.entries, () => [] as EntryInfo[]);
  for (const b of buckets) {
    const uploads = await gw.client.list(b.path).then((r) => r.entries, () => [] as EntryInfo[]);
    for (const u of uploads) {
      if (u.type !== 'dir' || nowMs - u.mtimeMs < gw.config.multipartExpiryMs) continue;
      if (await gw.client.remove(u.path, true).then(() => true, () => false)) swept++;
    }
  }
  return swept;
}
