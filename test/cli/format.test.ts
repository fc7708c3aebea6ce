// cli/format.ts and cli/status-line.ts: the pure pieces of what the CLI prints (issue 13, items 3 and 10).
import t from 'tap';
import { capacityTotals, formatCapacity, formatDegradedWrite, formatFsck, localTime } from '../../cli/format.js';
import { StatusLine } from '../../cli/status-line.js';
import type { FsckReply } from '../../common/protocol.js';

const GiB = 1024 ** 3;

t.test('capacityTotals: a file system shared by several servers counts once', async (t) => {
  const cs = (id: string, fsId: string | undefined, capacityBytes: number, freeBytes: number, alive = true) => ({ id, alive, capacityBytes, freeBytes, fsId });
  t.same(capacityTotals([cs('cs1', 'h:1', 252 * GiB, 100 * GiB), cs('cs2', 'h:1', 252 * GiB, 99 * GiB), cs('cs3', 'h:1', 252 * GiB, 99 * GiB), cs('cs4', 'h:1', 252 * GiB, 99 * GiB)]),
    { capacityBytes: 252 * GiB, freeBytes: 99 * GiB, servers: 4, fileSystems: 1 }, 'four servers on one disk: one disk');
  t.same(capacityTotals([cs('a', 'h1:1', 10, 5), cs('b', 'h2:1', 20, 5), cs('c', 'h1:2', 30, 5)]),
    { capacityBytes: 60, freeBytes: 15, servers: 3, fileSystems: 3 }, 'the same device number on other hosts, or another device: separate');
  t.same(capacityTotals([cs('a', undefined, 10, 1), cs('b', undefined, 10, 1)]),
    { capacityBytes: 20, freeBytes: 2, servers: 2, fileSystems: 2 }, 'servers that do not say: each its own');
  t.same(capacityTotals([cs('a', 'h:1', 10, 1), cs('b', 'h:2', 10, 1, false)]),
    { capacityBytes: 10, freeBytes: 1, servers: 1, fileSystems: 1 }, 'dead servers offer nothing');

  t.equal(formatCapacity({ capacityBytes: 252 * GiB, freeBytes: 99 * GiB, servers: 4, fileSystems: 1 }), '252 GiB raw, 99.0 GiB free (4 chunkservers on 1 file system, each counted once)');
  t.equal(formatCapacity({ capacityBytes: 60 * GiB, freeBytes: 15 * GiB, servers: 3, fileSystems: 3 }), '60.0 GiB raw, 15.0 GiB free', 'nothing shared: nothing to say');
});

t.test('formatDegradedWrite', async (t) => {
  t.equal(formatDegradedWrite('/a', 3, []), undefined, 'an empty file has no chunks to lack replicas');
  t.equal(formatDegradedWrite('/a', 3, [3, 3]), undefined, 'every replica stored');
  t.equal(formatDegradedWrite('/a', 3, [2, 2]), '/a stored with 2 of 3 replicas (1 chunkserver unavailable); the cluster will copy the rest');
  t.equal(formatDegradedWrite('/a', 3, [3, 1, 2]), '/a stored with as few as 1 of 3 replicas per chunk (2 chunkservers unavailable); the cluster will copy the rest');
});

t.test('fsck verdict counts under-replicated chunks', async (t) => {
  const reply: FsckReply = {
    path: '/', files: 1, openFiles: 0, chunks: 4, underReplicated: 0, overReplicated: 0, missing: 0, corrupt: 0,
    filesHealthy: 1, filesUnderReplicated: 0, filesMissing: 0, filesCorrupt: 0, fileReports: [], problems: [], status: 'HEALTHY',
    misplaced: 0, misplacedChunks: [],
  };
  const verdict = (r: FsckReply) => formatFsck(r).split('\n').at(-1);
  t.equal(verdict(reply), "The filesystem under path '/' is HEALTHY");
  t.equal(verdict({ ...reply, underReplicated: 1 }), "The filesystem under path '/' is HEALTHY (1 under-replicated chunk)");
  t.equal(verdict({ ...reply, underReplicated: 3, missing: 1, status: 'CORRUPT' }), "The filesystem under path '/' is CORRUPT (3 under-replicated chunks)");
});

t.test('localTime: the local wall clock and its offset', async (t) => {
  const saved = process.env.TZ;
  t.teardown(() => {
    if (saved === undefined) delete process.env.TZ;
    else process.env.TZ = saved;
  });
  const ms = Date.UTC(2024, 0, 31, 23, 45, 6);
  process.env.TZ = 'UTC';
  t.equal(localTime(ms), '2024-01-31 23:45:06 +0000');
  process.env.TZ = 'Asia/Kolkata';
  t.equal(localTime(ms), '2024-02-01 05:15:06 +0530', 'a half-hour zone, past midnight');
  t.equal(localTime(ms, true), '05:15:06 +0530', 'the clock alone');
  process.env.TZ = 'America/St_Johns';
  t.equal(localTime(ms), '2024-01-31 20:15:06 -0330', 'west of UTC');
});

t.test('StatusLine: drawn in place on a terminal, erased at the end', async (t) => {
  const written: string[] = [];
  const tty = { columns: 20, write: (s: string) => written.push(s) } as unknown as NodeJS.WriteStream;
  const line = new StatusLine(tty);
  line.end();
  t.same(written, [], 'nothing drawn, nothing to erase');
  line.draw('waiting: 3 left');
  line.draw('waiting for a very long time indeed');
  line.end();
  line.end();
  t.same(written, ['\rwaiting: 3 left\x1b[K', '\rwaiting for a very…\x1b[K', '\r\x1b[2K'], 'redrawn from the line start, cut to the width, erased once');
  const quiet = new StatusLine(undefined);
  quiet.draw('x');
  quiet.end();
  t.pass('without a terminal it writes nothing');
});
