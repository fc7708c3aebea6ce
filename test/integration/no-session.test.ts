// Issue 13, item 9: a mutation sent without x-dfs-session (API.md says the header is optional)
// was applied and then answered 500 INTERNAL, so a client retrying on 500 applied it twice, and
// the leader's own lease expiry (proposed without a session) logged "lease expiry failed".
import t from 'tap';
import { request } from 'undici';
import { ADMIN_TOKEN, TestCluster, waitFor } from '../helpers/cluster.js';

async function post(addr: string, path: string, body: unknown): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await request(`http://${addr}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${ADMIN_TOKEN}` }, body: JSON.stringify(body) });
  return { status: res.statusCode, body: (await res.body.json()) as Record<string, unknown> };
}

t.test('a mutation without a session header is applied once and answered once', async (t) => {
  const c = await TestCluster.start({ masters: 1, chunkservers: 0, leaseMs: 1000 });
  t.teardown(() => c.stop());
  const addr = c.master.addr;

  const first = await post(addr, '/v1/fs/mkdir', { path: '/plain' });
  t.equal(first.status, 200, JSON.stringify(first.body));
  t.equal(first.body.path, '/plain', 'answered with the new directory');
  const again = await post(addr, '/v1/fs/mkdir', { path: '/plain' });
  t.equal(again.status, 409, 'the same call again is a second mkdir, refused as such');
  t.equal((again.body.error as { code: string }).code, 'EXISTS');

  // A write left open: the leader's lease expiry (a command without a session) frees it.
  const created = await post(addr, '/v1/fs/create', { path: '/left-open.bin' });
  t.equal(created.status, 200, JSON.stringify(created.body));
  await waitFor(async () => {
    const r = await c.dfs(['ls', '/']);
    return !r.stdout.toString().includes('left-open.bin');
  }, 15_000, 'the expired write to be abandoned');
  const out = c.master.output.join('\n');
  t.match(out, /abandoned writes whose lease expired/, 'the leader says it abandoned the write');
  t.notMatch(out, /lease expiry failed/, 'and does not call its own success a failure');
});
