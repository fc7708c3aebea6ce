// What S3 keeps with an object besides its bytes (ETag, Content-Type, x-amz-meta-*, the standard
// headers), kept as a small JSON file at /.s3/meta/<bucket>/<key>, written after the object. It
// records the object's size and mtime: a record that does not match the object it sits beside
// (an object replaced by `dfs put`, or the moment between an object and its record landing) is
// ignored, and the object gets a derived ETag, so a stale ETag is never served.
import { createHash } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import type { DfsClient } from '../cli/client.js';
import { decodeInline } from '../common/inline.js';
import { MAX_STAT_MANY_PATHS, type EntryInfo } from '../common/protocol.js';
import { S3Error } from './errors.js';
import { metaPath } from './keys.js';

export interface ObjectMeta {
  etag: string;
  contentType?: string;
  /** x-amz-meta-* (names lower-case, without the prefix). */
  userMeta: Record<string, string>;
  /** Cache-Control, Content-Disposition, Content-Encoding, Content-Language, Expires, as sent. */
  headers: Record<string, string>;
}
export interface MetaRecord extends ObjectMeta { v: 1; size: number; mtimeMs: number }

/** S3 allows 2 KB of user metadata; the record is bounded a little above it. */
export const MAX_USER_META_BYTES = 2048;
const MAX_RECORD_BYTES = 16 * 1024;
export const STORED_HEADERS = ['cache-control', 'content-disposition', 'content-encoding', 'content-language', 'expires'] as const;

/** The ETag of an object the gateway has no record for: derived from its identity, marked so it never passes for an MD5. */
export function derivedEtag(info: EntryInfo): string {
  return `${createHash('md5').update(`${info.path}\n${info.size}\n${info.mtimeMs}`).digest('hex')}-0`;
}

/** The object's record as stored, not yet checked against the object; undefined when there is none that could be read. */
export async function readMetaRecord(client: DfsClient, bucket: string, key: string): Promise<MetaRecord | undefined> {
  try {
    const parts: Buffer[] = [];
    const sink = new Writable({
      write(b: Buffer, _enc, done) {
        parts.push(b);
        done();
      },
    });
    const stat = await client.stat(metaPath(bucket, key), true);
    if (stat.type !== 'file' || stat.size > MAX_RECORD_BYTES) return undefined;
    await client.getRange(stat.path, sink, 0, stat.size, stat);
    return JSON.parse(Buffer.concat(parts).toString('utf8')) as MetaRecord;
  } catch {
    return undefined;
  }
}

/** Records read one by one at once, where a batch could not give them (see readMetaRecords). */
const META_CONCURRENCY = 16;

/**
 * The records of many objects of one bucket, in order (undefined: none that could be read): one
 * stat-many call per MAX_STAT_MANY_PATHS keys gives the records the master keeps inline (a
 * record is a few hundred bytes); a record stored in chunks, or every record when the master does
 * not know stat-many, is read on its own, META_CONCURRENCY at once.
 */
export async function readMetaRecords(client: DfsClient, bucket: string, keys: string[]): Promise<(MetaRecord | undefined)[]> {
  const out: (MetaRecord | undefined)[] = new Array(keys.length).fill(undefined);
  const alone: number[] = [];
  for (let from = 0; from < keys.length; from += MAX_STAT_MANY_PATHS) {
    const slice = keys.slice(from, from + MAX_STAT_MANY_PATHS);
    const reply = await client.statMany(slice.map((k) => metaPath(bucket, k)), true).catch(() => undefined);
    slice.forEach((_, j) => {
      if (!reply) return void alone.push(from + j);
      const e = reply.entries[j];
      if (!e || e.type !== 'file' || e.size > MAX_RECORD_BYTES) return; // no record (or not one): the ETag is derived
      if (e.inline) out[from + j] = parseRecord(decodeInline(e.inline));
      else alone.push(from + j);
    });
  }
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(META_CONCURRENCY, alone.length) }, async () => {
    while (next < alone.length) {
      const i = alone[next++]!;
      out[i] = await readMetaRecord(client, bucket, keys[i]!);
    }
  }));
  return out;
}

function parseRecord(bytes: Buffer | undefined): MetaRecord | undefined {
  if (!bytes) return undefined; // failed its checksum: as if there were none (the ETag is derived, never a wrong one)
  try {
    return JSON.parse(bytes.toString('utf8')) as MetaRecord;
  } catch {
    return undefined;
  }
}

/** The metadata of the object `info` from its record; derived when the record is missing or is not this object's. */
export function metaOf(rec: MetaRecord | undefined, info: EntryInfo): ObjectMeta {
  if (!rec || rec.v !== 1 || rec.size !== info.size || rec.mtimeMs !== info.mtimeMs) return { etag: derivedEtag(info), userMeta: {}, headers: {} };
  return { etag: rec.etag, contentType: rec.contentType, userMeta: rec.userMeta ?? {}, headers: rec.headers ?? {} };
}

export async function readMeta(client: DfsClient, bucket: string, key: string, info: EntryInfo): Promise<ObjectMeta> {
  return metaOf(await readMetaRecord(client, bucket, key), info);
}

export async function writeMeta(client: DfsClient, bucket: string, key: string, info: EntryInfo, meta: ObjectMeta): Promise<void> {
  const rec: MetaRecord = { v: 1, size: info.size, mtimeMs: info.mtimeMs, ...meta };
  await client.put(Readable.from([Buffer.from(JSON.stringify(rec))]), metaPath(bucket, key), { overwrite: true, parents: true, replication: info.replication || undefined });
}

/** The metadata a PUT (or CreateMultipartUpload, or a REPLACE copy) sends in its headers. */
export function metaFromHeaders(headers: Record<string, string | string[] | undefined>): Omit<ObjectMeta, 'etag'> {
  const one = (v: string | string[] | undefined) => (Array.isArray(v) ? v.join(',') : v);
  const userMeta: Record<string, string> = {};
  let bytes = 0;
  for (const [name, v] of Object.entries(headers)) {
    if (!name.startsWith('x-amz-meta-') || v === undefined) continue;
    const value = one(v)!;
    userMeta[name.slice('x-amz-meta-'.length)] = value;
    bytes += Buffer.byteLength(name) - 11 + Buffer.byteLength(value);
  }
  if (bytes > MAX_USER_META_BYTES) throw new S3Error('MetadataTooLarge', `Your metadata headers exceed the maximum allowed metadata size (${MAX_USER_META_BYTES} bytes).`);
  const stored: Record<string, string> = {};
  for (const h of STORED_HEADERS) if (headers[h] !== undefined) stored[h] = one(headers[h])!;
  return { contentType: one(headers['content-type']), userMeta, headers: stored };
}
