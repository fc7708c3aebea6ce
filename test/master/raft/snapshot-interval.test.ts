// When a node snapshots (RaftNode.maybeSnapshot, snapshotInterval): at least every
// --snapshot-every entries, later for a big state (its cost grows with the state), at a different
// entry on each member, so that the group's members do not all serialise at once, and never
// after more than MAX_LOG_BYTES_BETWEEN_SNAPSHOTS of entries, whatever the interval.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { FileStorage } from '../../../master/raft/file-storage.js';
import { RaftNode, SNAPSHOT_BYTES_PER_ENTRY, snapshotInterval } from '../../../master/raft/node.js';
import { encodeCommand, encodeRegister, SessionStateMachine, unwrapSessionResult } from '../../../master/raft/session.js';
import { waitFor } from './helpers.js';
import { encodeKv, KvStateMachine } from './kv.js';

const group = ['m1', 'm2', 'm3'];

t.test('a small state: --snapshot-every, stretched by at most half', async (t) => {
  for (const id of group) {
    const n = snapshotInterval(10_000, 4096, id, group);
    t.ok(n >= 10_000 && n < 15_000, `${id}: ${n} entries`);
    t.equal(snapshotInterval(10_000, 4096, id, [...group].reverse()), n, `${id}: the same whatever the order the group is given in`);
  }
  t.ok(snapshotInterval(1, 0, 'm1', group) >= 1, 'never below one entry');
});

t.test('the members of a group snapshot at entries at least a sixth of the interval apart', async (t) => {
  for (const members of [group, ['m1', 'm2', 'm3', 'm4', 'm5'], ['127.0.0.1:9400', '127.0.0.1:9401', '127.0.0.1:9402']]) {
    const intervals = members.map((id) => snapshotInterval(10_000, 0, id, members)).sort((a, b) => a - b);
    const gaps = intervals.slice(1).map((n, i) => n - intervals[i]!);
    t.ok(Math.min(...gaps) >= Math.floor(10_000 / (2 * members.length)), `${members.join(', ')}: ${intervals.join(', ')}`);
  }
  // One not (yet) among the members (a learner joining): a share from its id, within the half.
  const alone = ['a', 'b', 'c'].map((id) => snapshotInterval(10_000, 0, id, ['x', 'y']));
  t.ok(alone.every((n) => n >= 10_000 && n < 15_000) && new Set(alone).size === 3, `ids outside the group: ${alone.join(', ')}`);
});

t.test('a big state waits in proportion to its snapshot', async (t) => {
  // A million files make some 55 MB of master snapshot.
  const bytes = 55_000_000;
  for (const id of group) {
    const n = snapshotInterval(10_000, bytes, id, group);
    t.ok(n >= bytes / SNAPSHOT_BYTES_PER_ENTRY && n < 1.5 * (bytes / SNAPSHOT_BYTES_PER_ENTRY) + 1, `${id}: ${n} entries`);
  }
  t.equal(snapshotInterval(10_000, 10_000 * SNAPSHOT_BYTES_PER_ENTRY - 1, 'm1', group), snapshotInterval(10_000, 0, 'm1', group), 'up to --snapshot-every KiB of snapshot the flag decides');
});

t.test('a node with a big snapshot still snapshots once its log holds the byte limit', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'dfs-raft-interval-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const node = new RaftNode({
    id: 'solo', peers: ['solo'], storage: await FileStorage.open({ dir }), transport: { send: () => undefined },
    stateMachine: new SessionStateMachine(new KvStateMachine()), tickIntervalMs: 10,
    snapshotEveryEntries: 4, compactKeepEntries: 2, maxLogBytesBetweenSnapshots: 16 * 1024,
  });
  node.start();
  t.teardown(() => node.stop());
  await waitFor('leadership', () => (node.status().role === 'leader' ? true : undefined));
  const client = unwrapSessionResult(await node.propose(encodeRegister())) as string;
  let seq = 0;
  const put = (value: string) => node.propose(encodeCommand(client, ++seq, encodeKv({ op: 'put', key: `k${seq}`, value })));
  // 200 KB in one entry: past the byte limit, so a snapshot follows --snapshot-every entries.
  await put('x'.repeat(200_000));
  for (let i = 0; i < 4; i++) await put('small');
  const first = await waitFor('a snapshot', () => (node.status().snapshotIndex > 0 ? node.status().snapshotIndex : undefined));
  // That snapshot (200 KB) makes the interval some 200 entries: small entries wait for it...
  for (let i = 0; i < 30; i++) await put('small');
  await new Promise((r) => setTimeout(r, 100));
  t.equal(node.status().snapshotIndex, first, `30 small entries later, no snapshot yet (the last at ${first})`);
  // ...but 20 KB of them do not.
  for (let i = 0; i < 20; i++) await put('y'.repeat(1024));
  const second = await waitFor('another snapshot', () => (node.status().snapshotIndex > first ? node.status().snapshotIndex : undefined));
  t.ok(second > first + 30, `another snapshot at ${second}, once 16 KiB of entries were applied`);
});
