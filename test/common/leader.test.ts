// common/leader.ts against tiny fake masters on 127.0.0.1: it follows a hint to a master it was
// not given and learns the group from a NOT_LEADER; when no leader is found, its message says
// what each master answered.
import t from 'tap';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { closeHttpAgent } from '../../common/http.js';
import { LeaderClient } from '../../common/leader.js';

type Reply = { status: number; body: unknown };

async function fakeMaster(reply: () => Reply): Promise<{ addr: string; server: Server; calls: number }> {
  const m = { addr: '', server: createServer(), calls: 0 };
  m.server.on('request', (req, res) => {
    m.calls++;
    req.resume();
    const r = reply();
    res.writeHead(r.status, { 'content-type': 'application/json' }).end(JSON.stringify(r.body));
  });
  await new Promise<void>((r) => m.server.listen(0, '127.0.0.1', r));
  m.addr = `127.0.0.1:${(m.server.address() as AddressInfo).port}`;
  return m;
}

/** An address where nothing listens: a port that was free a moment ago. */
async function deadAddr(): Promise<string> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const addr = `127.0.0.1:${(s.address() as AddressInfo).port}`;
  await new Promise((r) => s.close(r));
  return addr;
}

const notLeader = (leader: string | null, masters: Record<string, string>): Reply => ({
  status: 421,
  body: { error: { code: 'NOT_LEADER', message: leader ? `not the leader; the leader is ${leader}` : 'not the leader, and no leader is known yet; retry shortly', leader, masters } },
});

t.teardown(closeHttpAgent);

t.test('follows a hint to a master it was not given, and learns the whole group', async (t) => {
  const group: Record<string, string> = {};
  const leader = await fakeMaster(() => ({ status: 200, body: { ok: true } }));
  const follower = await fakeMaster(() => notLeader(leader.addr, group));
  const other = await deadAddr();
  Object.assign(group, { m1: follower.addr, m2: leader.addr, m3: other });
  t.teardown(() => {
    leader.server.close();
    follower.server.close();
  });
  const client = new LeaderClient([follower.addr], { maxWaitMs: 2000 });
  const started = Date.now();
  t.same(await client.call('/v1/fs/list'), { ok: true }, 'the leader answered');
  t.ok(Date.now() - started < 1000, 'at once');
  t.equal(client.leader, leader.addr, 'and is remembered');
  t.same([...client.masters].sort(), [follower.addr, leader.addr, other].sort(), 'the whole group is known now');
  await client.call('/v1/fs/list');
  t.equal(follower.calls, 1, 'later calls go straight to the leader');
});

t.test('a hint that is not host:port is not followed, and a group is bounded', async (t) => {
  // .invalid never resolves (RFC 2606): nothing there can answer.
  const many = Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`m${i}`, `m${i}.invalid:9400`]));
  const follower = await fakeMaster(() => notLeader('http://evil/', many));
  t.teardown(() => follower.server.close());
  const client = new LeaderClient([follower.addr], { maxWaitMs: 300, retryDelayMs: 20, timeoutMs: 50 });
  await t.rejects(client.call('/v1/fs/list'), { code: 'UNAVAILABLE' });
  t.ok(client.masters.length <= 16, `at most 16 masters learnt (${client.masters.length})`);
  t.notOk(client.masters.includes('http://evil/'), 'a malformed address is ignored');
});

t.test('no quorum: the message says what each master answered', async (t) => {
  const dead1 = await deadAddr();
  const dead2 = await deadAddr();
  const group: Record<string, string> = { m2: dead1, m3: dead2 };
  const follower = await fakeMaster(() => notLeader(null, group));
  group.m1 = follower.addr;
  t.teardown(() => follower.server.close());
  const client = new LeaderClient([follower.addr], { maxWaitMs: 500, retryDelayMs: 20 });
  const started = Date.now();
  const err = await client.call('/v1/fs/list').then(() => undefined, (e: Error & { code?: string }) => e);
  t.ok(Date.now() - started < 3000, 'gives up after its wait');
  t.equal(err?.code, 'UNAVAILABLE');
  t.equal(err?.message, `no master leader found (m1 ${follower.addr}: not the leader, and no leader is known yet; `
    + `m2 ${dead1}: connection refused (ECONNREFUSED); m3 ${dead2}: connection refused (ECONNREFUSED)); is a majority of masters running?`);
});

t.test('nothing answers: says so, per master', async (t) => {
  const dead = await deadAddr();
  const client = new LeaderClient([dead], { unreachableWaitMs: 200, retryDelayMs: 20 });
  await t.rejects(client.call('/v1/fs/list'), {
    code: 'UNAVAILABLE',
    message: `cannot reach a master at ${dead} (${dead}: connection refused (ECONNREFUSED)); is the cluster running? (npm start, or set --masters / DFS_MASTERS)`,
  });
});
