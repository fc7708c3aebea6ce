// The chunk store's changes for heartbeats (chunkserver/store/changes.ts): one per handle, the latest
// winning, so a beat may carry any part of them; at most MAX_HEARTBEAT_CHANGES of each a beat;
// past MAX_CHANGE_BACKLOG they are dropped for a full report. And the heartbeat loop
// (chunkserver/heartbeat.ts) pages both its registration and a backlog.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import type { Copier } from '../../chunkserver/copier.js';
import { Heartbeat } from '../../chunkserver/heartbeat.js';
import type { Activity } from '../../chunkserver/routes/index.js';
import { ChunkStore } from '../../chunkserver/store/index.js';
import { initChecksums } from '../../common/checksum.js';
import type { LeaderClient } from '../../common/leader.js';
import { MAX_CHANGE_BACKLOG, MAX_HEARTBEAT_CHANGES, MAX_REPORT_PAGE_CHUNKS } from '../../common/limits.js';
import { createLogger } from '../../common/log.js';
import type { HeartbeatReply, RegisterRequest, HeartbeatRequest, ReportedChunk } from '../../common/protocol.js';

const log = createLogger('chunkserver', 'test');
await initChecksums();

async function newStore(tt: { teardown(fn: () => unknown): void }): Promise<ChunkStore> {
  const dir = mkdtempSync(join(tmpdir(), 'dfs-changes-test-'));
  tt.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const s = new ChunkStore(dir, log, { directIo: false });
  await s.open();
  return s;
}

async function put(store: ChunkStore, handle: number, version = 1): Promise<void> {
  const w = await store.createWriter(handle, version, 1024);
  await w.write(Buffer.from(`chunk ${handle}`));
  await w.commit(await w.finish());
}

const range = (n: number, from = 1): ReportedChunk[] => Array.from({ length: n }, (_, i) => ({ handle: from + i, version: 1, length: 1 }));

t.test('a handle is in the added or the removed changes, the latest winning', async (t) => {
  const store = await newStore(t);
  await put(store, 1);
  await store.remove(1);
  t.same(store.takeChanges(), { added: [], removed: [1] }, 'added then removed: reported removed only');
  await store.remove(2); // never here: nothing
  await put(store, 3);
  t.same(store.takeChanges(), { added: [{ handle: 3, version: 1, length: 7 }], removed: [] });
  await store.remove(3);
  await put(store, 3, 2);
  t.same(store.takeChanges(), { added: [{ handle: 3, version: 2, length: 7 }], removed: [] }, 'removed then added again: reported added (a beat carrying both lists would lose it)');
  await put(store, 4);
  await store.remove(4, false);
  t.same(store.takeChanges(), { added: [], removed: [] }, 'deleted on the master\'s order before reported: nothing to say');
});

t.test('a failed beat puts its changes back, without undoing newer ones', async (t) => {
  const store = await newStore(t);
  await put(store, 1);
  await put(store, 2);
  const beat = store.takeChanges();
  await store.remove(1);
  store.restoreChanges(beat);
  t.same(store.takeChanges(), { added: [{ handle: 2, version: 1, length: 7 }], removed: [1] });
});

t.test('a beat carries at most MAX_HEARTBEAT_CHANGES of each; past MAX_CHANGE_BACKLOG the changes go for a full report', async (t) => {
  const store = await newStore(t);
  store.restoreChanges({ added: range(MAX_HEARTBEAT_CHANGES + 5), removed: [] });
  t.equal(store.takeChanges().added.length, MAX_HEARTBEAT_CHANGES);
  t.same(store.takeChanges().added.map((c) => c.handle), [1, 2, 3, 4, 5].map((i) => MAX_HEARTBEAT_CHANGES + i), 'the rest in the next, oldest first');
  t.equal(store.pendingChanges, 0);
  store.restoreChanges({ added: range(MAX_CHANGE_BACKLOG), removed: [] });
  t.notOk(store.changesOverflowed, 'at the cap: kept');
  store.restoreChanges({ added: [], removed: [MAX_CHANGE_BACKLOG + 1] });
  t.ok(store.changesOverflowed, 'one past it: dropped, a full report is due');
  t.equal(store.pendingChanges, 0, 'nothing kept');
  store.clearChanges();
  t.notOk(store.changesOverflowed, 'a full report clears it');
});

function fakeMaster(replyTo: (path: string, body: unknown) => HeartbeatReply = () => ({ reregister: false, deletes: [], copies: [] })) {
  const calls: { path: string; body: RegisterRequest & HeartbeatRequest }[] = [];
  const masters = {
    leader: 'fake',
    moveOn: () => undefined,
    call: async (path: string, opts: { body: RegisterRequest & HeartbeatRequest }) => {
      calls.push({ path, body: opts.body });
      return replyTo(path, opts.body);
    },
  } as unknown as LeaderClient;
  return { calls, masters };
}

const copier = { rateBytesPerSec: 0, takeFailed: () => [], add: () => undefined } as unknown as Copier;

async function until(cond: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !cond(); i++) await new Promise((r) => setTimeout(r, 10));
}

t.test('registration goes in pages of MAX_REPORT_PAGE_CHUNKS, one report id, the last final', async (t) => {
  const chunks = range(2 * MAX_REPORT_PAGE_CHUNKS + 7);
  const store = {
    count: chunks.length, list: () => chunks, clearChanges: () => undefined, changesOverflowed: false, pendingChanges: 0,
    takeChanges: () => ({ added: [], removed: [] }), restoreChanges: () => undefined,
    diskStats: async () => ({ capacityBytes: 100, freeBytes: 50, fsId: 'x:1' }), usedBytes: () => 50,
  } as unknown as ChunkStore;
  const { calls, masters } = fakeMaster();
  const hb = new Heartbeat('cs1', '127.0.0.1:1', masters, store, { writes: 0, reads: 0 } as Activity, copier, 60_000, log);
  t.teardown(() => hb.stop());
  hb.start();
  await until(() => calls.length >= 3);
  await hb.settled();
  t.same(calls.map((c) => c.path), ['/v1/cs/register', '/v1/cs/register', '/v1/cs/register']);
  t.same(calls.map((c) => c.body.chunks.length), [MAX_REPORT_PAGE_CHUNKS, MAX_REPORT_PAGE_CHUNKS, 7]);
  t.same(calls.map((c) => [c.body.report?.page, c.body.report?.final]), [[0, false], [1, false], [2, true]]);
  t.equal(new Set(calls.map((c) => c.body.report?.id)).size, 1, 'one report id');
  t.same(calls.flatMap((c) => c.body.chunks), chunks, 'every chunk once, in order');
});

t.test('a page answered with reregister starts the report over; a backlog goes in several beats; an overflow re-registers', async (t) => {
  const store = await newStore(t);
  await put(store, 1);
  let refuse = true;
  const { calls, masters } = fakeMaster((path) => {
    if (path === '/v1/cs/register' && refuse) {
      refuse = false;
      return { reregister: true, deletes: [], copies: [] };
    }
    return { reregister: false, deletes: [], copies: [] };
  });
  const hb = new Heartbeat('cs1', '127.0.0.1:1', masters, store, { writes: 0, reads: 0 } as Activity, copier, 60_000, log);
  t.teardown(() => hb.stop());
  hb.start();
  await until(() => calls.length >= 2);
  t.same(calls.map((c) => c.path), ['/v1/cs/register', '/v1/cs/register'], 'the refused report is sent again');
  t.not(calls[0]!.body.report?.id, calls[1]!.body.report?.id, 'under a new report id');

  store.restoreChanges({ added: range(MAX_HEARTBEAT_CHANGES + 3, 100), removed: [] });
  calls.length = 0;
  hb.beat();
  await until(() => calls.length >= 2);
  t.same(calls.map((c) => [c.path, c.body.added.length]), [['/v1/cs/heartbeat', MAX_HEARTBEAT_CHANGES], ['/v1/cs/heartbeat', 3]], 'a backlog goes in as many beats as it takes, at once');

  store.restoreChanges({ added: range(MAX_CHANGE_BACKLOG + 1, 100), removed: [] });
  calls.length = 0;
  hb.beat();
  await until(() => calls.length >= 1);
  t.same(calls.map((c) => [c.path, c.body.chunks?.length]), [['/v1/cs/register', 1]], 'an overflowed backlog: a full report instead');
  t.notOk(store.changesOverflowed);
});
