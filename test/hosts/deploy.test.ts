// Scenario (a) of issue 16: a 3-master, 6-chunkserver cluster over two racks comes up from config
// files written as docs/DEPLOY.md says, one process per host, each listening on its host's own
// address; a client on another host puts and gets a file.
import t from 'tap';
import { createHash } from 'node:crypto';
import { randomBytesSeeded } from '../helpers/cluster.js';
import { HostCluster, until } from './host-cluster.js';

t.setTimeout(600_000);

t.test('3 masters and 6 chunkservers on two racks, from config files; put and get from a client host', async (t) => {
  const c = await HostCluster.start({ masters: 3, chunkservers: 6, chunkSize: '1MiB' }, (m) => t.comment(m));
  t.teardown(() => c.stop());
  await until(async () => (await c.liveChunkservers()) === 6, 30_000, 'all 6 chunkservers to register');
  const views = await c.raftViews();
  t.equal(views.filter((v) => v.role === 'leader').length, 1, `one leader (${JSON.stringify(views)})`);
  for (const s of c.servers) {
    const host = c.addrOf(s.host);
    t.same(c.listening(s.id), [`${host}:${s.role === 'master' ? 9400 : 9500}`], `${s.id} listens on its host's address ${host} only, nothing on 0.0.0.0`);
  }
  const data = randomBytesSeeded(5 * 1024 * 1024 + 123, 16);
  const put = await c.dfs(['put', '-', '/deployed/a.bin'], { input: data });
  t.equal(put.code, 0, `put from the client host: ${put.stderr}`);
  const get = await c.dfs(['cat', '/deployed/a.bin']);
  t.equal(get.code, 0, get.stderr);
  t.equal(createHash('sha256').update(get.stdout).digest('hex'), createHash('sha256').update(data).digest('hex'), 'the same bytes come back');
  if (c.kind === 'loopback') {
    // Every peer, chunkserver and client reached each server through its proxy: the faults other scenarios set there apply.
    for (const s of c.servers) t.ok(s.proxy!.counts.accepted > 0, `${s.id} was reached through its fault proxy`);
  }
  const status = await c.dfs(['status']);
  t.equal(status.code, 0, status.stderr);
  t.comment(status.stdout.toString());
});
