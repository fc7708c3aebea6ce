// The driver's order against a disk that completes only when the test says: what a node answers
// must already be on its disk (Figure 2: "Updated on stable storage before responding to RPCs").
// The simulator checks the same at every send; these pin it down by hand.
import t from 'tap';
import { MemoryStorage } from '../../../master/raft/memory-storage.js';
import { RaftNode } from '../../../master/raft/node.js';
import type { PersistBatch } from '../../../master/raft/storage.js';
import type { Message } from '../../../master/raft/types.js';
import { entries } from './helpers.js';
import { KvStateMachine } from './kv.js';

/** A MemoryStorage whose writes wait until `complete()` is called. */
class HeldStorage extends MemoryStorage {
  private held: { batch: PersistBatch; done: () => void }[] = [];

  override persist(batch: PersistBatch): Promise<void> {
    return new Promise((done) => this.held.push({ batch, done }));
  }

  pending(): number {
    return this.held.length;
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
