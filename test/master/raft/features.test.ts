// Beyond the paper's core: pre-vote, check-quorum, ReadIndex, InstallSnapshot streaming, fast
// backtracking, pipelining limits and batching.
import t from 'tap';
import { wholeData } from '../../../master/raft/snapshot-data.js';
import type { AppendRequest, Message } from '../../../master/raft/types.js';
import { drain, entries, newNode, storageWith, TestCluster } from './helpers.js';

const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);

function only<T extends Message['type']>(msgs: readonly Message[], type: T): (Message & { type: T })[] {
  return msgs.filter((m): m is Message & { type: T } => m.type === type);
}

t.test('pre-vote: a pre-candidate asks for votes without raising its term', async (t) => {
  const node = newNode('n1', ['n1', 'n2', 'n3'], { preVote: true });
  while (node.core.role === 'follower') node.core.tick();
  t.equal(node.core.role, 'preCandidate');
  t.equal(node.core.term, 0, 'term unchanged');
  const ready = node.core.ready();
  t.equal(ready.hardState, null, 'nothing to persist: a failed pre-vote leaves no trace');
  t.same(only(ready.messages, 'preVote').map((m) => m.term), [1, 1], 'asks in the term it would campaign in');
});

t.test('pre-vote: a partitioned node that rejoins does not disrupt a healthy leader', async (t) => {
  const c = new TestCluster(3, { preVote: true });
  c.elect('n1');
  const term = c.node('n1').core.term;
  c.isolate('n3');
  for (let i = 0; i < 100; i++) {
    c.tick('n3');
    c.stabilize();
  }
  t.equal(c.node('n3').core.term, term, 'its failed pre-votes never raised its term');
  c.heal();
  c.tick('n1');
  c.stabilize();
  t.equal(c.node('n1').core.role, 'leader');
  t.equal(c.node('n1').core.term, term, 'the leader kept its term');
  t.equal(c.node('n3').core.leaderId, 'n1');
});

t.test('pre-vote: without it, the same rejoining node forces a new election', async (t) => {
  const c = new TestCluster(3, { preVote: false });
  c.elect('n1');
  const term = c.node('n1').core.term;
  c.isolate('n3');
  for (let i = 0; i < 100; i++) {
    c.tick('n3');
    c.stabilize();
  }
  c.heal();
  for (let i = 0; i < 30; i++) {
    c.tick('n1');
    c.tick('n3');
    c.stabilize();
  }
  t.ok(c.node('n1').core.term > term, 'the disruption pre-vote prevents');
});

t.test('check-quorum: a leader that has not heard from a majority for an election timeout steps down', async (t) => {
  const c = new TestCluster(3, { checkQuorum: true });
  c.elect('n1');
  c.isolate('n1');
  for (let i = 0; i < 2 * 10 && c.node('n1').core.role === 'leader'; i++) {
    c.tick('n1');
    c.stabilize();
  }
  t.equal(c.node('n1').core.role, 'follower');
  t.equal(c.node('n1').core.leaderId, null);
});

t.test('check-quorum: a leader that hears from a majority stays leader', async (t) => {
  const c = new TestCluster(3, { checkQuorum: true });
  c.elect('n1');
  c.isolate('n3');
  for (let i = 0; i < 50; i++) {
    c.tick('n1');
    c.stabilize();
  }
  t.equal(c.node('n1').core.role, 'leader');
});

t.test('check-quorum: a follower that heard from the leader recently ignores vote requests', async (t) => {
  const c = new TestCluster(3, { checkQuorum: true });
  c.elect('n1');
  const n2 = c.node('n2');
  const term = n2.core.term;
  n2.core.step({ type: 'vote', from: 'n3', to: 'n2', term: term + 1, lastLogIndex: 100, lastLogTerm: 100 });
  t.equal(n2.core.term, term, 'in lease: no term change');
  t.same(drain(n2), [], 'and no answer');
});

t.test('ReadIndex: a read is released only after a majority acknowledges a heartbeat round', async (t) => {
  const c = new TestCluster(3);
  c.elect('n1');
  const leader = c.node('n1');
  c.isolate('n1');
  t.equal(leader.core.readIndex('r1'), 'ok');
  c.stabilize();
  t.same(leader.readStates, [], 'no majority reachable: no answer');
  c.heal();
  leader.core.tick();
  c.stabilize();
  t.same(leader.readStates, [{ index: 1, context: 'r1' }], 'released at the commit index of request time');
});

t.test('ReadIndex: a new leader defers reads until it has committed an entry of its term', async (t) => {
  const c = new TestCluster(3);
  const n1 = c.node('n1');
  while (n1.core.role !== 'candidate') n1.core.tick();
  // Deliver the vote requests and the votes, but drop the no-op appends that follow.
  for (const m of drain(n1)) c.node(m.to).core.step(m);
  for (const id of ['n2', 'n3']) for (const m of drain(c.node(id))) n1.core.step(m);
  t.equal(n1.core.role, 'leader');
  drain(n1);
  t.equal(n1.core.readIndex('early'), 'ok');
  t.same(only(drain(n1), 'heartbeat'), [], 'no confirmation round before the term has a commit');
  n1.core.tick();
  c.stabilize();
  n1.core.tick();
  c.stabilize();
  t.same(n1.readStates.map((r) => r.context), ['early']);
  t.equal(n1.readStates[0]!.index, n1.core.log.committed, 'the index covers the no-op');
});

t.test('ReadIndex: a deposed leader never answers a pending read', async (t) => {
  const c = new TestCluster(3, { checkQuorum: true });
  c.elect('n1');
  c.isolate('n1');
  const old = c.node('n1');
  old.core.readIndex('stale');
  for (let i = 0; i < 40; i++) {
    c.tick('n1');
    c.tick('n2');
    c.stabilize();
  }
  t.not(old.core.role, 'leader', 'it stepped down (check-quorum)');
  t.equal(old.core.readIndex('again'), 'notLeader');
  c.heal();
  for (let i = 0; i < 30; i++) {
    c.tick('n1');
    c.tick('n2');
    c.stabilize();
  }
  t.same(old.readStates, [], 'never released, even after it rejoins (or leads again)');
});

t.test('ReadIndex: a single-node group answers at once', async (t) => {
  const c = new TestCluster(1);
  c.elect('n1');
  t.equal(c.node('n1').core.readIndex('solo'), 'ok');
  drain(c.node('n1'));
  t.same(c.node('n1').readStates, [{ index: 1, context: 'solo' }]);
});

/** Builds a 3-node cluster where n3 missed entries that the leader then compacted into a snapshot. */
function laggingClusterWithSnapshot(snapshotBytes: number, chunkBytes: number): TestCluster {
  const c = new TestCluster(3, { snapshotChunkBytes: chunkBytes, checkQuorum: false });
  c.elect('n1');
  c.isolate('n3');
  for (let i = 0; i < 10; i++) c.propose('n1', `e${i}`);
  const leader = c.node('n1');
  const index = leader.core.log.committed;
  const data = new Uint8Array(snapshotBytes).map((_, i) => i % 251);
  leader.storage.saveSnapshotSync({ meta: { index, term: leader.core.term }, data }, index);
  c.heal();
  return c;
}

t.test('snapshot: a follower whose next entry was compacted away gets the snapshot in bounded chunks', async (t) => {
  const c = laggingClusterWithSnapshot(10_000, 1024);
  c.tick('n1');
  c.stabilize();
  const chunks = only(c.delivered, 'snapshot').filter((m) => m.to === 'n3');
  t.ok(chunks.length >= 10, `${chunks.length} chunks`);
  t.ok(chunks.every((m) => m.data.byteLength <= 1024), 'no chunk exceeds snapshotChunkBytes');
  const n3 = c.node('n3');
  const installed = n3.readies.find((r) => r.snapshot !== null)!.snapshot!;
  t.equal(installed.data.byteLength, 10_000);
  t.same(wholeData(installed.data), wholeData(c.node('n1').storage.snapshot().data), 'bytes arrive intact and in order');
  t.equal(n3.core.log.committed, c.node('n1').core.log.committed);
  c.propose('n1', 'after');
  t.equal(n3.core.log.lastIndex(), c.node('n1').core.log.lastIndex(), 'then it catches up from the log');
});

t.test('snapshot: a lost chunk is resent from the last acknowledged offset', async (t) => {
  const c = laggingClusterWithSnapshot(4096, 512);
  const leader = c.node('n1');
  leader.core.tick();
  // Deliver heartbeats so n3's reply marks it active and the leader starts the stream.
  let msgs = drain(leader);
  let dropped = false;
  for (let round = 0; round < 200; round++) {
    const next: Message[] = [];
    for (const m of msgs) {
      if (m.type === 'snapshot' && m.offset === 1024 && !dropped) {
        dropped = true;
        continue;
      }
      c.node(m.to).core.step(m);
      next.push(...drain(c.node(m.to)));
    }
    if (round % 3 === 0) leader.core.tick();
    next.push(...drain(leader));
    msgs = next;
  }
  t.ok(dropped);
  t.equal(c.node('n3').core.log.committed, leader.core.log.committed, 'the stream completed');
  t.same(wholeData(c.node('n3').storage.snapshot().data), wholeData(leader.storage.snapshot().data));
});

t.test('snapshot: a follower already holding the snapshot index skips the transfer', async (t) => {
  const node = newNode('n2', ['n1', 'n2', 'n3'], {}, storageWith(entries(1, 1, 1, 1), { term: 1 }));
  node.core.step({ type: 'snapshot', from: 'n1', to: 'n2', term: 1, meta: { index: 3, term: 1 }, totalBytes: 3, offset: 0, data: Uint8Array.of(1, 2, 3) });
  const reply = only(drain(node), 'appendResp')[0]!;
  t.equal(node.storage.snapshot().meta.index, 0, 'log kept, not replaced');
  t.equal(node.core.log.lastIndex(), 4);
  t.equal(reply.index, 3, 'commit moved to the snapshot index');
});

t.test('snapshot: installed over a longer log with another term at its index, it replaces the whole log', async (t) => {
  // §7 (InstallSnapshot receiver): "If existing log entry has same index and term as snapshot's
  // last included entry, retain log entries following it and reply. Discard the entire log."
  const node = newNode('n2', ['n1', 'n2', 'n3'], {}, storageWith(entries(1, 1, 1, 1, 1, 1), { term: 1 }));
  node.core.step({ type: 'snapshot', from: 'n1', to: 'n2', term: 2, meta: { index: 4, term: 2 }, totalBytes: 3, offset: 0, data: Uint8Array.of(7, 8, 9) });
  const reply = only(drain(node), 'appendResp')[0]!;
  t.equal(reply.index, 4, 'acknowledges the snapshot index, not its old last index');
  t.equal(node.core.log.lastIndex(), 4, 'entries 5 and 6 followed a conflicting entry: gone');
  t.equal(node.core.log.term(4), 2);
  t.equal(node.core.log.committed, 4);
  t.same(node.storage.base(), { index: 4, term: 2 }, 'the stored log starts after the snapshot');
  t.equal(node.storage.lastIndex(), 4);
  // A restart from that disk sees the same log.
  const restarted = newNode('n2', ['n1', 'n2', 'n3'], { applied: 4 }, node.storage);
  t.equal(restarted.core.log.lastIndex(), 4);
  t.equal(restarted.core.log.term(4), 2);
  t.same([...wholeData(restarted.storage.snapshot().data)], [7, 8, 9]);
});

t.test('fast backtracking: one rejection skips a whole conflicting term', async (t) => {
  // Leader log: terms 1,1,1,4,4,4,4,4 ... follower log: 1,1,1 then 30 entries of term 2.
  const leaderLog = entries(1, 1, 1, ...Array<number>(30).fill(4));
  const followerLog = entries(1, 1, 1, ...Array<number>(30).fill(2));
  const c = new TestCluster(3);
  const n1 = newNode('n1', ['n1', 'n2', 'n3'], {}, storageWith(leaderLog, { term: 4 }));
  const n2 = newNode('n2', ['n1', 'n2', 'n3'], {}, storageWith(followerLog, { term: 4 }));
  const n3 = newNode('n3', ['n1', 'n2', 'n3'], {}, storageWith(leaderLog, { term: 4 }));
  c.nodes.set('n1', n1);
  c.nodes.set('n2', n2);
  c.nodes.set('n3', n3);
  c.elect('n1');
  t.equal(n1.core.role, 'leader');
  const rejections = only(c.delivered, 'appendResp').filter((m) => m.from === 'n2' && m.reject);
  t.ok(rejections.length <= 2, `${rejections.length} rejections for 30 conflicting entries`);
  t.same(n2.storage.allEntries().map((e) => e.term), n1.storage.allEntries().map((e) => e.term), 'logs converge');
});

t.test('inflight: a leader keeps at most maxInflightMsgs appends outstanding to a follower', async (t) => {
  const c = new TestCluster(3, { maxInflightMsgs: 3, maxEntriesPerMsg: 1 });
  c.elect('n1');
  const leader = c.node('n1');
  c.isolate('n2');
  c.isolate('n3');
  for (let i = 0; i < 10; i++) leader.core.propose([bytes(`p${i}`)]);
  const appends = only(drain(leader), 'append').filter((m) => m.to === 'n2' && m.entries.length > 0);
  t.equal(appends.length, 3, 'the window stops the leader');
  t.equal(leader.core.progressOf('n2')!.inflight, 3);
  t.equal(leader.core.progressOf('n2')!.state, 'replicate');
  c.heal();
  c.stabilize();
  leader.core.tick();
  c.stabilize();
  t.equal(c.node('n2').core.log.lastIndex(), 11, 'acks reopen the window until the follower caught up');
});

t.test('batching: an append carries at most maxEntriesPerMsg entries and maxSizePerMsgBytes bytes', async (t) => {
  const c = new TestCluster(3, { maxEntriesPerMsg: 4, maxSizePerMsgBytes: 200 });
  c.elect('n1');
  c.isolate('n3');
  for (let i = 0; i < 40; i++) c.node('n1').core.propose([new Uint8Array(30)]);
  c.stabilize();
  c.heal();
  c.tick('n1');
  c.stabilize();
  const appends = only(c.delivered, 'append').filter((m: AppendRequest) => m.to === 'n3' && m.entries.length > 0);
  t.ok(appends.every((m) => m.entries.length <= 4), 'entry bound');
  t.ok(appends.every((m) => m.entries.reduce((s, e) => s + e.data.byteLength + 24, 0) <= 200 || m.entries.length === 1), 'byte bound');
  t.ok(appends.some((m) => m.entries.length > 1), 'but entries are batched');
  t.equal(c.node('n3').core.log.lastIndex(), 41);
});

t.test('back-pressure: a leader refuses proposals beyond maxUncommittedEntriesBytes', async (t) => {
  const c = new TestCluster(3, { maxUncommittedEntriesBytes: 1000 });
  c.elect('n1');
  c.isolate('n1');
  const leader = c.node('n1').core;
  let refused = 0;
  for (let i = 0; i < 20; i++) if (!leader.propose([new Uint8Array(100)]).ok) refused++;
  t.ok(refused > 0 && refused < 20, `${refused} refused`);
});

t.test('a follower forgets nothing it acknowledged: acks follow persistence', async (t) => {
  const node = newNode('n2', ['n1', 'n2', 'n3']);
  node.core.step({ type: 'append', from: 'n1', to: 'n2', term: 1, prevLogIndex: 0, prevLogTerm: 0, commit: 0, entries: entries(1) });
  const ready = node.core.ready();
  t.same(ready.entries.map((e) => e.index), [1]);
  t.equal(only(ready.messages, 'appendResp')[0]!.index, 1, 'the ack leaves with the entries it covers');
});

t.test('wiped follower: it rejoins with an empty disk and is rebuilt from the leader, by snapshot', async (t) => {
  const c = new TestCluster(3, { checkQuorum: false });
  c.elect('n1');
  for (let i = 0; i < 10; i++) c.propose('n1', `e${i}`);
  c.heartbeat('n1');
  const leader = c.node('n1');
  const index = leader.core.log.committed;
  t.equal(c.node('n3').core.log.committed, index, 'n3 had everything before it was wiped');
  leader.storage.saveSnapshotSync({ meta: { index, term: leader.core.term }, data: Uint8Array.of(7, 7, 7) }, index);

  // n3 comes back with nothing: a new node (empty storage) in its place.
  c.nodes.set('n3', newNode('n3', ['n1', 'n2', 'n3'], { checkQuorum: false }));
  c.tick('n1', leader.core.config.heartbeatTick);
  t.doesNotThrow(() => c.stabilize(), 'a heartbeat carrying a commit beyond its empty log does not crash it');
  const n3 = c.node('n3');
  t.equal(n3.storage.snapshot().meta.index, index, 'the leader noticed the lost log and sent its snapshot');
  t.same([...wholeData(n3.storage.snapshot().data)], [7, 7, 7]);
  t.equal(n3.core.log.committed, index, 'and n3 is caught up');
  c.propose('n1', 'after');
  t.equal(n3.core.log.lastIndex(), index + 1, 'new entries reach it again');
});

t.test('wiped follower: a heartbeat never makes a follower commit past its own log', async (t) => {
  const node = newNode('n2', ['n1', 'n2', 'n3']);
  node.core.step({ type: 'heartbeat', from: 'n1', to: 'n2', term: 1, commit: 50, context: '' });
  t.equal(node.core.log.committed, 0, 'commit unchanged: it holds nothing to commit');
  const out = drain(node);
  t.equal(out.filter((m) => m.type === 'heartbeatResp').length, 1, 'it still answers the heartbeat');
  t.match(out.find((m) => m.type === 'appendResp'), { reject: true, rejectHintIndex: 0, rejectHintTerm: 0 }, 'and says where its log ends');
});
