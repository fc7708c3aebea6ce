// A put's create asks for chunk 0 too (CreateRequest.allocate): against a real cluster a file of
// one chunk takes no allocate call of its own and one of three chunks two, and both read back as
// written; a create with `allocate` for an empty file is refused; and a client talking to a
// master from before that field (which refuses it as an unknown key) creates without it from then
// on, allocating chunk 0 as any chunk.
import t from 'tap';
import { Readable, Writable } from 'node:stream';
import { DfsClient } from '../../cli/client.js';
import { Uploader } from '../../cli/client-upload.js';
import type { MetaClient } from '../../cli/client-meta.js';
import { FS } from '../../common/contract/index.js';
import { DfsError } from '../../common/errors.js';
import { closeHttpAgent } from '../../common/http.js';
import { ADMIN_TOKEN, TestCluster, randomBytesSeeded } from '../helpers/cluster.js';

t.teardown(() => closeHttpAgent());

t.test('against a real cluster', async (t) => {
  t.setTimeout(180_000);
  const c = await TestCluster.start({ masters: 3, chunkservers: 3, replication: 2, chunkSizeBytes: 64 * 1024 });
  t.teardown(() => c.stop());
  const client = new DfsClient(c.masters.split(','), { token: ADMIN_TOKEN });
  // Allocate calls any master answered (a leader change in between would move the count).
  const allocates = async () => {
    let n = 0;
    for (const proc of c.masterProcs) {
      const text = await (await fetch(`http://${proc.addr}/metrics`)).text();
      n += Number(/^dfs_master_requests_total\{[^}]*\bop="allocate"[^}]*\} (\d+)/m.exec(text)?.[1] ?? 0);
    }
    return n;
  };
  const readBack = async (path: string) => {
    const parts: Buffer[] = [];
    await client.get(path, new Writable({ write(b: Buffer, _e, done) { parts.push(b); done(); } }));
    return Buffer.concat(parts);
  };
  const one = randomBytesSeeded(10_000, 1); // a chunk (a test cluster keeps no file inline)
  const three = randomBytesSeeded(150 * 1024, 2); // three chunks of 64 KiB
  await client.put(Readable.from([one]), '/ca/warm', { parents: true }); // the client's session and leader, first
  const before = await allocates();
  await client.put(Readable.from([one]), '/ca/one', { parents: true });
  t.equal(await allocates(), before, 'a file of one chunk: no allocate call');
  await client.put(Readable.from([three]), '/ca/three');
  t.equal(await allocates(), before + 2, 'a file of three chunks: chunks 1 and 2 only');
  t.ok((await readBack('/ca/one')).equals(one), 'the one-chunk file reads back as written');
  t.ok((await readBack('/ca/three')).equals(three), 'the three-chunk file too');
  t.equal((await client.stat('/ca/three')).chunkCount, 3);
  // Over a file it made, without overwrite: refused, with no chunk placed for it; then with overwrite, one allocate-free create.
  await t.rejects(client.put(Readable.from([one]), '/ca/one'), { code: 'EXISTS' });
  await client.put(Readable.from([three.subarray(0, 5000)]), '/ca/one', { overwrite: true });
  t.equal(await allocates(), before + 2, 'still no allocate call of its own');
  t.ok((await readBack('/ca/one')).equals(three.subarray(0, 5000)), 'the overwrite reads back');
  const refused = await client.mutate(FS.create, { path: '/ca/empty', overwrite: false, parents: false, empty: true, allocate: {} }).catch((e: DfsError) => e);
  t.equal((refused as DfsError).code, 'INVALID_ARGUMENT', 'allocate with an empty file is refused');
  // How a master answers a field it does not know: what createWrite (and the gateway's removeDir) look for.
  const unknown = await client.mutate(FS.create, { path: '/ca/u', overwrite: false, parents: false, empty: false, bogus: 1 } as never).catch((e: DfsError) => e);
  t.equal((unknown as DfsError).code, 'INVALID_ARGUMENT');
  t.match((unknown as DfsError).message, /Unrecognized keys?: .*"bogus"/, 'an unknown key is named as the fallbacks expect');
  await t.rejects(client.stat('/ca/empty'), { code: 'NOT_FOUND' }, 'and nothing was made');
});

t.test('a master from before: the create alone, from then on', async (t) => {
  const calls: string[] = [];
  const meta = {
    async mutate(route: { path: string }, body: Record<string, unknown>) {
      calls.push(`${route.path}${'allocate' in body ? ' +allocate' : ''}`);
      if (route === FS.create && 'allocate' in body) throw new DfsError('INVALID_ARGUMENT', 'Unrecognized key: "allocate"');
      if (route === FS.create) return { writeId: 'w1', path: body.path, chunkSizeBytes: 1024, replication: 1, leaseMs: 60_000 };
      if (route === FS.allocate) throw new DfsError('NO_CHUNKSERVERS', 'no chunkserver can take the chunk');
      return { ok: true };
    },
    async inlineMaxBytes() { return 0; },
    reportUnreachable() { /* none */ },
  } as unknown as MetaClient;
  const uploader = new Uploader(meta, { maxChunkAttempts: 1, chunkTimeoutMs: 1000 });
  await t.rejects(uploader.put(Readable.from([Buffer.from('bytes')]), '/x', { inline: false }), { code: 'NO_CHUNKSERVERS' });
  await t.rejects(uploader.put(Readable.from([Buffer.from('bytes')]), '/y', { inline: false }), { code: 'NO_CHUNKSERVERS' });
  t.same(calls, [
    '/v1/fs/create +allocate', '/v1/fs/create', '/v1/fs/allocate', '/v1/fs/abandon',
    '/v1/fs/create', '/v1/fs/allocate', '/v1/fs/abandon',
  ], 'refused once, then the create alone, and chunk 0 allocated as any chunk');
});
