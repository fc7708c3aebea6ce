// common/auth.ts: cluster secret loading and HMAC-signed chunk access tokens (read, write, copy-source),
// each refusal with its own stable code; the servers a token names; the next hops a pipeline may dial.
import { createHmac } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { checkNextHops, isChunkTokenRefusal, loadSecret, newSecret, signChunkToken, verifyChunkToken, type ChunkAccessMode, type ChunkGrant } from '../../common/auth.js';
import { DfsError, ErrorCodes, type ErrorCode } from '../../common/errors.js';

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

function expectRefused(t: Test, err: unknown, code: ErrorCode, why: RegExp, msg: string): void {
  t.ok(err instanceof DfsError, `${msg}: rejected with a DfsError`);
  t.equal((err as DfsError | undefined)?.code, code, `${msg}: ${code}`);
  t.equal((err as DfsError | undefined)?.status, ErrorCodes[code], `${msg}: status ${ErrorCodes[code]}`);
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
  expectRefused(t, verdict(SECRET, token, 43, 3, NOW), 'CHUNK_TOKEN_WRONG_CHUNK', /another chunk/, 'wrong handle');
  expectRefused(t, verdict(SECRET, token, 42, 4, NOW), 'CHUNK_TOKEN_WRONG_VERSION', /another version/, 'newer version');
  expectRefused(t, verdict(SECRET, token, 42, 2, NOW), 'CHUNK_TOKEN_WRONG_VERSION', /another version/, 'older version');
  expectRefused(t, verdict(SECRET, token, 0, 0, NOW), 'CHUNK_TOKEN_WRONG_CHUNK', /another chunk/, 'zeros');
  const stringy = signRaw(SECRET, JSON.stringify({ handle: '42', version: '3', mode: 'write', expiresAtMs: NOW + 1000 }));
  expectRefused(t, verdict(SECRET, stringy, 42, 3, NOW), 'CHUNK_TOKEN_WRONG_CHUNK', /another chunk/, 'handle/version as strings do not match numbers');
});

t.test('an expired token is rejected', async (t) => {
  const token = signWriteToken(SECRET, grant);
  expectRefused(t, verdict(SECRET, token, 42, 3, grant.expiresAtMs), 'CHUNK_TOKEN_EXPIRED', /expired/, 'at the expiry instant');
  expectRefused(t, verdict(SECRET, token, 42, 3, grant.expiresAtMs + 1), 'CHUNK_TOKEN_EXPIRED', /expired/, 'one ms after');
  expectRefused(t, verdict(SECRET, token, 42, 3, NOW + 86_400_000), 'CHUNK_TOKEN_EXPIRED', /expired/, 'a day after');
  const past = signWriteToken(SECRET, { ...grant, expiresAtMs: NOW - 1 });
  expectRefused(t, verdict(SECRET, past, 42, 3, NOW), 'CHUNK_TOKEN_EXPIRED', /expired/, 'issued already expired');
  const noExpiry = signRaw(SECRET, JSON.stringify({ handle: 42, version: 3, mode: 'write' }));
  expectRefused(t, verdict(SECRET, noExpiry, 42, 3, NOW), 'CHUNK_TOKEN_EXPIRED', /expired/, 'no expiry at all');
  const nanExpiry = signRaw(SECRET, '{"handle":42,"version":3,"mode":"write","expiresAtMs":null}');
  expectRefused(t, verdict(SECRET, nanExpiry, 42, 3, NOW), 'CHUNK_TOKEN_EXPIRED', /expired/, 'null expiry');
});

t.test('an expired token says what to do next, and says why for the client', async (t) => {
  const read = signChunkToken(SECRET, { ...grant, mode: 'read' });
  const err = verdict(SECRET, read, 42, 3, grant.expiresAtMs, 'read');
  expectRefused(t, err, 'CHUNK_TOKEN_EXPIRED', /read token has expired; stat the file again/, 'expired read token');
  t.equal((err as DfsError).details.reason, 'expired', 'details.reason is expired');
  expectRefused(t, verdict(SECRET, signWriteToken(SECRET, grant), 42, 3, grant.expiresAtMs), 'CHUNK_TOKEN_EXPIRED', /write token has expired; allocate the chunk again/, 'expired write token');
});

t.test('a read token reads, a write token writes, and neither does the other', async (t) => {
  const read = signChunkToken(SECRET, { ...grant, mode: 'read' });
  const write = signChunkToken(SECRET, grant);
  t.equal(verdict(SECRET, read, 42, 3, NOW, 'read'), undefined, 'read token, read: accepted');
  t.equal(verdict(SECRET, write, 42, 3, NOW, 'write'), undefined, 'write token, write: accepted');
  expectRefused(t, verdict(SECRET, read, 42, 3, NOW, 'write'), 'CHUNK_TOKEN_WRONG_OPERATION', /grants read, not write/, 'a read token used to write');
  expectRefused(t, verdict(SECRET, write, 42, 3, NOW, 'read'), 'CHUNK_TOKEN_WRONG_OPERATION', /grants write, not read/, 'a write token used to read');
  const noMode = signRaw(SECRET, JSON.stringify({ handle: 42, version: 3, expiresAtMs: NOW + 1000 }));
  expectRefused(t, verdict(SECRET, noMode, 42, 3, NOW, 'read'), 'CHUNK_TOKEN_WRONG_OPERATION', /grants undefined, not read/, 'no mode: not a read token');
  expectRefused(t, verdict(SECRET, noMode, 42, 3, NOW, 'write'), 'CHUNK_TOKEN_WRONG_OPERATION', /grants undefined, not write/, 'no mode: not a write token');
  const otherMode = signRaw(SECRET, JSON.stringify({ handle: 42, version: 3, mode: 'admin', expiresAtMs: NOW + 1000 }));
  expectRefused(t, verdict(SECRET, otherMode, 42, 3, NOW, 'read'), 'CHUNK_TOKEN_WRONG_OPERATION', /grants admin, not read/, 'an unknown mode');
  // A read token swapped into a write token's payload keeps the read token's signature: refused.
  const writePayload = write.split('.')[0]!;
  expectRefused(t, verdict(SECRET, `${writePayload}.${read.split('.')[1]!}`, 42, 3, NOW, 'write'), 'CHUNK_TOKEN_INVALID', /signature is invalid/, 'mode edited, signature kept');
  t.equal((verdict(SECRET, write, 42, 3, NOW, 'read') as DfsError).details.reason, 'mode', 'details.reason is mode');
});

t.test('a read token for another handle or version is rejected; without a version asked, the grant says which', async (t) => {
  const read = signChunkToken(SECRET, { ...grant, mode: 'read' });
  expectRefused(t, verdict(SECRET, read, 43, 3, NOW, 'read'), 'CHUNK_TOKEN_WRONG_CHUNK', /another chunk/, 'wrong handle');
  expectRefused(t, verdict(SECRET, read, 42, 4, NOW, 'read'), 'CHUNK_TOKEN_WRONG_VERSION', /another version/, 'wrong version');
  t.same(verifyChunkToken(SECRET, read, { handle: 42, mode: 'read' }, NOW), { ...grant, mode: 'read' }, 'no version asked: the grant is returned');
  expectRefused(t, verdict(SECRET, read, 43, undefined, NOW, 'read'), 'CHUNK_TOKEN_WRONG_CHUNK', /another chunk/, 'no version asked, wrong handle');
  const noVersion = signRaw(SECRET, JSON.stringify({ handle: 42, mode: 'read', expiresAtMs: NOW + 1000 }));
  expectRefused(t, verdict(SECRET, noVersion, 42, undefined, NOW, 'read'), 'CHUNK_TOKEN_WRONG_VERSION', /another version/, 'a grant without a version');
});

t.test('a token signed with another secret is rejected', async (t) => {
  const token = signWriteToken(OTHER, grant);
  expectRefused(t, verdict(SECRET, token, 42, 3, NOW), 'CHUNK_TOKEN_INVALID', /signature is invalid/, 'other secret');
  const prefixSecret = Buffer.from(SECRET.subarray(0, SECRET.length - 1));
  expectRefused(t, verdict(prefixSecret, signWriteToken(SECRET, grant), 42, 3, NOW), 'CHUNK_TOKEN_INVALID', /signature is invalid/, 'secret one byte shorter');
  t.not(signWriteToken(OTHER, grant), signWriteToken(SECRET, grant), 'different secrets sign differently');
});

t.test('a tampered token is rejected', async (t) => {
  const token = signWriteToken(SECRET, grant);
  const [payload, sig] = token.split('.') as [string, string];

  // payload swapped for another grant, signature kept
  const forged = Buffer.from(JSON.stringify({ ...grant, expiresAtMs: NOW + 10 ** 9 })).toString('base64url');
  expectRefused(t, verdict(SECRET, `${forged}.${sig}`, 42, 3, NOW), 'CHUNK_TOKEN_INVALID', /signature is invalid/, 'extended expiry');
  const otherHandle = Buffer.from(JSON.stringify({ ...grant, handle: 7 })).toString('base64url');
  expectRefused(t, verdict(SECRET, `${otherHandle}.${sig}`, 7, 3, NOW), 'CHUNK_TOKEN_INVALID', /signature is invalid/, 'other handle');

  // every single-character change to payload or signature
  const alphabet = 'AQgw_-';
  const accepted: string[] = [];
  for (let i = 0; i < token.length; i++) {
    if (token[i] === '.') continue;
    for (const c of alphabet) {
      if (c === token[i]) continue;
      const t2 = token.slice(0, i) + c + token.slice(i + 1);
      const err = verdict(SECRET, t2, 42, 3, NOW);
      if (!(err instanceof DfsError && isChunkTokenRefusal(err.code))) accepted.push(`${i}:${c}`);
    }
  }
  t.same(accepted, [], 'no single-character edit is accepted');

  expectRefused(t, verdict(SECRET, `${payload}.${sig.slice(0, -1)}`, 42, 3, NOW), 'CHUNK_TOKEN_INVALID', /signature is invalid/, 'truncated signature');
  expectRefused(t, verdict(SECRET, `${payload}.${sig}A`, 42, 3, NOW), 'CHUNK_TOKEN_INVALID', /signature is invalid/, 'extended signature');
  expectRefused(t, verdict(SECRET, `${payload}A.${sig}`, 42, 3, NOW), 'CHUNK_TOKEN_INVALID', /signature is invalid/, 'extended payload');
  expectRefused(t, verdict(SECRET, `${payload}.${payload}`, 42, 3, NOW), 'CHUNK_TOKEN_INVALID', /signature is invalid/, 'payload as signature');
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
    ['over 4096 chars', `${'A'.repeat(4096)}.${sig}`],
    ['unicode', `${payload}é.${sig}`],
  ];
  for (const [name, value] of cases) expectRefused(t, verdict(SECRET, value, 42, 3, NOW), 'CHUNK_TOKEN_INVALID', /missing or malformed/, name);
});

t.test('well-signed payloads that are not grants are rejected', async (t) => {
  expectRefused(t, verdict(SECRET, signRaw(SECRET, 'not json'), 42, 3, NOW), 'CHUNK_TOKEN_INVALID', /payload is malformed/, 'not JSON');
  expectRefused(t, verdict(SECRET, signRaw(SECRET, '{"handle":42'), 42, 3, NOW), 'CHUNK_TOKEN_INVALID', /payload is malformed/, 'truncated JSON');
  expectRefused(t, verdict(SECRET, signRaw(SECRET, '{}'), 42, 3, NOW), 'CHUNK_TOKEN_WRONG_CHUNK', /another chunk/, 'empty object');
  expectRefused(t, verdict(SECRET, signRaw(SECRET, '[42,3]'), 42, 3, NOW), 'CHUNK_TOKEN_WRONG_CHUNK', /another chunk/, 'array');
  expectRefused(t, verdict(SECRET, signRaw(SECRET, '"x"'), 42, 3, NOW), 'CHUNK_TOKEN_INVALID', /malformed/, 'string');
  // JSON null parses fine but is not an object: it must be refused, not crash on grant.handle
  const nul = verdict(SECRET, signRaw(SECRET, 'null'), 42, 3, NOW);
  t.ok(nul, 'a null payload is not accepted');
  t.equal((nul as DfsError | undefined)?.code, 'CHUNK_TOKEN_INVALID', 'a null payload is CHUNK_TOKEN_INVALID');
});

const PIPE = [{ id: 'cs1', addr: '127.0.0.1:7001' }, { id: 'cs2', addr: '127.0.0.1:7002' }, { id: 'cs3', addr: '127.0.0.1:7003' }];

/** What verifyChunkToken threw on server `server`, or undefined when it accepted. */
function on(server: string, token: string, mode: ChunkAccessMode | ChunkAccessMode[], version: number | undefined = 3): Error | undefined {
  try {
    verifyChunkToken(SECRET, token, { handle: 42, version, mode, server }, NOW);
  } catch (err) {
    return err as Error;
  }
  return undefined;
}

t.test('a write token names its pipeline: a server outside it refuses the token', async (t) => {
  const write = signChunkToken(SECRET, { ...grant, servers: PIPE });
  for (const s of PIPE) t.equal(on(s.id, write, 'write'), undefined, `accepted on ${s.id}, in the pipeline`);
  expectRefused(t, on('cs4', write, 'write'), 'CHUNK_TOKEN_WRONG_SERVER', /does not name this server \(cs4\)/, 'replayed on cs4, outside the allocation');
  expectRefused(t, on('cs1', signChunkToken(SECRET, grant), 'write'), 'CHUNK_TOKEN_WRONG_SERVER', /does not name this server/, 'a write token naming no servers');
  expectRefused(t, on('cs1', signChunkToken(SECRET, { ...grant, servers: [] }), 'write'), 'CHUNK_TOKEN_WRONG_SERVER', /does not name/, 'an empty pipeline');
  // The address alone does not make a server: an impostor at cs1's address with another id is refused.
  expectRefused(t, on('127.0.0.1:7001', write, 'write'), 'CHUNK_TOKEN_WRONG_SERVER', /does not name/, 'an id that is only an address of the pipeline');
  const edited = Buffer.from(JSON.stringify({ ...grant, servers: [...PIPE, { id: 'cs4', addr: '127.0.0.1:7004' }] })).toString('base64url');
  expectRefused(t, on('cs4', `${edited}.${write.split('.')[1]!}`, 'write'), 'CHUNK_TOKEN_INVALID', /signature is invalid/, 'cs4 added to the payload, signature kept');
  const badServers = signRaw(SECRET, JSON.stringify({ ...grant, servers: ['cs1'] }));
  expectRefused(t, on('cs1', badServers, 'write'), 'CHUNK_TOKEN_INVALID', /payload is malformed/, 'servers of the wrong form');
  const notArray = signRaw(SECRET, JSON.stringify({ ...grant, servers: { id: 'cs1', addr: 'x' } }));
  expectRefused(t, on('cs1', notArray, 'write'), 'CHUNK_TOKEN_INVALID', /payload is malformed/, 'servers not a list');
});

t.test('copy-source tokens: good on the named source, for exactly that chunk, and for nothing but reading', async (t) => {
  const copy = signChunkToken(SECRET, { ...grant, mode: 'copy-source', servers: [PIPE[1]!] });
  t.equal(on('cs2', copy, ['read', 'copy-source']), undefined, 'the source serves it');
  expectRefused(t, on('cs1', copy, ['read', 'copy-source']), 'CHUNK_TOKEN_WRONG_SERVER', /copy-source token does not name this server/, 'another server refuses it');
  expectRefused(t, on('cs2', copy, 'write'), 'CHUNK_TOKEN_WRONG_OPERATION', /grants copy-source, not write/, 'it does not write');
  expectRefused(t, on('cs2', copy, 'read'), 'CHUNK_TOKEN_WRONG_OPERATION', /grants copy-source, not read/, 'a route serving only reads refuses it');
  const other = signChunkToken(SECRET, { ...grant, handle: 43, mode: 'copy-source', servers: [PIPE[1]!] });
  expectRefused(t, on('cs2', other, ['read', 'copy-source']), 'CHUNK_TOKEN_WRONG_CHUNK', /another chunk/, 'a copy-source token for another chunk');
  const old = signChunkToken(SECRET, { ...grant, version: 2, mode: 'copy-source', servers: [PIPE[1]!] });
  expectRefused(t, on('cs2', old, ['read', 'copy-source']), 'CHUNK_TOKEN_WRONG_VERSION', /another version/, 'for another version');
  const expired = signChunkToken(SECRET, { ...grant, mode: 'copy-source', servers: [PIPE[1]!], expiresAtMs: NOW });
  expectRefused(t, on('cs2', expired, ['read', 'copy-source']), 'CHUNK_TOKEN_EXPIRED', /expired; the master orders the copy again/, 'expired');
  const unnamed = signChunkToken(SECRET, { ...grant, mode: 'copy-source' });
  expectRefused(t, on('cs2', unnamed, ['read', 'copy-source']), 'CHUNK_TOKEN_WRONG_SERVER', /does not name/, 'a copy-source token naming no source');
  // A read token from stat names no servers: any replica serves it (replicas move; the reader re-stats).
  t.equal(on('cs9', signChunkToken(SECRET, { ...grant, mode: 'read' }), ['read', 'copy-source']), undefined, 'a read token is good on any replica');
  expectRefused(t, on('cs9', signChunkToken(SECRET, { ...grant, mode: 'read', servers: [PIPE[0]!] }), 'read'), 'CHUNK_TOKEN_WRONG_SERVER', /does not name/, 'a read token that names servers is good on those only');
  expectRefused(t, on('cs1', signChunkToken(SECRET, { ...grant, servers: PIPE }), ['read', 'copy-source']), 'CHUNK_TOKEN_WRONG_OPERATION', /grants write, not read or copy-source/, 'a write token to read');
});

t.test('every refusal code is a chunk token refusal, and only those', async (t) => {
  for (const code of ['CHUNK_TOKEN_INVALID', 'CHUNK_TOKEN_EXPIRED', 'CHUNK_TOKEN_WRONG_CHUNK', 'CHUNK_TOKEN_WRONG_VERSION', 'CHUNK_TOKEN_WRONG_OPERATION', 'CHUNK_TOKEN_WRONG_SERVER']) {
    t.ok(code in ErrorCodes, `${code} is a code`);
    t.ok(isChunkTokenRefusal(code), `${code}: a fresh token is the fix`);
  }
  for (const code of ['UNAUTHORIZED', 'PIPELINE_FAILED', 'PIPELINE_HOP_NOT_ALLOWED', 'STALE_VERSION']) t.notOk(isChunkTokenRefusal(code), `${code} is not`);
});

t.test('a hop forwards only to the hops the write token names after it, in order', async (t) => {
  const g: ChunkGrant = { ...grant, servers: PIPE };
  const hop = (self: string, next: string[]): Error | undefined => {
    try {
      checkNextHops(g, self, next);
    } catch (err) {
      return err as Error;
    }
    return undefined;
  };
  t.equal(hop('cs1', ['127.0.0.1:7002', '127.0.0.1:7003']), undefined, 'first hop: the rest of the pipeline');
  t.equal(hop('cs2', ['127.0.0.1:7003']), undefined, 'second hop: the last');
  t.equal(hop('cs3', []), undefined, 'the last hop forwards nowhere');
  t.equal(hop('cs1', ['127.0.0.1:7003']), undefined, 'a hop may be left out (fewer replicas, none elsewhere)');
  expectRefused(t, hop('cs1', ['127.0.0.1:9999']), 'PIPELINE_HOP_NOT_ALLOWED', /next hop 127\.0\.0\.1:9999 is not in the pipeline/, 'an address the token does not name (SSRF)');
  expectRefused(t, hop('cs1', ['127.0.0.1:7002', '127.0.0.1:7003', '10.0.0.1:80']), 'PIPELINE_HOP_NOT_ALLOWED', /10\.0\.0\.1:80/, 'one made-up hop at the end');
  expectRefused(t, hop('cs2', ['127.0.0.1:7001']), 'PIPELINE_HOP_NOT_ALLOWED', /not in the pipeline/, 'backwards, to a hop before this one');
  expectRefused(t, hop('cs1', ['127.0.0.1:7003', '127.0.0.1:7002']), 'PIPELINE_HOP_NOT_ALLOWED', /7002/, 'out of order');
  expectRefused(t, hop('cs1', ['127.0.0.1:7002', '127.0.0.1:7002']), 'PIPELINE_HOP_NOT_ALLOWED', /7002/, 'the same hop twice');
  expectRefused(t, hop('cs1', ['127.0.0.1:7001']), 'PIPELINE_HOP_NOT_ALLOWED', /7001/, 'to itself');
  expectRefused(t, hop('cs4', ['127.0.0.1:7002']), 'PIPELINE_HOP_NOT_ALLOWED', /none/, 'a server not in the pipeline may dial nothing');
  t.equal((hop('cs1', ['127.0.0.1:9999']) as DfsError).status, 403, 'status 403');
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
  expectRefused(t, verdict(Buffer.from(b), token, 42, 3, NOW), 'CHUNK_TOKEN_INVALID', /signature is invalid/, 'and distinct from another');
});
