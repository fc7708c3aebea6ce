// When a node snapshots (RaftNode.maybeSnapshot, snapshotInterval): at least every
// --snapshot-every entries, later for a big state (its cost grows with the state), and at a
// different entry on each member, so that the group's members do not all serialise at once.
import t from 'tap';
import { SNAPSHOT_BYTES_PER_ENTRY, snapshotInterval } from '../../../master/raft/node.js';

const ids = ['m1', 'm2', 'm3', 'm4', 'm5', '127.0.0.1:9400', '127.0.0.1:9401', '127.0.0.1:9402'];

t.test('a small state: --snapshot-every, stretched by at most half', async (t) => {
  for (const id of ids) {
    const n = snapshotInterval(10_000, 4096, id);
    t.ok(n >= 10_000 && n < 15_000, `${id}: ${n} entries`);
    t.equal(snapshotInterval(10_000, 4096, id), n, `${id}: the same each time`);
  }
  t.ok(snapshotInterval(1, 0, 'm1') >= 1, 'never below one entry');
});

t.test('members of a group snapshot at different entries', async (t) => {
  for (const group of [ids.slice(0, 3), ids.slice(0, 5), ids.slice(5)]) {
    const intervals = group.map((id) => snapshotInterval(10_000, 0, id));
    t.equal(new Set(intervals).size, group.length, `${group.join(', ')}: ${intervals.join(', ')}`);
  }
});

t.test('a big state waits in proportion to its snapshot', async (t) => {
  // A million files make some 55 MB of master snapshot.
  const bytes = 55_000_000;
  for (const id of ids.slice(0, 3)) {
    const n = snapshotInterval(10_000, bytes, id);
    t.ok(n >= bytes / SNAPSHOT_BYTES_PER_ENTRY && n < 1.5 * (bytes / SNAPSHOT_BYTES_PER_ENTRY) + 1, `${id}: ${n} entries`);
  }
  t.equal(snapshotInterval(10_000, 10_000 * SNAPSHOT_BYTES_PER_ENTRY - 1, 'm1'), snapshotInterval(10_000, 0, 'm1'), 'up to --snapshot-every KiB of snapshot the flag decides');
});
