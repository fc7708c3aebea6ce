// The driver's order against a disk that completes only when the test says: what a node answers
// must already be on its disk (Figure 2: "Updated on stable storage before responding to RPCs").
// The simulator checks the same at every send; these pin it down by hand.
import t, { type Test } from 'tap';
import { MemoryStorage } from '../../../master/raft/memory-storage.js';
import { RaftNode } from '../../../master/raft/node.js';
import type { PersistBatch } from '../../../master/raft/storage.js';
import type { Message } from '../../../master/raft/types.js';
import { entries } from './helpers.js';
import { encodeKv, KvStateMachine } from './kv.js';

/** A MemoryStorage whose writes wait until `complete()` is called. */
class HeldStorage extends MemoryStorage {
  private held: { batch: PersistBatch; done: () => void }[] = [];

  override persist(batch: PersistBatch): Promise<void> {
    return new Promise((done) => this.held.push({ batch, done }));
  }

  pending(): number {
    return this.held.length;
  }

  /** The batches being written, in order. */
  batches(): PersistBatch[] {
    return this.held.map((h) => h.batch);
  }

  /** Makes the held writes durable and lets the driver go on. */
  complete(): void {
    const held = this.held;
    this.held = [];
    for (const { batch, done } of held) {
      this.persistSync(batch);
      done();
    }
  }
}

function follower(): { node: RaftNode; storage: HeldStorage; sent: Message[] } {
  const storage = new HeldStorage();
  const sent: Message[] = [];
  const node = new RaftNode({
    id: 'n2',
    peers: ['n1', 'n2', 'n3'],
    storage,
    transport: { send: (messages) => sent.push(...messages) },
    stateMachine: new KvStateMachine(),
    startTicker: () => () => {}, // no ticks: nothing happens but what the test delivers
    raft: { random: () => 0 },
  });
  node.start();
  return { node, storage, sent };
}

async function settle(): Promise<void> {
  await new Promise((resolve) => setImmediate(resolve));
}

t.test('Figure 2: a follower persists the entries before it acknowledges them', async (t) => {
  const { node, storage, sent } = follower();
  node.receive({ type: 'append', from: 'n1', to: 'n2', term: 1, prevLogIndex: 0, prevLogTerm: 0, commit: 0, entries: entries(1, 1) });
  await settle();
  t.equal(storage.pending(), 1, 'the entries are being written');
  t.equal(storage.batches()[0]!.mayBlock, true, 'a follower waits for nothing else: a small batch may sync on its thread');
  t.same(sent, [], 'no acknowledgement while the write is in flight');
  storage.complete();
  await settle();
  const ack = sent.find((m) => m.type === 'appendResp');
  t.ok(ack !== undefined && ack.type === 'appendResp' && !ack.reject && ack.index === 2, 'acknowledged once written');
  t.equal(storage.lastIndex(), 2, 'and the entries it acknowledged are on the disk');
  t.equal(storage.initialState().term, 1, 'with the term');
  await node.stop();
});

t.test('Figure 2: a node persists its vote before it grants it', async (t) => {
  const { node, storage, sent } = follower();
  node.receive({ type: 'vote', from: 'n3', to: 'n2', term: 1, lastLogIndex: 0, lastLogTerm: 0 });
  await settle();
  t.same(sent, [], 'no grant while the vote is being written');
  storage.complete();
  await settle();
  const grant = sent.find((m) => m.type === 'voteResp');
  t.ok(grant !== undefined && grant.type === 'voteResp' && !grant.reject, 'granted once written');
  t.same(storage.initialState(), { term: 1, vote: 'n3', commit: 0 });
  await node.stop();
});

/** n1 of a group of three, made leader by hand (n2 grants its votes, both take its first entry); its sends are recorded in order, with the disk's writes. */
async function leader(t: Test): Promise<{ node: RaftNode; storage: HeldStorage; events: string[]; sent: Message[] }> {
  const storage = new HeldStorage();
  const sent: Message[] = [];
  const events: string[] = [];
  let tick = (): void => {};
  const held = storage.persist.bind(storage);
  storage.persist = (batch) => {
    events.push(`persist ${batch.entries.length} entries${batch.mayBlock ? ', may block' : ''}`);
    return held(batch);
  };
  const node = new RaftNode({
    id: 'n1', peers: ['n1', 'n2', 'n3'], storage, stateMachine: new KvStateMachine(),
    transport: { send: (messages) => { for (const m of messages) events.push(`send ${m.type} to ${m.to}`); sent.push(...messages); } },
    startTicker: (onTick) => {
      tick = onTick;
      return () => {};
    },
    raft: { random: () => 0 },
  });
  node.start();
  for (let i = 0; i < 100 && node.status().role !== 'leader'; i++) {
    tick();
    await settle();
    storage.complete();
    await settle();
    for (const m of sent.splice(0)) {
      if (m.to === 'n2' && (m.type === 'preVote' || m.type === 'vote')) node.receive({ type: m.type === 'vote' ? 'voteResp' : 'preVoteResp', from: 'n2', to: 'n1', term: m.term, reject: false });
    }
    await settle();
  }
  t.equal(node.status().role, 'leader', 'n1 leads with n2\'s vote');
  // Its first entry (the new term's empty one) written and acknowledged, so nothing is left uncommitted.
  for (let i = 0; i < 10; i++) {
    storage.complete();
    await settle();
    for (const m of sent.splice(0)) {
      if (m.type === 'append') node.receive({ type: 'appendResp', from: m.to, to: 'n1', term: m.term, index: m.prevLogIndex + m.entries.length, reject: false, rejectHintIndex: 0, rejectHintTerm: 0 });
    }
    await settle();
  }
  events.length = 0;
  return { node, storage, events, sent };
}

t.test('a leader with one call out sends its appends, then syncs on its thread; with more out, its sync goes to the pool first', async (t) => {
  const { node, storage, events, sent } = await leader(t);
  const first = node.propose(encodeKv({ op: 'put', key: 'a', value: '1' }));
  await settle();
  t.same(events, ['send append to n2', 'send append to n3', 'persist 1 entries, may block'], 'alone: the appends leave, then its entry is written, and it may sync on its thread');
  // A second call while the first is uncommitted: the leader has other work now.
  events.length = 0;
  const second = node.propose(encodeKv({ op: 'put', key: 'b', value: '2' }));
  await settle();
  t.same(events, [], 'the second waits for the first Ready, whose sync is still out');
  storage.complete();
  await settle();
  t.same(events, ['persist 1 entries', 'send append to n2', 'send append to n3'], 'not alone: its write starts first, in the pool, and its appends go meanwhile');
  let done = 0;
  void first.then(() => done++);
  void second.then(() => done++);
  for (let i = 0; i < 10 && done < 2; i++) {
    storage.complete();
    await settle();
    for (const m of sent.splice(0)) {
      if (m.type === 'append' && m.to === 'n2' && m.entries.length > 0) node.receive({ type: 'appendResp', from: 'n2', to: 'n1', term: m.term, index: m.prevLogIndex + m.entries.length, reject: false, rejectHintIndex: 0, rejectHintTerm: 0 });
    }
    await settle();
  }
  t.equal(done, 2, 'both are applied once written and acknowledged');
  const stopped = node.stop();
  storage.complete();
  await stopped;
});
