// Which bucket names and keys the gateway takes, and where they live in dfs. A bucket is a
// top-level directory, a key the path below it. S3 allows keys that no dfs path can name (empty
// parts as in `a//b`, `.` and `..` parts, a trailing `/`): those are refused with a clear error
// rather than mapped, so every object is a plain dfs file a `dfs ls` shows under its own name.
import { compareUtf8 } from '../common/list-order.js';
import { MAX_NAME_BYTES } from '../common/paths.js';
import { S3Error } from './errors.js';

/** S3's limit on a key, in UTF-8 bytes. */
export const MAX_KEY_BYTES = 1024;
/** The gateway's own folder in the namespace: object metadata and multipart uploads. Not a valid bucket name, so never listed as one. */
export const GATEWAY_DIR = '/.s3';

export function isValidBucketName(name: string): boolean {
  return /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(name) && !name.includes('..') && !/^\d+\.\d+\.\d+\.\d+$/.test(name);
}

export function checkBucketName(name: string): void {
  if (!isValidBucketName(name)) {
    throw new S3Error('InvalidBucketName', 'bucket names are 3 to 63 characters of a-z, 0-9, . and -, starting and ending with a letter or digit', { BucketName: name });
  }
}

export function checkKey(key: string): void {
  if (key.length === 0) throw new S3Error('InvalidArgument', 'the key is empty');
  if (Buffer.byteLength(key) > MAX_KEY_BYTES) throw new S3Error('KeyTooLongError', `Your key is too long: at most ${MAX_KEY_BYTES} bytes of UTF-8`);
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(key)) throw new S3Error('InvalidArgument', 'dfs keys may not contain control characters', { Key: key });
  for (const part of key.split('/')) {
    if (part === '') throw new S3Error('InvalidArgument', 'dfs keys may not start or end with "/" or contain "//": each "/"-separated part names a dfs directory or file', { Key: key });
    if (part === '.' || part === '..') throw new S3Error('InvalidArgument', 'dfs keys may not have "." or ".." parts', { Key: key });
    if (Buffer.byteLength(part) > MAX_NAME_BYTES) throw new S3Error('KeyTooLongError', `each "/"-separated part of a dfs key is at most ${MAX_NAME_BYTES} bytes`);
  }
}

/**
 * A "folder" key (`a/b/`): the empty object S3 tools put to make a directory show (pyarrow's
 * create_dir, and after it deletes a file, the S3 consoles' "Create folder"). In dfs it names the
 * directory `a/b`: putting it makes the directory, heading it asks whether it is there, deleting
 * it removes the directory when empty. The key without its last '/'; undefined for other keys.
 */
export function folderOf(key: string): string | undefined {
  if (!key.endsWith('/') || key.length < 2) return undefined;
  const dir = key.slice(0, -1);
  checkKey(dir);
  return dir;
}

/** checkKey, for a key that may also be a folder key. */
export function checkObjectKey(key: string): void {
  if (folderOf(key) === undefined) checkKey(key);
}

export const bucketPath = (bucket: string): string => `/${bucket}`;
export const objectPath = (bucket: string, key: string): string => `/${bucket}/${key}`;
/** Where an object's metadata (ETag, Content-Type, x-amz-meta-*) is kept: a small JSON file mirroring its path. */
export const metaPath = (bucket: string, key: string): string => `${GATEWAY_DIR}/meta/${bucket}/${key}`;
export const metaBucketPath = (bucket: string): string => `${GATEWAY_DIR}/meta/${bucket}`;
export const uploadsPath = (bucket: string): string => `${GATEWAY_DIR}/uploads/${bucket}`;
export const uploadPath = (bucket: string, uploadId: string): string => `${GATEWAY_DIR}/uploads/${bucket}/${uploadId}`;

/** S3's ordering of keys: by their UTF-8 bytes (JavaScript's < orders UTF-16 units, which differs past U+FFFF). */
export const compareKeys = compareUtf8;
