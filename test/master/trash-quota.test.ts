// The trash and directory quotas in the master's replicated state: each refusal leaves the state
// byte for byte as it was, usage kept incrementally always equals a fresh count of the tree
// (checked after every command of seeded random histories), snapshots carry quotas, and the
// trash's commands move, restore and expunge as `dfs rm`, `dfs trash restore` and the leader do.
import t from 'tap';
import { checkpointName } from '../../common/trash-quota-protocol.js';
import type { Command, CommandResult } from '../../master/commands.js';
import { quotaList, quotaOf, treeUsage } from '../../master/quotas.js';
import { MasterState, type DirNode } from '../../master/state/index.js';
import { mulberry32 } from '../helpers/rng.js';

type Tap = Parameters<Parameters<typeof t.test>[0]>[0];

const CHUNK = 4;
const LEASE = 1000;
const T0 = Date.UTC(2026, 11, 5, 6, 0, 0);
const snap = (s: MasterState): string => s.snapshot().toString('utf8');

const mkdir = (path: string, parents = true): Extract<Command, { op: 'mkdir' }> => ({ op: 'mkdir', path, parents, nowMs: T0 });
const create = (path: string, writeId: string, replication = 3, nowMs = T0): Command => ({
  op: 'create', path, writeId, nowMs, overwrite: false, parents: true, replication, chunkSizeBytes: CHUNK, leaseMs: LEASE,
});
const allocate = (writeId: string, index: number): Command => ({ op: 'allocate', writeId, index, nowMs: T0 });
const quota = (path: string, files?: number | null, bytes?: number | null): Command => ({
  op: 'setQuota', path, ...(files !== undefined ? { files } : {}), ...(bytes !== undefined ? { bytes } : {}),
});
const trash = (path: string, nowMs = T0, recursive = true): Command => ({ op: 'trash', path, recursive, user: 'alice', nowMs });

function ok(t: Tap, s: MasterState, cmd: Command): unknown {
  const r = s.apply(cmd);
  t.ok(r.ok, `${cmd.op} ${JSON.stringify(cmd).slice(0, 90)}: ${r.ok ? 'ok' : r.message}`);
  return r.ok ? r.value : undefined;
}

/** The command is refused with `code` and leaves the state exactly as it was. */
function refused(t: Tap, s: MasterState, cmd: Command, code: string): CommandResult {
  const before = snap(s);
  const r = s.apply(cmd);
  t.equal(r.ok ? 'ok' : r.code, code, `${cmd.op} refused with ${code}${r.ok ? '' : `: ${r.message}`}`);
  t.equal(snap(s), before, `the refused ${cmd.op} changed nothing`);
  return r;
}

/** A file of `chunks` full chunks, written and completed. */
function put(t: Tap, s: MasterState, path: string, id: string, bytes: number, replication = 3): void {
  ok(t, s, create(path, id, replication));
  const n = Math.ceil(bytes / CHUNK);
  const handles = Array.from({ length: n }, (_, i) => (ok(t, s, allocate(id, i)) as { handle: number }).handle);
  const chunks = handles.map((handle, i) => ({ handle, length: i < n - 1 ? CHUNK : bytes - CHUNK * (n - 1), checksum: '0123456789abcdef' }));
  ok(t, s, { op: 'complete', writeId: id, length: bytes, chunks, nowMs: T0 });
}

function used(s: MasterState, path: string): { files: number; bytes: number } {
  const q = quotaOf(s.lookup(path) as DirNode)!;
  return { files: q.usedFiles, bytes: q.usedBytes };
}

t.test('a name quota counts files and directories, the directory itself included', async (t) => {
  const s = new MasterState();
  ok(t, s, mkdir('/q'));
  ok(t, s, quota('/q', 3));
  ok(t, s, mkdir('/q/a'));
  ok(t, s, create('/q/f', 'w1'));
  t.same(used(s, '/q'), { files: 3, bytes: 0 }, '/q, /q/a and /q/f');
  refused(t, s, mkdir('/q/b'), 'QUOTA_EXCEEDED');
  refused(t, s, mkdir('/q/a/x/y'), 'QUOTA_EXCEEDED');
  refused(t, s, create('/q/g', 'w2'), 'QUOTA_EXCEEDED');
  ok(t, s, { op: 'abandon', writeId: 'w1' });
  t.same(used(s, '/q'), { files: 2, bytes: 0 }, 'an abandoned new file gives its name back');
  ok(t, s, mkdir('/q/b'));
  ok(t, s, quota('/q', null));
  t.equal(quotaOf(s.lookup('/q') as DirNode), undefined, 'clearing the only limit removes the quota');
  ok(t, s, mkdir('/q/c'));
});

t.test('a space quota counts bytes × replication; allocate and complete are checked, and filling it exactly works', async (t) => {
  const s = new MasterState();
  ok(t, s, mkdir('/q'));
  ok(t, s, quota('/q', undefined, 2 * CHUNK * 3));
  put(t, s, '/q/full', 'w1', 2 * CHUNK, 3);
  t.same(used(s, '/q'), { files: 2, bytes: 24 }, 'exactly full');
  ok(t, s, create('/q/more', 'w2'));
  refused(t, s, allocate('w2', 0), 'QUOTA_EXCEEDED');
  ok(t, s, { op: 'abandon', writeId: 'w2' });
  ok(t, s, { op: 'delete', path: '/q/full', recursive: false, nowMs: T0 });
  t.same(used(s, '/q'), { files: 1, bytes: 0 }, 'a delete gives the space back');
  // A writer that allocates one chunk at replication 3 (3 bytes counted so far) but completes 4 bytes.
  ok(t, s, quota('/q', undefined, 10));
  ok(t, s, create('/q/liar', 'w3'));
  const { handle } = ok(t, s, allocate('w3', 0)) as { handle: number };
  refused(t, s, { op: 'complete', writeId: 'w3', length: 4, chunks: [{ handle, length: 4, checksum: '0123456789abcdef' }], nowMs: T0 }, 'QUOTA_EXCEEDED');
  ok(t, s, { op: 'complete', writeId: 'w3', length: 3, chunks: [{ handle, length: 3, checksum: '0123456789abcdef' }], nowMs: T0 });
  t.same(used(s, '/q'), { files: 2, bytes: 9 }, 'what fits completes');
});

t.test('a write that announces its size is refused at create when it cannot fit, and counts that size until complete', async (t) => {
  const s = new MasterState();
  ok(t, s, mkdir('/q'));
  ok(t, s, quota('/q', undefined, 30));
  refused(t, s, { ...create('/q/big', 'w1'), expectedBytes: 11 } as Command, 'QUOTA_EXCEEDED');
  ok(t, s, { ...create('/q/ten', 'w2'), expectedBytes: 10 } as Command);
  t.same(used(s, '/q'), { files: 2, bytes: 30 }, 'the announced 10 bytes × 3 count from the start');
  ok(t, s, create('/q/other', 'w3'));
  refused(t, s, allocate('w3', 0), 'QUOTA_EXCEEDED');
  ok(t, s, { op: 'abandon', writeId: 'w3' });
  const handles = [0, 1, 2].map((i) => (ok(t, s, allocate('w2', i)) as { handle: number }).handle);
  const chunks = handles.map((handle, i) => ({ handle, length: i < 2 ? CHUNK : 1, checksum: '0123456789abcdef' }));
  ok(t, s, { op: 'complete', writeId: 'w2', length: 9, chunks, nowMs: T0 });
  t.same(used(s, '/q'), { files: 2, bytes: 27 }, 'complete counts the real 9 bytes');
});

t.test('rename across quota boundaries: into a full tree refused, out of it frees, within it unchanged', async (t) => {
  const s = new MasterState();
  ok(t, s, mkdir('/a/inner'));
  ok(t, s, mkdir('/b/tree/sub'));
  put(t, s, '/b/tree/f', 'w1', 4, 2);
  ok(t, s, quota('/a', 4, 100));
  ok(t, s, quota('/a/inner', 10));
  t.same(used(s, '/a'), { files: 2, bytes: 0 }, '/a and /a/inner');
  refused(t, s, { op: 'rename', src: '/b/tree', dst: '/a/tree', nowMs: T0 }, 'QUOTA_EXCEEDED');
  ok(t, s, { op: 'rename', src: '/b/tree/f', dst: '/a/inner/f', nowMs: T0 });
  t.same(used(s, '/a'), { files: 3, bytes: 8 }, '/a counts the file moved in');
  t.same(used(s, '/a/inner'), { files: 2, bytes: 8 }, 'and so does /a/inner');
  ok(t, s, { op: 'rename', src: '/a/inner/f', dst: '/a/f', nowMs: T0 });
  t.same(used(s, '/a'), { files: 3, bytes: 8 }, 'a move within /a leaves its usage');
  t.same(used(s, '/a/inner'), { files: 1, bytes: 0 }, 'but leaves /a/inner');
  ok(t, s, { op: 'rename', src: '/a/inner', dst: '/b/inner', nowMs: T0 });
  t.same(used(s, '/a'), { files: 2, bytes: 8 }, 'a quota directory moved out takes its names along');
  t.same(used(s, '/b/inner'), { files: 1, bytes: 0 }, 'and keeps its own quota');
});

t.test('setrep is checked against the space quota, for files and writes in progress', async (t) => {
  const s = new MasterState();
  put(t, s, '/q/f', 'w1', 8, 2);
  ok(t, s, quota('/q', undefined, 24));
  t.same(used(s, '/q'), { files: 2, bytes: 16 }, 'size 8 × 2');
  ok(t, s, { op: 'setReplication', path: '/q/f', replication: 3, recursive: false });
  t.same(used(s, '/q'), { files: 2, bytes: 24 }, 'size 8 × 3');
  refused(t, s, { op: 'setReplication', path: '/q', replication: 4, recursive: true }, 'QUOTA_EXCEEDED');
  ok(t, s, { op: 'setReplication', path: '/', replication: 1, recursive: true });
  t.same(used(s, '/q'), { files: 2, bytes: 8 }, 'lowering frees');
  ok(t, s, create('/q/open', 'w2', 1));
  ok(t, s, allocate('w2', 0));
  ok(t, s, allocate('w2', 1));
  t.same(used(s, '/q'), { files: 3, bytes: 8 + 5 }, 'a write with two chunks counts at least one full chunk and a byte');
  ok(t, s, mkdir('/q/sub'));
  refused(t, s, { op: 'setReplication', path: '/q', replication: 2, recursive: true }, 'QUOTA_EXCEEDED');
});

t.test('quotas survive a snapshot and restore, with the same usage', async (t) => {
  const s = new MasterState();
  put(t, s, '/p/x/f', 'w1', 6, 3);
  ok(t, s, quota('/p', 50, 1000));
  ok(t, s, quota('/p/x', 5));
  ok(t, s, create('/p/x/open', 'w2', 2));
  ok(t, s, allocate('w2', 0));
  const r = MasterState.restore(s.snapshot());
  t.same(quotaList(r), quotaList(s), 'the same limits on the same directories');
  t.same(used(r, '/p'), used(s, '/p'), 'the same usage of /p');
  t.same(used(r, '/p/x'), used(s, '/p/x'), 'the same usage of /p/x');
  t.equal(snap(r), snap(s), 'the same snapshot');
  refused(t, r, mkdir('/p/x/a/b/c'), 'QUOTA_EXCEEDED');
  refused(t, s, quota('/nowhere', 1), 'NOT_FOUND');
  refused(t, s, quota('/p/x/f', 1), 'NOT_A_DIRECTORY');
});

t.test('the trash: rm moves in one command, restore moves back, a refusal changes nothing', async (t) => {
  const s = new MasterState();
  put(t, s, '/d/f', 'w1', 5, 3);
  const handles = (s.lookup('/d/f') as { chunks: readonly number[] }).chunks;
  const stamp = checkpointName(T0);
  const moved = ok(t, s, trash('/d/f')) as { trashPath: string; files: number };
  t.same(moved, { path: '/d/f', trashPath: `/.trash/alice/${stamp}/d/f`, files: 1 }, 'moved under the checkpoint, its path kept');
  t.same((s.lookup(moved.trashPath) as { chunks: readonly number[] }).chunks, handles, 'the same chunks: nothing is freed');
  t.ok(handles.every((h) => s.chunks.has(h)), 'the chunks stay in the chunk table');
  // The same path again in the same second: a second checkpoint.
  put(t, s, '/d/f', 'w2', 2, 3);
  t.equal((ok(t, s, trash('/d/f')) as { trashPath: string }).trashPath, `/.trash/alice/${stamp}-1/d/f`, 'a second checkpoint of the second');
  refused(t, s, trash('/nope'), 'NOT_FOUND');
  refused(t, s, trash('/'), 'INVALID_ARGUMENT');
  refused(t, s, trash(moved.trashPath), 'INVALID_ARGUMENT');
  ok(t, s, create('/d/open', 'w3'));
  refused(t, s, trash('/d'), 'FILE_BUSY');
  refused(t, s, trash('/d', T0, false), 'DIRECTORY_NOT_EMPTY');
  const other = new MasterState();
  put(t, other, '/.trash', 'w9', 1, 1);
  put(t, other, '/x', 'w8', 1, 1);
  refused(t, other, trash('/x'), 'NOT_A_DIRECTORY');
  ok(t, s, { op: 'restoreTrash', src: moved.trashPath, nowMs: T0 + 1 });
  t.same((s.lookup('/d/f') as { chunks: readonly number[] }).chunks, handles, 'restored where it was, the same chunks');
  t.equal(s.lookup(`/.trash/alice/${stamp}`), undefined, 'the checkpoint it left empty is gone');
  t.ok(s.lookup('/.trash/alice'), 'the user\'s trash stays');
  refused(t, s, { op: 'restoreTrash', src: `/.trash/alice/${stamp}-1/d/f`, nowMs: T0 }, 'EXISTS');
  ok(t, s, { op: 'restoreTrash', src: `/.trash/alice/${stamp}-1/d/f`, dst: '/new/place/g', nowMs: T0 });
  t.equal((s.lookup('/new/place/g') as { size: number }).size, 2, 'restored elsewhere, parents made');
  refused(t, s, { op: 'restoreTrash', src: '/d/f', nowMs: T0 }, 'INVALID_ARGUMENT');
});

t.test('restore into a full quota is refused before any parent is made', async (t) => {
  const s = new MasterState();
  put(t, s, '/q/f', 'w1', 4, 1);
  ok(t, s, quota('/q', 3));
  const { trashPath } = ok(t, s, trash('/q/f')) as { trashPath: string };
  t.same(used(s, '/q'), { files: 1, bytes: 0 }, 'moving to the trash frees the quota');
  ok(t, s, mkdir('/q/a'));
  ok(t, s, mkdir('/q/b'));
  refused(t, s, { op: 'restoreTrash', src: trashPath, dst: '/q/new/f', nowMs: T0 }, 'QUOTA_EXCEEDED');
  refused(t, s, { op: 'restoreTrash', src: trashPath, nowMs: T0 }, 'QUOTA_EXCEEDED');
  refused(t, s, quota('/.trash', 1), 'INVALID_ARGUMENT');
});

t.test('expungeTrash deletes only checkpoints older than the interval, at most max, and frees their chunks', async (t) => {
  const s = new MasterState();
  const HOUR = 3600_000;
  for (let i = 0; i < 3; i++) {
    put(t, s, `/old${i}`, `w${i}`, 4, 1);
    ok(t, s, trash(`/old${i}`, T0 + i * 1000));
  }
  put(t, s, '/young', 'w9', 4, 1);
  ok(t, s, trash('/young', T0 + HOUR));
  const oldHandles = [0, 1, 2].map((i) => (s.lookup(`/.trash/alice/${checkpointName(T0 + i * 1000)}/old${i}`) as { chunks: readonly number[] }).chunks[0]!);
  const first = ok(t, s, { op: 'expungeTrash', nowMs: T0 + HOUR + 2500, intervalMs: HOUR, max: 2 }) as { expunged: string[]; files: number };
  t.same(first.expunged, [0, 1].map((i) => `/.trash/alice/${checkpointName(T0 + i * 1000)}`), 'the two oldest, oldest first');
  t.equal(first.files, 2, 'their files');
  t.notOk(s.chunks.has(oldHandles[0]!) || s.chunks.has(oldHandles[1]!), 'their chunks left the chunk table (garbage for the chunkservers)');
  const second = ok(t, s, { op: 'expungeTrash', nowMs: T0 + HOUR + 2500, intervalMs: HOUR, max: 16 }) as { expunged: string[] };
  t.same(second.expunged, [`/.trash/alice/${checkpointName(T0 + 2000)}`], 'the third one; the young checkpoint is kept');
  t.ok(s.lookup(`/.trash/alice/${checkpointName(T0 + HOUR)}/young`), 'what is younger than the interval stays');
  t.same(ok(t, s, { op: 'expungeTrash', nowMs: T0 + HOUR + 2500, intervalMs: HOUR, max: 16 }), { expunged: [], files: 0 }, 'nothing more is due');
});

// ---- seeded random histories: incremental usage always equals a fresh count ----

function quotaDrift(s: MasterState): string[] {
  const drift: string[] = [];
  for (const [path] of quotaList(s)) {
    const node = s.lookup(path) as DirNode;
    const q = quotaOf(node)!;
    const fresh = treeUsage(s, node, path);
    if (q.usedFiles !== fresh.files || q.usedBytes !== fresh.bytes) drift.push(`${path}: kept ${q.usedFiles}/${q.usedBytes}, counted ${fresh.files}/${fresh.bytes}`);
  }
  return drift;
}

function randomHistory(seed: number, n: number): { drift: string[]; refusals: number; applied: number; final: string; commands: Command[] } {
  const rnd = mulberry32(seed);
  const pick = <T,>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
  const randPath = () => '/' + Array.from({ length: 1 + Math.floor(rnd() * 3) }, () => pick(['a', 'b', 'c'])).join('/');
  const s = new MasterState();
  const commands: Command[] = [];
  let now = T0;
  let ids = 0;
  let refusals = 0;
  let applied = 0;
  const drift: string[] = [];
  for (let i = 0; i < n; i++) {
    now += Math.floor(rnd() * 300);
    const writes = [...s.writes.values()];
    const existing = [...s.walk('/', s.root)].map(([p]) => p);
    const anyPath = () => (rnd() < 0.6 ? pick(existing) : randPath());
    const w = writes.length > 0 ? pick(writes) : undefined;
    const r = rnd();
    let cmd: Command;
    if (r < 0.08) cmd = quota(pick(existing), rnd() < 0.7 ? 2 + Math.floor(rnd() * 10) : null, rnd() < 0.7 ? Math.floor(rnd() * 120) : null);
    else if (r < 0.2) cmd = { ...mkdir(anyPath(), rnd() < 0.5), nowMs: now };
    else if (r < 0.36) {
      const announced = rnd() < 0.4 ? { expectedBytes: Math.floor(rnd() * 3 * CHUNK) } : {};
      cmd = { ...create(randPath(), `w${++ids}`, 1 + Math.floor(rnd() * 3), now), overwrite: rnd() < 0.4, empty: rnd() < 0.1, ...announced } as Command;
    }
    else if (r < 0.5 && w) cmd = { op: 'allocate', writeId: w.writeId, index: w.chunks.length, nowMs: now };
    else if (r < 0.6 && w) {
      const len = w.chunks.length === 0 ? 0 : (w.chunks.length - 1) * CHUNK + 1 + Math.floor(rnd() * CHUNK);
      const chunks = w.chunks.map((handle, k) => ({ handle, length: k < w.chunks.length - 1 ? CHUNK : len - CHUNK * (w.chunks.length - 1), checksum: '0123456789abcdef' }));
      cmd = { op: 'complete', writeId: w.writeId, length: len, chunks, nowMs: now };
    } else if (r < 0.64 && w) cmd = { op: 'abandon', writeId: w.writeId };
    else if (r < 0.67) cmd = { op: 'expireLeases', nowMs: now };
    else if (r < 0.74) cmd = { op: 'delete', path: anyPath(), recursive: rnd() < 0.6, nowMs: now };
    else if (r < 0.82) cmd = { op: 'rename', src: anyPath(), dst: anyPath(), nowMs: now };
    else if (r < 0.88) cmd = { op: 'setReplication', path: anyPath(), replication: 1 + Math.floor(rnd() * 4), recursive: rnd() < 0.7 };
    else if (r < 0.91) cmd = { op: 'concat', sources: [anyPath(), anyPath()], target: randPath(), overwrite: rnd() < 0.5, nowMs: now };
    else if (r < 0.96) cmd = trash(anyPath(), now, rnd() < 0.7);
    else if (r < 0.98) {
      const inTrash = existing.filter((p) => /^\/\.trash\/alice\/[^/]+\/./.test(p));
      cmd = { op: 'restoreTrash', src: inTrash.length > 0 ? pick(inTrash) : '/.trash/alice/x/y', nowMs: now, ...(rnd() < 0.3 ? { dst: randPath() } : {}) };
    } else cmd = { op: 'expungeTrash', nowMs: now, intervalMs: 2000, max: 2 };
    commands.push(cmd);
    const before = snap(s);
    const result = s.apply(cmd);
    if (result.ok) applied++;
    else {
      if (result.code === 'QUOTA_EXCEEDED') refusals++;
      if (snap(s) !== before) drift.push(`#${i} ${cmd.op} failed (${result.code}) but changed the state`);
    }
    for (const d of quotaDrift(s)) drift.push(`#${i} after ${cmd.op}: ${d}`);
  }
  return { drift, refusals, applied, final: snap(s), commands };
}

for (const seed of [1, 7, 19, 2026, 4242]) {
  t.test(`random history with quotas and the trash, seed ${seed}: usage never drifts, refusals change nothing, replay and snapshot agree`, async (t) => {
    const h = randomHistory(seed, 1500);
    t.same(h.drift.slice(0, 5), [], 'incremental usage equals a fresh count after every command');
    t.ok(h.refusals > 0, `some commands were refused by a quota (${h.refusals})`);
    t.ok(h.applied > 300, `many commands applied (${h.applied})`);
    // Determinism: the same log on another state, and through a snapshot taken halfway.
    const replay = new MasterState();
    const half = Math.floor(h.commands.length / 2);
    h.commands.slice(0, half).forEach((c) => replay.apply(c));
    const resumed = MasterState.restore(replay.snapshot());
    h.commands.slice(half).forEach((c) => resumed.apply(c));
    t.equal(snap(resumed), h.final, 'replayed through a snapshot, the same state');
    t.same(quotaDrift(resumed), [], 'and the same usage');
  });
}
