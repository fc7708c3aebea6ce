// Access keys: a JSON file of {accessKeyId, secretAccessKey} pairs (a list, or {"credentials":
// [...]}, or one pair), each optionally bound to a dfs client token ({..., "token": "dfs1...."}):
// a request signed with such a key may do only what that token may (s3/scope.ts). `dfs cluster`
// writes one with writeCredentialsFile; `dfs token create --s3-credentials FILE` adds a key bound
// to the new token; `dfs s3 --credentials FILE` reads it, and reads it again when it changes.
import { randomBytes } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { writeFileDurably } from '../common/durable-file.js';
import { DfsError } from '../common/errors.js';
import type { Credential } from './sigv4.js';

/** An access key, and the dfs token it acts as (none: the gateway's own). */
export interface S3Key extends Credential { token?: string }
/** Keys one file may hold. */
export const MAX_KEYS = 10_000;
/** Largest credentials file read. */
const MAX_FILE_BYTES = 16 * 1024 * 1024;

export function parseCredentials(json: string, where: string): S3Key[] {
  let raw: unknown;
  try {
    raw = JSON.parse(json);
  } catch {
    throw new DfsError('INVALID_ARGUMENT', `${where} is not JSON`);
  }
  const list = Array.isArray(raw) ? raw : raw && typeof raw === 'object' && 'credentials' in raw ? (raw as { credentials: unknown }).credentials : [raw];
  if (!Array.isArray(list) || list.length === 0) throw new DfsError('INVALID_ARGUMENT', `${where} holds no credentials`);
  if (list.length > MAX_KEYS) throw new DfsError('INVALID_ARGUMENT', `${where} holds ${list.length} keys; at most ${MAX_KEYS}`);
  const seen = new Set<string>();
  return list.map((c, i) => {
    const { accessKeyId, secretAccessKey, token } = (c ?? {}) as Record<string, unknown>;
    if (typeof accessKeyId !== 'string' || !/^[A-Za-z0-9_+=,.@-]{3,128}$/.test(accessKeyId) || typeof secretAccessKey !== 'string' || secretAccessKey.length < 8) {
      throw new DfsError('INVALID_ARGUMENT', `${where}: entry ${i} needs an accessKeyId (3-128 of A-Z a-z 0-9 _+=,.@-) and a secretAccessKey of 8 characters or more`);
    }
    if (token !== undefined && (typeof token !== 'string' || !/^dfs1\.[A-Za-z0-9_.-]{10,4000}$/.test(token))) {
      throw new DfsError('INVALID_ARGUMENT', `${where}: entry ${i}'s token is not a dfs token (dfs1....)`);
    }
    if (seen.has(accessKeyId)) throw new DfsError('INVALID_ARGUMENT', `${where}: access key ${accessKeyId} is there twice`);
    seen.add(accessKeyId);
    return { accessKeyId, secretAccessKey, ...(token !== undefined ? { token } : {}) };
  });
}

export function loadCredentials(file: string): S3Key[] {
  let text: string;
  try {
    if (statSync(file).size > MAX_FILE_BYTES) throw new Error(`larger than ${MAX_FILE_BYTES} bytes`);
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new DfsError('INVALID_ARGUMENT', `cannot read the credentials file ${file}: ${(err as Error).message}`);
  }
  return parseCredentials(text, file);
}

/** Makes a new key pair and writes it to `file` (mode 0600), as `dfs cluster` does for its gateway. */
export async function writeCredentialsFile(file: string): Promise<Credential> {
  const cred = { accessKeyId: `DFS${randomBytes(8).toString('hex').toUpperCase()}`, secretAccessKey: randomBytes(30).toString('base64url') };
  await writeFile(file, JSON.stringify({ credentials: [cred] }, null, 2) + '\n', { mode: 0o600 });
  return cred;
}

/** Adds a new key pair bound to `token` to the credentials file (made, mode 0600, if missing); returns it. */
export async function addKey(file: string, token: string): Promise<S3Key> {
  let keys: S3Key[] = [];
  try {
    statSync(file);
    keys = loadCredentials(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  if (keys.length >= MAX_KEYS) throw new DfsError('INVALID_ARGUMENT', `${file} holds ${MAX_KEYS} keys already`);
  const key: S3Key = { accessKeyId: `DFS${randomBytes(8).toString('hex').toUpperCase()}`, secretAccessKey: randomBytes(30).toString('base64url'), token };
  parseCredentials(JSON.stringify([key]), 'the new key'); // the token's shape, checked before the file changes
  await writeFileDurably(file, JSON.stringify({ credentials: [...keys, key] }, null, 2) + '\n', 0o600);
  return key;
}

function stampOf(file: string): string {
  const st = statSync(file);
  return `${st.ino}:${st.size}:${st.mtimeMs}`;
}

/**
 * The keys of a credentials file, read again when the file changes (checked every `everyMs`),
 * so keys added while the gateway runs work without a restart. A file that no longer parses
 * keeps the keys it had and says so once.
 */
export class KeyFile {
  private keys = new Map<string, S3Key>();
  /** What the file was when last read: inode, size and mtime (a write within one clock tick of the last keeps the mtime; a rename gives a new inode). */
  private stamp = '';
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly file: string, private readonly onError: (err: unknown) => void) {
    this.load(loadCredentials(file));
  }

  get size(): number {
    return this.keys.size;
  }

  get(accessKeyId: string): S3Key | undefined {
    return this.keys.get(accessKeyId);
  }

  watch(everyMs: number): void {
    this.timer = setInterval(() => this.reloadIfChanged(), everyMs);
    this.timer.unref();
  }

  close(): void {
    clearInterval(this.timer);
  }

  reloadIfChanged(): void {
    let stamp: string;
    try {
      stamp = stampOf(this.file);
    } catch (err) {
      return this.onError(err);
    }
    if (stamp === this.stamp) return;
    try {
      this.load(loadCredentials(this.file), stamp);
    } catch (err) {
      this.stamp = stamp; // said once per change, not every tick
      this.onError(err);
    }
  }

  private load(keys: S3Key[], stamp = stampOf(this.file)): void {
    this.keys = new Map(keys.map((k) => [k.accessKeyId, k]));
    this.stamp = stamp;
  }
}
