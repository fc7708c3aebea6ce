// Appends in the chunk store (chunkserver/store/append.ts, redo.ts): the new version is the kept
// bytes and the new ones, committed at once (a redo record applied in place at the replica's end,
// else a new file renamed over the old); until then (and after an abort, or a crash, which
// reopening stands for) the old replica is whole and served, and a committed append is applied
// again at start. Stale and late appends are refused; reads beside appends see whole versions.
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { ChunkStore } from '../../chunkserver/store/index.js';
import { REDO_SUFFIX } from '../../chunkserver/store/redo.js';
import { initChecksums } from '../../common/checksum.js';
import type { Logger } from '../../common/log.js';
import { randomBytesSeeded } from '../helpers/cluster.js';

await initChecksums();
const MAX = 1024 * 1024;
const noop = (): void => undefined;
const log = { warn: noop, info: noop, error: noop, debug: noop, trace: noop, fatal: noop } as unknown as Logger;

/** A fresh data folder, removed when the test ends. */
function tempDir(t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'dfs-append-store-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

async function store(dir: string): Promise<ChunkStore> {
  const s = new ChunkStore(dir, log);
  await s.open();
  return s;
}

async function read(s: ChunkStore, handle: number, offset: number, length: number): Promise<Buffer> {
  const parts: Buffer[] = [];
  await s.readRange(handle, offset, length, async (b) => void parts.push(Buffer.from(b)));
  return Buffer.concat(parts);
}

async function write(s: ChunkStore, handle: number, bytes: Buffer): Promise<void> {
  const w = await s.createWriter(handle, 1, MAX);
  await w.write(bytes);
  await w.commit(await w.finish());
}

t.test('an append makes the new version from the kept bytes and the new ones; the old one serves until it is committed', async (t) => {
  const dir = tempDir(t);
  const s = await store(dir);
  const old = randomBytesSeeded(100_000, 1); // not a whole number of 64 KiB blocks: the last block is rewritten
  await write(s, 7, old);
  const more = randomBytesSeeded(70_000, 2);
  const w = await s.createAppendWriter({ handle: 7, baseVersion: 1, offset: old.length, newVersion: 5 }, MAX);
  await w.write(more);
  t.match(s.get(7), { version: 1, length: old.length }, 'still the old version while the append is written');
  t.ok((await read(s, 7, 0, old.length)).equals(old));
  const stored = await w.finish();
  await w.commit(stored);
  t.match(s.get(7), { version: 5, length: old.length + more.length });
  t.ok((await read(s, 7, 0, old.length + more.length)).equals(Buffer.concat([old, more])), 'the new version reads back byte for byte');
  t.same(s.takeChanges().added.find((c) => c.handle === 7), { handle: 7, version: 5, length: old.length + more.length }, 'and is reported to the master');

  // Reopening (a restart) verifies it from its own trailer.
  const again = await store(dir);
  t.match(again.get(7), { version: 5, length: old.length + more.length });

  // An abort (or a crash: tmp/ is emptied at start) leaves the replica as it was.
  const w2 = await again.createAppendWriter({ handle: 7, baseVersion: 5, offset: old.length + more.length, newVersion: 6 }, MAX);
  await w2.write(randomBytesSeeded(1000, 3));
  await w2.abort();
  t.match(again.get(7), { version: 5 });
  t.same(readdirSync(join(dir, 'tmp')), [], 'nothing left in tmp/');
  t.ok((await read(again, 7, 0, old.length + more.length)).equals(Buffer.concat([old, more])));
});

t.test('stale, late and impossible appends are refused and change nothing', async (t) => {
  const dir = tempDir(t);
  const s = await store(dir);
  await write(s, 3, randomBytesSeeded(5000, 4));
  await t.rejects(s.createAppendWriter({ handle: 9, baseVersion: 1, offset: 0, newVersion: 2 }, MAX), { code: 'CHUNK_NOT_FOUND' });
  await t.rejects(s.createAppendWriter({ handle: 3, baseVersion: 4, offset: 5000, newVersion: 5 }, MAX), { code: 'STALE_VERSION' }, 'this replica missed an append');
  await t.rejects(s.createAppendWriter({ handle: 3, baseVersion: 1, offset: 6000, newVersion: 2 }, MAX), { code: 'INVALID_ARGUMENT' }, 'an offset past the bytes held');
  // Two appends racing on one replica: the second to publish finds it changed, and fails.
  const a = await s.createAppendWriter({ handle: 3, baseVersion: 1, offset: 5000, newVersion: 2 }, MAX);
  const b = await s.createAppendWriter({ handle: 3, baseVersion: 1, offset: 5000, newVersion: 3 }, MAX);
  await a.write(Buffer.from('a'));
  await b.write(Buffer.from('b'));
  await a.commit(await a.finish());
  await t.rejects(b.finish().then((c) => b.commit(c)), { code: 'STALE_VERSION' });
  await b.abort();
  t.match(s.get(3), { version: 2, length: 5001 });
  await t.rejects(s.createAppendWriter({ handle: 3, baseVersion: 1, offset: 5000, newVersion: 1 + 0 }, MAX), { code: 'STALE_VERSION' }, 'an append older than the version held');
  // The same append again (a retry after a later hop failed) rebuilds from the kept bytes.
  const retry = await s.createAppendWriter({ handle: 3, baseVersion: 1, offset: 5000, newVersion: 2 }, MAX);
  await retry.write(Buffer.from('a'));
  await retry.commit(await retry.finish());
  t.match(s.get(3), { version: 2, length: 5001 });
});

t.test('copy-on-write: an append with `from` makes a new chunk from a stored one, which stays as it is', async (t) => {
  const dir = tempDir(t);
  const s = await store(dir);
  const old = randomBytesSeeded(70_000, 5);
  await write(s, 4, old);
  const more = randomBytesSeeded(9000, 6);
  const w = await s.createAppendWriter({ handle: 11, from: 4, baseVersion: 1, offset: old.length, newVersion: 3 }, MAX);
  await w.write(more);
  await w.commit(await w.finish());
  t.match(s.get(4), { version: 1, length: old.length }, 'the shared chunk is unchanged');
  t.match(s.get(11), { version: 3, length: old.length + more.length });
  t.ok((await read(s, 11, 0, old.length + more.length)).equals(Buffer.concat([old, more])));
  t.ok((await read(s, 4, 0, old.length)).equals(old));
  // The same copy again (a retry after a later hop failed) replaces it; another chunk in the way is refused.
  const again = await s.createAppendWriter({ handle: 11, from: 4, baseVersion: 1, offset: old.length, newVersion: 3 }, MAX);
  await again.write(more);
  await again.commit(await again.finish());
  t.match(s.get(11), { version: 3, length: old.length + more.length });
  await t.rejects(s.createAppendWriter({ handle: 11, from: 4, baseVersion: 1, offset: old.length, newVersion: 9 }, MAX), { code: 'CHUNK_EXISTS' });
});

/** An append at the replica's end through the store, as the write route drives it. */
async function append(s: ChunkStore, handle: number, baseVersion: number, offset: number, newVersion: number, bytes: Buffer): Promise<void> {
  const w = await s.createAppendWriter({ handle, baseVersion, offset, newVersion }, MAX);
  await w.write(bytes);
  await w.commit(await w.finish());
}

t.test('an append at the replica\'s end is written in place: the same file, its tail rewritten, no redo record left', async (t) => {
  const dir = tempDir(t);
  const s = await store(dir);
  const parts = [randomBytesSeeded(100_000, 10)];
  await write(s, 5, parts[0]!);
  const inode = statSync(join(dir, 'chunks', '5.chunk')).ino;
  // Ends inside a block, on a block boundary, and an append of a whole block and more.
  for (const [i, n] of [30_000, 1072, 65_536 + 17, 1].entries()) {
    parts.push(randomBytesSeeded(n, 20 + i));
    await append(s, 5, i + 1, Buffer.concat(parts.slice(0, -1)).length, i + 2, parts.at(-1)!);
  }
  const all = Buffer.concat(parts);
  t.match(s.get(5), { version: 5, length: all.length });
  t.ok((await read(s, 5, 0, all.length)).equals(all), 'reads back byte for byte');
  t.equal(statSync(join(dir, 'chunks', '5.chunk')).ino, inode, 'the same file: written in place, not copied');
  t.same(readdirSync(join(dir, 'chunks')), ['5.chunk'], 'no redo record left');
  t.same(readdirSync(join(dir, 'tmp')), [], 'nothing left in tmp/');
  const again = await store(dir);
  t.match(again.get(5), { version: 5, length: all.length, checksum: s.get(5)!.checksum }, 'a restart verifies it from its trailer');
});

/** Files of one replica before and after an append in place, and where its tail starts. */
async function beforeAndAfter(dir: string): Promise<{ s: ChunkStore; before: Buffer; after: Buffer; at: number; old: Buffer; more: Buffer }> {
  const s = await store(dir);
  const old = randomBytesSeeded(150_000, 31);
  await write(s, 8, old);
  const before = readFileSync(join(dir, 'chunks', '8.chunk'));
  const more = randomBytesSeeded(40_000, 32);
  await append(s, 8, 1, old.length, 2, more);
  const after = readFileSync(join(dir, 'chunks', '8.chunk'));
  return { s, before, after, at: old.length - (old.length % (64 * 1024)), old, more };
}

t.test('a crash after an append in place committed: at start its redo record is applied again, whatever state the file was left in', async (t) => {
  for (const [name, torn] of [['not yet applied', 0], ['half applied', 9000], ['applied but not cut', -1]] as const) {
    const dir = tempDir(t);
    const { before, after, at, old, more } = await beforeAndAfter(dir);
    // The record is the new file's tail from `at`; the chunk file is as the crash left it.
    writeFileSync(join(dir, 'chunks', `8${REDO_SUFFIX}`), after.subarray(at));
    const left = torn === 0 ? before : torn > 0 ? Buffer.concat([before.subarray(0, at + torn), Buffer.from(after.subarray(at + torn, at + torn + 5000)), before.subarray(at + torn + 5000)]) : Buffer.concat([after, Buffer.alloc(3000, 7)]);
    writeFileSync(join(dir, 'chunks', '8.chunk'), left);
    const s = await store(dir);
    t.match(s.get(8), { version: 2, length: old.length + more.length }, `${name}: the new version is served`);
    t.ok((await read(s, 8, 0, old.length + more.length)).equals(Buffer.concat([old, more])), `${name}: byte for byte`);
    t.same(readdirSync(join(dir, 'chunks')), ['8.chunk'], `${name}: the record is gone`);
    t.same(readdirSync(join(dir, 'corrupt')), [], `${name}: nothing quarantined`);
  }
});

t.test('a redo record that does not belong is dropped at start, the chunk file left to its own check', async (t) => {
  // Stale: the chunk holds a later version (appended again after the record was applied).
  let dir = tempDir(t);
  let r = await beforeAndAfter(dir);
  await append(r.s, 8, 2, r.old.length + r.more.length, 3, Buffer.from('later'));
  writeFileSync(join(dir, 'chunks', `8${REDO_SUFFIX}`), r.after.subarray(r.at));
  let s = await store(dir);
  t.match(s.get(8), { version: 3, length: r.old.length + r.more.length + 5 }, 'stale: the later version stays');
  t.same(readdirSync(join(dir, 'chunks')), ['8.chunk']);

  // Damaged: a flipped bit in the record's tail. The untouched old file serves as it was.
  dir = tempDir(t);
  r = await beforeAndAfter(dir);
  const bad = Buffer.from(r.after.subarray(r.at));
  bad[100]! ^= 1;
  writeFileSync(join(dir, 'chunks', `8${REDO_SUFFIX}`), bad);
  writeFileSync(join(dir, 'chunks', '8.chunk'), r.before);
  s = await store(dir);
  t.match(s.get(8), { version: 1, length: r.old.length }, 'damaged: not applied; the old version serves');
  t.same(readdirSync(join(dir, 'chunks')), ['8.chunk'], 'and the record is gone');

  // Orphan: the chunk was deleted.
  rmSync(join(dir, 'chunks', '8.chunk'));
  writeFileSync(join(dir, 'chunks', `8${REDO_SUFFIX}`), r.after.subarray(r.at));
  s = await store(dir);
  t.equal(s.get(8), undefined);
  t.same(readdirSync(join(dir, 'chunks')), [], 'orphan: dropped, nothing made');
});

t.test('reads while appends are written in place never fail their checksums and see a whole version', async (t) => {
  const dir = tempDir(t);
  const s = await store(dir);
  const parts = [randomBytesSeeded(70_000, 40)];
  await write(s, 6, parts[0]!);
  let appending = true;
  const appends = (async () => {
    for (let v = 2; v <= 40; v++) {
      const size = Buffer.concat(parts).length;
      parts.push(randomBytesSeeded(500 + v * 97, 40 + v));
      await append(s, 6, v - 1, size, v, parts.at(-1)!);
    }
    appending = false;
  })();
  let reads = 0;
  while (appending) {
    const c = s.get(6)!;
    const got = await read(s, 6, 0, c.length); // the version seen when the read started, or a later one's first bytes
    t.ok(got.equals(Buffer.concat(parts).subarray(0, c.length)), `read ${reads}: ${c.length} bytes at version ${c.version} or later`, { diagnostic: false });
    reads++;
  }
  await appends;
  t.ok(reads > 5, `${reads} reads beside 39 appends`);
});

t.test('an append in place that fails while applied (the disk fills up midway) is undone: the acknowledged version serves, nothing is left', async (t) => {
  const dir = tempDir(t);
  const failing = new ChunkStore(dir, log, {
    // Writes the first 5,000 bytes of the record over the replica (its trailer torn), then the disk is full.
    applyRedo: async (redo, chunkPath, at) => {
      const fh = await open(chunkPath, 'r+');
      await fh.write(readFileSync(redo).subarray(0, 5000), 0, 5000, at);
      await fh.close();
      throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
    },
  });
  await failing.open();
  const old = randomBytesSeeded(150_000, 50);
  await write(failing, 9, old);
  const before = failing.get(9)!;
  await t.rejects(append(failing, 9, 1, old.length, 2, randomBytesSeeded(90_000, 51)), { code: 'ENOSPC' }, 'the append fails');
  t.equal(failing.get(9), before, 'the acknowledged version is still the one served');
  t.ok((await read(failing, 9, 0, old.length)).equals(old), 'and reads back byte for byte');
  t.same(readdirSync(join(dir, 'chunks')), ['9.chunk'], 'no redo record left');
  t.same(readdirSync(join(dir, 'corrupt')), [], 'nothing quarantined');
  const again = await store(dir);
  t.match(again.get(9), { version: 1, length: old.length, checksum: before.checksum }, 'a restart finds the old version whole');
  await append(again, 9, 1, old.length, 2, Buffer.from('then it fits'));
  t.ok((await read(again, 9, 0, old.length + 12)).equals(Buffer.concat([old, Buffer.from('then it fits')])), 'a later append goes in');
});

t.test('a redo record that cannot be applied at start is kept aside with its replica, not dropped', async (t) => {
  const dir = tempDir(t);
  const { after, at } = await beforeAndAfter(dir);
  writeFileSync(join(dir, 'chunks', `8${REDO_SUFFIX}`), after.subarray(at));
  // A chunk "file" that cannot be written: a folder in its place.
  rmSync(join(dir, 'chunks', '8.chunk'));
  mkdirSync(join(dir, 'chunks', '8.chunk'));
  const s = await store(dir);
  t.equal(s.get(8), undefined, 'not served');
  t.same(readdirSync(join(dir, 'chunks')), [], 'gone from chunks/');
  t.same(readdirSync(join(dir, 'corrupt')).map((n) => n.replace(/\.\d+\./, '.T.')).sort(), ['8.T.chunk', '8.T.redo'], 'both kept in corrupt/ for a person');
});
