// Membership changes in the core, one rule per test: single-server changes (thesis §4.1),
// configurations effective when appended and undone when truncated, learners (etcd), promotion
// only when close to the leader, removal (§4.2.2), leadership transfer (§3.10), and the
// configuration in snapshots.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { encodeConfEntry, decodeConfEntry, applyConfChange } from '../../../master/raft/conf-change.js';
import { MemoryStorage } from '../../../master/raft/memory-storage.js';
import { readSnapshotFile, writeSnapshotData } from '../../../master/raft/snapshot-file.js';
import type { Message } from '../../../master/raft/types.js';
import { drain, newNode, TestCluster, type CoreOptions } from './helpers.js';

const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);

/** A cluster of n1..n`count` with n1 leading, and optionally a learner n`count+1` started to join it. */
function started(count: number, options: CoreOptions = {}): TestCluster {
  const c = new TestCluster(count, options);
  c.elect('n1');
  return c;
}

function joinLearner(c: TestCluster, id: string, options: CoreOptions = {}): void {
  const voters = c.node('n1').core.conf().voters;
  c.nodes.set(id, newNode(id, voters, { ...options, learners: [id] }));
}

function change(c: TestCluster, type: 'addLearner' | 'promote' | 'remove', node: string, leader = 'n1') {
  const result = c.node(leader).core.proposeConfChange({ type, node });
  c.stabilize();
  return result;
}

t.test('§4.1: a learner receives the log but counts for no quorum', async (t) => {
  const c = started(3);
  c.propose('n1', 'before');
  joinLearner(c, 'n4');
  t.ok(change(c, 'addLearner', 'n4').ok);
  t.same(c.node('n1').core.conf(), { voters: ['n1', 'n2', 'n3'], learners: ['n4'] });
  c.propose('n1', 'after');
  c.heartbeat('n1');
  t.same(c.node('n4').applied.filter((e) => e.data.byteLength > 0 && decodeConfEntry(e.data) === null).map((e) => new TextDecoder().decode(e.data)), ['before', 'after'], 'the learner applied the whole log');
  c.isolate('n2');
  c.isolate('n3');
  const committed = c.node('n1').core.log.committed;
  c.propose('n1', 'with the learner only');
  t.equal(c.node('n1').core.log.committed, committed, 'leader + learner is no majority of three voters');
  c.heal();
  c.tick('n1');
  c.stabilize();
  t.ok(c.node('n1').core.log.committed > committed, 'committed once a voter answers');
});

t.test('§4.1: a learner never campaigns', async (t) => {
  const c = started(3);
  joinLearner(c, 'n4');
  change(c, 'addLearner', 'n4');
  const term = c.node('n4').core.term;
  c.isolate('n4');
  c.tick('n4', 100);
  c.stabilize();
  t.equal(c.node('n4').core.role, 'follower');
  t.equal(c.node('n4').core.term, term);
});

t.test('§4.1: one change at a time: a new change is refused until the previous entry commits', async (t) => {
  const c = started(3);
  joinLearner(c, 'n4');
  c.isolate('n1');
  const first = c.node('n1').core.proposeConfChange({ type: 'addLearner', node: 'n4' });
  t.ok(first.ok);
  const second = c.node('n1').core.proposeConfChange({ type: 'remove', node: 'n3' });
  t.match(second, { ok: false, reason: 'changeInProgress' });
  c.heal();
  c.tick('n1');
  c.stabilize();
  t.ok(c.node('n1').core.proposeConfChange({ type: 'remove', node: 'n3' }).ok, 'accepted once the first committed');
});

t.test('raft-dev 2015: a new leader changes nothing before it commits an entry of its own term', async (t) => {
  const c = new TestCluster(3);
  const n1 = c.node('n1');
  while (n1.core.role !== 'candidate') n1.core.tick();
  // Deliver the votes only: n1 leads, its no-op is not yet committed.
  for (const m of drain(n1)) {
    const voter = c.node(m.to);
    voter.core.step(m);
    for (const reply of drain(voter)) n1.core.step(reply);
  }
  drain(n1);
  t.equal(n1.core.role, 'leader');
  const refused = n1.core.proposeConfChange({ type: 'remove', node: 'n3' });
  t.match(refused, { ok: false, reason: 'changeInProgress' });
  if (!refused.ok) t.match(refused.message, /entry of its term/);
  c.tick('n1');
  c.stabilize();
  t.ok(n1.core.proposeConfChange({ type: 'remove', node: 'n3' }).ok);
});

t.test('§4.1: a configuration takes effect when appended, and is undone when its entry is truncated', async (t) => {
  const c = started(5);
  joinLearner(c, 'n6');
  // Only n2 gets the entry, and n1 never hears back: it cannot commit.
  for (const id of ['n3', 'n4', 'n5']) c.isolate('n1', [id]);
  c.isolate('n2', ['n3', 'n4', 'n5']);
  c.node('n1').core.proposeConfChange({ type: 'addLearner', node: 'n6' });
  c.stabilize();
  t.same(c.node('n2').core.conf().learners, ['n6'], 'in effect on n2, uncommitted');
  t.ok(c.node('n2').core.log.committed < c.node('n2').core.log.lastIndex());
  // n3..n5 elect n3, which overwrites the entry on n2.
  c.isolate('n1');
  c.elect('n3');
  t.equal(c.node('n3').core.role, 'leader');
  c.propose('n3', 'x');
  c.heal();
  c.isolate('n1');
  c.tick('n3');
  c.stabilize();
  t.same(c.node('n2').core.conf(), { voters: ['n1', 'n2', 'n3', 'n4', 'n5'], learners: [] }, 'back to the configuration before it');
});

t.test('etcd: a learner is promoted only when close to the leader', async (t) => {
  const c = started(3, { maxLearnerLagEntries: 5 });
  for (let i = 0; i < 30; i++) c.propose('n1', `e${i}`);
  joinLearner(c, 'n4', { maxLearnerLagEntries: 5 });
  c.isolate('n4');
  change(c, 'addLearner', 'n4');
  for (let i = 0; i < 20; i++) c.propose('n1', `f${i}`);
  t.match(c.node('n1').core.proposeConfChange({ type: 'promote', node: 'n4' }), { ok: false, reason: 'learnerBehind' });
  c.heal();
  c.tick('n1');
  c.stabilize();
  t.ok(change(c, 'promote', 'n4').ok, 'promoted once caught up');
  t.same(c.node('n1').core.conf(), { voters: ['n1', 'n2', 'n3', 'n4'], learners: [] });
  t.same(c.node('n4').core.conf(), c.node('n1').core.conf(), 'the new voter knows it');
  // Four voters: a quorum is three.
  c.isolate('n3');
  c.isolate('n4');
  const committed = c.node('n1').core.log.committed;
  c.propose('n1', 'two of four');
  t.equal(c.node('n1').core.log.committed, committed, 'two of four voters commit nothing');
});

t.test('one learner at a time; bad changes are refused and change nothing', async (t) => {
  const c = started(3);
  joinLearner(c, 'n4');
  change(c, 'addLearner', 'n4');
  t.match(c.node('n1').core.proposeConfChange({ type: 'addLearner', node: 'n5' }), { ok: false, reason: 'invalid', message: /one learner at a time/ });
  t.match(c.node('n1').core.proposeConfChange({ type: 'addLearner', node: 'n2' }), { ok: false, reason: 'invalid', message: /already a member/ });
  t.match(c.node('n1').core.proposeConfChange({ type: 'promote', node: 'n2' }), { ok: false, reason: 'invalid', message: /not a learner/ });
  t.match(c.node('n1').core.proposeConfChange({ type: 'remove', node: 'n9' }), { ok: false, reason: 'invalid', message: /not a member/ });
  t.match(c.node('n2').core.proposeConfChange({ type: 'remove', node: 'n3' }), { ok: false, reason: 'notLeader' });
  t.same(c.node('n1').core.conf(), { voters: ['n1', 'n2', 'n3'], learners: ['n4'] });
  t.same(applyConfChange({ voters: ['n1'], learners: [] }, { type: 'remove', node: 'n1' }), 'n1 is the last voter');
});

t.test('a removal that would leave no live majority is refused', async (t) => {
  const c = started(3);
  c.isolate('n3');
  // Two activity rounds pass without n3.
  for (let i = 0; i < 25; i++) {
    c.tick('n1');
    c.tick('n2');
    c.stabilize();
  }
  t.match(c.node('n1').core.proposeConfChange({ type: 'remove', node: 'n2' }), { ok: false, reason: 'noQuorum' });
  t.ok(change(c, 'remove', 'n3').ok, 'removing the silent one is fine');
  t.same(c.node('n1').core.conf().voters, ['n1', 'n2']);
});

t.test('§4.2.2: a removed follower stops voting and campaigning', async (t) => {
  const c = started(3);
  t.ok(change(c, 'remove', 'n3').ok);
  c.heartbeat('n1');
  t.same(c.node('n3').core.conf().voters, ['n1', 'n2'], 'n3 learned of its removal');
  t.equal(c.node('n3').core.log.committed, c.node('n1').core.log.committed, 'and that it committed');
  c.isolate('n3');
  const term = c.node('n3').core.term;
  c.tick('n3', 100);
  t.equal(c.node('n3').core.term, term, 'it never campaigns');
});

t.test('§4.2.2: a removed follower learns its removal committed at once, even if the leader changes before its next heartbeat', async (t) => {
  const c = started(3);
  t.ok(change(c, 'remove', 'n3').ok);
  t.equal(c.node('n3').core.log.committed, c.node('n1').core.log.committed, 'told with no heartbeat');
  t.equal(c.node('n1').core.transferLeadership('n2'), 'ok');
  c.stabilize();
  t.equal(c.leader()?.id, 'n2', 'n2 leads; it never contacts n3');
  c.node('n2').core.propose([new TextEncoder().encode('after')]);
  c.stabilize();
  t.same(c.node('n3').core.conf().voters, ['n1', 'n2']);
  t.ok(c.node('n3').core.log.committed >= c.node('n3').core.confIndex(), 'n3 holds its removal as committed, so it stops on its own');
});

t.test('§4.2.2: a removed leader steps down once its removal commits, and hands over without an election timeout', async (t) => {
  const c = started(3);
  const term = c.node('n1').core.term;
  t.ok(c.node('n1').core.proposeConfChange({ type: 'remove', node: 'n1' }).ok);
  t.equal(c.node('n1').core.role, 'leader', 'still leads while the entry is uncommitted');
  c.stabilize();
  t.not(c.node('n1').core.role, 'leader');
  const leader = c.leader();
  t.ok(leader !== undefined && leader.id !== 'n1', 'another voter leads, with no tick');
  t.equal(leader?.core.term, term + 1);
  t.same(leader?.core.conf().voters, ['n2', 'n3']);
});

t.test('§3.10: leadership transfer brings the target up to date, then it campaigns at once', async (t) => {
  const c = started(3, { checkQuorum: true, preVote: true });
  const term = c.node('n1').core.term;
  c.isolate('n3');
  c.propose('n1', 'a');
  c.propose('n1', 'b');
  t.equal(c.node('n1').core.transferLeadership('n3'), 'ok');
  t.match(c.node('n1').core.propose([bytes('during')]), { ok: false, reason: 'notLeader' }, 'proposals are refused during a transfer');
  c.heal();
  c.tick('n1');
  c.stabilize();
  t.equal(c.node('n3').core.role, 'leader', 'n3 leads although n2 was in its check-quorum lease');
  t.equal(c.node('n3').core.term, term + 1);
  t.equal(c.node('n1').core.leaderId, 'n3');
  const timeoutNow = c.delivered.filter((m: Message) => m.type === 'timeoutNow');
  t.equal(timeoutNow.length, 1);
  t.ok(c.delivered.some((m) => m.type === 'vote' && m.transfer === true), 'a transfer campaign skips pre-vote');
});

t.test('§3.10: a transfer that does not finish within an election timeout is abandoned', async (t) => {
  const c = started(3);
  c.isolate('n3');
  c.propose('n1', 'a');
  t.equal(c.node('n1').core.transferLeadership('n3'), 'ok');
  t.equal(c.node('n1').core.transferLeadership('n9'), 'notVoter');
  t.equal(c.node('n2').core.transferLeadership('n3'), 'notLeader');
  c.tick('n1', c.node('n1').core.config.electionTick);
  c.stabilize();
  t.equal(c.node('n1').core.role, 'leader');
  t.equal(c.node('n1').core.leadTransferee, null);
  t.ok(c.node('n1').core.propose([bytes('after')]).ok, 'proposals accepted again');
});

t.test('snapshots carry the configuration; a restart takes it over the bootstrap peers', async (t) => {
  const c = started(3);
  change(c, 'remove', 'n3');
  const n1 = c.node('n1');
  const index = n1.core.log.applied;
  const conf = n1.core.confAt(index);
  t.same(conf.voters, ['n1', 'n2']);
  const storage = new MemoryStorage();
  storage.installSnapshot({ meta: { index, term: n1.core.term, conf }, data: new Uint8Array(0) });
  const restarted = newNode('n2', ['n1', 'n2', 'n3'], { applied: index }, storage);
  t.same(restarted.core.conf(), conf, 'from the snapshot, not the bootstrap peers');
  const fromLog = newNode('n1', ['n1', 'n2', 'n3'], {}, n1.storage);
  t.same(fromLog.core.conf(), conf, 'from the configuration entry in the log');

  const dir = await mkdtemp(join(tmpdir(), 'dfs-conf-snap-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await writeSnapshotData(join(dir, 's'), join(dir, 's.tmp'), { meta: { index, term: 1, conf }, data: bytes('state') });
  const read = await readSnapshotFile(join(dir, 's'));
  t.same(read.meta, { index, term: 1, conf }, 'the snapshot file keeps it');
  t.equal(new TextDecoder().decode(read.data.subarray(0, 5)), 'state');
});

t.test('configuration entries round-trip and are told apart from commands', async (t) => {
  const conf = { voters: ['m1', 'm2'], learners: ['m3'] };
  t.same(decodeConfEntry(encodeConfEntry(conf)), conf);
  t.equal(decodeConfEntry(bytes('{"voters":[]}')), null);
  t.equal(decodeConfEntry(new Uint8Array(0)), null);
});

t.test('the wire carries TimeoutNow, the transfer flag and a snapshot\'s configuration, and refuses a bad one', async (t) => {
  const { decodeMessageBatch, encodeMessageBatch } = await import('../../../master/raft/codec.js');
  const conf = { voters: ['m1', 'm2'], learners: ['m3'], addresses: { m1: 'h:1', m2: 'h:2', m3: 'h:3' } };
  const messages: Message[] = [
    { type: 'timeoutNow', from: 'm1', to: 'm2', term: 3 },
    { type: 'vote', from: 'm2', to: 'm1', term: 4, lastLogIndex: 9, lastLogTerm: 3, transfer: true },
    { type: 'snapshot', from: 'm1', to: 'm3', term: 3, meta: { index: 9, term: 3, conf }, totalBytes: 1, offset: 0, data: Uint8Array.of(7) },
  ];
  t.same(decodeMessageBatch(encodeMessageBatch(messages)), messages);
  const bad = JSON.parse(encodeMessageBatch([messages[2]!])) as { messages: { meta: { conf: unknown } }[] };
  bad.messages[0]!.meta.conf = { voters: [], learners: [] };
  t.throws(() => decodeMessageBatch(bad), { code: 'RAFT_BAD_MESSAGE' });
});
