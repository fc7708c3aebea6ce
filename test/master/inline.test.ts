// Inline files in the replicated state (common/inline.ts): a small file made complete by one
// create that carries its bytes; every command that walks files handles them; refusals change
// nothing; the namespace's cap on inline bytes; Raft snapshots carry them and count them again.
import t from 'tap';
import { initChecksums } from '../../common/checksum.js';
import { inlineBody, INLINE_TOTAL_MAX_BYTES } from '../../common/inline.js';
import type { Command } from '../../master/commands.js';
import { MasterState, type FileNode } from '../../master/state/index.js';

type Tap = Parameters<Parameters<typeof t.test>[0]>[0];
const CHUNK = 64; // bytes per chunk in these tests

await initChecksums();

function ok(s: MasterState, cmd: Command): unknown {
  const r = s.apply(cmd);
  if (!r.ok) throw new Error(`${cmd.op} failed: ${r.code} ${r.message}`);
  return r.value;
}

/** Applies `cmd`, which must fail with `code` and leave the state's snapshot as it was. */
function refused(t: Tap, s: MasterState, cmd: Command, code: string, what: string): void {
  const before = s.snapshot().toString();
  const inlineBefore = s.inlineBytes;
  const r = s.apply(cmd);
  t.equal(r.ok ? 'ok' : r.code, code, what);
  t.equal(s.snapshot().toString(), before, `${what}: nothing changed`);
  t.equal(s.inlineBytes, inlineBefore, `${what}: the inline bytes counted are as before`);
}

const bytesOf = (n: number, seed = 1): Buffer => Buffer.from(Array.from({ length: n }, (_, i) => (i * 31 + seed) & 0xff));

function createInline(path: string, data: Buffer, nowMs: number, opts: { overwrite?: boolean; parents?: boolean; writeId?: string } = {}): Command {
  return {
    op: 'create', path, overwrite: opts.overwrite ?? false, parents: opts.parents ?? true, replication: 3, chunkSizeBytes: CHUNK,
    writeId: opts.writeId ?? `w-${path}-${nowMs}`, leaseMs: 60_000, nowMs, inline: inlineBody(data),
  };
}

/** Writes a file of chunks the long way: create, allocate, complete. */
function putChunks(s: MasterState, path: string, writeId: string, lengths: number[], nowMs: number, overwrite = false): number[] {
  ok(s, { op: 'create', path, overwrite, parents: true, replication: 3, chunkSizeBytes: CHUNK, writeId, leaseMs: 60_000, nowMs });
  const handles = lengths.map((_, i) => (ok(s, { op: 'allocate', writeId, index: i, nowMs }) as { handle: number }).handle);
  ok(s, { op: 'complete', writeId, nowMs, length: lengths.reduce((a, b) => a + b, 0), chunks: handles.map((h, i) => ({ handle: h, length: lengths[i]!, checksum: h.toString(16).padStart(16, '0') })) });
  return handles;
}

const file = (s: MasterState, path: string): FileNode => {
  const n = s.lookup(path);
  if (n?.type !== 'file') throw new Error(`${path} is not a file`);
  return n;
};

/** What a restore counts afresh must equal what the commands kept. */
function restoredAgrees(t: Tap, s: MasterState, what: string): MasterState {
  const r = MasterState.restore(s.snapshot());
  t.equal(r.inlineBytes, s.inlineBytes, `${what}: a restore counts the same inline bytes`);
  t.equal(r.snapshot().toString(), s.snapshot().toString(), `${what}: and snapshots the same bytes`);
  return r;
}

t.test('an inline create makes a complete file in one command, with no chunk and no write', async (t) => {
  const s = new MasterState();
  const data = bytesOf(100);
  const info = ok(s, createInline('/d/a', data, 1000)) as { state: string; size: number; chunkCount: number };
  t.match(info, { state: 'complete', size: 100, chunkCount: 0 }, 'the reply is the complete file');
  const f = file(s, '/d/a');
  t.same(f.inline?.data, data, 'its bytes are in the state');
  t.equal(f.inline?.checksum, inlineBody(data).checksum, 'with their checksum');
  t.equal(s.writes.size, 0, 'no write is left open');
  t.equal(s.chunks.size, 0, 'no chunk was made');
  t.equal(s.nextHandle, 1, 'no handle was used');
  t.equal(s.inlineBytes, 100, 'the inline bytes are counted');
  t.equal(s.lookup('/d')?.type, 'dir', 'parents are made, as for any create');
  restoredAgrees(t, s, 'after a create');
});

t.test('overwrites: inline over chunks, chunks over inline, inline over inline', async (t) => {
  const s = new MasterState();
  const handles = putChunks(s, '/f', 'w1', [CHUNK, 10], 1000);
  refused(t, s, createInline('/f', bytesOf(5), 1001), 'EXISTS', 'an inline create over a file without overwrite');
  ok(s, createInline('/f', bytesOf(5), 1002, { overwrite: true }));
  t.equal(file(s, '/f').size, 5, 'the inline file replaced the chunked one');
  t.notOk(handles.some((h) => s.chunks.has(h)), 'whose chunks are garbage now');
  ok(s, createInline('/f', bytesOf(7, 2), 1003, { overwrite: true }));
  t.equal(s.inlineBytes, 7, 'an inline file over an inline one: only the new bytes count');
  putChunks(s, '/f', 'w2', [20], 1004, true);
  t.equal(file(s, '/f').inline, undefined, 'a file of chunks replaced the inline one on complete');
  t.equal(s.inlineBytes, 0, 'and its bytes left the count');
  restoredAgrees(t, s, 'after overwrites');
});

t.test('bad inline bodies and a full namespace are refused and change nothing', async (t) => {
  const s = new MasterState();
  ok(s, createInline('/keep', bytesOf(10), 1000));
  const body = inlineBody(bytesOf(20));
  refused(t, s, { ...createInline('/x', bytesOf(20), 1001), inline: { ...body, size: 21 } } as Command, 'INLINE_CHECKSUM_MISMATCH', 'a length that is not the data\'s');
  refused(t, s, { ...createInline('/x', bytesOf(20), 1001), inline: { ...body, size: 0, data: '' } } as Command, 'INLINE_CHECKSUM_MISMATCH', 'no bytes at all');
  refused(t, s, { ...createInline('/x', bytesOf(20), 1001), empty: true } as Command, 'INVALID_ARGUMENT', 'empty and inline at once');
  // A log holds only what leaders proposed, and a leader checks inline data strictly; the apply
  // still judges loose base64 as it always has (as many bytes as Buffer.from decodes), so a
  // replayed log gives the same state on every version.
  const loose = { ...createInline('/loose', bytesOf(20), 1001), inline: { ...body, data: `${body.data.slice(0, 8)}\n${body.data.slice(8)} ` } } as Command;
  ok(s, loose);
  t.same(file(s, '/loose').inline?.data, bytesOf(20), 'characters the decoder skips are skipped, as before');
  t.equal(file(s, '/loose').inline?.data.buffer.byteLength, 20, 'and the file holds a buffer of exactly its bytes');
  refused(t, s, { ...createInline('/x', bytesOf(20), 1001), inline: { ...body, data: body.data.slice(0, -4) } } as Command, 'INLINE_CHECKSUM_MISMATCH', 'data shorter than its size');
  refused(t, s, { ...createInline('/x', bytesOf(20), 1001), inline: { ...body, data: inlineBody(bytesOf(21)).data } } as Command, 'INLINE_CHECKSUM_MISMATCH', 'data longer than its size');
  // The cap: the count stands for the bytes (a quarter GiB of files would not make the test better).
  s.inlineBytes = INLINE_TOTAL_MAX_BYTES - 10;
  refused(t, s, createInline('/x', bytesOf(11), 1002), 'INLINE_REFUSED', 'a file that would pass the namespace\'s cap');
  refused(t, s, createInline('/keep', bytesOf(21), 1002, { overwrite: true }), 'INLINE_REFUSED', 'an overwrite that would pass it by what it adds');
  ok(s, createInline('/keep', bytesOf(20), 1003, { overwrite: true }));
  t.equal(s.inlineBytes, INLINE_TOTAL_MAX_BYTES, 'an overwrite counts the bytes it frees: it fits exactly');
  refused(t, s, createInline('/y', bytesOf(1), 1004), 'INLINE_REFUSED', 'at the cap, not one byte more');
  ok(s, { op: 'delete', path: '/keep', recursive: false, nowMs: 1005 });
  t.equal(s.inlineBytes, INLINE_TOTAL_MAX_BYTES - 20, 'a delete frees its bytes');
});

t.test('rename, delete, setrep, trash and restore keep an inline file whole', async (t) => {
  const s = new MasterState();
  const data = bytesOf(33);
  ok(s, createInline('/a/f', data, 1000));
  ok(s, { op: 'rename', src: '/a/f', dst: '/b', nowMs: 1001 });
  t.same(file(s, '/b').inline?.data, data, 'renamed with its bytes');
  t.same(ok(s, { op: 'setReplication', path: '/b', replication: 2, recursive: false }), { files: 1 }, 'setrep applies (there are no chunks to copy)');
  t.equal(file(s, '/b').replication, 2, 'its replication is what was asked');
  const trashed = ok(s, { op: 'trash', path: '/b', recursive: false, user: 'u', nowMs: 2000 }) as { trashPath: string };
  t.equal(s.lookup('/b'), undefined, 'moved to the trash');
  t.same(file(s, trashed.trashPath).inline?.data, data, 'with its bytes');
  t.equal(s.inlineBytes, 33, 'the trash holds it: its bytes still count');
  ok(s, { op: 'restoreTrash', src: trashed.trashPath, nowMs: 2001 });
  t.same(file(s, '/b').inline?.data, data, 'restored whole');
  ok(s, { op: 'trash', path: '/b', recursive: false, user: 'u', nowMs: 3000 });
  ok(s, { op: 'expungeTrash', nowMs: 10_000, intervalMs: 1000, max: 16 });
  t.equal(s.inlineBytes, 0, 'expunged: its bytes are gone from the count');
  restoredAgrees(t, s, 'after the trash');
});

t.test('a tree snapshot copies inline files; either side goes alone', async (t) => {
  const s = new MasterState();
  ok(s, createInline('/t/a', bytesOf(10), 1000));
  putChunks(s, '/t/b', 'w1', [CHUNK], 1000);
  ok(s, { op: 'snapshot', src: '/t', dst: '/snap', nowMs: 1001 });
  t.same(file(s, '/snap/a').inline?.data, bytesOf(10), 'the copy has the bytes');
  t.equal(s.inlineBytes, 20, 'counted per file (a restore makes two buffers of them)');
  ok(s, { op: 'delete', path: '/t', recursive: true, nowMs: 1002 });
  t.same(file(s, '/snap/a').inline?.data, bytesOf(10), 'the original gone, the copy stays');
  t.equal(s.inlineBytes, 10, 'and only its bytes count');
  restoredAgrees(t, s, 'after a tree snapshot');
});

t.test('a Raft snapshot carries inline files, and the capture stays at its moment', async (t) => {
  const s = new MasterState();
  ok(s, createInline('/a', bytesOf(16, 3), 1000));
  ok(s, createInline('/dir/ünï "q"', bytesOf(1, 4), 1000));
  const capture = s.capture(64);
  ok(s, { op: 'delete', path: '/a', recursive: false, nowMs: 1001 });
  ok(s, createInline('/b', bytesOf(5), 1001));
  const r = MasterState.restore(Buffer.concat([...capture.pieces()]));
  t.same((r.lookup('/a') as FileNode).inline?.data, bytesOf(16, 3), 'a file deleted after the capture is in it, whole');
  t.equal(r.lookup('/b'), undefined, 'a file made after it is not');
  t.same((r.lookup('/dir/ünï "q"') as FileNode).inline?.data, bytesOf(1, 4), 'names of any kind');
  t.equal(r.inlineBytes, 17, 'the restore counts the inline bytes afresh');
  const lines = s.snapshot().toString().split('\n');
  t.ok(lines.some((l) => l.startsWith('["i","b",')), 'an inline file is an "i" record');
});

t.test('an append to an inline file rewrites its bytes as chunks, in one complete', async (t) => {
  const s = new MasterState();
  const data = bytesOf(40);
  ok(s, createInline('/log', data, 1000));
  const opened = ok(s, { op: 'append', path: '/log', writeId: 'wa', leaseMs: 60_000, nowMs: 1001 }) as { size: number; fill?: unknown; inline?: { data: string } };
  t.equal(opened.size, 40, 'the open says the size');
  t.equal(opened.fill, undefined, 'there is no last chunk to fill');
  t.same(opened.inline, inlineBody(data), 'it hands over the bytes to write again, as JSON carries them');
  t.same(file(s, '/log').inline?.data, data, 'readers still see the inline file');
  const h1 = (ok(s, { op: 'allocate', writeId: 'wa', index: 0, nowMs: 1002 }) as { handle: number }).handle;
  refused(t, s, { op: 'complete', writeId: 'wa', length: 40, chunks: [], nowMs: 1003 }, 'INVALID_ARGUMENT', 'a complete whose chunks do not hold the inline bytes');
  refused(t, s, { op: 'complete', writeId: 'wa', length: 30, chunks: [{ handle: h1, length: 30, checksum: 'a'.repeat(16) }], nowMs: 1003 }, 'INVALID_ARGUMENT', 'fewer bytes than the file had');
  ok(s, { op: 'complete', writeId: 'wa', length: 50, chunks: [{ handle: h1, length: 50, checksum: 'a'.repeat(16) }], nowMs: 1004 });
  const f = file(s, '/log');
  t.equal(f.inline, undefined, 'the file is one of chunks now');
  t.same(f.chunks, [h1], 'its one chunk');
  t.equal(f.size, 50, 'of the old and the appended bytes');
  t.equal(s.inlineBytes, 0, 'the inline bytes left the count');
  restoredAgrees(t, s, 'after the append');
});

t.test('an append fails if the inline file was replaced meanwhile; a record append is placed after its bytes', async (t) => {
  const s = new MasterState();
  ok(s, createInline('/f', bytesOf(40), 1000));
  ok(s, { op: 'append', path: '/f', writeId: 'wa', leaseMs: 1, nowMs: 1001 });
  const h = (ok(s, { op: 'allocate', writeId: 'wa', index: 0, nowMs: 1001 }) as { handle: number }).handle;
  ok(s, createInline('/f', bytesOf(40, 9), 5000, { overwrite: true })); // the append's lease ran out
  refused(t, s, { op: 'complete', writeId: 'wa', length: 45, chunks: [{ handle: h, length: 45, checksum: 'b'.repeat(16) }], nowMs: 5001 }, 'WRITE_NOT_FOUND', 'an append opened on other bytes');

  ok(s, createInline('/r', bytesOf(40), 6000));
  const fits = ok(s, { op: 'append', path: '/r', writeId: 'wr', leaseMs: 60_000, nowMs: 6001, record: 10 }) as { record: { offset: number; pad: number } };
  t.same(fits.record, { offset: 40, pad: 0, length: 10 }, 'a record that fits after the bytes in the first chunk goes there');
  ok(s, { op: 'abandon', writeId: 'wr' });
  const padded = ok(s, { op: 'append', path: '/r', writeId: 'wr2', leaseMs: 60_000, nowMs: 6002, record: 16 }) as { record: { offset: number; pad: number } };
  t.same(padded.record, { offset: 40, pad: 0, length: 16 }, 'a record of a quarter chunk fits in the 24 bytes left');
  ok(s, { op: 'abandon', writeId: 'wr2' });
  ok(s, createInline('/r2', bytesOf(60), 6003));
  const next = ok(s, { op: 'append', path: '/r2', writeId: 'wr3', leaseMs: 60_000, nowMs: 6004, record: 16 }) as { record: { offset: number; pad: number } };
  t.same(next.record, { offset: CHUNK, pad: 4, length: 16 }, 'one that does not fit starts the next chunk, after padding');
});

t.test('concat refuses an inline source (the client rewrites it as chunks); quotas count inline files', async (t) => {
  const s = new MasterState();
  ok(s, createInline('/p/1', bytesOf(10), 1000));
  putChunks(s, '/p/2', 'w1', [CHUNK], 1000);
  refused(t, s, { op: 'concat', sources: ['/p/2', '/p/1'], target: '/out', overwrite: false, nowMs: 1001 }, 'INLINE_REFUSED', 'concat of an inline file');

  ok(s, { op: 'mkdir', path: '/q', parents: false, nowMs: 1002 });
  ok(s, { op: 'setQuota', path: '/q', bytes: 3 * 30 });
  ok(s, createInline('/q/a', bytesOf(20), 1003));
  refused(t, s, createInline('/q/b', bytesOf(11), 1004), 'QUOTA_EXCEEDED', 'an inline file past the space quota (size × replication)');
  ok(s, createInline('/q/b', bytesOf(10), 1004));
  ok(s, createInline('/q/a', bytesOf(5), 1005, { overwrite: true }));
  ok(s, createInline('/q/c', bytesOf(15), 1006));
  refused(t, s, createInline('/q/d', bytesOf(1), 1007), 'QUOTA_EXCEEDED', 'an overwrite freed what it replaced, and no more');
});
