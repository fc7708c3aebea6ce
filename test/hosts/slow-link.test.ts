// Scenario (e) of issue 16: one chunkserver's link is slow (a tbf bandwidth cap on both ends of
// its veth; on the loopback network, its fault proxy's rate cap). Put and get still complete,
// whole, with every pipeline going through the slow server (replication 6 on 6 servers).
import t from 'tap';
import { createHash } from 'node:crypto';
import { randomBytesSeeded } from '../helpers/cluster.js';
import { HostCluster, until } from './host-cluster.js';

t.setTimeout(600_000);
const MiB = 1024 * 1024;
/** 40 Mbit/s: about 5 MB/s each way, a tenth or less of what the other links carry here. */
const CAP_KBIT = 40_000;
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

t.test('a slow link on one chunkserver: put and get through it complete, whole', async (t) => {
  const c = await HostCluster.start({ masters: 3, chunkservers: 6, chunkSize: '4MiB' }, (m) => t.comment(m));
  t.teardown(() => c.stop());
  await until(async () => (await c.liveChunkservers()) === 6, 30_000, 'all 6 chunkservers to register');
  const slow = c.server('cs4');
  if (c.bed) c.bed.capRate(slow.host, CAP_KBIT);
  else slow.proxy!.set({ rateBytesPerSec: (CAP_KBIT * 1000) / 8 });
  const data = randomBytesSeeded(16 * MiB + 99, 5);
  const began = performance.now();
  const put = await c.dfs(['put', '--replication', '6', '-', '/slow.bin'], { input: data, timeoutMs: 90_000 });
  const putMs = performance.now() - began;
  t.equal(put.code, 0, `put completes (${put.stderr.trim()})`);
  const stat = await c.dfs(['stat', '--json', '/slow.bin']);
  const chunks = (JSON.parse(stat.stdout.toString()) as { chunks: { replicas: { id: string }[] }[] }).chunks;
  t.ok(chunks.every((ch) => ch.replicas.some((r) => r.id === slow.id)), `every chunk has a replica on ${slow.id}: every pipeline went through the slow link`);
  // Reads rotate over the replicas, so some of them come from the slow server.
  const getBegan = performance.now();
  const get = await c.dfs(['cat', '/slow.bin'], { timeoutMs: 90_000 });
  const getMs = performance.now() - getBegan;
  t.equal(get.code, 0, get.stderr);
  t.equal(sha(get.stdout), sha(data), 'the same bytes come back');
  t.comment(`with ${slow.id} capped at ${CAP_KBIT / 1000} Mbit/s: put of 16 MiB x 6 replicas ${putMs.toFixed(0)} ms, get ${getMs.toFixed(0)} ms`);
  if (c.bed) c.bed.capRate(slow.host, undefined);
  else slow.proxy!.heal();
});
