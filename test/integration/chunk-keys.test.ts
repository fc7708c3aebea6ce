// Chunk access tokens under the masters' rotating keys, with real processes: after `dfs admin
// rotate-keys` the leader signs chunk tokens with the new key once every chunkserver holds it (they
// learn it sealed in their heartbeat replies), puts and gets go on, old tokens still verify; after
// `dfs admin drop-old-keys` every chunkserver refuses tokens of the old keys, the cluster secret
// alone no longer makes a chunk token, and puts and gets still work.
import t from 'tap';
import { readFileSync } from 'node:fs';
import { request } from 'undici';
import { DfsClient } from '../../cli/client.js';
import { signChunkToken } from '../../common/auth.js';
import { initChecksums } from '../../common/checksum.js';
import { closeHttpAgent } from '../../common/http.js';
import type { ChunkInfo } from '../../common/protocol.js';
import { randomBytesSeeded, TestCluster, waitFor } from '../helpers/cluster.js';

await initChecksums();
t.teardown(() => closeHttpAgent());

const CHUNK = 64 * 1024;

async function readCode(addr: string, chunk: ChunkInfo, token: string): Promise<{ status: number; code?: string; reason?: string }> {
  const res = await request(`http://${addr}/v1/chunks/${chunk.handle}?version=${chunk.version}`, { headers: { 'x-dfs-token': token } });
  const body = Buffer.from(await res.body.arrayBuffer());
  if (res.statusCode === 200) return { status: 200 };
  const e = (JSON.parse(body.toString()) as { error: { code: string; reason?: string } }).error;
  return { status: res.statusCode, code: e.code, reason: e.reason };
}

t.test('chunk tokens follow key rotation; dropped keys are refused by every chunkserver', async (t) => {
  const c = await TestCluster.start({ chunkservers: 3, chunkSizeBytes: CHUNK, replication: 3 });
  t.teardown(() => c.stop());
  const secret = Buffer.from(readFileSync(c.secretFile, 'utf8').trim());
  const a = randomBytesSeeded(2 * CHUNK + 10, 21);
  t.equal((await c.dfs(['put', '-', '/a.bin'], { input: a })).code, 0, 'put before rotation');
  const admin = new DfsClient(c.masters.split(','));
  const first = (await admin.stat('/a.bin', true)).chunks![0]!;
  t.notMatch(first.token, /^k\d+\./, 'before rotation chunk tokens are k0 (the cluster secret)');

  t.equal((await c.dfs(['admin', 'rotate-keys'])).code, 0, 'rotate-keys');
  await waitFor(async () => /^k1\./.test((await admin.stat('/a.bin', true)).chunks![0]!.token), 30_000, 'chunk tokens signed with k1');
  const k1 = (await admin.stat('/a.bin', true)).chunks![0]!;
  for (const r of k1.replicas) t.equal((await readCode(r.addr, k1, k1.token)).status, 200, `${r.id} reads with a k1 token`);
  for (const r of first.replicas) t.equal((await readCode(r.addr, first, first.token)).status, 200, `${r.id} still reads with the k0 token`);
  const b = randomBytesSeeded(3 * CHUNK, 22);
  t.equal((await c.dfs(['put', '-', '/b.bin'], { input: b })).code, 0, 'put with k1 write tokens');
  t.ok((await c.dfs(['cat', '/b.bin'])).stdout.equals(b), 'and get');

  const made = await c.dfs(['token', 'create', '--admin', '--json', '--name', 'after']);
  const after = (JSON.parse(made.stdout.toString()) as { token: string }).token;
  const env = { DFS_TOKEN: after };
  t.equal((await c.dfs(['admin', 'drop-old-keys'], { env })).code, 0, 'drop-old-keys');
  const forged = signChunkToken(secret, { handle: first.handle, version: first.version, mode: 'read', expiresAtMs: Date.now() + 60_000 });
  await waitFor(async () => {
    for (const r of first.replicas) if ((await readCode(r.addr, first, first.token)).code !== 'CHUNK_TOKEN_INVALID') return false;
    return true;
  }, 30_000, 'every chunkserver refuses the k0 token');
  for (const r of first.replicas) {
    const refused = await readCode(r.addr, first, forged);
    t.equal(refused.code, 'CHUNK_TOKEN_INVALID', `${r.id}: a token made with the cluster secret alone is refused`);
    t.equal(refused.reason, 'unknown-key', `${r.id}: because k0 was dropped`);
  }
  for (const r of k1.replicas) t.equal((await readCode(r.addr, k1, k1.token)).status, 200, `${r.id} reads with the k1 token`);
  const d = randomBytesSeeded(CHUNK + 5, 23);
  t.equal((await c.dfs(['put', '-', '/d.bin'], { input: d })).code !== 0, true, 'the old admin token (k0) cannot put any more');
  t.equal((await c.dfs(['put', '-', '/d.bin'], { input: d, env })).code, 0, 'put with the new admin token');
  for (const [path, want] of [['/a.bin', a], ['/b.bin', b], ['/d.bin', d]] as const) {
    t.ok((await c.dfs(['cat', path], { env })).stdout.equals(want), `${path} reads back`);
  }
});
