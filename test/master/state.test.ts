// MasterState: the master's replicated state machine. Every command is checked for its result,
// its effect on the namespace / chunk table / pending writes, and (when it fails) for leaving the
// state byte-for-byte as it was. A seeded random history checks determinism and snapshot/restore.
import t from 'tap';
import type { Command, CommandResult } from '../../master/commands.js';
import { MasterState, type DirNode, type FileNode } from '../../master/state/index.js';
import type { PendingWrite } from '../../master/state/writes.js';
import { mulberry32 } from '../helpers/rng.js';
import { encodeSnapshotV1 } from '../helpers/snapshot-v1.js';

type Tap = Parameters<Parameters<typeof t.test>[0]>[0];

const CHUNK = 4; // bytes per chunk in these tests
const LEASE = 1000; // ms

const snap = (s: MasterState): string => encodeSnapshotV1(s).toString('utf8');

// The lease renewal done by liveWrite() before validating allocate/complete (see the report).

// ---- command builders ----

const mkdir = (path: string, nowMs: number, parents = false): Command => ({ op: 'mkdir', path, parents, nowMs });
const create = (
  path: string,
  writeId: string,
  nowMs: number,
  opts: { overwrite?: boolean; parents?: boolean; replication?: number; leaseMs?: number; empty?: boolean } = {},
): Command => ({
  op: 'create', path, writeId, nowMs, overwrite: opts.overwrite ?? false, parents: opts.parents ?? false,
  replication: opts.replication ?? 3, chunkSizeBytes: CHUNK, leaseMs: opts.leaseMs ?? LEASE, ...(opts.empty ? { empty: true } : {}),
});
const allocate = (writeId: string, index: number, nowMs: number): Command => ({ op: 'allocate', writeId, index, nowMs });
const complete = (writeId: string, chunks: { handle: number; length: number; checksum?: string }[], nowMs: number, length?: number): Command => ({
  op: 'complete', writeId, nowMs,
  length: length ?? chunks.reduce((a, c) => a + c.length, 0),
  chunks: chunks.map((c) => ({ handle: c.handle, length: c.length, checksum: c.checksum ?? `ck${c.handle}` })),
});
const abandon = (writeId: string): Command => ({ op: 'abandon', writeId });
const del = (path: string, nowMs: number, recursive = false, type?: 'file' | 'dir'): Command => ({ op: 'delete', path, recursive, nowMs, ...(type ? { type } : {}) });
const rename = (src: string, dst: string, nowMs: number): Command => ({ op: 'rename', src, dst, nowMs });
const expire = (nowMs: number): Command => ({ op: 'expireLeases', nowMs });
const setrep = (path: string, replication: number, recursive = false): Command => ({ op: 'setReplication', path, replication, recursive });
const decom = (server: string, cancel = false): Command => ({ op: 'decommission', server, cancel });
const appendOpen = (path: string, writeId: string, nowMs: number, leaseMs = LEASE): Command => ({ op: 'append', path, writeId, leaseMs, nowMs });
/** An append's complete: the filled last chunk (if any), then new chunks; `length` is the file's new size. */
const appendDone = (writeId: string, last: { handle: number; length: number } | undefined, chunks: { handle: number; length: number }[], length: number, nowMs: number): Command => ({
  ...(complete(writeId, chunks, nowMs, length) as Extract<Command, { op: 'complete' }>),
  ...(last ? { last: { handle: last.handle, length: last.length, checksum: `ck${last.handle}v` } } : {}),
});

// ---- assertion helpers ----

function ok<V = unknown>(t: Tap, s: MasterState, cmd: Command): V {
  const r = s.apply(cmd);
  t.equal(r.ok, true, `${describe(cmd)} succeeds${r.ok ? '' : ` (got ${r.code}: ${r.message})`}`);
  if (!r.ok) throw new Error(`unexpected failure of ${describe(cmd)}: ${r.code}`);
  return r.value as V;
}

/** Asserts the command fails with `code` and leaves snapshot() byte-identical. */
function fails(t: Tap, s: MasterState, cmd: Command, code: string, todo?: string): CommandResult {
  const before = snap(s);
  const r = s.apply(cmd);
  t.match(r, { ok: false, code }, `${describe(cmd)} fails with ${code}`);
  if (!r.ok) t.ok(typeof r.message === 'string' && r.message.length > 0, 'failure carries a message');
  t.equal(snap(s), before, `failed ${describe(cmd)} leaves snapshot() unchanged`, todo ? { todo } : {});
  return r;
}

function describe(cmd: Command): string {
  switch (cmd.op) {
    case 'mkdir': return `mkdir${cmd.parents ? ' -p' : ''} ${cmd.path}`;
    case 'create': return `create${cmd.overwrite ? ' -f' : ''}${cmd.parents ? ' -p' : ''} ${cmd.path} (${cmd.writeId})`;
    case 'allocate': return `allocate ${cmd.writeId}[${cmd.index}]`;
    case 'complete': return `complete ${cmd.writeId} (${cmd.chunks.length} chunks, ${cmd.length} B)`;
    case 'abandon': return `abandon ${cmd.writeId}`;
    case 'delete': return `delete${cmd.recursive ? ' -r' : ''} ${cmd.path}`;
    case 'rename': return `rename ${cmd.src} -> ${cmd.dst}`;
    case 'expireLeases': return `expireLeases @${cmd.nowMs}`;
    case 'setReplication': return `setrep${cmd.recursive ? ' -R' : ''} ${cmd.replication} ${cmd.path}`;
    case 'decommission': return `decommission${cmd.cancel ? ' --cancel' : ''} ${cmd.server}`;
    case 'append': return `append ${cmd.path} (${cmd.writeId})`;
    case 'snapshot': return `snapshot ${cmd.src} -> ${cmd.dst}`;
    default: return cmd.op;
  }
}

const file = (s: MasterState, path: string): FileNode => {
  const n = s.lookup(path);
  if (!n || n.type !== 'file') throw new Error(`${path} is not a file`);
  return n;
};
const dir = (s: MasterState, path: string): DirNode => {
  const n = s.lookup(path);
  if (!n || n.type !== 'dir') throw new Error(`${path} is not a directory`);
  return n;
};

/** Writes a complete file with the given chunk lengths; returns its handles. */
function writeFile(t: Tap, s: MasterState, path: string, writeId: string, lengths: number[], nowMs: number, opts: { overwrite?: boolean } = {}): number[] {
  ok(t, s, create(path, writeId, nowMs, opts));
  const handles = lengths.map((_, i) => ok<{ handle: number }>(t, s, allocate(writeId, i, nowMs)).handle);
  ok(t, s, complete(writeId, handles.map((handle, i) => ({ handle, length: lengths[i]! })), nowMs));
  return handles;
}

/**
 * Structural invariants that every reachable state keeps: the chunk table holds exactly the
 * chunks referenced by complete files and pending writes, each once; 'writing' entries and
 * non-replacing writes point at each other; replacing writes sit on complete files.
 */
function invariantProblems(s: MasterState): string[] {
  const problems: string[] = [];
  const owners = new Map<number, string>();
  const count = new Map<number, number>();
  // A chunk may be shared by complete files (snapshots); a write's chunks are its own.
  const own = (h: number, who: string, shareable = false) => {
    if (owners.has(h) && !(shareable && !owners.get(h)!.startsWith('write '))) problems.push(`handle ${h} owned by ${owners.get(h)} and ${who}`);
    owners.set(h, who);
    count.set(h, (count.get(h) ?? 0) + 1);
  };
  for (const [p, n] of s.walk('/', s.root)) {
    if (n.type !== 'file') continue;
    if (n.state === 'complete') {
      if (n.writeId !== undefined) problems.push(`${p} complete but has writeId`);
      for (const h of n.chunks) own(h, p, true);
      if (n.size !== n.chunks.reduce((a, h) => a + (s.chunks.get(h)?.length ?? NaN), 0)) problems.push(`${p} size != sum of chunk lengths`);
    } else {
      const w = n.writeId === undefined ? undefined : s.writes.get(n.writeId);
      if (!w) problems.push(`${p} is writing but has no pending write`);
      else if (w.path !== p || w.replacing) problems.push(`${p} writing entry points at write for ${w.path} (replacing=${w.replacing})`);
      if (n.chunks.length !== 0) problems.push(`${p} writing entry has chunks`);
      if (w && w.replication !== n.replication) problems.push(`${p} writing entry has replication ${n.replication}, its write ${w.replication}`);
    }
  }
  for (const w of s.writes.values()) {
    for (const h of w.chunks) own(h, `write ${w.writeId}`);
    const n = s.lookup(w.path);
    if (w.replacing) {
      if (!n || n.type !== 'file' || n.state !== 'complete') problems.push(`replacing write ${w.writeId} on ${w.path}, which is not a complete file`);
    } else if (!n || n.type !== 'file' || n.writeId !== w.writeId) problems.push(`write ${w.writeId} has no writing entry at ${w.path}`);
  }
  for (const w of s.writes.values()) if (w.append?.fill?.copyTo !== undefined) own(w.append.fill.copyTo, `write ${w.writeId}`);
  for (const [h, n] of count) if (s.chunks.has(h) && s.chunks.refsOf(h) !== n) problems.push(`chunk ${h} has ${s.chunks.refsOf(h)} references, ${n} hold it`);
  for (const w of s.writes.values()) {
    const fill = w.append?.fill;
    if (fill && fill.newVersion >= s.nextVersion) problems.push(`append ${w.writeId} holds version ${fill.newVersion}, not below nextVersion ${s.nextVersion}`);
    if (fill && s.chunks.get(fill.handle) && s.chunks.versionOf(fill.handle)! >= fill.newVersion) problems.push(`append ${w.writeId}: chunk ${fill.handle} is at ${s.chunks.versionOf(fill.handle)} already`);
  }
  for (const h of s.chunks.keys()) {
    if (s.chunks.versionOf(h)! >= s.nextVersion) problems.push(`chunk ${h} has version ${s.chunks.versionOf(h)}, not below nextVersion ${s.nextVersion}`);
    if (!owners.has(h)) problems.push(`chunk ${h} is in the table but owned by nothing`);
    if (h >= s.nextHandle) problems.push(`chunk ${h} >= nextHandle ${s.nextHandle}`);
  }
  for (const h of owners.keys()) if (!s.chunks.has(h)) problems.push(`handle ${h} referenced but missing from the chunk table`);
  return problems;
}

// ======================================================================================

t.test('a fresh state', async (t) => {
  const s = new MasterState();
  t.equal(s.lookup('/'), s.root, '/ is the root');
  t.same(s.entryInfo('/', s.root), { path: '/', name: '/', type: 'dir', size: 0, mtimeMs: 0, replication: 0, state: 'complete', chunkCount: 0 });
  t.equal(s.nextHandle, 1);
  t.equal(s.chunks.size, 0);
  t.equal(s.writes.size, 0);
  t.equal(snap(s), snap(new MasterState()), 'two fresh states snapshot identically');
  t.same(invariantProblems(s), []);
});

t.test('mkdir', async (t) => {
  t.test('creates a directory under an existing one and returns its info', async (t) => {
    const s = new MasterState();
    const info = ok(t, s, mkdir('/a', 10));
    t.same(info, { path: '/a', name: 'a', type: 'dir', size: 0, mtimeMs: 10, replication: 0, state: 'complete', chunkCount: 0 });
    t.equal(dir(s, '/a').children.size, 0);
    t.equal(s.root.mtimeMs, 10, 'parent mtime updated');
    ok(t, s, mkdir('/a/b', 20));
    t.equal(dir(s, '/a').mtimeMs, 20, '/a mtime updated by its new child');
    t.equal(s.root.mtimeMs, 10, 'grandparent mtime untouched');
  });

  t.test('EXISTS for an existing directory or file without -p; -p on an existing directory is a no-op', async (t) => {
    const s = new MasterState();
    ok(t, s, mkdir('/a', 10));
    writeFile(t, s, '/f', 'w-f', [3], 11);
    fails(t, s, mkdir('/a', 20), 'EXISTS');
    fails(t, s, mkdir('/f', 20), 'EXISTS');
    fails(t, s, mkdir('/f', 20, true), 'EXISTS'); // -p does not excuse a file in the way
    fails(t, s, mkdir('/', 20), 'EXISTS');
    const before = snap(s);
    const info = ok(t, s, mkdir('/a', 30, true));
    t.match(info, { path: '/a', type: 'dir', mtimeMs: 10 }, 'returns the existing directory');
    t.same(ok(t, s, mkdir('/', 30, true)), s.entryInfo('/', s.root), 'mkdir -p / answers the root');
    t.equal(snap(s), before, 'mkdir -p of existing directories changes nothing (not even mtimes)');
  });

  t.test('NOT_FOUND when a parent is missing without -p; -p makes every missing level', async (t) => {
    const s = new MasterState();
    fails(t, s, mkdir('/x/y', 10), 'NOT_FOUND');
    fails(t, s, mkdir('/x/y/z', 10), 'NOT_FOUND');
    t.equal(s.lookup('/x'), undefined, 'no partial directory left behind');
    const info = ok(t, s, mkdir('/x/y/z', 20, true));
    t.match(info, { path: '/x/y/z', name: 'z', type: 'dir', mtimeMs: 20 });
    for (const p of ['/x', '/x/y', '/x/y/z']) t.equal(s.lookup(p)?.type, 'dir', `${p} exists`);
    t.equal(dir(s, '/x').mtimeMs, 20);
    ok(t, s, mkdir('/x/q/r', 30, true));
    t.equal(dir(s, '/x').mtimeMs, 30, 'an existing level gets the new mtime when a child is added');
    t.equal(dir(s, '/x/y').mtimeMs, 20, 'untouched sibling keeps its mtime');
    t.same([...dir(s, '/x').children.keys()].sort(), ['q', 'y']);
  });

  t.test('NOT_A_DIRECTORY when a file is in the way, with or without -p, and nothing is made', async (t) => {
    const s = new MasterState();
    ok(t, s, mkdir('/a', 1));
    writeFile(t, s, '/a/f', 'w-af', [2], 2);
    fails(t, s, mkdir('/a/f/sub', 10), 'NOT_A_DIRECTORY');
    fails(t, s, mkdir('/a/f/sub', 10, true), 'NOT_A_DIRECTORY');
    fails(t, s, mkdir('/a/f/sub/deeper', 10, true), 'NOT_A_DIRECTORY');
    // A file still being written is in the way too.
    ok(t, s, create('/a/g', 'w-ag', 3));
    fails(t, s, mkdir('/a/g/x', 10, true), 'NOT_A_DIRECTORY');
  });
});

t.test('create', async (t) => {
  t.test('makes a writing entry and a pending write with a lease', async (t) => {
    const s = new MasterState();
    const r = ok(t, s, create('/f', 'w1', 100, { replication: 2, leaseMs: 500 }));
    t.same(r, { writeId: 'w1' });
    const f = file(s, '/f');
    t.match(f, { type: 'file', state: 'writing', writeId: 'w1', size: 0, replication: 2, chunkSizeBytes: CHUNK, mtimeMs: 100 });
    t.same(f.chunks, []);
    t.same(s.writes.get('w1'), {
      writeId: 'w1', path: '/f', replication: 2, chunkSizeBytes: CHUNK, chunks: [], leaseExpiresAtMs: 600, leaseMs: 500, replacing: false,
    });
    t.equal(s.root.mtimeMs, 100, 'parent mtime updated');
    t.same(s.entryInfo('/f', f), { path: '/f', name: 'f', type: 'file', size: 0, mtimeMs: 100, replication: 2, state: 'writing', chunkCount: 0 });
    t.same(invariantProblems(s), []);
  });

  t.test('refuses / and directories', async (t) => {
    const s = new MasterState();
    ok(t, s, mkdir('/d', 1));
    fails(t, s, create('/', 'w1', 10), 'IS_A_DIRECTORY');
    fails(t, s, create('/d', 'w1', 10), 'IS_A_DIRECTORY');
    fails(t, s, create('/d', 'w1', 10, { overwrite: true }), 'IS_A_DIRECTORY');
    fails(t, s, create('/d', 'w1', 10, { overwrite: true, parents: true }), 'IS_A_DIRECTORY');
  });

  t.test('missing parent: NOT_FOUND unless parents is set', async (t) => {
    const s = new MasterState();
    fails(t, s, create('/p/q/f', 'w1', 10), 'NOT_FOUND');
    fails(t, s, create('/p/q/f', 'w1', 10, { parents: false, overwrite: true }), 'NOT_FOUND');
    ok(t, s, create('/p/q/f', 'w1', 20, { parents: true }));
    t.equal(s.lookup('/p')?.type, 'dir');
    t.equal(dir(s, '/p/q').mtimeMs, 20);
    t.equal(file(s, '/p/q/f').state, 'writing');
    t.same(invariantProblems(s), []);
    // parents with an existing parent is the same as without
    ok(t, s, create('/p/g', 'w2', 30, { parents: true }));
    t.same([...dir(s, '/p').children.keys()].sort(), ['g', 'q']);
  });

  t.test('a file in the parent chain: NOT_A_DIRECTORY, also with parents, and no directories are made', async (t) => {
    const s = new MasterState();
    writeFile(t, s, '/f', 'w0', [1], 1);
    fails(t, s, create('/f/x', 'w1', 10), 'NOT_A_DIRECTORY');
    fails(t, s, create('/f/x', 'w1', 10, { parents: true }), 'NOT_A_DIRECTORY');
    fails(t, s, create('/f/x/y/z', 'w1', 10, { parents: true }), 'NOT_A_DIRECTORY');
  });

  t.test('a write id already in use is refused before anything is made', async (t) => {
    const s = new MasterState();
    ok(t, s, create('/a', 'dup', 10));
    fails(t, s, create('/b', 'dup', 11), 'EXISTS');
    fails(t, s, create('/new/dir/b', 'dup', 11, { parents: true }), 'EXISTS');
    t.equal(s.lookup('/new'), undefined);
  });

  t.test('an existing complete file: EXISTS without overwrite', async (t) => {
    const s = new MasterState();
    writeFile(t, s, '/f', 'w0', [4, 1], 1);
    fails(t, s, create('/f', 'w1', 10), 'EXISTS');
    fails(t, s, create('/f', 'w1', 10, { parents: true }), 'EXISTS');
  });

  t.test('a file being written under a live lease: FILE_BUSY, overwrite or not', async (t) => {
    const s = new MasterState();
    ok(t, s, create('/f', 'w1', 100));
    fails(t, s, create('/f', 'w2', 200), 'FILE_BUSY');
    fails(t, s, create('/f', 'w2', 200, { overwrite: true }), 'FILE_BUSY');
    fails(t, s, create('/f', 'w2', 100 + LEASE - 1, { overwrite: true }), 'FILE_BUSY'); // one ms before expiry
  });

  t.test('a file whose writer let the lease lapse: EXISTS without overwrite; overwrite takes it over', async (t) => {
    const s = new MasterState();
    ok(t, s, create('/f', 'w1', 100));
    const h = ok<{ handle: number }>(t, s, allocate('w1', 0, 100)).handle; // lease now expires at 1100
    fails(t, s, create('/f', 'w2', 1100), 'EXISTS'); // lease expired exactly now
    ok(t, s, create('/f', 'w2', 1100, { overwrite: true }));
    t.notOk(s.writes.has('w1'), 'the lapsed write is dropped');
    t.notOk(s.chunks.has(h), 'and its chunk is garbage');
    t.match(file(s, '/f'), { state: 'writing', writeId: 'w2', mtimeMs: 1100 });
    t.match(s.writes.get('w2'), { replacing: false });
    fails(t, s, allocate('w1', 1, 1200), 'WRITE_NOT_FOUND');
    t.same(invariantProblems(s), []);
  });

  t.test('overwriting a complete file is atomic: the old file stays readable until complete', async (t) => {
    const s = new MasterState();
    const oldHandles = writeFile(t, s, '/f', 'w0', [4, 2], 10);
    const oldFile = structuredClone(file(s, '/f'));
    const rootMtime = s.root.mtimeMs;

    ok(t, s, create('/f', 'w1', 100, { overwrite: true, replication: 1 }));
    t.match(s.writes.get('w1'), { replacing: true, path: '/f' });
    t.same(file(s, '/f'), oldFile, 'old file unchanged after create');
    t.equal(s.root.mtimeMs, rootMtime, 'directory not touched yet');
    const h0 = ok<{ handle: number }>(t, s, allocate('w1', 0, 110)).handle;
    t.same(file(s, '/f'), oldFile, 'old file unchanged after allocate');
    for (const h of oldHandles) t.ok(s.chunks.has(h), `old chunk ${h} still in the chunk table`);
    t.same(invariantProblems(s), []);

    const info = ok(t, s, complete('w1', [{ handle: h0, length: 3 }], 120));
    t.same(info, { path: '/f', name: 'f', type: 'file', size: 3, mtimeMs: 120, replication: 1, state: 'complete', chunkCount: 1 });
    t.same(file(s, '/f').chunks, [h0]);
    for (const h of oldHandles) t.notOk(s.chunks.has(h), `old chunk ${h} released`);
    t.same(s.chunks.get(h0), { handle: h0, version: 1, length: 3, checksum: `ck${h0}` });
    t.equal(s.root.mtimeMs, 120);
    t.equal(s.writes.size, 0);
    t.same(invariantProblems(s), []);
  });

  t.test('an abandoned overwrite leaves the old file as it was', async (t) => {
    const s = new MasterState();
    const oldHandles = writeFile(t, s, '/f', 'w0', [4, 4, 1], 10);
    const before = snap(s);
    ok(t, s, create('/f', 'w1', 100, { overwrite: true }));
    const fresh = [0, 1].map((i) => ok<{ handle: number }>(t, s, allocate('w1', i, 100)).handle);
    ok(t, s, abandon('w1'));
    t.same(file(s, '/f').chunks, oldHandles);
    t.equal(file(s, '/f').state, 'complete');
    for (const h of fresh) t.notOk(s.chunks.has(h), `abandoned chunk ${h} dropped`);
    const after = JSON.parse(snap(s));
    const expected = JSON.parse(before);
    expected.nextHandle = after.nextHandle; // the only thing allowed to move: handles are never reused
    t.same(after, expected, 'state is the pre-overwrite state apart from the handle counter');
    t.equal(after.nextHandle, JSON.parse(before).nextHandle + 2);
  });

  t.test('an overwrite whose lease expires leaves the old file; expireLeases reports it', async (t) => {
    const s = new MasterState();
    const oldHandles = writeFile(t, s, '/f', 'w0', [2], 10);
    ok(t, s, create('/f', 'w1', 100, { overwrite: true }));
    ok(t, s, allocate('w1', 0, 100));
    t.same(ok(t, s, expire(100 + LEASE)), { abandoned: ['/f'] });
    t.same(file(s, '/f').chunks, oldHandles);
    t.equal(file(s, '/f').state, 'complete');
    t.equal(s.writes.size, 0);
    t.same(invariantProblems(s), []);
  });

  t.test('only one overwrite at a time: FILE_BUSY while one is live, a lapsed one is replaced', async (t) => {
    const s = new MasterState();
    const oldHandles = writeFile(t, s, '/f', 'w0', [2], 10);
    ok(t, s, create('/f', 'w1', 100, { overwrite: true }));
    const h1 = ok<{ handle: number }>(t, s, allocate('w1', 0, 100)).handle;
    fails(t, s, create('/f', 'w2', 200, { overwrite: true }), 'FILE_BUSY');
    fails(t, s, create('/f', 'w2', 200), 'EXISTS'); // without -f it is the plain "exists" answer
    ok(t, s, create('/f', 'w2', 100 + LEASE, { overwrite: true }));
    t.notOk(s.writes.has('w1'), 'the lapsed overwrite is dropped');
    t.notOk(s.chunks.has(h1), 'with its chunk');
    t.same(file(s, '/f').chunks, oldHandles, 'old file still readable');
    fails(t, s, complete('w1', [{ handle: h1, length: 2 }], 100 + LEASE), 'WRITE_NOT_FOUND');
    t.same(invariantProblems(s), []);
  });
});

t.test('allocate, complete and abandon', async (t) => {
  t.test('allocate hands out fresh handles at version 1 and renews the lease', async (t) => {
    const s = new MasterState();
    ok(t, s, create('/f', 'w1', 100));
    const r0 = ok(t, s, allocate('w1', 0, 150));
    t.same(r0, { handle: 1, version: 1, length: 0, checksum: '' });
    t.equal(s.writes.get('w1')!.leaseExpiresAtMs, 150 + LEASE, 'lease renewed from the allocate time');
    const r1 = ok<{ handle: number }>(t, s, allocate('w1', 1, 160));
    t.equal(r1.handle, 2);
    t.same(s.writes.get('w1')!.chunks, [1, 2]);
    t.same(file(s, '/f').chunks, [], 'the entry gets its chunks only at complete');
    t.equal(s.nextHandle, 3);
  });

  t.test('allocate: unknown write, gaps', async (t) => {
    const s = new MasterState();
    fails(t, s, allocate('nope', 0, 10), 'WRITE_NOT_FOUND');
    ok(t, s, create('/f', 'w1', 100));
    const r = s.apply(allocate('w1', 1, 100));
    t.match(r, { ok: false, code: 'INVALID_ARGUMENT' }, 'a chunk index past the next one is refused');
    t.equal(s.nextHandle, 1, 'no handle consumed');
    t.same(s.writes.get('w1')!.chunks, []);
    ok(t, s, allocate('w1', 0, 100));
    fails(t, s, allocate('w1', 2, 200), 'INVALID_ARGUMENT');
  });

  t.test('re-allocating an index replaces its handle and frees the old one', async (t) => {
    const s = new MasterState();
    ok(t, s, create('/f', 'w1', 100));
    const a = ok<{ handle: number }>(t, s, allocate('w1', 0, 100)).handle;
    const b = ok<{ handle: number }>(t, s, allocate('w1', 1, 100)).handle;
    const a2 = ok<{ handle: number }>(t, s, allocate('w1', 0, 100)).handle;
    t.not(a2, a, 'a new handle');
    t.ok(a2 > b, 'bigger than every earlier handle');
    t.same(s.writes.get('w1')!.chunks, [a2, b]);
    t.notOk(s.chunks.has(a), 'old handle dropped from the chunk table');
    t.same(invariantProblems(s), []);
    const info = ok(t, s, complete('w1', [{ handle: a2, length: CHUNK }, { handle: b, length: 1 }], 110));
    t.match(info, { size: CHUNK + 1, chunkCount: 2, state: 'complete' });
  });

  t.test('complete validates the chunk list against the write', async (t) => {
    const s = new MasterState();
    ok(t, s, create('/f', 'w1', 100));
    const h0 = ok<{ handle: number }>(t, s, allocate('w1', 0, 100)).handle;
    const h1 = ok<{ handle: number }>(t, s, allocate('w1', 1, 100)).handle;
    const cases: [string, Command][] = [
      ['too few chunks', complete('w1', [{ handle: h0, length: CHUNK }], 200)],
      ['too many chunks', complete('w1', [{ handle: h0, length: CHUNK }, { handle: h1, length: 1 }, { handle: 99, length: 1 }], 200)],
      ['handles out of order', complete('w1', [{ handle: h1, length: CHUNK }, { handle: h0, length: 1 }], 200)],
      ['a handle of another write', complete('w1', [{ handle: h0, length: CHUNK }, { handle: 77, length: 1 }], 200)],
      ['a short middle chunk', complete('w1', [{ handle: h0, length: CHUNK - 1 }, { handle: h1, length: 1 }], 200)],
      ['an empty last chunk', complete('w1', [{ handle: h0, length: CHUNK }, { handle: h1, length: 0 }], 200)],
      ['a last chunk over the chunk size', complete('w1', [{ handle: h0, length: CHUNK }, { handle: h1, length: CHUNK + 1 }], 200)],
      ['a length that does not add up', complete('w1', [{ handle: h0, length: CHUNK }, { handle: h1, length: 1 }], 200, CHUNK + 2)],
    ];
    for (const [what, cmd] of cases) {
      const before = snap(s);
      const r = s.apply(cmd);
      t.match(r, { ok: false, code: 'INVALID_ARGUMENT' }, `${what}: INVALID_ARGUMENT`);
      t.equal(snap(s), before, `${what}: snapshot() unchanged`);
    }
    t.equal(file(s, '/f').state, 'writing', 'still writing after all the refusals');
    ok(t, s, complete('w1', [{ handle: h0, length: CHUNK }, { handle: h1, length: CHUNK }], 300));
    t.equal(file(s, '/f').size, 2 * CHUNK, 'a full last chunk is fine');
  });

  t.test('complete makes the file, records lengths and checksums, and ends the write', async (t) => {
    const s = new MasterState();
    ok(t, s, mkdir('/d', 1));
    ok(t, s, create('/d/f', 'w1', 100, { replication: 2 }));
    const h0 = ok<{ handle: number }>(t, s, allocate('w1', 0, 100)).handle;
    const h1 = ok<{ handle: number }>(t, s, allocate('w1', 1, 100)).handle;
    const info = ok(t, s, complete('w1', [{ handle: h0, length: 4, checksum: 'aaaa' }, { handle: h1, length: 3, checksum: 'bbbb' }], 150));
    t.same(info, { path: '/d/f', name: 'f', type: 'file', size: 7, mtimeMs: 150, replication: 2, state: 'complete', chunkCount: 2 });
    const f = file(s, '/d/f');
    const { type, mtimeMs, size, replication, chunkSizeBytes, chunks, state } = f;
    t.same({ type, mtimeMs, size, replication, chunkSizeBytes, chunks, state }, { type: 'file', mtimeMs: 150, size: 7, replication: 2, chunkSizeBytes: CHUNK, chunks: [h0, h1], state: 'complete' });
    t.equal(f.writeId, undefined, 'a complete file carries no write id');
    t.same(s.chunks.get(h0), { handle: h0, version: 1, length: 4, checksum: 'aaaa' });
    t.same(s.chunks.get(h1), { handle: h1, version: 1, length: 3, checksum: 'bbbb' });
    t.equal(dir(s, '/d').mtimeMs, 150);
    t.notOk(s.writes.has('w1'));
    fails(t, s, complete('w1', [{ handle: h0, length: 4 }, { handle: h1, length: 3 }], 160), 'WRITE_NOT_FOUND');
    fails(t, s, abandon('w1'), 'WRITE_NOT_FOUND');
    fails(t, s, allocate('w1', 2, 160), 'WRITE_NOT_FOUND');
    t.same(invariantProblems(s), []);
  });

  t.test('checksums come back exactly as completed, whether or not they are 16 hex digits', async (t) => {
    const s = new MasterState();
    const sums = ['0000000000000000', '00000000ffffffff', 'ffffffff00000001', 'ffffffffffffffff', '0123456789abcdef', 'ABCDEF0123456789', '123', ''];
    const handles = sums.map((checksum, i) => {
      ok(t, s, create(`/f${i}`, `w${i}`, i));
      const { handle } = ok<{ handle: number }>(t, s, allocate(`w${i}`, 0, i));
      ok(t, s, complete(`w${i}`, [{ handle, length: 1, checksum }], i));
      return handle;
    });
    // A freed row taken by a new chunk must not disturb the others.
    ok(t, s, del('/f0', 10));
    ok(t, s, create('/g', 'wg', 11));
    const g = ok<{ handle: number }>(t, s, allocate('wg', 0, 11)).handle;
    t.equal(s.chunks.get(g)!.checksum, '', 'a chunk not yet complete has no checksum');
    ok(t, s, complete('wg', [{ handle: g, length: 2, checksum: 'aaaaaaaaaaaaaaaa' }], 12));
    t.same(s.chunks.get(g), { handle: g, version: 1, length: 2, checksum: 'aaaaaaaaaaaaaaaa' });
    sums.shift();
    handles.shift();
    handles.forEach((h, i) => t.equal(s.chunks.get(h)!.checksum, sums[i], `checksum '${sums[i]}'`));
    const r = MasterState.restore(s.snapshot());
    t.same(handles.map((h) => r.chunks.get(h)!.checksum), sums, 'and after a snapshot round trip');
  });

  t.test('an empty file: complete with no chunks', async (t) => {
    const s = new MasterState();
    ok(t, s, create('/empty', 'w1', 100));
    t.match(ok(t, s, complete('w1', [], 110)), { size: 0, chunkCount: 0, state: 'complete' });
    fails(t, s, complete('w1', [], 110), 'WRITE_NOT_FOUND');
  });

  t.test('an empty file in one command: complete at once, no write; the same rules as create', async (t) => {
    const s = new MasterState();
    t.match(ok(t, s, create('/d/e', 'w1', 100, { parents: true, empty: true, replication: 2 })), { path: '/d/e', size: 0, chunkCount: 0, state: 'complete', replication: 2 });
    t.notOk(s.writes.has('w1'), 'no pending write');
    t.equal(s.lookup('/d')!.mtimeMs, 100, 'the directory is touched');
    fails(t, s, create('/d/e', 'w2', 110, { empty: true }), 'EXISTS');
    fails(t, s, create('/d', 'w2', 110, { empty: true, overwrite: true }), 'IS_A_DIRECTORY');
    // Over a complete file: replaced at once, its chunks become garbage.
    const old = writeFile(t, s, '/f', 'w3', [4, 2], 120);
    t.match(ok(t, s, create('/f', 'w4', 130, { overwrite: true, empty: true })), { size: 0, state: 'complete', mtimeMs: 130 });
    for (const h of old) t.notOk(s.chunks.has(h), `old chunk ${h} released`);
    // A live writer or overwriter still wins.
    ok(t, s, create('/busy', 'w5', 140));
    fails(t, s, create('/busy', 'w6', 150, { overwrite: true, empty: true }), 'FILE_BUSY');
    ok(t, s, create('/f', 'w7', 160, { overwrite: true }));
    fails(t, s, create('/f', 'w8', 170, { overwrite: true, empty: true }), 'FILE_BUSY');
    // Once the overwriter's lease lapses, the empty file replaces the file and the write is dropped.
    t.match(ok(t, s, create('/f', 'w8', 160 + LEASE, { overwrite: true, empty: true })), { size: 0, state: 'complete' });
    t.notOk(s.writes.has('w7'), 'the lapsed overwrite is dropped');
    t.same(invariantProblems(s), []);
  });

  t.test('the write id is free again after complete', async (t) => {
    const s = new MasterState();
    writeFile(t, s, '/a', 'w1', [1], 100);
    writeFile(t, s, '/b', 'w1', [2], 200);
    t.equal(file(s, '/a').size, 1);
    t.equal(file(s, '/b').size, 2);
  });

  t.test('abandon drops a new file, its chunks and the write', async (t) => {
    const s = new MasterState();
    ok(t, s, mkdir('/d', 1));
    const before = snap(s);
    ok(t, s, create('/d/f', 'w1', 100));
    ok(t, s, allocate('w1', 0, 100));
    ok(t, s, allocate('w1', 1, 100));
    t.equal(ok(t, s, abandon('w1')), null);
    t.equal(s.lookup('/d/f'), undefined);
    t.equal(s.chunks.size, 0);
    t.equal(s.writes.size, 0);
    const after = JSON.parse(snap(s));
    const expected = JSON.parse(before);
    expected.nextHandle = 3;
    expected.root.c[0][1].m = 100; // the directory's mtime moved at create
    t.same(after, expected);
    fails(t, s, abandon('w1'), 'WRITE_NOT_FOUND');
    fails(t, s, abandon('never'), 'WRITE_NOT_FOUND');
  });
});

t.test('expireLeases', async (t) => {
  const s = new MasterState();
  ok(t, s, create('/a', 'wa', 100)); // expires 1100
  ok(t, s, create('/b', 'wb', 200)); // expires 1200
  ok(t, s, allocate('wa', 0, 100));
  const before = snap(s);
  t.same(ok(t, s, expire(1099)), { abandoned: [] });
  t.equal(snap(s), before, 'nothing expired, nothing changed');
  ok(t, s, allocate('wb', 0, 250)); // renews wb to 1250
  t.same(ok(t, s, expire(1200)), { abandoned: ['/a'] }, 'a lease ends at exactly leaseExpiresAtMs; a renewed one does not');
  t.equal(s.lookup('/a'), undefined, 'the new file is gone');
  t.ok(s.lookup('/b'), 'the renewed write is kept');
  t.equal(s.chunks.size, 1, 'the expired write’s chunk is dropped');
  t.same(ok(t, s, expire(1250)), { abandoned: ['/b'] });
  t.same(ok(t, s, expire(99999)), { abandoned: [] });
  t.equal(s.writes.size, 0);
  t.equal(s.chunks.size, 0);
  t.same(invariantProblems(s), []);
});

t.test('delete', async (t) => {
  t.test('refuses /, missing paths and bad parents', async (t) => {
    const s = new MasterState();
    writeFile(t, s, '/f', 'w0', [1], 1);
    fails(t, s, del('/', 10), 'INVALID_ARGUMENT');
    fails(t, s, del('/', 10, true), 'INVALID_ARGUMENT');
    fails(t, s, del('/nope', 10), 'NOT_FOUND');
    fails(t, s, del('/nope/deeper', 10, true), 'NOT_FOUND');
    fails(t, s, del('/f/x', 10), 'NOT_A_DIRECTORY');
  });

  t.test('with a type: only a path of that type, and nothing else changes', async (t) => {
    const s = new MasterState();
    ok(t, s, mkdir('/d', 1));
    const hs = writeFile(t, s, '/f', 'w0', [4], 2);
    fails(t, s, del('/f', 10, false, 'dir'), 'NOT_A_DIRECTORY');
    fails(t, s, del('/d', 10, false, 'file'), 'IS_A_DIRECTORY');
    t.ok(s.lookup('/f') && s.lookup('/d'), 'both still there');
    for (const h of hs) t.ok(s.chunks.has(h), 'the file keeps its chunks');
    t.equal(s.root.mtimeMs, 2, 'the parent is unchanged');
    t.same(ok(t, s, del('/f', 20, false, 'file')), { files: 1 });
    t.same(ok(t, s, del('/d', 20, false, 'dir')), { files: 0 });
    t.equal(s.root.children.size, 0);
    t.same(invariantProblems(s), []);
  });

  t.test('a file: releases its chunks and counts it', async (t) => {
    const s = new MasterState();
    ok(t, s, mkdir('/d', 1));
    const hs = writeFile(t, s, '/d/f', 'w0', [4, 4], 2);
    t.same(ok(t, s, del('/d/f', 50)), { files: 1 });
    t.equal(s.lookup('/d/f'), undefined);
    for (const h of hs) t.notOk(s.chunks.has(h));
    t.equal(dir(s, '/d').mtimeMs, 50);
  });

  t.test('an empty directory needs no -r; a non-empty one does', async (t) => {
    const s = new MasterState();
    ok(t, s, mkdir('/e', 1));
    ok(t, s, mkdir('/d/sub', 1, true));
    fails(t, s, del('/d', 10), 'DIRECTORY_NOT_EMPTY');
    t.same(ok(t, s, del('/e', 10)), { files: 0 });
    t.same(ok(t, s, del('/d/sub', 10)), { files: 0 });
    t.same(ok(t, s, del('/d', 10)), { files: 0 });
    t.equal(s.root.children.size, 0);
  });

  t.test('recursive: every file, pending write and pending overwrite below goes', async (t) => {
    const s = new MasterState();
    ok(t, s, mkdir('/d/x/y', 1, true));
    ok(t, s, mkdir('/keep', 1));
    const h1 = writeFile(t, s, '/d/a', 'w1', [4, 2], 2);
    const h2 = writeFile(t, s, '/d/x/y/b', 'w2', [3], 3);
    const hk = writeFile(t, s, '/keep/k', 'wk', [3], 3);
    ok(t, s, create('/d/x/new', 'w3', 4)); // a new file being written
    const h3 = ok<{ handle: number }>(t, s, allocate('w3', 0, 4)).handle;
    ok(t, s, create('/d/a', 'w4', 5, { overwrite: true })); // an overwrite in progress
    const h4 = ok<{ handle: number }>(t, s, allocate('w4', 0, 5)).handle;
    ok(t, s, create('/keep/k', 'w5', 5, { overwrite: true })); // outside: must survive
    fails(t, s, del('/d', 10), 'DIRECTORY_NOT_EMPTY');

    t.same(ok(t, s, del('/d', 10, true)), { files: 3 }, 'a, b and the writing one');
    t.equal(s.lookup('/d'), undefined);
    for (const h of [...h1, ...h2, h3, h4]) t.notOk(s.chunks.has(h), `chunk ${h} released`);
    for (const h of hk) t.ok(s.chunks.has(h), `chunk ${h} outside kept`);
    t.same([...s.writes.keys()], ['w5'], 'only the write outside the deleted tree is left');
    t.same(invariantProblems(s), []);

    // The dropped writes cannot complete and resurrect anything.
    fails(t, s, complete('w4', [{ handle: h4, length: 1 }], 20), 'WRITE_NOT_FOUND');
    fails(t, s, complete('w3', [{ handle: h3, length: 1 }], 20), 'WRITE_NOT_FOUND');
    t.equal(s.lookup('/d'), undefined);
  });

  t.test('a file with a pending overwrite: the overwrite dies with it', async (t) => {
    const s = new MasterState();
    writeFile(t, s, '/f', 'w0', [1], 1);
    ok(t, s, create('/f', 'w1', 2, { overwrite: true }));
    const h = ok<{ handle: number }>(t, s, allocate('w1', 0, 2)).handle;
    t.same(ok(t, s, del('/f', 3)), { files: 1 });
    t.equal(s.writes.size, 0);
    t.equal(s.chunks.size, 0);
    // A new directory at the same path must not be replaced by the old overwrite.
    ok(t, s, mkdir('/f', 4));
    fails(t, s, complete('w1', [{ handle: h, length: 1 }], 5), 'WRITE_NOT_FOUND');
    t.equal(s.lookup('/f')?.type, 'dir');
  });

  t.test('a file being written: its write is dropped', async (t) => {
    const s = new MasterState();
    ok(t, s, create('/f', 'w1', 2));
    ok(t, s, allocate('w1', 0, 2));
    t.same(ok(t, s, del('/f', 3)), { files: 1 });
    t.equal(s.writes.size, 0);
    t.equal(s.chunks.size, 0);
    fails(t, s, allocate('w1', 1, 4), 'WRITE_NOT_FOUND');
  });
});

t.test('rename', async (t) => {
  t.test('refuses /, missing sources and bad destinations', async (t) => {
    const s = new MasterState();
    ok(t, s, mkdir('/d', 1));
    writeFile(t, s, '/f', 'w0', [1], 1);
    writeFile(t, s, '/g', 'w1', [1], 1);
    fails(t, s, rename('/', '/x', 10), 'INVALID_ARGUMENT');
    fails(t, s, rename('/nope', '/x', 10), 'NOT_FOUND');
    fails(t, s, rename('/nope/a', '/x', 10), 'NOT_FOUND');
    fails(t, s, rename('/f/a', '/x', 10), 'NOT_A_DIRECTORY');
    fails(t, s, rename('/f', '/g', 10), 'EXISTS'); // onto an existing file
    fails(t, s, rename('/d', '/g', 10), 'EXISTS'); // a directory onto a file
    fails(t, s, rename('/f', '/missing/f', 10), 'NOT_FOUND');
    fails(t, s, rename('/f', '/g/f2', 10), 'NOT_A_DIRECTORY');
  });

  t.test('a file to a new name', async (t) => {
    const s = new MasterState();
    ok(t, s, mkdir('/a', 1));
    ok(t, s, mkdir('/b', 1));
    const hs = writeFile(t, s, '/a/f', 'w0', [4, 1], 2);
    const node = file(s, '/a/f');
    const info = ok(t, s, rename('/a/f', '/b/g', 10));
    t.same(info, { path: '/b/g', name: 'g', type: 'file', size: 5, mtimeMs: 2, replication: 3, state: 'complete', chunkCount: 2 });
    t.equal(s.lookup('/a/f'), undefined);
    t.equal(s.lookup('/b/g'), node, 'the same node, chunks and all');
    t.same(file(s, '/b/g').chunks, hs);
    t.equal(dir(s, '/a').mtimeMs, 10);
    t.equal(dir(s, '/b').mtimeMs, 10);
    t.equal(file(s, '/b/g').mtimeMs, 2, 'the file itself keeps its mtime');
  });

  t.test('into an existing directory keeps the name (like mv)', async (t) => {
    const s = new MasterState();
    ok(t, s, mkdir('/src/sub', 1, true));
    ok(t, s, mkdir('/dst', 1));
    writeFile(t, s, '/src/sub/f', 'w0', [2], 2);
    t.match(ok(t, s, rename('/src', '/dst', 10)), { path: '/dst/src', name: 'src', type: 'dir' });
    t.equal(s.lookup('/src'), undefined);
    t.equal(file(s, '/dst/src/sub/f').size, 2, 'the whole subtree moved');
    // and the destination may be /
    t.match(ok(t, s, rename('/dst/src/sub/f', '/', 11)), { path: '/f' });
    t.equal(file(s, '/f').size, 2);
  });

  t.test('into a directory that already has the name: EXISTS', async (t) => {
    const s = new MasterState();
    ok(t, s, mkdir('/a/x', 1, true));
    ok(t, s, mkdir('/b/x', 1, true));
    ok(t, s, mkdir('/c', 1));
    writeFile(t, s, '/c/f', 'w0', [1], 1);
    writeFile(t, s, '/f', 'w1', [1], 1);
    fails(t, s, rename('/a/x', '/b', 10), 'EXISTS');
    fails(t, s, rename('/f', '/c', 10), 'EXISTS');
    fails(t, s, rename('/a/x', '/a', 10), 'EXISTS'); // into its own parent
    fails(t, s, rename('/f', '/', 10), 'EXISTS');
  });

  t.test('into its own subtree: INVALID_ARGUMENT', async (t) => {
    const s = new MasterState();
    ok(t, s, mkdir('/a/b/c', 1, true));
    fails(t, s, rename('/a', '/a/b', 10), 'INVALID_ARGUMENT'); // an existing dir inside
    fails(t, s, rename('/a', '/a/new', 10), 'INVALID_ARGUMENT'); // a new name inside
    fails(t, s, rename('/a', '/a/b/c/d', 10), 'INVALID_ARGUMENT');
    fails(t, s, rename('/a/b', '/a/b/c', 10), 'INVALID_ARGUMENT');
    // ...but a sibling that merely shares a prefix is fine
    t.match(ok(t, s, rename('/a', '/ab', 10)), { path: '/ab' });
    t.equal(s.lookup('/ab/b/c')?.type, 'dir');
  });

  t.test('onto itself: a no-op', async (t) => {
    const s = new MasterState();
    ok(t, s, mkdir('/a', 1));
    writeFile(t, s, '/a/f', 'w0', [1], 1);
    const before = snap(s);
    t.match(ok(t, s, rename('/a', '/a', 10)), { path: '/a', type: 'dir' });
    t.match(ok(t, s, rename('/a/f', '/a/f', 10)), { path: '/a/f', type: 'file' });
    t.equal(snap(s), before, 'nothing changed, not even mtimes');
  });

  t.test('anything being written is FILE_BUSY', async (t) => {
    const s = new MasterState();
    ok(t, s, mkdir('/d/sub', 1, true));
    ok(t, s, mkdir('/e', 1));
    ok(t, s, create('/d/sub/w', 'w1', 2)); // new file being written
    fails(t, s, rename('/d/sub/w', '/e/w', 10), 'FILE_BUSY');
    fails(t, s, rename('/d/sub/w', '/d/sub/w', 10), 'FILE_BUSY');
    fails(t, s, rename('/d', '/e', 10), 'FILE_BUSY');
    fails(t, s, rename('/d/sub', '/x', 10), 'FILE_BUSY');
    writeFile(t, s, '/e/f', 'w0', [1], 3);
    ok(t, s, create('/e/f', 'w2', 4, { overwrite: true })); // an overwrite in progress
    fails(t, s, rename('/e/f', '/g', 10), 'FILE_BUSY');
    fails(t, s, rename('/e', '/g', 10), 'FILE_BUSY');
    ok(t, s, abandon('w2'));
    t.match(ok(t, s, rename('/e', '/g', 10)), { path: '/g' }, 'free once the write is gone');
  });
});

t.test('lookups, entryInfo and walk (what stat and list are built on)', async (t) => {
  const s = new MasterState();
  ok(t, s, mkdir('/z', 1));
  ok(t, s, mkdir('/a', 2));
  ok(t, s, mkdir('/a/m', 3));
  writeFile(t, s, '/a/b', 'w0', [4, 4, 2], 4);
  ok(t, s, create('/a/c', 'w1', 5, { replication: 1 }));
  t.equal(s.lookup('/nope'), undefined);
  t.equal(s.lookup('/a/b/x'), undefined, 'no path through a file');
  t.same(s.entryInfo('/a', s.lookup('/a')!), { path: '/a', name: 'a', type: 'dir', size: 0, mtimeMs: 5, replication: 0, state: 'complete', chunkCount: 0 });
  t.same(s.entryInfo('/a/b', s.lookup('/a/b')!), { path: '/a/b', name: 'b', type: 'file', size: 10, mtimeMs: 4, replication: 3, state: 'complete', chunkCount: 3 });
  t.same(s.entryInfo('/a/c', s.lookup('/a/c')!), { path: '/a/c', name: 'c', type: 'file', size: 0, mtimeMs: 5, replication: 1, state: 'writing', chunkCount: 0 });
  t.same([...s.walk('/', s.root)].map(([p]) => p), ['/', '/a', '/a/b', '/a/c', '/a/m', '/z'], 'depth first, names sorted, whatever the insertion order');
  t.same([...s.walk('/a/b', s.lookup('/a/b')!)].map(([p]) => p), ['/a/b'], 'a file walks to itself');
});

t.test('snapshot and restore', async (t) => {
  const s = new MasterState();
  ok(t, s, mkdir('/d/e', 1, true));
  writeFile(t, s, '/d/f', 'w0', [4, 3], 2);
  ok(t, s, create('/d/e/g', 'w1', 3, { replication: 2 }));
  ok(t, s, allocate('w1', 0, 3));
  ok(t, s, create('/d/f', 'w2', 4, { overwrite: true }));
  ok(t, s, allocate('w2', 0, 4));
  ok(t, s, allocate('w2', 0, 5)); // leaves a gap in the handle sequence
  const bytes = s.snapshot();
  const r = MasterState.restore(bytes);
  t.equal(r.snapshot().toString(), bytes.toString(), 'round trip is byte-identical');
  t.equal(r.nextHandle, s.nextHandle);
  t.same(r.writes, s.writes);
  t.same([...r.chunks.records()], [...s.chunks.records()]);
  t.same(r.root, s.root);
  t.same(invariantProblems(r), []);
  // The restored state answers every later command the same way.
  const next: Command[] = [
    complete('w2', [{ handle: s.writes.get('w2')!.chunks[0]!, length: 1 }], 10),
    allocate('w1', 1, 11),
    create('/d/f', 'w3', 12),
    rename('/d', '/x', 13),
    abandon('w1'),
    rename('/d', '/x', 14),
    del('/x', 15, true),
  ];
  for (const cmd of next) t.same(r.apply(cmd), s.apply(cmd), `same answer to ${describe(cmd)}`);
  t.equal(snap(r), snap(s));
  t.throws(() => MasterState.restore(Buffer.from(JSON.stringify({ ...JSON.parse(snap(s)), v: 3 }))), /snapshot format/);
});

t.test('handles are never reused', async (t) => {
  const s = new MasterState();
  const seen: number[] = [];
  const alloc = (w: string, i: number, now: number) => {
    const h = ok<{ handle: number }>(t, s, allocate(w, i, now)).handle;
    seen.push(h);
    return h;
  };
  ok(t, s, create('/a', 'w1', 1));
  alloc('w1', 0, 1);
  alloc('w1', 0, 1); // re-allocation
  alloc('w1', 1, 1);
  ok(t, s, abandon('w1'));
  ok(t, s, create('/a', 'w2', 2));
  const h = alloc('w2', 0, 2);
  ok(t, s, complete('w2', [{ handle: h, length: 1 }], 2));
  ok(t, s, del('/a', 3));
  t.equal(s.chunks.size, 0, 'every handle so far is garbage');
  // A restore of a state whose chunk table is empty must still not hand out old handles.
  const r = MasterState.restore(s.snapshot());
  ok(t, r, create('/b', 'w3', 4, { leaseMs: 1 }));
  const after = ok<{ handle: number }>(t, r, allocate('w3', 0, 4)).handle;
  seen.push(after);
  ok(t, r, expire(10));
  ok(t, r, create('/b', 'w4', 11));
  seen.push(ok<{ handle: number }>(t, r, allocate('w4', 0, 11)).handle);
  t.same(seen, [...seen].sort((x, y) => x - y), 'increasing');
  t.equal(new Set(seen).size, seen.length, 'all distinct');
  t.same(seen, [1, 2, 3, 4, 5, 6]);
});

// ---- seeded random histories ----

interface History { commands: Command[]; results: CommandResult[]; snapshots: string[]; final: string; violations: string[]; leaseOnlyViolations: string[]; invariantFailures: string[]; handles: number[]; setrepFailures: string[]; setrepWrites: number; setrepReplacing: number }

/**
 * Generates `n` commands, choosing each by peeking at a reference state (so that many of them
 * succeed), applies them to it, and checks after each: failing commands leave the state as it
 * was, invariants hold, allocated handles only grow. With `selfHealing`, setReplication and
 * decommission commands are mixed in too (drawn only then, so the other seeds' histories stay
 * as they were), and every successful setReplication is checked for its effect.
 */
function generate(seed: number, n: number, opts: { selfHealing?: boolean; appends?: boolean } = {}): History {
  const rnd = mulberry32(seed);
  const pick = <T,>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
  const names = ['a', 'b', 'c'];
  const randPath = (): string => {
    const depth = 1 + Math.floor(rnd() * 3);
    return '/' + Array.from({ length: depth }, () => pick(names)).join('/');
  };
  const existingPath = (s: MasterState): string => {
    const all = [...s.walk('/', s.root)].map(([p]) => p);
    return pick(all);
  };
  const s = new MasterState();
  const h: History = { commands: [], results: [], snapshots: [], final: '', violations: [], leaseOnlyViolations: [], invariantFailures: [], handles: [], setrepFailures: [], setrepWrites: 0, setrepReplacing: 0 };
  let now = 1000;
  let ids = 0;
  for (let i = 0; i < n; i++) {
    now += rnd() < 0.03 ? 900 : Math.floor(rnd() * 40); // now and then a long pause lets leases lapse
    const writes = [...s.writes.values()];
    const anyWriteId = () => (writes.length > 0 && rnd() < 0.9 ? pick(writes).writeId : `w${Math.floor(rnd() * (ids + 2))}`);
    const path = () => (rnd() < 0.5 ? existingPath(s) : randPath());
    // A new name in an existing directory, or anywhere: lets creates succeed often enough.
    const createPath = (): string => {
      if (rnd() < 0.3) return randPath();
      const dirs = [...s.walk('/', s.root)].filter(([, n]) => n.type === 'dir').map(([p]) => p);
      const d = pick(dirs);
      return (d === '/' ? '' : d) + '/' + pick([...names, 'd', 'e']);
    };
    let cmd: Command;
    const r = rnd();
    if (opts.appends && rnd() < 0.06) cmd = { op: 'snapshot', src: path(), dst: createPath(), nowMs: now };
    else if (opts.appends && rnd() < 0.2) cmd = randomAppend(s, rnd, now, writes, path, () => `w${++ids}`);
    else if (opts.selfHealing && rnd() < 0.15) {
      cmd = rnd() < 0.6
        ? setrep(path(), 1 + Math.floor(rnd() * 4), rnd() < 0.6)
        : decom(pick(['cs1', 'cs2', 'cs3']), rnd() < 0.4);
    } else if (r < 0.12) cmd = mkdir(path(), now, rnd() < 0.5);
    else if (r < 0.32) {
      const id = rnd() < 0.1 && writes.length > 0 ? pick(writes).writeId : `w${++ids}`;
      cmd = create(createPath(), id, now, { overwrite: rnd() < 0.5, parents: rnd() < 0.5, replication: 1 + Math.floor(rnd() * 3), leaseMs: 200 + Math.floor(rnd() * 600) });
      // One create in ten makes an empty file in one command (dfs put of an empty input).
      if (rnd() < 0.1) cmd = { ...cmd, empty: true } as Command;
    } else if (r < 0.52) {
      const id = anyWriteId();
      const w = s.writes.get(id);
      const len = w?.chunks.length ?? 0;
      const x = rnd();
      const index = x < 0.7 ? len : x < 0.9 ? Math.floor(rnd() * (len + 1)) : len + 1 + Math.floor(rnd() * 2);
      cmd = allocate(id, index, now);
    } else if (r < 0.68) {
      const id = anyWriteId();
      const w = s.writes.get(id);
      const chunks = (w?.chunks ?? []).map((handle, j, all) => ({ handle, length: j === all.length - 1 ? 1 + Math.floor(rnd() * CHUNK) : CHUNK }));
      const x = rnd();
      if (x < 0.08 && chunks.length > 0) chunks[0]!.length = 0; // invalid
      else if (x < 0.14) chunks.pop(); // wrong count
      const length = chunks.reduce((a, c) => a + c.length, 0) + (rnd() < 0.05 ? 1 : 0);
      cmd = complete(id, chunks, now, length);
    } else if (r < 0.73) cmd = abandon(anyWriteId());
    else if (r < 0.83) cmd = del(path(), now, rnd() < 0.6);
    else if (r < 0.95) cmd = rename(path(), rnd() < 0.3 ? existingPath(s) : createPath(), now);
    else cmd = expire(now + (rnd() < 0.3 ? 1000 : Math.floor(rnd() * 100)));

    const before = snap(s);
    const result = s.apply(cmd);
    const after = snap(s);
    h.commands.push(cmd);
    h.results.push(result);
    h.snapshots.push(after);
    if (!result.ok && after !== before) {
      const what = `#${i} ${describe(cmd)} -> ${result.code}`;
      // Check whether the change is the lease renewal and nothing else.
      let leaseOnly = false;
      if ((cmd.op === 'allocate' || cmd.op === 'complete') && s.writes.has(cmd.writeId)) {
        const a = JSON.parse(after);
        const b = JSON.parse(before);
        for (const w of b.writes) if (w.writeId === cmd.writeId) w.leaseExpiresAtMs = cmd.nowMs + w.leaseMs;
        leaseOnly = JSON.stringify(a) === JSON.stringify(b);
      }
      (leaseOnly ? h.leaseOnlyViolations : h.violations).push(what);
    }
    if (result.ok && cmd.op === 'allocate') h.handles.push((result.value as { handle: number }).handle);
    if (result.ok && cmd.op === 'setReplication') {
      // Every file at or below the path, every write of one (new or overwrite), takes the replication.
      let files = 0;
      for (const [p, node] of s.walk(cmd.path, s.lookup(cmd.path)!)) {
        if (node.type !== 'file') continue;
        files++;
        if (node.replication !== cmd.replication) h.setrepFailures.push(`#${i} ${describe(cmd)}: ${p} has ${node.replication}`);
      }
      for (const w of s.writes.values()) {
        if (!(w.path === cmd.path || w.path.startsWith(cmd.path === '/' ? '/' : cmd.path + '/'))) continue;
        if (w.replacing) h.setrepReplacing++;
        else h.setrepWrites++;
        if (w.replication !== cmd.replication) h.setrepFailures.push(`#${i} ${describe(cmd)}: write ${w.writeId} on ${w.path} has ${w.replication}`);
      }
      if ((result.value as { files: number }).files !== files) h.setrepFailures.push(`#${i} ${describe(cmd)}: answered ${JSON.stringify(result.value)}, ${files} files`);
    }
    const problems = invariantProblems(s);
    if (problems.length > 0) h.invariantFailures.push(`#${i} ${describe(cmd)}: ${problems.join('; ')}`);
  }
  h.final = snap(s);
  return h;
}

/** An append opened on some path, or an open append completed (mostly right, sometimes not). */
function randomAppend(s: MasterState, rnd: () => number, now: number, writes: PendingWrite[], path: () => string, newId: () => string): Command {
  const open = writes.filter((w) => w.append);
  if (open.length === 0 || rnd() < 0.45) return appendOpen(path(), rnd() < 0.05 && writes.length > 0 ? writes[0]!.writeId : newId(), now, 200 + Math.floor(rnd() * 600));
  const w = open[Math.floor(rnd() * open.length)]!;
  const fill = w.append!.fill;
  const chunks = w.chunks.map((handle, j, all) => ({ handle, length: j === all.length - 1 ? 1 + Math.floor(rnd() * CHUNK) : CHUNK }));
  let last = fill && (chunks.length > 0 || rnd() < 0.9) ? { handle: fill.copyTo ?? fill.handle, length: chunks.length > 0 ? CHUNK : fill.length + 1 + Math.floor(rnd() * (CHUNK - fill.length)) } : undefined;
  if (rnd() < 0.08 && last) last = { ...last, length: fill!.length }; // invalid: adds nothing to the last chunk
  const length = w.append!.size + (last ? last.length - fill!.length : 0) + chunks.reduce((a, c) => a + c.length, 0) + (rnd() < 0.05 ? 1 : 0);
  return appendDone(w.writeId, last, chunks, length, now);
}

// The later seeds mix in setReplication and decommission (self-healing commands), then appends.
for (const [seed, selfHealing, appends] of [[1, false, false], [2, false, false], [3, false, false], [42, false, false], [2024, false, false], [5, true, false], [77, true, false], [31337, true, false], [9, false, true], [63, true, true], [404, false, true]] as const) {
  t.test(`random history, seed ${seed}${selfHealing ? ', with setReplication and decommission' : ''}${appends ? ', with appends' : ''}`, async (t) => {
    const N = 400;
    const h = generate(seed, N, { selfHealing, appends });
    if (appends) {
      const appended = h.commands.filter((c, i) => c.op === 'complete' && c.last && h.results[i]!.ok).length;
      t.ok(appended > 0, `some append filled a last chunk and completed (${appended})`);
      t.ok(h.commands.some((c, i) => c.op === 'append' && !h.results[i]!.ok), 'some append open was refused');
      t.ok(h.commands.some((c, i) => c.op === 'snapshot' && h.results[i]!.ok), 'some snapshot was made');
    }

    // The generator must actually exercise things, or the checks below prove little.
    const count = (op: string, okWanted: boolean) => h.commands.filter((c, i) => c.op === op && h.results[i]!.ok === okWanted).length;
    for (const op of ['mkdir', 'create', 'allocate', 'complete', 'delete', 'rename']) {
      t.ok(count(op, true) > 0, `some ${op} succeeded (${count(op, true)})`);
      t.ok(count(op, false) > 0, `some ${op} failed (${count(op, false)})`);
    }
    t.ok(h.results.filter((r) => r.ok && (r.value as { abandoned?: string[] })?.abandoned?.length).length > 0, 'some lease expired');
    if (selfHealing) {
      t.ok(count('setReplication', true) > 0, `some setReplication succeeded (${count('setReplication', true)})`);
      t.ok(count('setReplication', false) > 0, `some setReplication failed (${count('setReplication', false)})`);
      t.ok(h.commands.some((c, i) => c.op === 'setReplication' && h.results[i]!.ok && (h.results[i] as { value: { files: number } }).value.files > 1), 'some setReplication -R changed several files');
      t.ok(h.setrepWrites > 0, `some setReplication reached a new file's pending write (${h.setrepWrites})`);
      t.ok(count('decommission', true) > 0, 'some decommission');
      t.ok(h.commands.some((c, i) => c.op === 'decommission' && !c.cancel && (h.results[i] as { value: { decommissioning: string[] } }).value.decommissioning.length >= 2), 'at times several servers decommissioning at once');
      t.same(h.setrepFailures, [], 'every successful setReplication reached each file and write below its path, and counted the files');
    } else t.equal(h.commands.filter((c) => c.op === 'setReplication' || c.op === 'decommission').length, 0, 'the original seeds are unchanged: no self-healing commands');
    if (!appends) t.equal(h.commands.filter((c) => c.op === 'append').length, 0, 'the original seeds are unchanged: no appends');

    t.same(h.invariantFailures, [], 'structural invariants hold after every command');
    t.same(h.violations, [], 'failing commands leave the state unchanged (beyond the known lease renewal)');
    t.same(h.leaseOnlyViolations, [], 'failing allocate/complete leave the state unchanged');
    t.same(h.handles, [...h.handles].sort((a, b) => a - b), 'allocated handles increase');
    t.equal(new Set(h.handles).size, h.handles.length, 'allocated handles are never reused');

    // Determinism: two fresh states, one fed the commands as they would come out of a log (JSON).
    const s1 = new MasterState();
    const s2 = new MasterState();
    const r1: CommandResult[] = [];
    const r2: CommandResult[] = [];
    for (const cmd of h.commands) {
      r1.push(s1.apply(cmd));
      r2.push(s2.apply(JSON.parse(JSON.stringify(cmd)) as Command));
    }
    t.equal(snap(s1), h.final, 'a fresh state reaches the same snapshot');
    t.equal(snap(s2), h.final, 'so does one fed JSON round-tripped commands');
    t.same(r1, h.results, 'with the same results');
    t.same(r2, h.results, 'with the same results (JSON)');

    // restore(snapshot) at some cut points, then carry on.
    for (const cut of [0, 1, 57, Math.floor(N / 2), 333, N - 1]) {
      let s = new MasterState();
      for (const cmd of h.commands.slice(0, cut)) s.apply(cmd);
      s = MasterState.restore(s.snapshot());
      const rest = h.commands.slice(cut).map((cmd) => s.apply(cmd));
      t.equal(snap(s), h.final, `restored after ${cut} commands: same final snapshot`);
      t.same(rest, h.results.slice(cut), `restored after ${cut} commands: same results`);
    }

    // ...and restore after every single command.
    let s = new MasterState();
    const diverged: number[] = [];
    h.commands.forEach((cmd, i) => {
      s.apply(cmd);
      s = MasterState.restore(s.snapshot());
      if (snap(s) !== h.snapshots[i]) diverged.push(i);
    });
    t.same(diverged, [], 'snapshotting after every command never diverges');
    t.equal(snap(s), h.final);
  });
}

t.test('the same seed gives the same history; different seeds give different ones', async (t) => {
  const a = generate(7, 150);
  const b = generate(7, 150);
  const c = generate(8, 150);
  t.same(a.commands, b.commands);
  t.equal(a.final, b.final);
  t.not(a.final, c.final);
});

// ---- self-healing commands: setReplication and decommission ----

t.test('setReplication', async (t) => {
  t.test('on a file: changes its replication (entryInfo shows it), nothing else', async (t) => {
    const s = new MasterState();
    ok(t, s, mkdir('/d', 1));
    const hs = writeFile(t, s, '/d/f', 'w0', [4, 2], 2);
    writeFile(t, s, '/d/g', 'w1', [1], 3);
    const before = JSON.parse(snap(s));
    t.same(ok(t, s, setrep('/d/f', 5)), { files: 1 });
    t.equal(file(s, '/d/f').replication, 5);
    t.same(s.entryInfo('/d/f', s.lookup('/d/f')!), { path: '/d/f', name: 'f', type: 'file', size: 6, mtimeMs: 2, replication: 5, state: 'complete', chunkCount: 2 });
    t.equal(file(s, '/d/g').replication, 3, 'a sibling is untouched');
    t.same(file(s, '/d/f').chunks, hs, 'chunks untouched');
    const after = JSON.parse(snap(s));
    before.root.c[0][1].c.find(([k]: [string]) => k === 'f')[1].r = 5;
    t.same(after, before, 'the only change is the replication: no mtime, chunk table or handle counter moves');
    t.same(ok(t, s, setrep('/d/f', 5, true)), { files: 1 }, 'recursive on a file is the file itself');
    t.same(ok(t, s, setrep('/d/f', 1)), { files: 1 }, 'lowered too');
    t.equal(file(s, '/d/f').replication, 1);
    t.same(invariantProblems(s), []);
  });

  t.test('on a directory without recursive: IS_A_DIRECTORY and nothing changes', async (t) => {
    const s = new MasterState();
    ok(t, s, mkdir('/d/e', 1, true));
    writeFile(t, s, '/d/f', 'w0', [1], 2);
    writeFile(t, s, '/d/e/g', 'w1', [1], 2);
    fails(t, s, setrep('/d', 2), 'IS_A_DIRECTORY');
    fails(t, s, setrep('/d/e', 2), 'IS_A_DIRECTORY');
    fails(t, s, setrep('/', 2), 'IS_A_DIRECTORY');
    t.equal(file(s, '/d/f').replication, 3);
    t.equal(file(s, '/d/e/g').replication, 3);
  });

  t.test('recursive: every file below, nested, and the count of files', async (t) => {
    const s = new MasterState();
    ok(t, s, mkdir('/d/e/f', 1, true));
    ok(t, s, mkdir('/d/empty', 1));
    ok(t, s, mkdir('/dx', 1)); // shares a prefix with /d: not below it
    writeFile(t, s, '/d/a', 'w0', [1], 2);
    writeFile(t, s, '/d/e/b', 'w1', [1], 2);
    writeFile(t, s, '/d/e/f/c', 'w2', [4, 1], 2);
    writeFile(t, s, '/dx/out', 'w3', [1], 2);
    writeFile(t, s, '/top', 'w4', [1], 2);
    t.same(ok(t, s, setrep('/d', 2, true)), { files: 3 });
    for (const p of ['/d/a', '/d/e/b', '/d/e/f/c']) t.equal(file(s, p).replication, 2, `${p} changed`);
    t.equal(file(s, '/dx/out').replication, 3, '/dx is not below /d');
    t.equal(file(s, '/top').replication, 3);
    t.same(ok(t, s, setrep('/d/empty', 4, true)), { files: 0 }, 'an empty directory: no files, no error');
    t.same(ok(t, s, setrep('/', 4, true)), { files: 5 }, 'the whole namespace');
    for (const [p, n] of s.walk('/', s.root)) if (n.type === 'file') t.equal(n.replication, 4, `${p} at 4`);
    t.same(invariantProblems(s), []);
  });

  t.test('a missing path: NOT_FOUND, also below a file, and nothing changes', async (t) => {
    const s = new MasterState();
    writeFile(t, s, '/f', 'w0', [1], 2);
    fails(t, s, setrep('/nope', 2), 'NOT_FOUND');
    fails(t, s, setrep('/nope', 2, true), 'NOT_FOUND');
    fails(t, s, setrep('/a/b/c', 2, true), 'NOT_FOUND');
    fails(t, s, setrep('/f/x', 2), 'NOT_FOUND');
  });

  t.test('a file being written: its pending write takes the replication too', async (t) => {
    const s = new MasterState();
    ok(t, s, mkdir('/d', 1));
    ok(t, s, create('/d/w', 'w1', 10, { replication: 3 }));
    ok(t, s, allocate('w1', 0, 10));
    t.same(ok(t, s, setrep('/d/w', 2)), { files: 1 }, 'a file being written counts');
    t.equal(file(s, '/d/w').replication, 2, 'its writing entry');
    t.equal(s.writes.get('w1')!.replication, 2, 'its pending write, so later allocations follow it');
    t.same(invariantProblems(s), []);
    // Through a recursive change of its directory too.
    ok(t, s, create('/d/v', 'w2', 11, { replication: 1 }));
    t.same(ok(t, s, setrep('/d', 4, true)), { files: 2 });
    t.equal(s.writes.get('w1')!.replication, 4);
    t.equal(s.writes.get('w2')!.replication, 4);
    ok(t, s, allocate('w1', 1, 12));
    const info = ok(t, s, complete('w1', s.writes.get('w1')!.chunks.map((handle, i) => ({ handle, length: i === 0 ? CHUNK : 1 })), 13));
    t.match(info, { replication: 4, state: 'complete' }, 'the completed file has the replication set during the write');
    t.same(invariantProblems(s), []);
  });

  t.test('an overwrite in progress under the path takes it too, and keeps it when it completes', async (t) => {
    const s = new MasterState();
    ok(t, s, mkdir('/d', 1));
    writeFile(t, s, '/d/f', 'w0', [1], 2);
    writeFile(t, s, '/d/fx', 'w1', [1], 2);
    ok(t, s, create('/d/f', 'w2', 10, { overwrite: true, replication: 3 }));
    ok(t, s, create('/d/fx', 'w3', 10, { overwrite: true, replication: 3 }));
    t.same(ok(t, s, setrep('/d/f', 1)), { files: 1 }, 'the replaced file counts once');
    t.equal(file(s, '/d/f').replication, 1, 'the file still readable');
    t.equal(s.writes.get('w2')!.replication, 1, 'the overwrite that will replace it');
    t.equal(s.writes.get('w3')!.replication, 3, '/d/fx only shares a prefix: its overwrite is untouched');
    const h = ok<{ handle: number }>(t, s, allocate('w2', 0, 11)).handle;
    t.match(ok(t, s, complete('w2', [{ handle: h, length: 2 }], 12)), { replication: 1 }, 'the new file keeps the replication asked for');
    // Recursive, from above.
    t.same(ok(t, s, setrep('/', 5, true)), { files: 2 });
    t.equal(s.writes.get('w3')!.replication, 5);
    t.same(invariantProblems(s), []);
  });

  t.test('the same commands through snapshot/restore give the same state', async (t) => {
    const s = new MasterState();
    ok(t, s, mkdir('/d', 1));
    writeFile(t, s, '/d/f', 'w0', [1], 2);
    ok(t, s, create('/d/g', 'w1', 3));
    ok(t, s, create('/d/f', 'w2', 3, { overwrite: true }));
    ok(t, s, setrep('/d', 2, true));
    const r = MasterState.restore(s.snapshot());
    t.equal(snap(r), snap(s));
    t.equal(r.writes.get('w1')!.replication, 2);
    t.equal(r.writes.get('w2')!.replication, 2);
    t.same(r.apply(setrep('/d/g', 1)), s.apply(setrep('/d/g', 1)));
    t.equal(snap(r), snap(s));
  });
});

t.test('decommission', async (t) => {
  t.test('adds and removes server ids; answers the sorted set', async (t) => {
    const s = new MasterState();
    t.same([...s.decommissioning], [], 'nobody at first');
    t.same(ok(t, s, decom('cs3')), { decommissioning: ['cs3'] });
    t.same(ok(t, s, decom('cs1')), { decommissioning: ['cs1', 'cs3'] });
    t.same(ok(t, s, decom('cs3')), { decommissioning: ['cs1', 'cs3'] }, 'again: idempotent');
    t.ok(s.decommissioning.has('cs1') && s.decommissioning.has('cs3'));
    t.same(ok(t, s, decom('cs3', true)), { decommissioning: ['cs1'] });
    t.notOk(s.decommissioning.has('cs3'));
    t.same(ok(t, s, decom('cs1', true)), { decommissioning: [] });
    t.equal(s.decommissioning.size, 0);
  });

  t.test('cancelling an id that is not decommissioning is harmless', async (t) => {
    const s = new MasterState();
    ok(t, s, decom('cs1'));
    writeFile(t, s, '/f', 'w0', [1], 2);
    const before = snap(s);
    t.same(ok(t, s, decom('nobody', true)), { decommissioning: ['cs1'] });
    t.equal(snap(s), before, 'nothing changed');
    const fresh = new MasterState();
    t.same(ok(t, fresh, decom('cs9', true)), { decommissioning: [] });
    t.equal(snap(fresh), snap(new MasterState()), 'a fresh state stays as fresh');
  });

  t.test('does not touch the namespace, chunk table or writes', async (t) => {
    const s = new MasterState();
    writeFile(t, s, '/f', 'w0', [4, 1], 2);
    ok(t, s, create('/g', 'w1', 3));
    const before = JSON.parse(snap(s));
    ok(t, s, decom('cs2'));
    const after = JSON.parse(snap(s));
    t.same(after.decommissioning, ['cs2']);
    delete after.decommissioning;
    delete before.decommissioning;
    t.same(after, before);
  });

  t.test('survives snapshot() and restore()', async (t) => {
    const s = new MasterState();
    ok(t, s, decom('cs2'));
    ok(t, s, decom('cs1'));
    ok(t, s, decom('cs3'));
    ok(t, s, decom('cs1', true));
    writeFile(t, s, '/f', 'w0', [1], 2);
    const bytes = s.snapshot();
    const r = MasterState.restore(bytes);
    t.same([...r.decommissioning].sort(), ['cs2', 'cs3']);
    t.equal(r.snapshot().toString(), bytes.toString(), 'round trip is byte-identical');
    // ...and the restored state goes on the same way.
    for (const cmd of [decom('cs1'), decom('cs2', true), decom('cs4')]) t.same(r.apply(cmd), s.apply(cmd), `same answer to ${describe(cmd)}`);
    t.equal(snap(r), snap(s));
    t.same([...r.decommissioning].sort(), ['cs1', 'cs3', 'cs4']);
  });

  t.test('a snapshot from before decommissioning existed restores with an empty set', async (t) => {
    const s = new MasterState();
    ok(t, s, mkdir('/d', 1));
    const hs = writeFile(t, s, '/d/f', 'w0', [4, 1], 2);
    ok(t, s, create('/d/g', 'w1', 3));
    ok(t, s, decom('cs1')); // would be in a new snapshot; the old format has no such field
    const raw = JSON.parse(snap(s));
    t.same(raw.decommissioning, ['cs1'], 'the new format carries it');
    delete raw.decommissioning;
    const r = MasterState.restore(Buffer.from(JSON.stringify(raw)));
    t.equal(r.decommissioning.size, 0, 'no server decommissioning');
    t.same(file(r, '/d/f').chunks, hs, 'everything else restored');
    t.ok(r.writes.has('w1'));
    t.same(JSON.parse(snap(r)).decommissioning, [], 'and its next snapshot has the field, empty');
    ok(t, r, decom('cs2'));
    t.same([...r.decommissioning], ['cs2'], 'usable after restore');
    t.same(invariantProblems(r), []);
  });
});

t.test('rename with into (dst typed with a trailing slash) needs an existing directory', async (t) => {
  const s = new MasterState();
  ok(t, s, mkdir('/d', 1));
  writeFile(t, s, '/f', 'w0', [1], 1);
  const into = (src: string, dst: string): Command => ({ op: 'rename', src, dst, nowMs: 10, into: true });
  fails(t, s, into('/f', '/nodir'), 'NOT_FOUND');
  fails(t, s, into('/f', '/f'), 'NOT_A_DIRECTORY');
  fails(t, s, into('/f', '/d/missing'), 'NOT_FOUND');
  t.match(ok(t, s, into('/f', '/d')), { path: '/d/f', name: 'f', type: 'file' }, 'into the directory, keeping its name');
  t.equal(s.lookup('/f'), undefined);
});

t.test('initNamespace names the namespace once; the name survives a snapshot', async (t) => {
  const s = new MasterState();
  t.equal(s.namespaceId, undefined);
  t.same(ok(t, s, { op: 'initNamespace', namespaceId: '0123456789abcdef' }), { namespaceId: '0123456789abcdef' });
  t.same(ok(t, s, { op: 'initNamespace', namespaceId: 'fedcba9876543210' }), { namespaceId: '0123456789abcdef' }, 'a second proposal gets the first name back');
  fails(t, new MasterState(), { op: 'initNamespace', namespaceId: 'not-hex' }, 'INVALID_ARGUMENT');
  t.equal(MasterState.restore(s.snapshot()).namespaceId, '0123456789abcdef', 'kept in snapshots');
  t.equal(MasterState.restore(new MasterState().snapshot()).namespaceId, undefined, 'an older snapshot has none');
});

// ---- append: a lease on a complete file, the last chunk filled at a new version, new chunks after ----

t.test('append fills the last chunk at a new version, adds chunks, and shows nothing until complete', async (t) => {
  const s = new MasterState();
  const [h1, h2] = writeFile(t, s, '/f', 'w1', [CHUNK, 2], 10);
  const opened = ok<{ writeId: string; size: number; fill?: { handle: number; version: number; length: number; newVersion: number } }>(t, s, appendOpen('/f', 'a1', 20));
  t.same(opened.fill, { handle: h2, version: 1, length: 2, newVersion: 2 }, 'the last chunk has room: it is filled first, at a version never issued before');
  t.equal(opened.size, CHUNK + 2);
  t.equal(s.nextVersion, 3);
  const h3 = ok<{ handle: number }>(t, s, allocate('a1', 0, 21)).handle;
  t.equal(file(s, '/f').size, CHUNK + 2, 'readers see the old length while the append runs');
  t.equal(s.chunks.versionOf(h2), 1, 'and the old version of the last chunk');
  fails(t, s, appendOpen('/f', 'a2', 22), 'FILE_BUSY');
  fails(t, s, create('/f', 'w9', 22, { overwrite: true }), 'FILE_BUSY');
  fails(t, s, appendDone('a1', undefined, [{ handle: h3, length: 1 }], CHUNK + 3, 23), 'INVALID_ARGUMENT'); // the last chunk has room
  fails(t, s, appendDone('a1', { handle: h2, length: 3 }, [{ handle: h3, length: 1 }], CHUNK + 4, 23), 'INVALID_ARGUMENT'); // not filled to the chunk size
  fails(t, s, appendDone('a1', { handle: h1, length: CHUNK }, [{ handle: h3, length: 1 }], 2 * CHUNK + 1, 23), 'INVALID_ARGUMENT'); // not the last chunk
  fails(t, s, appendDone('a1', { handle: h2, length: CHUNK }, [{ handle: h3, length: 1 }], 2 * CHUNK + 2, 23), 'INVALID_ARGUMENT'); // wrong total
  const info = ok<{ size: number; chunkCount: number }>(t, s, appendDone('a1', { handle: h2, length: CHUNK }, [{ handle: h3, length: 1 }], 2 * CHUNK + 1, 24));
  t.match(info, { size: 2 * CHUNK + 1, chunkCount: 3 });
  t.same(file(s, '/f').chunks, [h1, h2, h3]);
  t.match(s.chunks.get(h2), { version: 2, length: CHUNK, checksum: `ck${h2}v` }, 'the filled chunk takes its new version, length and checksum');
  t.equal(s.writes.size, 0);
  t.same(invariantProblems(s), []);

  // The last chunk is full now (well, h3 is not): a second append fills h3 at the next version.
  const again = ok<{ fill?: { handle: number; newVersion: number } }>(t, s, appendOpen('/f', 'a3', 30));
  t.match(again.fill, { handle: h3, newVersion: 3 });
  ok(t, s, abandon('a3'));
  t.equal(file(s, '/f').size, 2 * CHUNK + 1, 'an abandoned append leaves the file as it was');
  t.equal(s.chunks.versionOf(h3), 1);
  const third = ok<{ fill?: { newVersion: number } }>(t, s, appendOpen('/f', 'a4', 40));
  t.equal(third.fill?.newVersion, 4, 'a version reserved by a failed append is never issued again');
  const restored = MasterState.restore(s.snapshot());
  t.equal(snap(restored), snap(s), 'the open append and nextVersion survive a snapshot');
  t.equal(restored.nextVersion, 5);
});

t.test('append: bad input is refused and changes nothing; leases; a file removed meanwhile', async (t) => {
  const s = new MasterState();
  ok(t, s, mkdir('/d', 1));
  fails(t, s, appendOpen('/missing', 'a1', 2), 'NOT_FOUND');
  fails(t, s, appendOpen('/d', 'a1', 2), 'IS_A_DIRECTORY');
  ok(t, s, create('/w', 'w1', 3));
  fails(t, s, appendOpen('/w', 'a1', 4), 'FILE_BUSY');
  const [h] = writeFile(t, s, '/full', 'w2', [CHUNK], 5);
  const opened = ok<{ fill?: unknown }>(t, s, appendOpen('/full', 'a2', 6));
  t.equal(opened.fill, undefined, 'a full last chunk is not filled: new chunks follow');
  t.equal(s.nextVersion, 2, 'and no version is reserved');
  fails(t, s, appendOpen('/full', 'a3', 7), 'FILE_BUSY');
  // The holder's lease runs out: the next appender takes the file over.
  ok(t, s, appendOpen('/full', 'a3', 6 + LEASE + 1));
  t.notOk(s.writes.has('a2'), 'the expired append was dropped');
  const n = ok<{ handle: number }>(t, s, allocate('a3', 0, 2000)).handle;
  ok(t, s, del('/full', 2001));
  t.notOk(s.writes.has('a3'), 'deleting the file ends its append');
  t.notOk(s.chunks.has(n), 'and frees its new chunks');
  t.notOk(s.chunks.has(h));
  // A file replaced by another of the same shape while the append runs: its complete is refused.
  const [h2] = writeFile(t, s, '/e', 'w3', [1], 3000);
  const a4 = ok<{ fill: { handle: number } }>(t, s, appendOpen('/e', 'a4', 3001));
  t.equal(a4.fill.handle, h2);
  const [h3] = writeFile(t, s, '/e2', 'w4', [1], 3002);
  fails(t, s, rename('/e', '/e3', 3003), 'FILE_BUSY');
  fails(t, s, appendDone('a4', { handle: h3!, length: 2 }, [], 2, 3004), 'INVALID_ARGUMENT');
  ok(t, s, appendOpen('/e2', 'a5', 3005));
  ok(t, s, expire(3005 + LEASE));
  t.equal(s.writes.size, 0, 'expired appends are dropped');
  t.equal(file(s, '/e2').size, 1, 'and leave their files as they were');
  t.same(invariantProblems(s), []);
});

// ---- snapshots: copies that share chunks, counted; copy-on-write at the first append ----

t.test('snapshot shares chunks; deleting or overwriting either side frees only what nobody shares', async (t) => {
  const s = new MasterState();
  ok(t, s, mkdir('/t/sub', 1, true));
  const [a1, a2] = writeFile(t, s, '/t/a', 'w1', [CHUNK, 2], 2);
  const [b1] = writeFile(t, s, '/t/sub/b', 'w2', [3], 3);
  fails(t, s, { op: 'snapshot', src: '/nope', dst: '/s', nowMs: 4 }, 'NOT_FOUND');
  fails(t, s, { op: 'snapshot', src: '/t', dst: '/t/sub/s', nowMs: 4 }, 'INVALID_ARGUMENT');
  fails(t, s, { op: 'snapshot', src: '/t', dst: '/t/a', nowMs: 4 }, 'EXISTS');
  fails(t, s, { op: 'snapshot', src: '/t', dst: '/x/s', nowMs: 4 }, 'NOT_FOUND');
  ok(t, s, create('/t/open', 'w3', 4));
  fails(t, s, { op: 'snapshot', src: '/t', dst: '/s', nowMs: 5 }, 'FILE_BUSY');
  ok(t, s, abandon('w3'));
  const info = ok<{ type: string }>(t, s, { op: 'snapshot', src: '/t', dst: '/s', nowMs: 6 });
  t.equal(info.type, 'dir');
  t.same(file(s, '/s/a').chunks, [a1, a2], 'the copy has the same chunks');
  t.equal(file(s, '/s/sub/b').size, 3);
  t.same([a1, a2, b1].map((h) => s.chunks.refsOf(h)), [2, 2, 2], 'each shared twice');
  ok(t, s, { op: 'snapshot', src: '/t/a', dst: '/a2', nowMs: 7 });
  t.equal(s.chunks.refsOf(a1), 3, 'a file snapshotted again: three references');
  t.same(invariantProblems(s), []);
  const restored = MasterState.restore(s.snapshot());
  t.same([a1, a2, b1].map((h) => restored.chunks.refsOf(h)), [3, 3, 2], 'a restored state counts the references again');
  t.equal(snap(restored), snap(s));

  ok(t, s, del('/t', 8, true));
  t.same([a1, a2, b1].map((h) => s.chunks.refsOf(h)), [2, 2, 1], 'deleting the original frees nothing the copies hold');
  writeFile(t, s, '/a2', 'w4', [1], 9, { overwrite: true });
  t.same([a1, a2].map((h) => s.chunks.refsOf(h)), [1, 1], 'an overwrite lets go of its shares');
  ok(t, s, del('/s', 10, true));
  t.same([a1, a2, b1].map((h) => s.chunks.has(h)), [false, false, false], 'the last reference gone, the chunks go');
  t.same(invariantProblems(s), []);
});

t.test('the first append to a shared last chunk fills a copy under a new handle; the snapshot keeps the old one', async (t) => {
  const s = new MasterState();
  const [h1, h2] = writeFile(t, s, '/f', 'w1', [CHUNK, 1], 1);
  ok(t, s, { op: 'snapshot', src: '/f', dst: '/snap', nowMs: 2 });
  const opened = ok<{ fill: { handle: number; newVersion: number; copyTo?: number } }>(t, s, appendOpen('/f', 'a1', 3));
  t.equal(opened.fill.handle, h2);
  t.ok(opened.fill.copyTo !== undefined && opened.fill.copyTo > h2!, `the shared chunk is copied to a new handle (${opened.fill.copyTo})`);
  const copy = opened.fill.copyTo!;
  t.match(s.chunks.get(copy), { version: opened.fill.newVersion, length: 0 }, 'held in the table while the append runs');
  t.same(invariantProblems(s), []);
  t.equal(snap(MasterState.restore(s.snapshot())), snap(s), 'and across a snapshot of the state');
  fails(t, s, appendDone('a1', { handle: h2!, length: 2 }, [], CHUNK + 2, 4), 'INVALID_ARGUMENT'); // the shared chunk itself
  ok(t, s, appendDone('a1', { handle: copy, length: 3 }, [], CHUNK + 3, 4));
  t.same(file(s, '/f').chunks, [h1, copy], 'the file now ends in the copy');
  t.same(file(s, '/snap').chunks, [h1, h2], 'the snapshot keeps the original');
  t.match(s.chunks.get(h2!), { version: 1, length: 1 }, 'which is unchanged');
  t.same([h1, h2, copy].map((h) => s.chunks.refsOf(h)), [2, 1, 1]);
  // An abandoned copy-on-write append frees its copy.
  ok(t, s, { op: 'snapshot', src: '/f', dst: '/snap2', nowMs: 5 });
  const again = ok<{ fill: { copyTo?: number } }>(t, s, appendOpen('/f', 'a2', 6));
  ok(t, s, abandon('a2'));
  t.notOk(s.chunks.has(again.fill.copyTo!), 'an abandoned append frees its copy');
  t.same(invariantProblems(s), []);
});

t.test('quotas: an append and a snapshot past a space or name quota are refused and change nothing', async (t) => {
  const s = new MasterState();
  ok(t, s, mkdir('/q', 1));
  writeFile(t, s, '/q/f', 'w1', [2], 2); // 2 bytes × 3 replicas = 6
  ok(t, s, { op: 'setQuota', path: '/q', bytes: 12, files: 3 });
  fails(t, s, { op: 'append', path: '/q/f', writeId: 'a1', leaseMs: LEASE, nowMs: 3, expectedBytes: 3 }, 'QUOTA_EXCEEDED'); // 6 + 9 > 12
  const opened = ok<{ fill: { handle: number } }>(t, s, { op: 'append', path: '/q/f', writeId: 'a2', leaseMs: LEASE, nowMs: 3, expectedBytes: 1 });
  const n = ok<{ handle: number }>(t, s, allocate('a2', 0, 4)).handle;
  fails(t, s, appendDone('a2', { handle: opened.fill.handle, length: CHUNK }, [{ handle: n, length: 1 }], CHUNK + 1, 4), 'QUOTA_EXCEEDED'); // 5 × 3 > 12
  ok(t, s, abandon('a2'));
  const again = ok<{ fill: { handle: number } }>(t, s, { op: 'append', path: '/q/f', writeId: 'a3', leaseMs: LEASE, nowMs: 5, expectedBytes: 1 });
  ok(t, s, appendDone('a3', { handle: again.fill.handle, length: 3 }, [], 3, 5)); // 9
  fails(t, s, { op: 'snapshot', src: '/q/f', dst: '/q/g', nowMs: 5 }, 'QUOTA_EXCEEDED'); // 9 + 9 > 12
  ok(t, s, { op: 'snapshot', src: '/q/f', dst: '/g', nowMs: 5 });
  t.same(invariantProblems(s), []);
});
