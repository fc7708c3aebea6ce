// A master whose data was lost starts an empty namespace; the chunkservers must not take orders
// from it. Before namespace ids, such a master (the README's restart command after `rm -rf
// data/m1`, or a mistyped --data) saw every stored chunk as garbage and had it deleted after the
// grace period: the whole cluster's data, gone.
import t from 'tap';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytesSeeded, TestCluster, waitFor } from '../helpers/cluster.js';

const CHUNK = 256 * 1024;

interface Status { namespaceId?: string; chunkservers: { id: string; alive: boolean }[] }

t.test('chunkservers record their namespace and ignore a master that lost its data', async (t) => {
  const c = await TestCluster.start({ masters: 1, chunkservers: 3, chunkSizeBytes: CHUNK, gcGraceMs: 500 });
  t.teardown(() => c.stop());
  const data = randomBytesSeeded(2 * CHUNK + 99, 3);
  const put = await c.dfs(['put', '-', '/precious.bin'], { input: data });
  t.equal(put.code, 0, put.stderr);
  const stat = JSON.parse((await c.dfs(['stat', '--json', '/precious.bin'])).stdout.toString()) as { chunks: { handle: number; replicas: { id: string }[] }[] };
  const files = stat.chunks.flatMap((ch) => ch.replicas.map((r) => join(c.dir, r.id, 'chunks', `${ch.handle}.chunk`)));
  t.equal(files.length, 9, 'three chunks, three replicas each');
  const before = (await c.status()) as unknown as Status;
  t.match(before.namespaceId, /^[0-9a-f]{16}$/, 'the first leader drew a namespace id');
  for (let i = 1; i <= 3; i++) {
    t.equal(readFileSync(join(c.dir, `cs${i}`, 'namespace-id'), 'utf8').trim(), before.namespaceId, `cs${i} recorded it`);
  }

  // The master's data is lost; it is started again as it was: an empty namespace of its own.
  await c.kill(c.master);
  rmSync(join(c.dir, 'm1'), { recursive: true, force: true });
  await c.startMaster(0);
  await waitFor(() => c.chunkservers.every((p) => p!.output.some((l) => l.includes('a master of another namespace answered'))), 15_000, 'every chunkserver to refuse the new master');
  // Many heartbeats and grace periods later, nothing was deleted.
  await new Promise((r) => setTimeout(r, 3000));
  for (const f of files) t.ok(existsSync(f), `${f.split('/').slice(-3).join('/')} is still on disk`);
  const after = (await c.status()) as unknown as Status;
  t.not(after.namespaceId, before.namespaceId, 'the new master has a namespace of its own');
  t.equal(after.chunkservers.filter((s) => s.alive).length, 0, 'and no chunkserver registered with it');
  const why = c.master.output.find((l) => l.includes('refused a chunkserver of another namespace'));
  t.ok(why, 'the master says why');
  // The master's routes run without the async request context; the line names the call all the same.
  t.match(JSON.parse(why ?? '{}'), { reqId: /^[A-Za-z0-9._:-]+$/ }, 'under the request id of the call it refused');
});
