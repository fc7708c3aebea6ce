// Chunk access tokens with real processes: a chunkserver serves a chunk only with a read token
// the master signed for exactly that chunk and version; a client whose token expired re-stats
// once and reads on; re-replication after a kill -9 still heals (copy orders carry tokens).
import t from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { request } from 'undici';
import { DfsClient } from '../../cli/client.js';
import { signChunkToken, type ChunkGrant } from '../../common/auth.js';
import { initChecksums } from '../../common/checksum.js';
import { closeHttpAgent } from '../../common/http.js';
import type { ChunkInfo, StatReply } from '../../common/protocol.js';
import { randomBytesSeeded, TestCluster, waitFor } from '../helpers/cluster.js';

await initChecksums();
t.teardown(() => closeHttpAgent());

const CHUNK = 128 * 1024;

function collector(): { sink: Writable; bytes(): Buffer } {
  const got: Buffer[] = [];
  const sink = new Writable({ write(piece: Buffer, _enc, done) { got.push(Buffer.from(piece)); done(); } });
  return { sink, bytes: () => Buffer.concat(got) };
}

/** A direct chunk read as any process could try it: status and error code. */
async function readDirect(addr: string, chunk: { handle: number; version: number }, token?: string, method: 'GET' | 'HEAD' = 'GET', version = chunk.version): Promise<{ status: number; code?: string; message?: string; body: Buffer }> {
  const res = await request(`http://${addr}/v1/chunks/${chunk.handle}?version=${version}`, { method, headers: token === undefined ? {} : { 'x-dfs-token': token } });
  const body = Buffer.from(await res.body.arrayBuffer());
  if (res.statusCode === 200 || method === 'HEAD') return { status: res.statusCode, body };
  const err = (JSON.parse(body.toString()) as { error: { code: string; message: string } }).error;
  return { status: res.statusCode, code: err.code, message: err.message, body };
}

t.test('a chunkserver serves a chunk only with a valid read token for it', async (t) => {
  const c = await TestCluster.start({ chunkservers: 3, chunkSizeBytes: CHUNK });
  t.teardown(() => c.stop());
  const data = randomBytesSeeded(2 * CHUNK + 100, 91);
  t.equal((await c.dfs(['put', '-', '/f.bin'], { input: data })).code, 0);
  const client = new DfsClient(c.masters.split(','));
  const info = await client.stat('/f.bin', true);
  const [first, second] = info.chunks! as [ChunkInfo, ChunkInfo];
  const addr = first.replicas[0]!.addr;
  const secret = Buffer.from(readFileSync(c.secretFile, 'utf8').trim());
  const grant: ChunkGrant = { handle: first.handle, version: first.version, mode: 'read', expiresAtMs: Date.now() + 60_000 };

  t.type(first.token, 'string', 'stat with chunks gives each chunk a token');
  const ok = await readDirect(addr, first, first.token);
  t.equal(ok.status, 200, 'with the token from stat: 200');
  t.ok(ok.body.equals(data.subarray(0, CHUNK)), 'and the chunk\'s bytes');

  const refused: Array<[string, string | undefined, string, number, RegExp]> = [
    ['no token', undefined, 'CHUNK_TOKEN_INVALID', 401, /missing or malformed read or copy-source token/],
    ['garbage', 'not-a-token', 'CHUNK_TOKEN_INVALID', 401, /missing or malformed/],
    ['signed with another secret', signChunkToken(Buffer.from('another-cluster-secret-0123'), grant), 'CHUNK_TOKEN_INVALID', 401, /signature is invalid/],
    ['payload edited (expiry pushed out), signature kept', `${Buffer.from(JSON.stringify({ ...grant, expiresAtMs: Date.now() + 10 ** 9 })).toString('base64url')}.${first.token.split('.')[1]}`, 'CHUNK_TOKEN_INVALID', 401, /signature is invalid/],
    ['expired', signChunkToken(secret, { ...grant, expiresAtMs: Date.now() - 1 }), 'CHUNK_TOKEN_EXPIRED', 401, /token has expired/],
    ['a write token for the same chunk', signChunkToken(secret, { ...grant, mode: 'write' }), 'CHUNK_TOKEN_WRONG_OPERATION', 403, /grants write, not read/],
    ['the token of another chunk', second.token, 'CHUNK_TOKEN_WRONG_CHUNK', 403, /another chunk/],
    ['a token for another version', signChunkToken(secret, { ...grant, version: first.version + 1 }), 'CHUNK_TOKEN_WRONG_VERSION', 403, /another version/],
  ];
  for (const [name, token, code, status, why] of refused) {
    const r = await readDirect(addr, first, token);
    t.equal(r.status, status, `${name}: ${status}`);
    t.equal(r.code, code, `${name}: ${code}`);
    t.match(r.message, why, `${name}: says why`);
  }
  t.equal((await readDirect(addr, first, undefined, 'HEAD')).status, 401, 'HEAD without a token: 401');
  const stale = await readDirect(addr, first, signChunkToken(secret, { ...grant, version: first.version + 1 }), 'GET', first.version + 1);
  t.equal(stale.code, 'STALE_VERSION', 'a valid token for a version this replica does not hold: STALE_VERSION, no bytes');
  const absent = await readDirect(addr, { handle: 999_999, version: 1 }, undefined);
  t.equal(absent.status, 401, 'a handle not stored here, without a token: 401, not 404 (a stranger learns nothing)');

  const listing = await request(`http://${addr}/v1/chunks`);
  await listing.body.dump();
  t.equal(listing.statusCode, 404, 'the chunk listing is gone');

  // A read token cannot write: a PUT with it is refused before any byte is stored.
  const put = await request(`http://${addr}/v1/chunks/${first.handle + 1000}?version=1`, {
    method: 'PUT', body: Buffer.alloc(10), headers: { 'x-dfs-token': signChunkToken(secret, { ...grant, handle: first.handle + 1000, version: 1 }) },
  });
  const putErr = (await put.body.json()) as { error: { code: string; message: string } };
  t.equal(put.statusCode, 403, 'a PUT with a read token: 403');
  t.equal(putErr.error.code, 'CHUNK_TOKEN_WRONG_OPERATION', 'CHUNK_TOKEN_WRONG_OPERATION');
  t.match(putErr.error.message, /grants read, not write/, 'because the token grants read');

  const get = await c.dfs(['cat', '/f.bin']);
  t.equal(get.code, 0, get.stderr);
  t.ok(get.stdout.equals(data), 'dfs cat reads the file with the tokens stat gives');
});

t.test('a client whose read tokens expired stats the file again, once, and reads on', async (t) => {
  const c = await TestCluster.start({ chunkservers: 3, chunkSizeBytes: CHUNK });
  t.teardown(() => c.stop());
  const data = randomBytesSeeded(3 * CHUNK + 7, 92);
  t.equal((await c.dfs(['put', '-', '/e.bin'], { input: data })).code, 0);
  const secret = Buffer.from(readFileSync(c.secretFile, 'utf8').trim());
  const client = new DfsClient(c.masters.split(','));
  const fresh = await client.stat('/e.bin', true);
  const expired = (info: StatReply): StatReply => ({
    ...info, chunks: info.chunks!.map((ch) => ({ ...ch, token: signChunkToken(secret, { handle: ch.handle, version: ch.version, mode: 'read', expiresAtMs: Date.now() - 1 }) })),
  });

  // get: the first stat hands out tokens that have already expired (a download that ran long).
  const realStat = client.stat.bind(client);
  let stats = 0;
  client.stat = async (path: string, withChunks?: boolean) => {
    stats++;
    const info = await realStat(path, withChunks);
    return stats === 1 ? expired(info) : info;
  };
  const a = collector();
  await client.get('/e.bin', a.sink);
  t.ok(a.bytes().equals(data), 'get returns every byte');
  t.equal(stats, 2, 'after one more stat');

  // getRange (the S3 gateway's read): a stat it was handed whose tokens expired since.
  stats = 1; // every later stat is a real one
  const b = collector();
  await client.getRange('/e.bin', b.sink, 100, 2 * CHUNK + 50, expired(fresh));
  t.ok(b.bytes().equals(data.subarray(100, 2 * CHUNK + 50)), 'getRange returns the asked bytes');
  t.equal(stats, 2, 'after one stat, for the first chunk: its fresh tokens serve the rest of the range');

  // Tokens that keep failing are not refreshed forever: the second refusal is the answer.
  client.stat = async (path: string, withChunks?: boolean) => expired(await realStat(path, withChunks));
  await t.rejects(client.get('/e.bin', collector().sink), { message: /expired/ }, 'a get whose fresh tokens are refused too fails, saying why');
});

t.test('kill -9 of a chunkserver: re-replication still heals, each copy order carrying a copy-source token for its source', async (t) => {
  const c = await TestCluster.start({ chunkservers: 4, chunkSizeBytes: CHUNK, deadTimeoutMs: 2000 });
  t.teardown(() => c.stop());
  const data = randomBytesSeeded(6 * CHUNK, 93);
  t.equal((await c.dfs(['put', '-', '/h.bin'], { input: data })).code, 0);
  const client = new DfsClient(c.masters.split(','));
  const before = await client.stat('/h.bin', true);
  const victim = before.chunks![0]!.replicas[0]!.id;
  await c.kill(c.chunkservers[Number(victim.slice(2)) - 1]!);
  await waitFor(async () => {
    const now = await client.stat('/h.bin', true);
    return now.chunks!.every((ch) => ch.replicas.length === 3 && ch.replicas.every((r) => r.id !== victim));
  }, 60_000, 'every chunk back at 3 replicas, none on the killed server');
  t.pass('every chunk has 3 live replicas again');
  const copied = before.chunks!.filter((ch) => ch.replicas.some((r) => r.id === victim)).length;
  t.ok(copied > 0, `${copied} chunks needed a copy`);
  const failedCopies = c.problems().filter((l) => /replica copy failed/.test(l));
  t.same(failedCopies, [], 'no copy was refused');
  const now = await client.stat('/h.bin', true);
  for (const ch of now.chunks!) {
    for (const r of ch.replicas) {
      const got = await readDirect(r.addr, ch, ch.token);
      t.ok(got.status === 200 && got.body.equals(data.subarray(ch.index * CHUNK, (ch.index + 1) * CHUNK)), `chunk ${ch.index} on ${r.id} serves its bytes`);
    }
  }
  t.ok((await c.dfs(['cat', '/h.bin'])).stdout.equals(data), 'the file reads back byte-identical');
});
