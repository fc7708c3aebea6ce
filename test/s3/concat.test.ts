// The master's concat command: one file made from complete files' chunk lists, in one step,
// with nothing changed when it fails (the S3 gateway completes multipart uploads with it).
import t from 'tap';
import type { Command } from '../../master/commands.js';
import { MasterState, type FileNode } from '../../master/state/index.js';

const CHUNK = 4;

/** Writes a complete file of `lengths` chunks at `path`; returns its handles. */
function write(s: MasterState, path: string, lengths: number[], nowMs = 1): number[] {
  const writeId = `w-${path}`;
  const run = (cmd: Command) => {
    const r = s.apply(cmd);
    if (!r.ok) throw new Error(`${cmd.op} ${path}: ${r.code} ${r.message}`);
    return r.value;
  };
  run({ op: 'create', path, writeId, nowMs, overwrite: false, parents: true, replication: 3, chunkSizeBytes: CHUNK, leaseMs: 1000, empty: lengths.length === 0 });
  if (lengths.length === 0) return [];
  const handles = lengths.map((_, i) => (run({ op: 'allocate', writeId, index: i, nowMs }) as { handle: number }).handle);
  run({ op: 'complete', writeId, nowMs, length: lengths.reduce((a, b) => a + b, 0), chunks: handles.map((handle, i) => ({ handle, length: lengths[i]!, checksum: `c${handle}` })) });
  return handles;
}

const concat = (sources: string[], target: string, overwrite = false): Command => ({ op: 'concat', sources, target, overwrite, nowMs: 50 });

t.test('the target holds the sources\' chunks in order, with short chunks in the middle, and the sources are gone', async (t) => {
  const s = new MasterState();
  const a = write(s, '/up/1', [4, 4, 2]);
  const b = write(s, '/up/2', []);
  const c = write(s, '/up/3', [3]);
  write(s, '/b/x', []);
  const r = s.apply(concat(['/up/1', '/up/2', '/up/3'], '/b/obj'));
  t.match(r, { ok: true, value: { path: '/b/obj', size: 13, chunkCount: 4, state: 'complete' } });
  const file = s.lookup('/b/obj') as FileNode;
  t.same(file.chunks, [...a, ...b, ...c], 'chunk list is the concatenation');
  for (const p of ['/up/1', '/up/2', '/up/3']) t.equal(s.lookup(p), undefined, `${p} is removed`);
  for (const h of [...a, ...c]) t.ok(s.chunks.has(h), `chunk ${h} stays in the chunk table`);
  t.equal(MasterState.restore(s.snapshot()).lookup('/b/obj')!.type, 'file', 'survives a snapshot');
});

t.test('overwrite replaces a complete file and frees its chunks; without it the target must not exist', async (t) => {
  const s = new MasterState();
  const old = write(s, '/b/obj', [4, 1]);
  write(s, '/t/1', [2]);
  const before = s.snapshot().toString();
  t.match(s.apply(concat(['/t/1'], '/b/obj')), { ok: false, code: 'EXISTS' });
  t.equal(s.snapshot().toString(), before, 'a refused concat changes nothing');
  t.match(s.apply(concat(['/t/1'], '/b/obj', true)), { ok: true, value: { size: 2 } });
  for (const h of old) t.notOk(s.chunks.has(h), `old chunk ${h} is released`);
});

t.test('refusals leave the state as it was', async (t) => {
  const s = new MasterState();
  write(s, '/t/1', [2]);
  s.apply({ op: 'create', path: '/t/busy', writeId: 'busy', nowMs: 1, overwrite: false, parents: true, replication: 3, chunkSizeBytes: CHUNK, leaseMs: 1000 });
  s.apply({ op: 'mkdir', path: '/d', parents: false, nowMs: 1 });
  const before = s.snapshot().toString();
  t.match(s.apply(concat(['/t/1', '/t/1'], '/x')), { ok: false, code: 'INVALID_ARGUMENT' }, 'a source twice');
  t.match(s.apply(concat(['/t/1'], '/t/1', true)), { ok: false, code: 'INVALID_ARGUMENT' }, 'target among sources');
  t.match(s.apply(concat(['/t/none'], '/x')), { ok: false, code: 'NOT_FOUND' }, 'missing source');
  t.match(s.apply(concat(['/t/busy'], '/x')), { ok: false, code: 'FILE_BUSY' }, 'source being written');
  t.match(s.apply(concat(['/d'], '/x')), { ok: false, code: 'IS_A_DIRECTORY' }, 'directory source');
  t.match(s.apply(concat(['/t/1'], '/d', true)), { ok: false, code: 'IS_A_DIRECTORY' }, 'directory target');
  t.match(s.apply(concat(['/t/1'], '/nope/x')), { ok: false, code: 'NOT_FOUND' }, 'missing parent');
  t.equal(s.snapshot().toString(), before);
});
