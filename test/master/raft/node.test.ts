// The driver end to end: real timers, FileStorage on disk, an in-process transport, the session
// layer. (Over real sockets: stream-transport.test.ts.)
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { NotLeaderError } from '../../../master/raft/errors.js';
import { FileStorage } from '../../../master/raft/file-storage.js';
import { RaftNode, type LeaderChange, type Transport } from '../../../master/raft/node.js';
import { encodeCommand, encodeRegister, SessionStateMachine, unwrapSessionResult } from '../../../master/raft/session.js';
import type { Message } from '../../../master/raft/types.js';
import { waitFor } from './helpers.js';
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

async function startMember(net: LoopbackNetwork, id: string, dir: string, raft: { maxPendingReads?: number } = {}): Promise<Member> {
  const kv = new KvStateMachine();
  const node = new RaftNode({
    id,
    peers: ids,
    storage: await FileStorage.open({ dir }),
    transport: net.transportFor(id),
    stateMachine: new SessionStateMachine(kv),
    // Elections after 10-20 ticks: 200-400 ms, longer than the event-loop stalls of a loaded
    // machine (at 5 ms ticks a stall deposed the leader in the middle of the test).
    tickIntervalMs: 20,
    raft,
    snapshotEveryEntries: 8,
    compactKeepEntries: 2,
  });
  net.nodes.set(id, node);
  node.start();
  return { node, kv, dir };
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

t.test('reads that arrive while a ReadIndex round is out share the next round, and each sees the writes before it', async (t) => {
  const base = await mkdtemp(join(tmpdir(), 'dfs-raft-reads-'));
  t.teardown(() => rm(base, { recursive: true, force: true }));
  const net = new LoopbackNetwork();
  // Every ReadIndex round's context, as the leader's heartbeats carry it.
  const contexts = new Set<string>();
  const plain = net.transportFor.bind(net);
  net.transportFor = (from: string): Transport => {
    const inner = plain(from);
    return { send: (messages) => {
      for (const m of messages) if (m.type === 'heartbeat' && m.context !== '') contexts.add(m.context);
      inner.send(messages);
    } };
  };
  const members = new Map<string, Member>();
  for (const id of ids) members.set(id, await startMember(net, id, join(base, id)));
  t.teardown(async () => {
    for (const m of members.values()) await m.node.stop();
  });
  const leader = await waitFor('a leader', () => leaderOf(members.values()));
  const clientId = unwrapSessionResult(await leader.node.propose(encodeRegister())) as string;
  await leader.node.linearizableRead();
  contexts.clear();

  // 60 writes, then 60 reads, each arriving in an event-loop turn of its own (as HTTP requests
  // do) and not waiting for the one before; each must see every write.
  for (let i = 1; i <= 60; i++) await leader.node.propose(encodeCommand(clientId, i, encodeKv({ op: 'put', key: `k${i}`, value: `v${i}` })));
  contexts.clear();
  const reads: Promise<void>[] = [];
  for (let i = 1; i <= 60; i++) {
    await new Promise((r) => setImmediate(r));
    reads.push(leader.node.linearizableRead().then(() => {
      t.equal(leader.kv.get('k60'), 'v60', `read ${i} sees the last write`);
    }));
  }
  await Promise.all(reads);
  // A round here takes about two turns of the loopback network: about 30 rounds for 60 reads
  // (60, one per read, before rounds went one at a time).
  t.ok(contexts.size >= 1 && contexts.size <= 45, `60 reads took ${contexts.size} rounds`);
});

t.test('reads waiting behind a round that is never answered are bounded, and refused when the leader steps down', async (t) => {
  const base = await mkdtemp(join(tmpdir(), 'dfs-raft-reads-'));
  t.teardown(() => rm(base, { recursive: true, force: true }));
  const net = new LoopbackNetwork();
  const members = new Map<string, Member>();
  for (const id of ids) members.set(id, await startMember(net, id, join(base, id), { maxPendingReads: 4 }));
  t.teardown(async () => {
    for (const m of members.values()) await m.node.stop();
  });
  const leader = await waitFor('a leader', () => leaderOf(members.values()));
  await leader.node.linearizableRead();
  // The followers go quiet: the round the first read starts is never answered.
  for (const m of members.values()) if (m !== leader) net.down.add(m.node.id);
  const first = leader.node.linearizableRead().then(() => 'answered', (e: unknown) => e);
  await new Promise((r) => setImmediate(r));
  const waiting = [1, 2, 3, 4].map(() => leader.node.linearizableRead().then(() => 'answered', (e: unknown) => e));
  const over = await leader.node.linearizableRead().then(() => 'answered', (e: unknown) => e);
  t.match(over, { code: 'RAFT_BUSY' }, 'a read past maxPendingReads waiting for the next round is refused at once');
  // Check-quorum: the leader steps down within an election timeout, and nothing waits for ever
  // (waitFor's timer keeps the event loop turning: the Raft tickers do not).
  const results: unknown[] = [];
  void Promise.all([first, ...waiting]).then((r) => results.push(...r));
  await waitFor('every waiting read to be answered', () => (results.length === 5 ? true : undefined));
  t.ok(results.every((e) => e instanceof NotLeaderError), 'the round out and the reads behind it are refused with NOT_LEADER when it steps down');
});
