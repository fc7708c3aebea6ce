// common/auth.ts: cluster secret loading and HMAC-signed chunk access tokens (read and write).
import { createHmac } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { loadSecret, newSecret, signChunkToken, verifyChunkToken, type ChunkAccessMode, type ChunkGrant } from '../../common/auth.js';
import { DfsError } from '../../common/errors.js';

const SECRET = Buffer.from('0123456789abcdef0123456789abcdef');
const OTHER = Buffer.from('fedcba9876543210fedcba9876543210');
const NOW = 1_700_000_000_000;
const grant: ChunkGrant = { handle: 42, version: 3, mode: 'write', expiresAtMs: NOW + 60_000 };
const signWriteToken = (secret: Buffer, g: Omit<ChunkGrant, 'mode'> & { mode?: ChunkAccessMode }): string => signChunkToken(secret, { mode: 'write', ...g });

/** What verifyChunkToken threw, or undefined when it accepted the token (as a write token unless `mode` says). */
function verdict(secret: Buffer, token: unknown, handle: number, version: number | undefined, now: number, mode: ChunkAccessMode = 'write'): DfsError | Error | undefined {
  try {
    verifyChunkToken(secret, token, { handle, version, mode }, now);
  } catch (err) {
    return err as Error;
  }
  return undefined;
}

/** Signs an arbitrary payload string the way the master does, to build well-signed oddities. */
function signRaw(secret: Buffer, json: string): string {
  const payload = Buffer.from(json).toString('base64url');
  return `${payload}.${createHmac('sha256', secret).update(payload).digest('base64url')}`;
}

function expectUnauthorized(t: Test, err: unknown, why: RegExp, msg: string): void {
  t.ok(err instanceof DfsError, `${msg}: rejected with a DfsError`);
  t.equal((err as DfsError | undefined)?.code, 'UNAUTHORIZED', `${msg}: UNAUTHORIZED`);
  t.equal((err as DfsError | undefined)?.status, 401, `${msg}: status 401`);
  t.match((err as Error | undefined)?.message, why, `${msg}: message`);
}

t.test('a valid token is accepted', async (t) => {
  const token = signWriteToken(SECRET, grant);
  t.type(token, 'string');
  t.match(token, /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/, 'url-safe payload.signature');
  t.equal(verdict(SECRET, token, 42, 3, NOW), undefined, 'accepted now');
  t.equal(verdict(SECRET, token, 42, 3, grant.expiresAtMs - 1), undefined, 'accepted up to the last millisecond');
  t.same(JSON.parse(Buffer.from(token.split('.')[0]!, 'base64url').toString()), grant, 'payload carries the grant');
  t.equal(signWriteToken(SECRET, grant), token, 'signing is deterministic');
  const big: ChunkGrant = { handle: Number.MAX_SAFE_INTEGER, version: 2 ** 32 - 1, mode: 'write', expiresAtMs: NOW + 1 };
  t.equal(verdict(SECRET, signWriteToken(SECRET, big), big.handle, big.version, NOW), undefined, 'large handle and version');
});

t.test('a token for another handle or version is rejected', async (t) => {
  const token = signWriteToken(SECRET, grant);
  expectUnauthorized(t, verdict(SECRET, token, 43, 3, NOW), /another chunk/, 'wrong handle');
  expectUnauthorized(t, verdict(SECRET, token, 42, 4, NOW), /another chunk/, 'newer version');
  expectUnauthorized(t, verdict(SECRET, token, 42, 2, NOW), /another chunk/, 'older version');
  expectUnauthorized(t, verdict(SECRET, token, 0, 0, NOW), /another chunk/, 'zeros');
  const stringy = signRaw(SECRET, JSON.stringify({ handle: '42', version: '3', mode: 'write', expiresAtMs: NOW + 1000 }));
  expectUnauthorized(t, verdict(SECRET, stringy, 42, 3, NOW), /another chunk/, 'handle/version as strings do not match numbers');
});

t.test('an expired token is rejected', async (t) => {
  const token = signWriteToken(SECRET, grant);
  expectUnauthorized(t, verdict(SECRET, token, 42, 3, grant.expiresAtMs), /expired/, 'at the expiry instant');
  expectUnauthorized(t, verdict(SECRET, token, 42, 3, grant.expiresAtMs + 1), /expired/, 'one ms after');
  expectUnauthorized(t, verdict(SECRET, token, 42, 3, NOW + 86_400_000), /expired/, 'a day after');
  const past = signWriteToken(SECRET, { ...grant, expiresAtMs: NOW - 1 });
  expectUnauthorized(t, verdict(SECRET, past, 42, 3, NOW), /expired/, 'issued already expired');
  const noExpiry = signRaw(SECRET, JSON.stringify({ handle: 42, version: 3, mode: 'write' }));
  expectUnauthorized(t, verdict(SECRET, noExpiry, 42, 3, NOW), /expired/, 'no expiry at all');
  const nanExpiry = signRaw(SECRET, '{"handle":42,"version":3,"mode":"write","expiresAtMs":null}');
  expectUnauthorized(t, verdict(SECRET, nanExpiry, 42, 3, NOW), /expired/, 'null expiry');
});

t.test('an expired token says what to do next, and says why for the client', async (t) => {
  const read = signChunkToken(SECRET, { ...grant, mode: 'read' });
  const err = verdict(SECRET, read, 42, 3, grant.expiresAtMs, 'read');
  expectUnauthorized(t, err, /read token has expired; stat the file again/, 'expired read token');
  t.equal((err as DfsError).details.reason, 'expired', 'details.reason is expired');
  expectUnauthorized(t, verdict(SECRET, signWriteToken(SECRET, grant), 42, 3, grant.expiresAtMs), /write token has expired; allocate the chunk again/, 'expired write token');
});

t.test('a read token reads, a write token writes, and neither does the other', async (t) => {
  const read = signChunkToken(SECRET, { ...grant, mode: 'read' });
  const write = signChunkToken(SECRET, grant);
  t.equal(verdict(SECRET, read, 42, 3, NOW, 'read'), undefined, 'read token, read: accepted');
  t.equal(verdict(SECRET, write, 42, 3, NOW, 'write'), undefined, 'write token, write: accepted');
  expectUnauthorized(t, verdict(SECRET, read, 42, 3, NOW, 'write'), /grants read, not write/, 'a read token used to write');
  expectUnauthorized(t, verdict(SECRET, write, 42, 3, NOW, 'read'), /grants write, not read/, 'a write token used to read');
  const noMode = signRaw(SECRET, JSON.stringify({ handle: 42, version: 3, expiresAtMs: NOW + 1000 }));
  expectUnauthorized(t, verdict(SECRET, noMode, 42, 3, NOW, 'read'), /grants undefined, not read/, 'no mode: not a read token');
  expectUnauthorized(t, verdict(SECRET, noMode, 42, 3, NOW, 'write'), /grants undefined, not write/, 'no mode: not a write token');
  const otherMode = signRaw(SECRET, JSON.stringify({ handle: 42, version: 3, mode: 'admin', expiresAtMs: NOW + 1000 }));
  expectUnauthorized(t, verdict(SECRET, otherMode, 42, 3, NOW, 'read'), /grants admin, not read/, 'an unknown mode');
  // A read token swapped into a write token's payload keeps the read token's signature: refused.
  const writePayload = write.split('.')[0]!;
  expectUnauthorized(t, verdict(SECRET, `${writePayload}.${read.split('.')[1]!}`, 42, 3, NOW, 'write'), /signature is invalid/, 'mode edited, signature kept');
  t.equal((verdict(SECRET, write, 42, 3, NOW, 'read') as DfsError).details.reason, 'mode', 'details.reason is mode');
});

t.test('a read token for another handle or version is rejected; without a version asked, the grant says which', async (t) => {
  const read = signChunkToken(SECRET, { ...grant, mode: 'read' });
  expectUnauthorized(t, verdict(SECRET, read, 43, 3, NOW, 'read'), /another chunk or version/, 'wrong handle');
  expectUnauthorized(t, verdict(SECRET, read, 42, 4, NOW, 'read'), /another chunk or version/, 'wrong version');
  t.same(verifyChunkToken(SECRET, read, { handle: 42, mode: 'read' }, NOW), { ...grant, mode: 'read' }, 'no version asked: the grant is returned');
  expectUnauthorized(t, verdict(SECRET, read, 43, undefined, NOW, 'read'), /another chunk or version/, 'no version asked, wrong handle');
  const noVersion = signRaw(SECRET, JSON.stringify({ handle: 42, mode: 'read', expiresAtMs: NOW + 1000 }));
  expectUnauthorized(t, verdict(SECRET, noVersion, 42, undefined, NOW, 'read'), /another chunk or version/, 'a grant without a version');
});

t.test('a token signed with another secret is rejected', async (t) => {
  const token = signWriteToken(OTHER, grant);
  expectUnauthorized(t, verdict(SECRET, token, 42, 3, NOW), /signature is invalid/, 'other secret');
  const prefixSecret = Buffer.from(SECRET.subarray(0, SECRET.length - 1));
  expectUnauthorized(t, verdict(prefixSecret, signWriteToken(SECRET, grant), 42, 3, NOW), /signature is invalid/, 'secret one byte shorter');
  t.not(signWriteToken(OTHER, grant), signWriteToken(SECRET, grant), 'different secrets sign differently');
});

t.test('a tampered token is rejected', async (t) => {
  const token = signWriteToken(SECRET, grant);
  const [payload, sig] = token.split('.') as [string, string];

  // payload swapped for another grant, signature kept
  const forged = Buffer.from(JSON.stringify({ ...grant, expiresAtMs: NOW + 10 ** 9 })).toString('base64url');
  expectUnauthorized(t, verdict(SECRET, `${forged}.${sig}`, 42, 3, NOW), /signature is invalid/, 'extended expiry');
  const otherHandle = Buffer.from(JSON.stringify({ ...grant, handle: 7 })).toString('base64url');
  expectUnauthorized(t, verdict(SECRET, `${otherHandle}.${sig}`, 7, 3, NOW), /signature is invalid/, 'other handle');

  // every single-character change to payload or signature
  const alphabet = 'AQgw_-';
  const accepted: string[] = [];
  for (let i = 0; i < token.length; i++) {
    if (token[i] === '.') continue;
    for (const c of alphabet) {
      if (c === token[i]) continue;
      const t2 = token.slice(0, i) + c + token.slice(i + 1);
      const err = verdict(SECRET, t2, 42, 3, NOW);
      if (!(err instanceof DfsError && err.code === 'UNAUTHORIZED')) accepted.push(`${i}:${c}`);
    }
  }
  t.same(accepted, [], 'no single-character edit is accepted');

  expectUnauthorized(t, verdict(SECRET, `${payload}.${sig.slice(0, -1)}`, 42, 3, NOW), /signature is invalid/, 'truncated signature');
  expectUnauthorized(t, verdict(SECRET, `${payload}.${sig}A`, 42, 3, NOW), /signature is invalid/, 'extended signature');
  expectUnauthorized(t, verdict(SECRET, `${payload}A.${sig}`, 42, 3, NOW), /signature is invalid/, 'extended payload');
  expectUnauthorized(t, verdict(SECRET, `${payload}.${payload}`, 42, 3, NOW), /signature is invalid/, 'payload as signature');
});

t.test('malformed tokens are rejected', async (t) => {
  const token = signWriteToken(SECRET, grant);
  const [payload, sig] = token.split('.') as [string, string];
  const cases: Array<[string, unknown]> = [
    ['undefined', undefined],
    ['null', null],
    ['number', 42],
    ['object', { token }],
    ['buffer', Buffer.from(token)],
    ['empty', ''],
    ['no dot', payload + sig],
    ['only a dot', '.'],
    ['no payload', `.${sig}`],
    ['no signature', `${payload}.`],
    ['three parts', `${token}.x`],
    ['padding', `${payload}=.${sig}`],
    ['standard base64 chars', `${payload}+/.${sig}`],
    ['leading space', ` ${token}`],
    ['trailing newline', `${token}\n`],
    ['bearer prefix', `Bearer ${token}`],
    ['over 1024 chars', `${'A'.repeat(1024)}.${sig}`],
    ['unicode', `${payload}é.${sig}`],
  ];
  for (const [name, value] of cases) expectUnauthorized(t, verdict(SECRET, value, 42, 3, NOW), /missing or malformed/, name);
});

t.test('well-signed payloads that are not grants are rejected', async (t) => {
  expectUnauthorized(t, verdict(SECRET, signRaw(SECRET, 'not json'), 42, 3, NOW), /payload is malformed/, 'not JSON');
  expectUnauthorized(t, verdict(SECRET, signRaw(SECRET, '{"handle":42'), 42, 3, NOW), /payload is malformed/, 'truncated JSON');
  expectUnauthorized(t, verdict(SECRET, signRaw(SECRET, '{}'), 42, 3, NOW), /another chunk/, 'empty object');
  expectUnauthorized(t, verdict(SECRET, signRaw(SECRET, '[42,3]'), 42, 3, NOW), /another chunk/, 'array');
  expectUnauthorized(t, verdict(SECRET, signRaw(SECRET, '"x"'), 42, 3, NOW), /malformed/, 'string');
  // JSON null parses fine but is not an object: it must be refused, not crash on grant.handle
  const nul = verdict(SECRET, signRaw(SECRET, 'null'), 42, 3, NOW);
  t.ok(nul, 'a null payload is not accepted');
  t.equal((nul as DfsError | undefined)?.code, 'UNAUTHORIZED', 'a null payload is UNAUTHORIZED');
});

t.test('loadSecret', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'dfs-auth-test-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const saved = process.env.DFS_CLUSTER_SECRET;
  t.teardown(() => {
    if (saved === undefined) delete process.env.DFS_CLUSTER_SECRET;
    else process.env.DFS_CLUSTER_SECRET = saved;
  });

  const good = join(dir, 'good');
  writeFileSync(good, '  0123456789abcdef-extra  \n');
  const short = join(dir, 'short');
  writeFileSync(short, '0123456789abcde\n'); // 15 characters after trimming
  const exactly16 = join(dir, 'sixteen');
  writeFileSync(exactly16, '0123456789abcdef');

  delete process.env.DFS_CLUSTER_SECRET;
  t.same(loadSecret(good), Buffer.from('0123456789abcdef-extra'), 'file contents, trimmed');
  t.same(loadSecret(exactly16), Buffer.from('0123456789abcdef'), '16 characters is enough');
  t.throws(() => loadSecret(short), { name: 'DfsError', code: 'INVALID_ARGUMENT', message: /shorter than 16 characters/ }, 'short file');
  t.throws(() => loadSecret(undefined), { name: 'DfsError', code: 'INVALID_ARGUMENT', message: /no cluster secret/ }, 'nothing configured');
  t.throws(() => loadSecret(join(dir, 'missing')), { code: 'ENOENT' }, 'missing file');

  process.env.DFS_CLUSTER_SECRET = 'env-secret-0123456789';
  t.same(loadSecret(undefined), Buffer.from('env-secret-0123456789'), 'from the environment');
  t.same(loadSecret(good), Buffer.from('0123456789abcdef-extra'), 'a file wins over the environment');
  t.throws(() => loadSecret(short), { code: 'INVALID_ARGUMENT' }, 'a short file is an error even with the environment set');

  process.env.DFS_CLUSTER_SECRET = 'too-short';
  t.throws(() => loadSecret(undefined), { code: 'INVALID_ARGUMENT', message: /16\+ characters/ }, 'short environment secret');
  process.env.DFS_CLUSTER_SECRET = '';
  t.throws(() => loadSecret(undefined), { code: 'INVALID_ARGUMENT' }, 'empty environment secret');
});

t.test('newSecret', async (t) => {
  const a = newSecret();
  const b = newSecret();
  t.match(a, /^[0-9a-f]{64}$/, '32 random bytes in hex');
  t.not(a, b, 'fresh each time');
  const secret = Buffer.from(a);
  const token = signWriteToken(secret, grant);
  t.equal(verdict(secret, token, 42, 3, NOW), undefined, 'usable as a signing secret');
  expectUnauthorized(t, verdict(Buffer.from(b), token, 42, 3, NOW), /signature is invalid/, 'and distinct from another');
});
