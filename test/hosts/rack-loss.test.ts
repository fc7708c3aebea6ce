// Scenario (f) of issue 16: placement spans two racks and every file survives the loss of a
// whole rack. Each chunkserver's config names its host's rack (rack1: cs1-cs3, rack2: cs4-cs6);
// placement keeps at most 2 of a chunk's 3 replicas in one rack (master/racks.ts), so cutting
// rack 2 off (the inter-rack link down, or on the loopback network its processes killed) leaves
// every chunk a replica in rack 1. Without racks, a chunk had every replica in one rack with
// probability 2 * C(3,3) / C(6,3) = 1/10.
import t from 'tap';
import { createHash } from 'node:crypto';
import { randomBytesSeeded } from '../helpers/cluster.js';
import { HostCluster, until } from './host-cluster.js';

t.setTimeout(600_000);
const MiB = 1024 * 1024;
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const RACK2 = ['cs4', 'cs5', 'cs6'];

t.test('placement spans two racks and survives the loss of a whole rack', async (t) => {
  const c = await HostCluster.start({ masters: 3, chunkservers: 6, chunkSize: '1MiB' }, (m) => t.comment(m));
  t.teardown(() => c.stop());
  await until(async () => (await c.liveChunkservers()) === 6, 30_000, 'all 6 chunkservers to register');
  const files = [{ path: '/racks/f.bin', data: randomBytesSeeded(12 * MiB + 5, 40) }];
  for (const f of files) {
    const put = await c.dfs(['put', '-', f.path], { input: f.data });
    t.equal(put.code, 0, `put ${f.path}: ${put.stderr.trim()}`);
  }
  let oneRack = 0;
  let lost = 0;
  for (const f of files) {
    const stat = await c.dfs(['stat', '--json', f.path]);
    const chunks = (JSON.parse(stat.stdout.toString()) as { chunks: { replicas: { id: string }[] }[] }).chunks;
    lost += chunks.filter((ch) => ch.replicas.every((r) => RACK2.includes(r.id))).length;
    oneRack += chunks.filter((ch) => ch.replicas.every((r) => RACK2.includes(r.id)) || ch.replicas.every((r) => !RACK2.includes(r.id))).length;
  }
  t.equal(oneRack, 0, 'no chunk has all its replicas in one rack');
  const status = await c.call({ op: 'status' });
  const tolerance = (status.value as { tolerance?: unknown } | undefined)?.tolerance;
  t.same(tolerance, { servers: 2, racksSafe: ['rack1', 'rack2'], racksAtRisk: [] }, 'status: any 2 servers, and either rack, can be lost');
  t.comment(`chunks with every replica in one rack: ${oneRack}, of which in rack 2 (lost with it): ${lost}`);
  // Rack 2 goes (its switch's uplink; on the loopback network, its processes are killed). m3 is in rack 2: m1 and m2 keep a majority.
  if (c.bed) c.bed.cutRacks(true);
  else for (const id of [...RACK2, 'm3']) await c.signal(id, 'SIGKILL');
  const m3 = await c.call({ op: 'raftStatus', addr: c.server('m3').addr });
  t.notOk(m3.ok, `the cut took: the client in rack 1 no longer reaches m3 in rack 2 (${m3.code})`);
  for (const f of files) {
    const began = performance.now();
    // The client host is in rack 1 and says so (DFS_RACK): it reads each chunk from a replica in
    // rack 1 first, so the cut rack costs it no connect timeout. Bounded all the same.
    const get = await c.dfs(['cat', f.path], { timeoutMs: 45_000, env: { DFS_RACK: 'rack1' } }).catch((err: Error) => ({ code: -1, stdout: Buffer.alloc(0), stderr: err.message }));
    t.comment(`cat ${f.path} took ${(performance.now() - began).toFixed(0)} ms with rack 2 gone`);
    t.equal(get.code, 0, `${f.path} is readable without rack 2 (${get.stderr.trim()})`);
    t.equal(sha(get.stdout), sha(f.data), `${f.path} is whole`);
  }
});
