// The driver end to end: real timers, FileStorage on disk, an in-process transport, the session
// layer. Then the same over HTTP with real servers on port 0.
import { createServer, type Server } from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { request } from 'undici';
import { NotLeaderError } from '../../../master/raft/errors.js';
import { FileStorage } from '../../../master/raft/file-storage.js';
import { HttpTransport, RAFT_CONTENT_TYPE, RAFT_MESSAGE_PATH, raftHttpHandler } from '../../../master/raft/http-transport.js';
import { RaftNode, type LeaderChange, type Transport } from '../../../master/raft/node.js';
import { encodeCommand, encodeRegister, SessionStateMachine, unwrapSessionResult } from '../../../master/raft/session.js';
import type { Message } from '../../../master/raft/types.js';
import { encodeKv, KvStateMachine } from './kv.js';

const ids = ['m1', 'm2', 'm3'];

class LoopbackNetwork {
  readonly nodes = new Map<string, RaftNode>();
  readonly down = new Set<string>();

  transportFor(from: string): Transport {
    return {
      send: (messages: readonly Message[]) => {
        for (const m of messages) {
          setImmediate(() => {
            if (this.down.has(from) || this.down.has(m.to)) return;
            this.nodes.get(m.to)?.receive(m);
          });
        }
      },
    };
  }
}

interface Member {
  node: RaftNode;
  kv: KvStateMachine;
  dir: string;
}

async function startMember(net: LoopbackNetwork, id: string, dir: string): Promise<Member> {
  const kv = new KvStateMachine();
  const node = new RaftNode({
    id,
    peers: ids,
    storage: await FileStorage.open({ dir }),
    transport: net.transportFor(id),
    stateMachine: new SessionStateMachine(kv),
    tickIntervalMs: 5,
    snapshotEveryEntries: 8,
    compactKeepEntries: 2,
  });
  net.nodes.set(id, node);
  node.start();
  return { node, kv, dir };
}

async function waitFor<T>(what: string, probe: () => T | undefined, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

function leaderOf(members: Iterable<Member>): Member | undefined {
  return [...members].find((m) => m.node.status().role === 'leader');
}

t.test('a 3-node group elects a leader, replicates, snapshots, fails over and restarts from disk', async (t) => {
  const base = await mkdtemp(join(tmpdir(), 'dfs-raft-node-'));
  t.teardown(() => rm(base, { recursive: true, force: true }));
  const net = new LoopbackNetwork();
  const members = new Map<string, Member>();
  for (const id of ids) members.set(id, await startMember(net, id, join(base, id)));
  t.teardown(async () => {
    for (const m of members.values()) await m.node.stop();
  });

  const changes: LeaderChange[] = [];
  for (const m of members.values()) m.node.onLeaderChange((c) => changes.push(c));
  const leader = await waitFor('a leader', () => leaderOf(members.values()));
  const follower = [...members.values()].find((m) => m !== leader)!;

  await t.rejects(follower.node.propose(encodeRegister()), NotLeaderError, 'a follower refuses proposals');
  await waitFor('follower learns the leader', () => (follower.node.status().leaderId === leader.node.id ? true : undefined));
  const refusal = await follower.node.propose(encodeRegister()).catch((e: unknown) => e);
  t.equal((refusal as NotLeaderError).leaderId, leader.node.id, 'and names the leader');

  // Exactly-once through the session layer.
  const clientId = unwrapSessionResult(await leader.node.propose(encodeRegister())) as string;
  const cas = encodeCommand(clientId, 1, encodeKv({ op: 'cas', key: 'k', expected: null, value: 'v1' }));
  const [first, retry] = await Promise.all([leader.node.propose(cas), leader.node.propose(cas)]);
  t.same(unwrapSessionResult(first), true);
  t.same(retry, first, 'a retry with the same seq returns the first result');
  t.equal(leader.kv.applyCount, 1, 'and was applied once');

  await leader.node.linearizableRead();
  t.equal(leader.kv.get('k'), 'v1', 'a linearizable read sees the write');
  await t.rejects(follower.node.linearizableRead(), NotLeaderError);

  for (let seq = 2; seq <= 20; seq++) {
    await leader.node.propose(encodeCommand(clientId, seq, encodeKv({ op: 'put', key: 'k', value: `v${seq}` })));
  }
  t.ok(leader.node.status().snapshotIndex > 0, 'snapshots were taken after snapshotEveryEntries');
  await waitFor('followers to apply', () => ([...members.values()].every((m) => m.kv.get('k') === 'v20') ? true : undefined));

  // Fail over: cut the leader off; the others elect a new one.
  net.down.add(leader.node.id);
  const others = [...members.values()].filter((m) => m !== leader);
  const next = await waitFor('a new leader', () => leaderOf(others));
  t.not(next.node.id, leader.node.id);
  await waitFor('the old leader to step down (check-quorum)', () => (leader.node.status().role !== 'leader' ? true : undefined));
  const after = await next.node.propose(encodeCommand(clientId, 21, encodeKv({ op: 'put', key: 'k', value: 'v21' })));
  t.same(unwrapSessionResult(after), null);
  t.ok(changes.some((c) => c.isLeader && c.leaderId === next.node.id), 'leader change reported');

  // Restart the old leader from its directory: it recovers and catches up.
  await leader.node.stop();
  net.down.delete(leader.node.id);
  const restarted = await startMember(net, leader.node.id, leader.dir);
  members.set(leader.node.id, restarted);
  t.ok(restarted.node.status().appliedIndex > 0, 'state restored from its snapshot on disk');
  await waitFor('the restarted node to catch up', () => (restarted.kv.get('k') === 'v21' ? true : undefined));
});

t.test('over HTTP: real servers on port 0, size-limited validated bodies', async (t) => {
  const base = await mkdtemp(join(tmpdir(), 'dfs-raft-http-'));
  t.teardown(() => rm(base, { recursive: true, force: true }));
  const nodes = new Map<string, RaftNode>();
  const servers: Server[] = [];
  const addresses: Record<string, string> = {};
  for (const id of ids) {
    const handler = raftHttpHandler({ receive: (m) => nodes.get(id)?.receive(m) }, { maxBodyBytes: 64 * 1024 });
    const server = createServer((req, res) => {
      if (req.method === 'POST' && req.url === RAFT_MESSAGE_PATH) handler(req, res);
      else {
        res.statusCode = 404;
        res.end();
      }
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    servers.push(server);
    addresses[id] = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  }
  const transports: HttpTransport[] = [];
  for (const id of ids) {
    const transport = new HttpTransport({ peers: addresses, requestTimeoutMs: 1000, onUnreachable: (peer) => nodes.get(id)?.reportUnreachable(peer) });
    transports.push(transport);
    const node = new RaftNode({
      id, peers: ids, storage: await FileStorage.open({ dir: join(base, id) }), transport,
      stateMachine: new SessionStateMachine(new KvStateMachine()), tickIntervalMs: 10,
    });
    nodes.set(id, node);
    node.start();
  }
  t.teardown(async () => {
    for (const node of nodes.values()) await node.stop();
    for (const transport of transports) await transport.close();
    for (const server of servers) await new Promise((resolve) => server.close(resolve));
  });

  const leader = await waitFor('a leader over HTTP', () => [...nodes.values()].find((n) => n.status().role === 'leader'));
  const clientId = unwrapSessionResult(await leader.propose(encodeRegister())) as string;
  const result = await leader.propose(encodeCommand(clientId, 1, encodeKv({ op: 'cas', key: 'x', expected: null, value: '1' })));
  t.same(unwrapSessionResult(result), true);
  await leader.linearizableRead();

  const target = `http://${addresses['m1']}${RAFT_MESSAGE_PATH}`;
  const bad = await request(target, { method: 'POST', body: '{"messages":[{"type":"vote"}]}', headers: { 'content-type': RAFT_CONTENT_TYPE } });
  t.equal(bad.statusCode, 400, 'malformed message');
  t.match(await bad.body.json(), { error: { code: 'INVALID_ARGUMENT' } });
  const big = await request(target, { method: 'POST', body: 'x'.repeat(100 * 1024), headers: { 'content-type': RAFT_CONTENT_TYPE } });
  t.equal(big.statusCode, 413, 'oversize body');
  await big.body.dump();
});
