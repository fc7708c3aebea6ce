// One test per rule of the Raft paper's Figure 2 and §5 (after etcd's raft_paper_test.go).
import t from 'tap';
import type { AppendRequest, AppendResponse, Message, VoteResponse } from '../../../master/raft/types.js';
import { drain, entries, newNode, storageWith, TestCluster, text } from './helpers.js';
import { createRandom } from './sim.js';

const peers = ['n1', 'n2', 'n3'];
const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);

function append(to: string, term: number, prevLogIndex: number, prevLogTerm: number, ents: { term: number }[], commit: number): AppendRequest {
  return {
    type: 'append', from: 'n2', to, term, prevLogIndex, prevLogTerm, commit,
    entries: ents.map((e, i) => ({ term: e.term, index: prevLogIndex + 1 + i, data: Uint8Array.of(100 + i) })),
  };
}

function only<T extends Message['type']>(msgs: Message[], type: T): (Message & { type: T })[] {
  return msgs.filter((m): m is Message & { type: T } => m.type === type);
}

t.test('§5.1 a server with a stale term rejects the request', async (t) => {
  const node = newNode('n1', peers, {}, storageWith(entries(1, 2), { term: 3 }));
  node.core.step(append('n1', 2, 2, 2, [{ term: 2 }], 0));
  const msgs = drain(node);
  t.equal(node.core.log.lastIndex(), 2, 'nothing appended');
  t.equal(node.core.term, 3);
  // With pre-vote/check-quorum off, a stale request is simply ignored (§5.1).
  t.same(msgs, []);
  const strict = newNode('n1', peers, { checkQuorum: true }, storageWith(entries(1, 2), { term: 3 }));
  strict.core.step(append('n1', 2, 2, 2, [{ term: 2 }], 0));
  const reply = only(drain(strict), 'appendResp')[0]!;
  t.equal(reply.term, 3, 'the stale leader learns the current term');
});

t.test('§5.1 a server that sees a higher term adopts it and becomes follower', async (t) => {
  const c = new TestCluster(3);
  c.elect('n1');
  t.equal(c.node('n1').core.role, 'leader');
  const leaderTerm = c.node('n1').core.term;
  c.node('n1').core.step({ type: 'heartbeatResp', from: 'n2', to: 'n1', term: leaderTerm + 5, context: '' });
  t.equal(c.node('n1').core.role, 'follower');
  t.equal(c.node('n1').core.term, leaderTerm + 5);
  t.equal(c.node('n1').core.vote, null, 'no vote in the new term yet');
});

t.test('§5.2 a follower that hears from no leader for an election timeout becomes candidate', async (t) => {
  const node = newNode('n1', peers);
  for (let i = 0; i < 20 && node.core.role === 'follower'; i++) node.core.tick();
  t.equal(node.core.role, 'candidate');
  t.equal(node.core.term, 1, 'increments its term');
  t.equal(node.core.vote, 'n1', 'votes for itself');
  const ready = node.core.ready();
  t.same(ready.hardState, { term: 1, vote: 'n1', commit: 0 }, 'persists term and vote with the requests');
  const requests = only([...ready.messages], 'vote');
  t.same(requests.map((m) => m.to).sort(), ['n2', 'n3'], 'asks every other server for a vote');
});

t.test('§5.2 election timeouts are randomised in [electionTick, 2·electionTick)', async (t) => {
  const seen = new Set<number>();
  for (let seed = 0; seed < 60; seed++) {
    const node = newNode('n1', peers, { random: createRandom(seed) });
    let ticks = 0;
    while (node.core.role === 'follower') {
      node.core.tick();
      ticks++;
    }
    t.ok(ticks >= 10 && ticks < 20, `timeout ${ticks}`);
    seen.add(ticks);
  }
  t.ok(seen.size > 5, 'timeouts spread out so split votes resolve');
});

t.test('§5.2 a candidate that receives votes from a majority becomes leader', async (t) => {
  const c = new TestCluster(5);
  c.isolate('n4');
  c.isolate('n5');
  c.elect('n1');
  t.equal(c.node('n1').core.role, 'leader', '3 of 5 votes suffice');
  const c2 = new TestCluster(5);
  c2.isolate('n3');
  c2.isolate('n4');
  c2.isolate('n5');
  c2.elect('n1');
  t.equal(c2.node('n1').core.role, 'candidate', '2 of 5 do not');
});

t.test('§5.2 a server votes for at most one candidate per term, first come first served', async (t) => {
  const node = newNode('n1', peers);
  node.core.step({ type: 'vote', from: 'n2', to: 'n1', term: 1, lastLogIndex: 0, lastLogTerm: 0 });
  node.core.step({ type: 'vote', from: 'n3', to: 'n1', term: 1, lastLogIndex: 0, lastLogTerm: 0 });
  node.core.step({ type: 'vote', from: 'n2', to: 'n1', term: 1, lastLogIndex: 0, lastLogTerm: 0 });
  const replies = only(drain(node), 'voteResp');
  t.same(replies.map((r) => [r.to, r.reject]), [['n2', false], ['n3', true], ['n2', false]], 'a repeated request from the same candidate is granted again');
  t.equal(node.storage.initialState().vote, 'n2', 'the vote is persisted');
});

t.test('§5.2 a candidate that hears from a leader of its term becomes follower', async (t) => {
  const node = newNode('n1', peers);
  while (node.core.role !== 'candidate') node.core.tick();
  node.core.step({ type: 'heartbeat', from: 'n2', to: 'n1', term: node.core.term, commit: 0, context: '' });
  t.equal(node.core.role, 'follower');
  t.equal(node.core.leaderId, 'n2');
});

t.test('§5.2 a candidate whose election times out starts a new one in a higher term', async (t) => {
  const node = newNode('n1', peers);
  while (node.core.role !== 'candidate') node.core.tick();
  const term = node.core.term;
  for (let i = 0; i < 20 && node.core.term === term; i++) node.core.tick();
  t.equal(node.core.role, 'candidate');
  t.equal(node.core.term, term + 1);
});

t.test('§5.2 a leader sends heartbeats every heartbeatTick to keep its authority', async (t) => {
  const c = new TestCluster(3, { heartbeatTick: 2 });
  c.elect('n1');
  const leader = c.node('n1');
  drain(leader);
  leader.core.tick();
  t.same(only(drain(leader), 'heartbeat'), [], 'not yet');
  leader.core.tick();
  t.same(only(drain(leader), 'heartbeat').map((m) => m.to).sort(), ['n2', 'n3']);
});

t.test('§5.3 a leader appends a command to its log and replicates it to followers', async (t) => {
  const c = new TestCluster(3);
  c.elect('n1');
  c.propose('n1', 'x=1');
  t.equal(c.node('n1').core.log.committed, 2, 'the leader committed it');
  for (const id of ['n2', 'n3']) t.equal(c.node(id).core.log.committed, 1, `${id} learns the commit from a later message, not one of its own`);
  c.heartbeat('n1');
  for (const node of c.nodes.values()) {
    t.equal(text(node.core.log.entryAt(2)!), 'x=1', `${node.id} holds the entry`);
    t.equal(node.core.log.committed, 2, `${node.id} knows it is committed`);
    t.same(node.applied.map(text), ['', 'x=1'], `${node.id} applied the no-op and the command in order`);
  }
});

t.test('§5.3 a lone proposal costs one append and one answer per follower; the commit rides on later messages', async (t) => {
  const c = new TestCluster(3);
  c.elect('n1');
  c.heartbeat('n1');
  const before = c.delivered.length;
  c.propose('n1', 'x=1');
  const traffic = c.delivered.slice(before).map((m) => `${m.type} ${m.from}>${m.to}`).sort();
  t.same(traffic, ['append n1>n2', 'append n1>n3', 'appendResp n2>n1', 'appendResp n3>n1'], 'no append of its own to carry the commit');
  c.propose('n1', 'x=2');
  const second = c.delivered.slice(before).filter((m) => m.type === 'append' && m.to === 'n2').at(-1);
  t.equal(second?.type === 'append' ? second.commit : undefined, 2, 'the next append carries the first one\'s commit');
  t.equal(c.node('n2').core.log.committed, 2);
});

t.test('§5.3 a follower rejects an append whose prevLogIndex/prevLogTerm does not match', async (t) => {
  const node = newNode('n1', peers, {}, storageWith(entries(1, 1, 2), { term: 2 }));
  node.core.step(append('n1', 3, 3, 3, [{ term: 3 }], 0));
  const reply = only(drain(node), 'appendResp')[0]!;
  t.equal(reply.reject, true);
  t.equal(reply.index, 3);
  node.core.step(append('n1', 3, 5, 3, [{ term: 3 }], 0));
  t.equal(only(drain(node), 'appendResp')[0]!.reject, true, 'missing prevLogIndex');
  t.equal(node.core.log.lastIndex(), 3, 'log unchanged');
});

t.test('§5.3 a follower deletes conflicting entries and appends new ones', async (t) => {
  const node = newNode('n1', peers, {}, storageWith(entries(1, 1, 2, 2, 2), { term: 2 }));
  node.core.step(append('n1', 3, 2, 1, [{ term: 3 }, { term: 3 }], 0));
  const reply = only(drain(node), 'appendResp')[0]!;
  t.same([reply.reject, reply.index], [false, 4]);
  t.same(node.storage.allEntries().map((e) => e.term), [1, 1, 3, 3], 'entries 3..5 of term 2 replaced');
});

t.test('§5.3 a follower keeps entries that already match (an append is idempotent)', async (t) => {
  const node = newNode('n1', peers, {}, storageWith(entries(1, 1, 2), { term: 2 }));
  node.core.step(append('n1', 2, 1, 1, [{ term: 1 }], 0));
  drain(node);
  t.equal(node.core.log.lastIndex(), 3, 'a delayed shorter append does not truncate');
});

t.test('§5.3 a follower sets commitIndex = min(leaderCommit, index of last new entry)', async (t) => {
  const node = newNode('n1', peers, {}, storageWith(entries(1, 1, 1, 1), { term: 1 }));
  node.core.step(append('n1', 1, 1, 1, [], 10));
  drain(node);
  t.equal(node.core.log.committed, 1, 'not past the entries this append vouched for');
  node.core.step(append('n1', 1, 1, 1, [{ term: 1 }, { term: 1 }], 10));
  drain(node);
  t.equal(node.core.log.committed, 3);
});

t.test('§5.3 a leader commits an entry once a majority stores it, and applies it', async (t) => {
  const c = new TestCluster(5);
  c.elect('n1');
  c.isolate('n4');
  c.isolate('n5');
  c.isolate('n3');
  c.node('n1').core.propose([bytes('a')]);
  c.stabilize();
  t.equal(c.node('n1').core.log.committed, 1, 'only the no-op: 2 of 5 is no majority');
  c.heal();
  c.isolate('n4');
  c.isolate('n5');
  c.tick('n1');
  c.stabilize();
  t.equal(c.node('n1').core.log.committed, 2, '3 of 5 is');
  t.same(c.node('n1').applied.map(text), ['', 'a']);
});

t.test('§5.3 after a rejection the leader decrements nextIndex and retries until the logs match', async (t) => {
  const c = new TestCluster(3);
  c.elect('n1');
  c.isolate('n3');
  for (let i = 0; i < 5; i++) c.propose('n1', `v${i}`);
  c.heal();
  c.propose('n1', 'last');
  const n3 = c.node('n3');
  t.equal(n3.core.log.lastIndex(), c.node('n1').core.log.lastIndex());
  t.same(n3.applied.map(text).slice(-2), ['v4', 'last']);
});

t.test('§5.4.1 a voter denies its vote to a candidate whose log is less up-to-date', async (t) => {
  const node = newNode('n1', peers, {}, storageWith(entries(1, 2, 2), { term: 2 }));
  node.core.step({ type: 'vote', from: 'n2', to: 'n1', term: 3, lastLogIndex: 5, lastLogTerm: 1 });
  node.core.step({ type: 'vote', from: 'n3', to: 'n1', term: 4, lastLogIndex: 2, lastLogTerm: 2 });
  const replies = only(drain(node), 'voteResp');
  t.same(replies.map((r) => r.reject), [true, true], 'lower last term loses even if longer; equal term but shorter loses');
  t.equal(node.core.term, 4, 'the term still advances');
});

t.test('§5.4.1 a voter grants its vote to a candidate whose log is at least as up-to-date', async (t) => {
  const node = newNode('n1', peers, {}, storageWith(entries(1, 2, 2), { term: 2 }));
  node.core.step({ type: 'vote', from: 'n2', to: 'n1', term: 3, lastLogIndex: 3, lastLogTerm: 2 });
  node.core.step({ type: 'vote', from: 'n3', to: 'n1', term: 4, lastLogIndex: 1, lastLogTerm: 3 });
  const replies = only(drain(node), 'voteResp');
  t.same(replies.map((r) => r.reject), [false, false]);
});

t.test('§5.4.2 a leader never commits an entry from a previous term by counting replicas', async (t) => {
  // Figure 8: n1 leads term 1... Here: n1 is leader of term 3 with an entry of term 2 at index 2
  // that a majority holds; it must not commit index 2 until an entry of term 3 is replicated.
  const stored = entries(1, 2);
  const n1 = newNode('n1', peers, {}, storageWith(stored, { term: 2 }));
  const n2 = newNode('n2', peers, {}, storageWith(stored, { term: 2 }));
  // n1 becomes leader of term 3 with n2's vote.
  while (n1.core.role !== 'candidate') n1.core.tick();
  for (const m of drain(n1)) if (m.to === 'n2') n2.core.step(m);
  for (const m of drain(n2)) n1.core.step(m);
  t.equal(n1.core.role, 'leader');
  const sent = drain(n1);
  const toN2 = only(sent, 'append').filter((m) => m.to === 'n2');
  // n2 acknowledges only up to index 2 (as if the no-op append was lost).
  const ack: AppendResponse = { type: 'appendResp', from: 'n2', to: 'n1', term: n1.core.term, index: 2, reject: false, rejectHintIndex: 0, rejectHintTerm: 0 };
  n1.core.step(ack);
  drain(n1);
  t.equal(n1.core.log.committed, 0, 'index 2 (term 2) is on a majority but not committed');
  t.ok(toN2.length > 0);
  n1.core.step({ ...ack, index: 3 });
  drain(n1);
  t.equal(n1.core.log.committed, 3, 'committing the term-3 no-op commits index 2 indirectly');
});

t.test('§5.4.2 a new leader appends a no-op so earlier entries commit without new commands', async (t) => {
  const c = new TestCluster(3);
  c.elect('n1');
  const noop = c.node('n1').core.log.entryAt(1)!;
  t.equal(noop.data.byteLength, 0);
  t.equal(noop.term, c.node('n1').core.term);
  t.equal(c.node('n1').core.log.committed, 1);
});

t.test('Figure 2: term and vote are persisted before the vote is sent', async (t) => {
  const node = newNode('n1', peers);
  node.core.step({ type: 'vote', from: 'n2', to: 'n1', term: 7, lastLogIndex: 0, lastLogTerm: 0 });
  const ready = node.core.ready();
  t.same(ready.hardState, { term: 7, vote: 'n2', commit: 0 }, 'the same Ready carries the state to fsync first');
  t.equal((ready.messages[0] as VoteResponse).reject, false);
});

t.test('Figure 2: committed entries are applied once each, in log order', async (t) => {
  const c = new TestCluster(3);
  c.elect('n2');
  for (let i = 0; i < 20; i++) c.propose('n2', `c${i}`);
  c.heartbeat('n2');
  for (const node of c.nodes.values()) {
    t.same(node.applied.map((e) => e.index), Array.from({ length: 21 }, (_, i) => i + 1), node.id);
  }
});

t.test('Figure 2: a leader sends messages only after entries are handed out for persistence', async (t) => {
  const c = new TestCluster(3);
  c.elect('n1');
  const leader = c.node('n1');
  leader.core.propose([bytes('p')]);
  const ready = leader.core.ready();
  const appendMsgs = only([...ready.messages], 'append');
  t.ok(appendMsgs.length > 0);
  t.same(ready.entries.map((e) => e.index), [2], 'the entry to persist travels in the same Ready as the appends');
  t.equal(leader.core.progressOf('n1')!.match, 1, 'the leader does not count itself before persisting');
  leader.storage.persistSync({ hardState: ready.hardState, entries: ready.entries, snapshot: ready.snapshot });
  leader.core.advance(ready);
  t.equal(leader.core.progressOf('n1')!.match, 2);
});
