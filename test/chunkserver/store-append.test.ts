// Appends in the chunk store (chunkserver/store/append.ts): the new version is a new file of the
// kept bytes and the new ones, published by one rename; until then (and after an abort, or a
// crash, which reopening stands for) the old replica is whole and served. Stale and late appends
// are refused.
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { ChunkStore } from '../../chunkserver/store/index.js';
import { initChecksums } from '../../common/checksum.js';
import type { Logger } from '../../common/log.js';
import { randomBytesSeeded } from '../helpers/cluster.js';

await initChecksums();
const MAX = 1024 * 1024;
const noop = (): void => undefined;
const log = { warn: noop, info: noop, error: noop, debug: noop, trace: noop, fatal: noop } as unknown as Logger;

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

t.test('an append makes the new version from the kept bytes and the new ones; the old one serves until the rename', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'dfs-append-store-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
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
  const dir = mkdtempSync(join(tmpdir(), 'dfs-append-store-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
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
  const dir = mkdtempSync(join(tmpdir(), 'dfs-append-store-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
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
