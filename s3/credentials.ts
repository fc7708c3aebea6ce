// Access keys, until dfs has its own users: a JSON file of {accessKeyId, secretAccessKey} pairs
// (a list, or {"credentials": [...]}, or one pair). `dfs cluster` writes one with
// writeCredentialsFile; `dfs s3 --credentials FILE` reads it.
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { DfsError } from '../common/errors.js';
import type { Credential } from './sigv4.js';

export function parseCredentials(json: string, where: string): Credential[] {
  let raw: unknown;
  try {
    raw = JSON.parse(json);
  } catch {
    throw new DfsError('INVALID_ARGUMENT', `${where} is not JSON`);
  }
  const list = Array.isArray(raw) ? raw : raw && typeof raw === 'object' && 'credentials' in raw ? (raw as { credentials: unknown }).credentials : [raw];
  if (!Array.isArray(list) || list.length === 0) throw new DfsError('INVALID_ARGUMENT', `${where} holds no credentials`);
  return list.map((c, i) => {
    const { accessKeyId, secretAccessKey } = (c ?? {}) as Record<string, unknown>;
    if (typeof accessKeyId !== 'string' || !/^[A-Za-z0-9_+=,.@-]{3,128}$/.test(accessKeyId) || typeof secretAccessKey !== 'string' || secretAccessKey.length < 8) {
      throw new DfsError('INVALID_ARGUMENT', `${where}: entry ${i} needs an accessKeyId (3-128 of A-Z a-z 0-9 _+=,.@-) and a secretAccessKey of 8 characters or more`);
    }
    return { accessKeyId, secretAccessKey };
  });
}

export function loadCredentials(file: string): Credential[] {
  let text: string;
  try {
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
