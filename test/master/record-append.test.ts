// master/state/record-append.ts through MasterState.apply: the open of a record append picks the
// record's offset (after padding when it does not fit in the last chunk), complete must add exactly
// the padding and the record, a record over a quarter chunk is RECORD_TOO_LARGE and changes
// nothing; concat refuses a file with an append open. Also the framing and its reader scan.
import t from 'tap';
import { initChecksums } from '../../common/checksum.js';
import { frameRecord, scanChunk, SeenIds } from '../../common/record-format.js';
import { MasterState, type FileNode } from '../../master/state/index.js';

const CHUNK = 64;

function apply(s: MasterState, cmd: Parameters<MasterState['apply']>[0]): unknown {
  const r = s.apply(cmd);
  if (!r.ok) throw new Error(`${cmd.op}: ${r.code} ${r.message}`);
  return r.value;
}
function refusal(s: MasterState, cmd: Parameters<MasterState['apply']>[0]): string {
  const r = s.apply(cmd);
  return r.ok ? 'ok' : r.code;
}

/** A file of `n` bytes in one chunk of CHUNK bytes. */
function fileOf(n: number): { s: MasterState; handle: number } {
  const s = new MasterState();
  apply(s, { op: 'create', path: '/f', writeId: 'w1', nowMs: 1, overwrite: false, parents: false, replication: 2, chunkSizeBytes: CHUNK, leaseMs: 1000 });
  const { handle } = apply(s, { op: 'allocate', writeId: 'w1', index: 0, nowMs: 1 }) as { handle: number };
  apply(s, { op: 'complete', writeId: 'w1', length: n, chunks: [{ handle, length: n, checksum: 'c' }], nowMs: 1 });
  return { s, handle };
}

type Opened = { record: { offset: number; pad: number }; fill?: { handle: number } };

t.test('a record that fits goes at the file size, in the last chunk', async (t) => {
  const { s, handle } = fileOf(10);
  const o = apply(s, { op: 'append', path: '/f', writeId: 'r1', leaseMs: 1000, nowMs: 2, record: 16 }) as Opened;
  t.same(o.record, { offset: 10, pad: 0, length: 16 });
  t.equal(o.fill?.handle, handle);
  t.equal(refusal(s, { op: 'complete', writeId: 'r1', length: 27, chunks: [], nowMs: 3, last: { handle, length: 27, checksum: 'x' } }), 'INVALID_ARGUMENT', 'one byte more than the record is refused');
  t.equal(refusal(s, { op: 'complete', writeId: 'r1', length: 26, chunks: [], nowMs: 3, last: { handle, length: 26, checksum: 'x' } }), 'ok');
  t.equal((s.lookup('/f') as FileNode | undefined)?.size, 26);
});

t.test('a record that does not fit pads the last chunk and starts the next', async (t) => {
  const { s, handle } = fileOf(50);
  const o = apply(s, { op: 'append', path: '/f', writeId: 'r1', leaseMs: 1000, nowMs: 2, record: 16 }) as Opened;
  t.same(o.record, { offset: 64, pad: 14, length: 16 });
  const { handle: next } = apply(s, { op: 'allocate', writeId: 'r1', index: 0, nowMs: 2 }) as { handle: number };
  t.equal(refusal(s, { op: 'complete', writeId: 'r1', length: 80, chunks: [{ handle: next, length: 16, checksum: 'y' }], nowMs: 3, last: { handle, length: 64, checksum: 'x' } }), 'ok');
  t.equal((s.lookup('/f') as FileNode | undefined)?.size, 80);
});

t.test('a record over a quarter chunk is RECORD_TOO_LARGE and changes nothing', async (t) => {
  const { s } = fileOf(10);
  const before = s.nextVersion;
  t.equal(refusal(s, { op: 'append', path: '/f', writeId: 'r1', leaseMs: 1000, nowMs: 2, record: CHUNK / 4 + 1 }), 'RECORD_TOO_LARGE');
  t.equal(s.writes.size, 0, 'no write opened');
  t.equal(s.nextVersion, before, 'no version issued');
  t.equal(refusal(s, { op: 'append', path: '/f', writeId: 'r1', leaseMs: 1000, nowMs: 2, record: CHUNK / 4 }), 'ok', 'a quarter chunk is allowed');
});

t.test('concat refuses a source or target with an append open, and changes nothing', async (t) => {
  const { s } = fileOf(10);
  apply(s, { op: 'create', path: '/g', writeId: 'w2', nowMs: 1, overwrite: false, parents: false, replication: 2, chunkSizeBytes: CHUNK, leaseMs: 1000, empty: true });
  apply(s, { op: 'append', path: '/f', writeId: 'a1', leaseMs: 1000, nowMs: 2 });
  t.equal(refusal(s, { op: 'concat', sources: ['/f', '/g'], target: '/h', overwrite: false, nowMs: 3 }), 'FILE_BUSY');
  t.equal(refusal(s, { op: 'concat', sources: ['/g'], target: '/f', overwrite: true, nowMs: 3 }), 'FILE_BUSY');
  t.ok(s.lookup('/f') && s.lookup('/g') && !s.lookup('/h'), 'the files are as they were');
  t.equal(refusal(s, { op: 'concat', sources: ['/f', '/g'], target: '/h', overwrite: false, nowMs: 5000 }), 'ok', 'once the append lease expired, concat goes ahead');
});

t.test('framing: records, padding, damage and duplicates as the reader sees them', async (t) => {
  await initChecksums();
  const a = frameRecord(Buffer.from('alpha'));
  const b = frameRecord(Buffer.from('bravo!'));
  const damaged = frameRecord(Buffer.from('charlie'));
  damaged.frame[damaged.frame.length - 1] ^= 1;
  const chunk = Buffer.concat([a.frame, b.frame, damaged.frame, a.frame, Buffer.alloc(20)]);
  const skips = { paddingBytes: 0, corruptBytes: 0, corruptRecords: 0 };
  const got = scanChunk(chunk, 1000, skips);
  t.same(got.map((r) => [r.offset, r.id, r.data.toString()]), [
    [1000, a.id, 'alpha'], [1000 + a.frame.length, b.id, 'bravo!'], [1000 + a.frame.length + b.frame.length + damaged.frame.length, a.id, 'alpha'],
  ]);
  t.same(skips, { paddingBytes: 20, corruptBytes: damaged.frame.length, corruptRecords: 1 });
  const seen = new SeenIds(2);
  t.same(got.map((r) => seen.seen(r.id)), [false, false, true], 'the second copy of a record is a duplicate');
  const garbage = Buffer.concat([Buffer.from('not a record'), b.frame]);
  const s2 = { paddingBytes: 0, corruptBytes: 0, corruptRecords: 0 };
  t.same(scanChunk(garbage, 0, s2).map((r) => r.offset), [12], 'the reader finds the next valid frame after garbage');
  t.equal(s2.corruptBytes, 12);
});
