// The driver's order against a disk that completes only when the test says: what a node answers
// must already be on its disk (Figure 2: "Updated on stable storage before responding to RPCs").
// The simulator checks the same at every send; these pin it down by hand.
import t from 'tap';
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

t.test('a leader never syncs on its thread: its followers\' replies and new proposals go on meanwhile', async (t) => {
  const storage = new HeldStorage();
  let tick = (): void => {};
  const node = new RaftNode({
    id: 'n1', peers: ['n1'], storage, transport: { send: () => {} }, stateMachine: new KvStateMachine(),
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
  }
  t.equal(node.status().role, 'leader', 'a group of one elects itself');
  storage.complete();
  await settle();
  const applied = node.propose(encodeKv({ op: 'put', key: 'a', value: '1' }));
  await settle();
  const batch = storage.batches().find((b) => b.entries.length > 0);
  t.ok(batch !== undefined, 'the proposal is being written');
  t.equal(batch!.mayBlock, false, 'with its sync in the thread pool');
  let done = false;
  void applied.then(() => (done = true));
  for (let i = 0; i < 10 && !done; i++) {
    storage.complete();
    await settle();
  }
  t.ok(done, 'and it is applied once written');
  const stopped = node.stop();
  storage.complete(); // the commit index of the last Ready, written after the answer
  await stopped;
});
