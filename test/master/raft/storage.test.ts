// FileStorage: checksummed WAL with torn-tail recovery, group commit, snapshots and compaction.
import { statSync } from 'node:fs';
import { mkdtemp, readFile, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { crc32 } from 'node:zlib';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { FileStorage } from '../../../master/raft/file-storage.js';
import { MemoryStorage } from '../../../master/raft/memory-storage.js';
import { wholeData } from '../../../master/raft/snapshot-data.js';
import type { Entry } from '../../../master/raft/types.js';
import { decodeRecords, encodeRecords } from '../../../master/raft/wal.js';

const entry = (index: number, term: number, text = `e${index}`): Entry => ({ index, term, data: new TextEncoder().encode(text) });

async function tempDir(t: { teardown(fn: () => unknown): void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'dfs-raft-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

t.test('persisted entries and hard state survive a reopen', async (t) => {
  const dir = await tempDir(t);
  const s1 = await FileStorage.open({ dir });
  await s1.persist({ hardState: { term: 2, vote: 'n2', commit: 2 }, entries: [entry(1, 1), entry(2, 2), entry(3, 2)], snapshot: null });
  await s1.close();
  const s2 = await FileStorage.open({ dir });
  t.same(s2.initialState(), { term: 2, vote: 'n2', commit: 2 });
  t.equal(s2.lastIndex(), 3);
  t.equal(s2.term(2), 2);
  t.same(new TextDecoder().decode(s2.entries(3, 4, 1 << 20)[0]!.data), 'e3');
  t.equal(s2.openReport.truncatedBytes, 0);
  await s2.close();
});

t.test('an append that overlaps the log truncates the conflicting suffix, also after replay', async (t) => {
  const dir = await tempDir(t);
  const s1 = await FileStorage.open({ dir });
  await s1.persist({ hardState: null, entries: [entry(1, 1), entry(2, 1), entry(3, 1)], snapshot: null });
  await s1.persist({ hardState: null, entries: [entry(2, 3, 'new')], snapshot: null });
  t.equal(s1.lastIndex(), 2);
  await s1.close();
  const s2 = await FileStorage.open({ dir });
  t.equal(s2.lastIndex(), 2);
  t.equal(s2.term(2), 3);
  await s2.close();
});

t.test('a torn tail (partial last record) is detected and cut off at start', async (t) => {
  const dir = await tempDir(t);
  const s1 = await FileStorage.open({ dir });
  await s1.persist({ hardState: { term: 1, vote: null, commit: 1 }, entries: [entry(1, 1)], snapshot: null });
  await s1.persist({ hardState: null, entries: [entry(2, 1, 'x'.repeat(100))], snapshot: null });
  await s1.close();
  const wal = join(dir, 'raft.wal');
  const size = (await stat(wal)).size;
  await truncate(wal, size - 30);
  const s2 = await FileStorage.open({ dir });
  t.equal(s2.lastIndex(), 1, 'the torn record is gone');
  t.ok(s2.openReport.truncatedBytes > 0);
  await s2.persist({ hardState: null, entries: [entry(2, 1, 'again')], snapshot: null });
  await s2.close();
  const s3 = await FileStorage.open({ dir });
  t.equal(s3.lastIndex(), 2, 'appends after the cut are readable');
  t.equal(s3.openReport.truncatedBytes, 0);
  await s3.close();
});

t.test('a record with a bad checksum ends the log there', async (t) => {
  const dir = await tempDir(t);
  const s1 = await FileStorage.open({ dir });
  await s1.persist({ hardState: null, entries: [entry(1, 1), entry(2, 1), entry(3, 1)], snapshot: null });
  await s1.close();
  const wal = join(dir, 'raft.wal');
  const bytes = await readFile(wal);
  bytes[bytes.byteLength - 2] ^= 0xff; // flip a bit in the last record's payload
  await writeFile(wal, bytes);
  const s2 = await FileStorage.open({ dir });
  t.equal(s2.lastIndex(), 2);
  await s2.close();
});

t.test('WAL records round-trip and garbage decodes to nothing', async (t) => {
  const records = [
    { kind: 'base' as const, index: 5, term: 2 },
    { kind: 'entry' as const, entry: entry(6, 2) },
    { kind: 'hardState' as const, hardState: { term: 3, vote: null, commit: 6 } },
    { kind: 'hardState' as const, hardState: { term: 3, vote: 'n1', commit: 6 } },
  ];
  const decoded = decodeRecords(encodeRecords(records));
  t.same(decoded.records, records);
  t.same(decodeRecords(Buffer.from('not a wal at all, just text')).records, []);
});

t.test('the WAL format on disk does not change: these records encode to the bytes masters have written since the first release', async (t) => {
  const records = [
    { kind: 'base' as const, index: 5, term: 2 },
    { kind: 'hardState' as const, hardState: { term: 3, vote: 'm2', commit: 7 } },
    { kind: 'hardState' as const, hardState: { term: 4, vote: null, commit: 8 } },
    { kind: 'entry' as const, entry: { term: 3, index: 6, data: Uint8Array.of(1, 2, 3) } },
    { kind: 'entry' as const, entry: { term: 3, index: 7, data: new Uint8Array(0) } },
    { kind: 'hardState' as const, hardState: { term: 5, vote: 'ñ-ü', commit: 9 } },
  ];
  // Written by the encoder that built each record and joined them (before 2026-12-08).
  const golden = Buffer.from(
    '11000000527009a2030500000000000000020000000000000016000000d1eb50e202030000000000000007000000000000000200006d321400000039c80cbb0204000000000000000800000000000000ffff00140000002eb5ac8b0103000000000000000600000000000000010203110000001587446d0103000000000000000700000000000000190000007dc6ff1d0205000000000000000900000000000000050000c3b12dc3bc',
    'hex',
  );
  t.same(encodeRecords(records), golden);
  t.same(decodeRecords(golden).records, records);
});

t.test('a snapshot is saved atomically and compacts the log, keeping the requested tail', async (t) => {
  const dir = await tempDir(t);
  const s1 = await FileStorage.open({ dir });
  const log = Array.from({ length: 100 }, (_, i) => entry(i + 1, 1, 'y'.repeat(200)));
  await s1.persist({ hardState: { term: 1, vote: null, commit: 100 }, entries: log, snapshot: null });
  const sizeBefore = (await stat(join(dir, 'raft.wal'))).size;
  await s1.saveSnapshot({ meta: { index: 90, term: 1 }, data: Uint8Array.of(9, 9, 9) }, 85);
  t.equal(s1.firstIndex(), 86);
  t.equal(s1.term(85), 1);
  t.equal(s1.term(84), undefined, 'compacted');
  const sizeAfter = (await stat(join(dir, 'raft.wal'))).size;
  t.ok(sizeAfter < sizeBefore / 5, `WAL shrank from ${sizeBefore} to ${sizeAfter}`);
  await s1.close();
  const s2 = await FileStorage.open({ dir });
  t.same(s2.snapshot().meta, { index: 90, term: 1 });
  t.same(wholeData(s2.snapshot().data), Uint8Array.of(9, 9, 9));
  t.equal(s2.firstIndex(), 86);
  t.equal(s2.lastIndex(), 100);
  t.same(s2.initialState(), { term: 1, vote: null, commit: 100 });
  await s2.close();
});

t.test('a snapshot received from the leader replaces the whole log', async (t) => {
  const dir = await tempDir(t);
  const s1 = await FileStorage.open({ dir });
  await s1.persist({ hardState: { term: 1, vote: null, commit: 1 }, entries: [entry(1, 1), entry(2, 1)], snapshot: null });
  await s1.persist({
    hardState: { term: 4, vote: null, commit: 50 },
    entries: [entry(51, 4)],
    snapshot: { meta: { index: 50, term: 3 }, data: Uint8Array.of(5) },
  });
  await s1.close();
  const s2 = await FileStorage.open({ dir });
  t.equal(s2.firstIndex(), 51);
  t.equal(s2.term(50), 3);
  t.equal(s2.lastIndex(), 51);
  t.same(s2.initialState(), { term: 4, vote: null, commit: 50 });
  await s2.close();
});

t.test('a crash between saving a received snapshot and rewriting the WAL recovers to the snapshot', async (t) => {
  const dir = await tempDir(t);
  const s1 = await FileStorage.open({ dir });
  await s1.persist({ hardState: { term: 1, vote: null, commit: 2 }, entries: [entry(1, 1), entry(2, 1), entry(3, 1)], snapshot: null });
  await s1.close();
  const wal = await readFile(join(dir, 'raft.wal'));
  // Install a snapshot that conflicts with the WAL, then put the old WAL back (the "crash").
  const s2 = await FileStorage.open({ dir });
  await s2.persist({ hardState: null, entries: [], snapshot: { meta: { index: 3, term: 2 }, data: Uint8Array.of(1) } });
  await s2.close();
  await writeFile(join(dir, 'raft.wal'), wal);
  const s3 = await FileStorage.open({ dir });
  t.equal(s3.firstIndex(), 4);
  t.equal(s3.term(3), 2, 'the snapshot wins over the conflicting WAL');
  t.equal(s3.initialState().commit, 3, 'commit is at least the snapshot index');
  await s3.close();
});

t.test('a corrupt snapshot file refuses to start rather than lose data silently', async (t) => {
  const dir = await tempDir(t);
  const s1 = await FileStorage.open({ dir });
  await s1.persist({ hardState: null, entries: [entry(1, 1)], snapshot: null });
  await s1.saveSnapshot({ meta: { index: 1, term: 1 }, data: new Uint8Array(100).fill(7) }, 1);
  await s1.close();
  const path = join(dir, 'raft.snapshot');
  const bytes = await readFile(path);
  bytes[bytes.byteLength - 1] ^= 1;
  await writeFile(path, bytes);
  await t.rejects(FileStorage.open({ dir }), /corrupt/);
});

t.test('MemoryStorage bounds entries() by bytes but always returns one entry', async (t) => {
  const s = new MemoryStorage();
  s.append([entry(1, 1, 'a'.repeat(100)), entry(2, 1, 'b'.repeat(100)), entry(3, 1)]);
  t.equal(s.entries(1, 4, 10).length, 1);
  t.equal(s.entries(1, 4, 260).length, 2);
  t.equal(s.entries(1, 4, 1 << 20).length, 3);
});

t.test('a snapshot taken here is streamed to disk; a crash mid-write leaves the previous one in use', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'raft-stream-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const s1 = await FileStorage.open({ dir });
  await s1.persist({ hardState: { term: 1, vote: null, commit: 100 }, entries: Array.from({ length: 100 }, (_, i) => entry(i + 1, 1, 'z')), snapshot: null });
  const pieces = (n: number, fill: number, failAt?: number): Iterator<Uint8Array> => {
    let i = 0;
    return { next: () => {
      if (i === failAt) throw new Error('the process died here');
      return i < n ? { done: false, value: new Uint8Array(1000).fill(fill + i++) } : { done: true, value: undefined };
    } };
  };
  await s1.saveSnapshotStream({ index: 50, term: 1 }, pieces(5, 1), 40);
  t.equal(s1.snapshot().data.byteLength, 5000, 'written from its pieces');
  t.same([...s1.snapshot().data.subarray(999, 1001)], [1, 2], 'read back a range at a time from the file');
  await t.rejects(s1.saveSnapshotStream({ index: 80, term: 1 }, pieces(5, 7, 3), 70), /died/);
  t.equal(s1.snapshot().meta.index, 50, 'a failed write changes nothing');
  await s1.close();
  // As if the process had died mid-write: a half-written temp file is left behind.
  await writeFile(join(dir, 'raft.snapshot.taken.tmp'), Buffer.alloc(3000, 7));
  const s2 = await FileStorage.open({ dir });
  t.same(s2.snapshot().meta, { index: 50, term: 1 }, 'the previous snapshot is the one in use');
  t.same([...s2.snapshot().data.subarray(4999, 5000)], [5]);
  await t.rejects(stat(join(dir, 'raft.snapshot.taken.tmp')), /ENOENT/, 'the temp file is removed at start');
  await s2.close();
});

t.test('a snapshot file of the old layout (DFSRSNP1) is still read', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'raft-v1-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const data = Buffer.from('old bytes');
  const header = Buffer.alloc(36);
  Buffer.from('DFSRSNP1', 'ascii').copy(header, 0);
  header.writeBigUInt64LE(7n, 12);
  header.writeBigUInt64LE(2n, 20);
  header.writeBigUInt64LE(BigInt(data.byteLength), 28);
  header.writeUInt32LE(crc32(data, crc32(header.subarray(12))), 8);
  await writeFile(join(dir, 'raft.snapshot'), Buffer.concat([header, data]));
  const s = await FileStorage.open({ dir });
  t.same(s.snapshot().meta, { index: 7, term: 2 });
  t.equal(Buffer.from(wholeData(s.snapshot().data)).toString(), 'old bytes');
  await s.close();
  const damaged = Buffer.concat([header, Buffer.from('old bytez')]);
  await writeFile(join(dir, 'raft.snapshot'), damaged);
  await t.rejects(FileStorage.open({ dir }), /checksum mismatch/, 'and checked as before');
});

t.test('with nothing pending, a persist has its records in the WAL before it returns; later ones wait their turn', async (t) => {
  const dir = await tempDir(t);
  const s = await FileStorage.open({ dir });
  const wal = join(dir, 'raft.wal');
  const size = (): number => statSync(wal).size;
  const empty = size();
  const first = s.persist({ hardState: null, entries: [entry(1, 1)], snapshot: null });
  const afterFirst = size();
  t.ok(afterFirst > empty, 'the first append is written at once (its fdatasync runs meanwhile)');
  const second = s.persist({ hardState: null, entries: [entry(2, 1)], snapshot: null });
  t.equal(size(), afterFirst, 'the second waits for the first to be synced');
  await Promise.all([first, second]);
  t.ok(size() > afterFirst);
  t.equal(s.lastIndex(), 2);
  await s.close();
  const reopened = await FileStorage.open({ dir });
  t.same(reopened.entries(1, 3, 1 << 20).map((e) => e.index), [1, 2], 'both survive a reopen, in order');
  await reopened.close();
});

t.test('a Ready that only moves the commit index is written with the next batch, or at close', async (t) => {
  const dir = await tempDir(t);
  const s1 = await FileStorage.open({ dir });
  await s1.persist({ hardState: { term: 1, vote: 'n1', commit: 0 }, entries: [entry(1, 1), entry(2, 1)], snapshot: null });
  const written = (await stat(join(dir, 'raft.wal'))).size;
  await s1.persist({ hardState: { term: 1, vote: 'n1', commit: 2 }, entries: [], snapshot: null });
  t.equal(s1.initialState().commit, 2, 'the node holds the new commit index at once');
  t.equal((await stat(join(dir, 'raft.wal'))).size, written, 'but writes nothing for it yet');
  // A crash now (the WAL as it is, read by a fresh open): the entries, term and vote are there;
  // the commit index is the one last written, which the leader teaches again.
  const crashed = await FileStorage.open({ dir });
  t.same(crashed.initialState(), { term: 1, vote: 'n1', commit: 0 });
  t.equal(crashed.lastIndex(), 2);
  await crashed.close();
  await s1.persist({ hardState: null, entries: [entry(3, 1)], snapshot: null });
  const afterNext = await FileStorage.open({ dir });
  t.same(afterNext.initialState(), { term: 1, vote: 'n1', commit: 2 }, 'the next batch carries it');
  t.equal(afterNext.lastIndex(), 3);
  await afterNext.close();
  await s1.persist({ hardState: { term: 1, vote: 'n1', commit: 3 }, entries: [], snapshot: null });
  await s1.close();
  const reopened = await FileStorage.open({ dir });
  t.same(reopened.initialState(), { term: 1, vote: 'n1', commit: 3 }, 'a close writes what is left');
  await reopened.close();
});

t.test('a batch whose caller may block is as durable as any', async (t) => {
  const dir = await tempDir(t);
  const synced: number[] = [];
  const s1 = await FileStorage.open({ dir, observer: { walSynced: (s) => synced.push(s) } });
  await s1.persist({ hardState: { term: 3, vote: 'n2', commit: 0 }, entries: [entry(1, 3)], snapshot: null, mayBlock: true });
  // Large enough to go to the thread pool all the same.
  await s1.persist({ hardState: null, entries: [entry(2, 3, 'y'.repeat(100_000))], snapshot: null, mayBlock: true });
  t.equal(synced.length, 2, 'each batch is synced once, and timed');
  const crashed = await FileStorage.open({ dir });
  t.same(crashed.initialState(), { term: 3, vote: 'n2', commit: 0 });
  t.equal(crashed.lastIndex(), 2);
  t.equal(crashed.entries(2, 3, 1 << 20)[0]!.data.byteLength, 100_000);
  await crashed.close();
  await s1.close();
});
