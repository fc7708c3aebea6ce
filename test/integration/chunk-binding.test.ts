// Chunk access tokens bound tightly, and complete checked against what chunkservers stored, tried
// against real processes as a stranger would: a write token replayed on a chunkserver outside its
// allocation, a `next=` hop the token does not name (nothing may connect to it), tokens of another
// operation or chunk, and completes with lengths or checksums no replica stored.
import t from 'tap';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { request } from 'undici';
import { signChunkToken } from '../../common/auth.js';
import { chunkChecksum, BlockHasher, initChecksums } from '../../common/checksum.js';
import { ChunkPut } from '../../common/chunk-put.js';
import { closeHttpAgent } from '../../common/http.js';
import type { Route } from '../../common/contract/route.js';
import type { AllocateReply, CreateReply, WriteChunkReply } from '../../common/protocol.js';
import { signStoreReceipt } from '../../common/store-receipt.js';
import { ADMIN_TOKEN, randomBytesSeeded, TestCluster } from '../helpers/cluster.js';

await initChecksums();
t.teardown(() => closeHttpAgent());

const CHUNK = 64 * 1024;

interface Answer { status: number; code?: string; body: Record<string, unknown> }

/** A client call to the master, with the test cluster's admin token. */
async function master(c: TestCluster, path: string, body: unknown): Promise<Answer> {
  const res = await request(`http://${c.masterProcs[0]!.addr}${path}`, {
    method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'application/json', authorization: `Bearer ${ADMIN_TOKEN}` },
  });
  const json = (await res.body.json()) as Record<string, unknown> & { error?: { code: string } };
  return { status: res.statusCode, code: json.error?.code, body: json };
}

/** A raw chunk request to one chunkserver, as any process that reaches it could make. */
async function chunkCall(addr: string, handle: number, o: { method: 'GET' | 'PUT'; token: string; version: number; next?: string; body?: Buffer }): Promise<Answer> {
  const q = `version=${o.version}${o.next ? `&next=${o.next}` : ''}`;
  const res = await request(`http://${addr}/v1/chunks/${handle}?${q}`, { method: o.method, body: o.body, headers: { 'x-dfs-token': o.token } });
  const raw = Buffer.from(await res.body.arrayBuffer());
  if (res.statusCode === 200 && o.method === 'GET') return { status: 200, body: { bytes: raw } };
  const json = JSON.parse(raw.toString()) as Record<string, unknown> & { error?: { code: string } };
  return { status: res.statusCode, code: json.error?.code, body: json };
}

function secretOf(c: TestCluster): Buffer {
  return Buffer.from(readFileSync(c.secretFile, 'utf8').trim());
}

/** A listener on a throw-away 127.0.0.1 port that counts who connects. */
async function trap(): Promise<{ server: Server; port: number; connections: () => number }> {
  let n = 0;
  const server = createServer((s) => {
    n++;
    s.destroy();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, port: (server.address() as { port: number }).port, connections: () => n };
}

/** Opens a write at `path` and allocates its first chunk. */
async function openWrite(c: TestCluster, path: string, overwrite = false): Promise<{ writeId: string; alloc: AllocateReply }> {
  const created = await master(c, '/v1/fs/create', { path, overwrite });
  if (created.status !== 200) throw new Error(`create: ${JSON.stringify(created.body)}`);
  const { writeId } = created.body as unknown as CreateReply;
  const alloc = await master(c, '/v1/fs/allocate', { writeId, index: 0 });
  if (alloc.status !== 200) throw new Error(`allocate: ${JSON.stringify(alloc.body)}`);
  return { writeId, alloc: alloc.body as unknown as AllocateReply };
}

/** Streams `data` through the allocated pipeline as the client does; answers the pipeline's reply. */
async function writeChunk(alloc: AllocateReply, data: Buffer): Promise<WriteChunkReply> {
  const put = new ChunkPut({ pipeline: alloc.replicas.map((r) => r.addr), handle: alloc.handle, version: alloc.version, token: alloc.token, timeoutMs: 30_000 });
  await put.write(data);
  put.end();
  return put.result;
}

function checksumOf(data: Buffer): string {
  const h = new BlockHasher();
  h.update(data);
  return chunkChecksum(h.finish());
}

t.test('a write token is good only on the servers of its allocation, and a hop dials only the hops it names', async (t) => {
  const c = await TestCluster.start({ chunkservers: 4, chunkSizeBytes: CHUNK, replication: 2 });
  t.teardown(() => c.stop());
  const secret = secretOf(c);
  const { alloc } = await openWrite(c, '/w.bin');
  t.equal(alloc.replicas.length, 2, 'a pipeline of two');
  const outside = c.chunkservers.find((p) => p && !alloc.replicas.some((r) => r.id === p.id))!;
  const data = randomBytesSeeded(1000, 5);
  const readToken = (server: string) => signChunkToken(secret, { handle: alloc.handle, version: alloc.version, mode: 'read', expiresAtMs: Date.now() + 60_000, servers: [{ id: server, addr: '' }] });

  // Replayed on a chunkserver outside the allocation, with other bytes: refused, nothing stored.
  const replay = await chunkCall(outside.addr, alloc.handle, { method: 'PUT', token: alloc.token, version: alloc.version, body: data });
  t.equal(replay.status, 403, 'replayed on a server outside the allocation: 403');
  t.equal(replay.code, 'CHUNK_TOKEN_WRONG_SERVER', 'CHUNK_TOKEN_WRONG_SERVER');
  const there = await chunkCall(outside.addr, alloc.handle, { method: 'GET', token: readToken(outside.id), version: alloc.version });
  t.equal(there.code, 'CHUNK_NOT_FOUND', 'and the outside server stores nothing');

  // A next= hop the token does not name: refused before anything is dialled.
  const listener = await trap();
  t.teardown(() => listener.server.close());
  const first = alloc.replicas[0]!;
  const bogus = `127.0.0.1:${listener.port}`;
  for (const [name, next] of [['a made-up hop', bogus], ['the allocated hop, then a made-up one', `${alloc.replicas[1]!.addr},${bogus}`], ['the outside server', outside.addr]] as const) {
    const r = await chunkCall(first.addr, alloc.handle, { method: 'PUT', token: alloc.token, version: alloc.version, next, body: data });
    t.equal(r.status, 403, `${name}: 403`);
    t.equal(r.code, 'PIPELINE_HOP_NOT_ALLOWED', `${name}: PIPELINE_HOP_NOT_ALLOWED`);
  }
  const backwards = await chunkCall(alloc.replicas[1]!.addr, alloc.handle, { method: 'PUT', token: alloc.token, version: alloc.version, next: first.addr, body: data });
  t.equal(backwards.code, 'PIPELINE_HOP_NOT_ALLOWED', 'the second hop may not forward back to the first');
  t.equal(listener.connections(), 0, 'nothing connected to the made-up hop');
  const onFirst = await chunkCall(first.addr, alloc.handle, { method: 'GET', token: readToken(first.id), version: alloc.version });
  t.equal(onFirst.code, 'CHUNK_NOT_FOUND', 'and the first hop stored nothing');

  // The allocated pipeline itself works, and each hop's reply carries its receipt.
  const reply = await writeChunk(alloc, data);
  t.same(reply.replicas.map((r) => r.id), alloc.replicas.map((r) => r.id), 'the allocated pipeline stores the chunk');
  t.ok(reply.replicas.every((r) => typeof r.receipt === 'string'), 'every hop signed a receipt');
  t.equal(listener.connections(), 0, 'still nothing connected to the made-up hop');
});

/** Two tests below kill nothing and count nothing cluster-wide: they share one cluster (3 chunkservers, replication 3), one start fewer. */
let shared: Promise<TestCluster> | undefined;
const sharedCluster = (): Promise<TestCluster> => (shared ??= TestCluster.start({ chunkservers: 3, chunkSizeBytes: CHUNK, replication: 3 }));
t.teardown(async () => { if (shared) await (await shared).stop(); });

t.test('tokens of another operation or another chunk are refused', async (t) => {
  const c = await sharedCluster();
  const secret = secretOf(c);
  const data = randomBytesSeeded(2 * CHUNK, 6);
  t.equal((await c.dfs(['put', '-', '/two.bin'], { input: data })).code, 0);
  const { alloc } = await openWrite(c, '/three.bin');
  const { DfsClient } = await import('../../cli/client.js');
  type Route = { path: string };
  const info = await new DfsClient(c.masters.split(',')).stat('/two.bin', true);
  const [a, b] = info.chunks! as [NonNullable<typeof info.chunks>[number], NonNullable<typeof info.chunks>[number]];
  const holder = a.replicas[0]!;
  const soon = Date.now() + 60_000;

  const readAsWrite = await chunkCall(alloc.replicas[0]!.addr, alloc.handle, {
    method: 'PUT', version: alloc.version, body: Buffer.alloc(10),
    token: signChunkToken(secret, { handle: alloc.handle, version: alloc.version, mode: 'read', expiresAtMs: soon }),
  });
  t.equal(readAsWrite.code, 'CHUNK_TOKEN_WRONG_OPERATION', 'a read token used to write');
  const writeAsRead = await chunkCall(holder.addr, a.handle, {
    method: 'GET', version: a.version, token: signChunkToken(secret, { handle: a.handle, version: a.version, mode: 'write', expiresAtMs: soon, servers: a.replicas }),
  });
  t.equal(writeAsRead.code, 'CHUNK_TOKEN_WRONG_OPERATION', 'a write token (naming this server) used to read');
  const allocAsRead = await chunkCall(alloc.replicas[0]!.addr, alloc.handle, { method: 'GET', version: alloc.version, token: alloc.token });
  t.equal(allocAsRead.code, 'CHUNK_TOKEN_WRONG_OPERATION', 'the write token from allocate used to read');

  const copyOf = (handle: number, server: { id: string; addr: string }) => signChunkToken(secret, { handle, version: a.version, mode: 'copy-source', expiresAtMs: soon, servers: [server] });
  const otherChunk = await chunkCall(holder.addr, a.handle, { method: 'GET', version: a.version, token: copyOf(b.handle, holder) });
  t.equal(otherChunk.code, 'CHUNK_TOKEN_WRONG_CHUNK', 'a copy-source token for another chunk');
  const elsewhere = a.replicas.find((r) => r.id !== holder.id)!;
  const otherSource = await chunkCall(elsewhere.addr, a.handle, { method: 'GET', version: a.version, token: copyOf(a.handle, holder) });
  t.equal(otherSource.code, 'CHUNK_TOKEN_WRONG_SERVER', 'a copy-source token presented to a server other than its source');
  const copyAsWrite = await chunkCall(alloc.replicas[0]!.addr, alloc.handle, { method: 'PUT', version: alloc.version, body: Buffer.alloc(10), token: copyOf(alloc.handle, alloc.replicas[0]!) });
  t.equal(copyAsWrite.code, 'CHUNK_TOKEN_WRONG_OPERATION', 'a copy-source token used to write');
  const good = await chunkCall(holder.addr, a.handle, { method: 'GET', version: a.version, token: copyOf(a.handle, holder) });
  t.equal(good.status, 200, 'the copy-source token for this chunk on its source reads');
  t.ok((good.body.bytes as Buffer).equals(data.subarray(0, CHUNK)), 'its bytes');
});

t.test('complete is checked against what the chunkservers stored; a refused one changes nothing and costs no log entry', async (t) => {
  const c = await TestCluster.start({ chunkservers: 3, chunkSizeBytes: CHUNK, replication: 2 });
  t.teardown(() => c.stop());
  const secret = secretOf(c);
  const before = randomBytesSeeded(3000, 7);
  t.equal((await c.dfs(['put', '-', '/f.bin'], { input: before })).code, 0, 'a file to overwrite');
  const { writeId, alloc } = await openWrite(c, '/f.bin', true);
  const data = randomBytesSeeded(5000, 8);
  const reply = await writeChunk(alloc, data);
  const checksum = checksumOf(data);
  t.equal(reply.checksum, checksum, 'stored what was sent');
  const receipts = reply.replicas.map((r) => r.receipt!);
  const commitIndex = async () => ((await (await request(`http://${c.masterProcs[0]!.addr}/v1/raft/status`)).body.json()) as { commitIndex: number }).commitIndex;
  const indexBefore = await commitIndex();

  const chunk = { handle: alloc.handle, length: data.length, checksum, receipts };
  const otherChecksum = checksumOf(randomBytesSeeded(5000, 9));
  const cases: Array<[string, Record<string, unknown>, string]> = [
    ['a wrong checksum', { ...chunk, checksum: otherChecksum }, 'checksum'],
    ['a wrong length (the file said shorter)', { ...chunk, length: 4000 }, 'length'],
    ['no receipts', { ...chunk, receipts: [] }, 'unreported'],
    ['a receipt signed with another secret', { ...chunk, receipts: [signStoreReceipt(Buffer.from('another-cluster-secret-0123'), { server: alloc.replicas[0]!.id, handle: alloc.handle, version: alloc.version, length: data.length, checksum })] }, 'receipt'],
    ['a real receipt beside a made-up one', { ...chunk, receipts: [receipts[0]!, `${receipts[1]!.split('.')[0]}x.${receipts[1]!.split('.')[1]}`] }, 'receipt'],
    ['replica hints only', { handle: alloc.handle, length: data.length, checksum, replicas: alloc.replicas.map((r) => r.id) }, 'unreported'],
  ];
  for (const [name, ch, reason] of cases) {
    const r = await master(c, '/v1/fs/complete', { writeId, length: (ch.length as number), chunks: [ch] });
    t.equal(r.status, 409, `${name}: 409`);
    t.equal(r.code, 'COMPLETE_MISMATCH', `${name}: COMPLETE_MISMATCH`);
    t.equal((r.body.error as { reason?: string }).reason, reason, `${name}: reason ${reason}`);
  }
  // A receipt for another chunk (the previous file's) does not vouch for this one.
  const { DfsClient } = await import('../../cli/client.js');
  const old = (await new DfsClient(c.masters.split(',')).stat('/f.bin', true)).chunks![0]!;
  const borrowed = signStoreReceipt(secret, { server: alloc.replicas[0]!.id, handle: old.handle, version: old.version, length: data.length, checksum });
  const r = await master(c, '/v1/fs/complete', { writeId, length: data.length, chunks: [{ ...chunk, receipts: [borrowed] }] });
  t.equal(r.code, 'COMPLETE_MISMATCH', 'a receipt for another chunk: COMPLETE_MISMATCH');
  const count = await master(c, '/v1/fs/complete', { writeId, length: data.length, chunks: [chunk, chunk] });
  t.equal(count.code, 'INVALID_ARGUMENT', 'more chunks than allocated: INVALID_ARGUMENT');

  t.equal(await commitIndex(), indexBefore, 'no refused complete reached the Raft log');
  const still = await c.dfs(['cat', '/f.bin']);
  t.ok(still.stdout.equals(before), 'the file is as it was');

  const done = await master(c, '/v1/fs/complete', { writeId, length: data.length, chunks: [chunk] });
  t.equal(done.status, 200, 'the true complete, with its receipts: 200');
  const after = await c.dfs(['cat', '/f.bin']);
  t.ok(after.stdout.equals(data), 'and the file has the new bytes');
  const again = await master(c, '/v1/fs/complete', { writeId, length: data.length, chunks: [chunk] });
  t.equal(again.code, 'WRITE_NOT_FOUND', 'completing it again: WRITE_NOT_FOUND');
  // An unknown write id with a long chunk list: a client's mistake (404), proposed without its chunks.
  const many = Array.from({ length: 5000 }, (_, i) => ({ handle: i + 1, length: CHUNK, checksum, receipts: [receipts[0]!] }));
  const unknown = await master(c, '/v1/fs/complete', { writeId: 'no-such-write-0123', length: 5000 * CHUNK, chunks: many });
  t.equal(unknown.status, 404, 'an unknown write: 404');
  t.equal(unknown.code, 'WRITE_NOT_FOUND', 'WRITE_NOT_FOUND');
});

t.test('a writer whose write token expired allocates again and leaves no healthy server out', async (t) => {
  const c = await sharedCluster();
  const secret = secretOf(c);
  const { DfsClient } = await import('../../cli/client.js');
  const { Readable } = await import('node:stream');
  const client = new DfsClient(c.masters.split(','));
  const realMutate = client.mutate.bind(client);
  let allocations = 0;
  // The first allocate call hands out a token that has already expired (a writer that stalled).
  // Chunk 0 comes with the create (CreateRequest.allocate), so that is chunk 1's.
  client.mutate = (async (route: Route, body: unknown) => {
    const reply = await realMutate(route as never, body as never);
    if (route.path !== '/v1/fs/allocate' || allocations++ > 0) return reply;
    const a = reply as AllocateReply;
    return { ...a, token: signChunkToken(secret, { handle: a.handle, version: a.version, mode: 'write', expiresAtMs: Date.now() - 1, servers: a.replicas }) };
  }) as typeof client.mutate;
  const retries: string[] = [];
  const data = randomBytesSeeded(CHUNK + 100, 10);
  await client.put(Readable.from([data]), '/late.bin', { onRetry: (m) => retries.push(m) });
  t.equal(allocations, 2, 'the refused chunk was allocated again (chunk 1 twice; chunk 0 came with the create)');
  t.equal(retries.length, 1, 'one retry');
  t.match(retries[0], /expired/, 'because the token expired');
  t.notMatch(retries[0], /leaving out/, 'and no server was left out for it');
  const got = await c.dfs(['cat', '/late.bin']);
  t.ok(got.stdout.equals(data), 'the file reads back whole');
});
