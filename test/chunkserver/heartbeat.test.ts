// The chunkserver's heartbeat loop (chunkserver/heartbeat.ts) with a fake master, store and
// copier: a reply's deletes run off the heartbeat path, so a disk slow to unlink does not stop
// the beats (the master would declare the server dead), and replies still apply in order.
import t from 'tap';
import { Heartbeat } from '../../chunkserver/heartbeat.js';
import type { Copier } from '../../chunkserver/copier.js';
import type { Activity } from '../../chunkserver/routes/index.js';
import type { ChunkStore } from '../../chunkserver/store/index.js';
import type { LeaderClient } from '../../common/leader.js';
import { createLogger } from '../../common/log.js';
import type { CopyOrder, HeartbeatReply } from '../../common/protocol.js';

t.test('a slow delete does not hold up the next heartbeat; replies apply in order', async (t) => {
  const events: string[] = [];
  const replies: HeartbeatReply[] = [
    { reregister: false, deletes: [], copies: [] }, // the registration
    { reregister: false, deletes: [7, 8], copies: [] },
    { reregister: false, deletes: [], copies: [{ handle: 9, version: 1, length: 0, checksum: '0', source: '127.0.0.1:1', timeoutMs: 1000, token: 't' } as unknown as CopyOrder] },
  ];
  const calls: string[] = [];
  const masters = {
    leader: 'fake',
    call: async (path: string) => {
      calls.push(path);
      return replies.shift() ?? { reregister: false, deletes: [], copies: [] };
    },
  } as unknown as LeaderClient;
  let releaseDeletes!: () => void;
  const deletesMayFinish = new Promise<void>((r) => (releaseDeletes = r));
  const store = {
    count: 0,
    list: () => [],
    clearChanges: () => undefined,
    takeChanges: () => ({ added: [], removed: [] }),
    restoreChanges: () => undefined,
    diskStats: async () => ({ capacityBytes: 100, freeBytes: 50 }),
    usedBytes: () => 50,
    removeOrdered: async (h: number) => {
      events.push(`delete ${h} starts`);
      await deletesMayFinish;
      events.push(`delete ${h} done`);
      return true;
    },
  } as unknown as ChunkStore;
  const copier = {
    rateBytesPerSec: 0,
    takeFailed: () => [],
    add: (orders: CopyOrder[]) => {
      if (orders.length > 0) events.push(`copy ${orders.map((o) => o.handle).join(',')}`);
    },
  } as unknown as Copier;
  const activity = { writes: 0, reads: 0 } as Activity;
  const hb = new Heartbeat('cs1', '127.0.0.1:1', masters, store, activity, copier, 60_000, createLogger('chunkserver', 'cs1'));
  t.teardown(() => hb.stop());

  const beats = async (n: number) => {
    for (let i = 0; i < 200 && calls.length < n; i++) {
      hb.beat();
      await new Promise((r) => setTimeout(r, 5));
    }
  };
  hb.start(); // registers
  await beats(2); // the reply with deletes 7 and 8
  await beats(4); // two more heartbeats while delete 7 is still stuck
  t.same(calls, ['/v1/cs/register', '/v1/cs/heartbeat', '/v1/cs/heartbeat', '/v1/cs/heartbeat'], 'heartbeats go on while a delete is slow');
  t.same(events, ['delete 7 starts'], 'the later copy order waits for the earlier deletes');
  releaseDeletes();
  await hb.settled();
  t.same(events, ['delete 7 starts', 'delete 7 done', 'delete 8 starts', 'delete 8 done', 'copy 9'], 'replies applied in the order they came');
});
