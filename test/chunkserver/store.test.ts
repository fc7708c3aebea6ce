// ChunkStore (chunkserver/store/) and the chunk file format (chunkserver/format.ts): write
// through a temporary file, commit, verified range reads, corruption and truncation detection,
// quarantine, removal and recovery on reopen.
import { closeSync, constants as fsc, existsSync, openSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { open, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { ChunkStore, DIRECT_ALIGN_BYTES, READ_BATCH_BYTES, SlabPool, SLABS_PER_ARENA, WRITE_SLAB_BYTES, type ChunkStoreOptions, type ChunkWriter, type StoredChunk } from '../../chunkserver/store/index.js';
import { decodeFooter, decodeTrailer, encodeTrailer, FOOTER_BYTES, trailerBytes } from '../../chunkserver/format.js';
import { BLOCK_SIZE_BYTES, chunkChecksum, hashBlock, initChecksums } from '../../common/checksum.js';
import { DfsError } from '../../common/errors.js';
import type { Logger } from '../../common/log.js';
import { mulberry32 as rng } from '../helpers/rng.js';

await initChecksums();

const BS = BLOCK_SIZE_BYTES;
const MiB = 1024 * 1024;
const MAX = 64 * MiB;

/** Pseudo-random bytes: a byte delivered from the wrong offset is (almost surely) caught. */
function pattern(n: number, seed = 1): Buffer {
  const r = rng(seed);
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = Math.floor(r() * 256);
  return b;
}

type Warn = { obj: unknown; msg: unknown };
function fakeLogger(warns: Warn[]): Logger {
  const noop = (): void => undefined;
  return { warn: (obj: unknown, msg: unknown) => warns.push({ obj, msg }), info: noop, error: noop, debug: noop, trace: noop, fatal: noop } as unknown as Logger;
}

function tempDir(tt: { teardown(fn: () => unknown): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'dfs-store-test-'));
  tt.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

async function openStore(dir: string, warns: Warn[] = [], opts: ChunkStoreOptions = {}): Promise<ChunkStore> {
  const s = new ChunkStore(dir, fakeLogger(warns), opts);
  await s.open();
  return s;
}

async function newStore(tt: { teardown(fn: () => unknown): void }, opts: ChunkStoreOptions = {}): Promise<{ dir: string; store: ChunkStore; warns: Warn[] }> {
  const dir = tempDir(tt);
  const warns: Warn[] = [];
  return { dir, store: await openStore(dir, warns, opts), warns };
}

/** Both ways a writer can write: O_DIRECT where the file system allows (the default), and through the page cache. */
const WRITE_MODES: { name: string; opts: ChunkStoreOptions }[] = [{ name: 'default (O_DIRECT)', opts: {} }, { name: 'page cache', opts: { directIo: false } }];

/** The open flags of this process's descriptors for `path` (from /proc/self/fdinfo). */
function openFlagsOf(path: string): number[] {
  const out: number[] = [];
  for (const fd of readdirSync('/proc/self/fd')) {
    let target: string;
    try {
      target = readlinkSync(`/proc/self/fd/${fd}`);
    } catch {
      continue;
    }
    if (target !== path) continue;
    const m = /^flags:\s+([0-7]+)$/m.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'));
    if (m) out.push(parseInt(m[1]!, 8));
  }
  return out;
}

const ODD_PIECES = [1, 65535, 65537, 3, 65536, 131077, 7, 1 << 20, 2, 65534, 200_001];

async function writeAll(w: ChunkWriter, data: Buffer, pieces = ODD_PIECES): Promise<void> {
  let off = 0;
  let i = 0;
  while (off < data.length) {
    const n = Math.min(pieces[i++ % pieces.length]!, data.length - off);
    await w.write(data.subarray(off, off + n));
    off += n;
  }
}

async function put(store: ChunkStore, handle: number, version: number, data: Buffer, pieces = ODD_PIECES): Promise<StoredChunk> {
  const w = await store.createWriter(handle, version, MAX);
  await writeAll(w, data, pieces);
  const chunk = await w.finish();
  await w.commit(chunk);
  return chunk;
}

async function read(store: ChunkStore, handle: number, offset: number, length: number): Promise<{ data: Buffer; pieces: Buffer[] }> {
  const pieces: Buffer[] = [];
  await store.readRange(handle, offset, length, async (b) => {
    pieces.push(Buffer.from(b));
  });
  return { data: Buffer.concat(pieces), pieces };
}

/** Reads a range expecting failure; returns the error and whatever the sink got before it. */
async function readFailing(store: ChunkStore, handle: number, offset: number, length: number): Promise<{ err: unknown; got: Buffer }> {
  const pieces: Buffer[] = [];
  try {
    await store.readRange(handle, offset, length, async (b) => {
      pieces.push(Buffer.from(b));
    });
  } catch (err) {
    return { err, got: Buffer.concat(pieces) };
  }
  return { err: undefined, got: Buffer.concat(pieces) };
}

function expectedHashes(data: Buffer): bigint[] {
  const out: bigint[] = [];
  for (let o = 0; o < data.length; o += BS) out.push(hashBlock(data.subarray(o, Math.min(o + BS, data.length))));
  return out;
}

function flipByte(file: string, pos: number, mask = 0xff): void {
  const b = readFileSync(file);
  b[pos]! ^= mask;
  writeFileSync(file, b);
}

/** Interesting (offset, length) pairs for a chunk of `len` bytes: block and batch edges, plus random ones. */
function rangesFor(len: number, seed: number): Array<[number, number]> {
  const out = new Map<string, [number, number]>();
  const add = (o: number, l: number): void => {
    if (o < 0 || l < 0 || o + l > len) return;
    out.set(`${o}+${l}`, [o, l]);
  };
  add(0, len);
  add(0, 0);
  add(len, 0);
  add(0, 1);
  add(len - 1, 1);
  const edges = new Set<number>();
  for (let b = 0; b <= len; b += BS) edges.add(b);
  for (let b = 0; b <= len; b += READ_BATCH_BYTES) edges.add(b);
  edges.add(len);
  for (const e of edges) {
    for (const o of [e - 1, e, e + 1]) {
      for (const l of [1, 2, BS - 1, BS, BS + 1, 2 * BS + 3, READ_BATCH_BYTES - 1, READ_BATCH_BYTES, READ_BATCH_BYTES + 1, len - o]) add(o, l);
      add(o, Math.max(0, e + BS - o)); // ends exactly on the next block edge
    }
    add(0, e);
    add(e, len - e);
  }
  const r = rng(seed);
  for (let i = 0; i < 40; i++) {
    const o = Math.floor(r() * (len + 1));
    add(o, Math.floor(r() * (len - o + 1)));
  }
  return [...out.values()];
}

// ---------------------------------------------------------------- format.ts

t.test('format: encodeTrailer/decodeTrailer/decodeFooter round trip', async (t) => {
  t.equal(FOOTER_BYTES, 64);
  t.equal(trailerBytes(0), 64);
  t.equal(trailerBytes(3), 3 * 8 + 64);
  for (const len of [0, 1, BS - 1, BS, BS + 1, 5 * BS + 9]) {
    const data = pattern(len, len + 3);
    const blockHashes = BigUint64Array.from(expectedHashes(data));
    const { bytes, checksum } = encodeTrailer({ handle: 123456789, version: 42, length: len, blockHashes });
    t.equal(bytes.length, trailerBytes(blockHashes.length), `trailer size for ${len}`);
    t.equal(checksum, chunkChecksum(blockHashes), `checksum for ${len}`);
    t.match(checksum, /^[0-9a-f]{16}$/);
    const footer = bytes.subarray(bytes.length - FOOTER_BYTES);
    t.equal(footer.subarray(0, 8).toString('latin1'), 'DFSCHNK1', 'magic');
    t.same(decodeFooter(footer, len + bytes.length), { nBlocks: blockHashes.length, length: len, handle: 123456789, version: 42 });
    const meta = decodeTrailer(bytes);
    t.equal(meta.handle, 123456789);
    t.equal(meta.version, 42);
    t.equal(meta.length, len);
    t.equal(meta.blockSizeBytes, BS);
    t.equal(meta.checksum, checksum);
    t.same([...meta.blockHashes], [...blockHashes], `block hashes for ${len}`);
  }
});

t.test('format: large handles and versions survive encoding', async (t) => {
  const blockHashes = BigUint64Array.from([1n, 2n ** 64n - 1n]);
  const big = Number.MAX_SAFE_INTEGER;
  const { bytes } = encodeTrailer({ handle: big, version: 2 ** 32 - 1, length: BS + 1, blockHashes });
  const meta = decodeTrailer(bytes);
  t.equal(meta.handle, big);
  t.equal(meta.version, 2 ** 32 - 1);
  t.same([...meta.blockHashes], [1n, 2n ** 64n - 1n]);
});

t.test('format: decodeFooter rejects anything but a complete, matching footer', async (t) => {
  const data = pattern(2 * BS + 5, 9);
  const blockHashes = BigUint64Array.from(expectedHashes(data));
  const { bytes } = encodeTrailer({ handle: 7, version: 1, length: data.length, blockHashes });
  const fileSize = data.length + bytes.length;
  const footer = (): Buffer => Buffer.from(bytes.subarray(bytes.length - FOOTER_BYTES));

  t.throws(() => decodeFooter(footer().subarray(0, 63), fileSize), /no valid footer/, 'short footer buffer');
  t.throws(() => decodeFooter(Buffer.alloc(64), fileSize), /no valid footer/, 'zero footer');
  const badMagic = footer();
  badMagic[7] = 0x32; // DFSCHNK2
  t.throws(() => decodeFooter(badMagic, fileSize), /no valid footer/, 'other magic');
  const otherBlock = footer();
  otherBlock.writeUInt32LE(BS * 2, 20);
  t.throws(() => decodeFooter(otherBlock, fileSize), /another block size/);
  t.throws(() => decodeFooter(footer(), fileSize - 1), /size does not match/, 'file one byte short');
  t.throws(() => decodeFooter(footer(), fileSize + 1), /size does not match/, 'file one byte long');
  const wrongBlocks = footer();
  wrongBlocks.writeUInt32LE(2, 32);
  t.throws(() => decodeFooter(wrongBlocks, fileSize - 8), /size does not match/, 'nBlocks inconsistent with length');
  const wrongLength = footer();
  wrongLength.writeBigUInt64LE(BigInt(data.length + BS), 24);
  t.throws(() => decodeFooter(wrongLength, fileSize + BS), /size does not match/, 'length inconsistent with nBlocks');
  // the footer's fixed part alone is not checksummed: a consistent lie passes decodeFooter,
  // which is why readMeta always goes on to decodeTrailer
  const consistentLie = footer();
  consistentLie.writeBigUInt64LE(BigInt(data.length + 8), 24);
  t.same(decodeFooter(consistentLie, fileSize + 8).length, data.length + 8);
  t.throws(() => decodeTrailer(Buffer.concat([bytes.subarray(0, bytes.length - FOOTER_BYTES), consistentLie])), /trailer checksum mismatch/);
});

t.test('format: decodeTrailer detects a change to any trailer byte', async (t) => {
  const data = pattern(3 * BS - 1, 11);
  const blockHashes = BigUint64Array.from(expectedHashes(data));
  const { bytes } = encodeTrailer({ handle: 99, version: 3, length: data.length, blockHashes });
  const missed: number[] = [];
  for (let p = 0; p < bytes.length; p++) {
    for (const mask of [0x01, 0x80]) {
      const b = Buffer.from(bytes);
      b[p]! ^= mask;
      try {
        decodeTrailer(b);
        missed.push(p);
      } catch {
        // detected
      }
    }
  }
  t.same(missed, [], 'every single-bit flip of the trailer is detected');
});

// ---------------------------------------------------------------- write, commit, read

t.test('a fresh store creates its folders and is empty', async (t) => {
  const { dir, store } = await newStore(t);
  for (const d of ['chunks', 'tmp', 'corrupt']) t.ok(statSync(join(dir, d)).isDirectory(), `${d}/ exists`);
  t.equal(store.count, 0);
  t.same(store.list(), []);
  t.equal(store.usedBytes(), 0);
  t.equal(store.get(1), undefined);
  t.equal(store.pathOf(5), join(dir, 'chunks', '5.chunk'));
  const stats = await store.diskStats();
  t.ok(stats.capacityBytes > 0, 'capacity is positive');
  t.ok(stats.freeBytes >= 0 && stats.freeBytes <= stats.capacityBytes, 'free is within capacity');
});

const SIZES: Array<[string, number]> = [
  ['0', 0],
  ['1', 1],
  ['block-1', BS - 1],
  ['block', BS],
  ['block+1', BS + 1],
  ['3 blocks', 3 * BS],
  ['3 blocks + 17', 3 * BS + 17],
  ['one read batch + 1', READ_BATCH_BYTES + 1],
  ['33 blocks + 5', 33 * BS + 5],
];

for (const [name, size] of SIZES) {
  t.test(`size ${name} (${size} bytes): write in odd pieces, commit, read back any range`, async (t) => {
    const { dir, store } = await newStore(t);
    const handle = 1000 + size;
    const data = pattern(size, size + 1);
    const w = await store.createWriter(handle, 4, MAX);
    t.equal(w.handle, handle);
    t.equal(w.version, 4);
    t.equal(store.get(handle), undefined, 'not visible while being written');
    t.equal(readdirSync(join(dir, 'tmp')).length, 1, 'one temporary file while writing');
    await writeAll(w, data);
    t.equal(w.bytes, size, 'writer counts bytes');
    const chunk = await w.finish();
    t.equal(store.get(handle), undefined, 'not visible before commit');
    t.notOk(existsSync(store.pathOf(handle)), 'no chunk file before commit');
    t.same(chunk, { handle, version: 4, length: size, checksum: chunkChecksum(expectedHashes(data)) }, 'finish reports the chunk');
    await w.commit(chunk);
    t.same(store.get(handle), chunk, 'committed chunk is indexed');
    t.same(store.list(), [{ handle, version: 4, length: size }]);
    t.equal(store.count, 1);
    t.equal(store.usedBytes(), size);
    t.same(readdirSync(join(dir, 'tmp')), [], 'tmp/ is empty after commit');

    // on-disk layout: data first, chunk offset = file offset, then trailer
    const file = readFileSync(store.pathOf(handle));
    const nBlocks = Math.ceil(size / BS);
    t.equal(file.length, size + trailerBytes(nBlocks), 'file size = data + trailer');
    t.ok(file.subarray(0, size).equals(data), 'data stored verbatim at offset 0');

    const meta = await store.readMeta(handle);
    t.equal(meta.length, size);
    t.equal(meta.version, 4);
    t.equal(meta.handle, handle);
    t.equal(meta.checksum, chunk.checksum);
    t.same([...meta.blockHashes], expectedHashes(data));

    const ranges = rangesFor(size, size + 7);
    t.ok(ranges.length > 0);
    for (const [off, len] of ranges) {
      const { data: got, pieces } = await read(store, handle, off, len);
      t.ok(got.equals(data.subarray(off, off + len)), `range ${off}+${len} returns exactly the written bytes`);
      if (len === 0) t.equal(pieces.length, 0, `range ${off}+0 never calls the sink`);
      if (pieces.some((p) => p.length > READ_BATCH_BYTES)) t.fail(`range ${off}+${len}: a sink call exceeded READ_BATCH_BYTES`);
    }
    await t.rejects(read(store, handle, 0, size + 1), { code: 'INVALID_ARGUMENT' }, 'one byte past the end');
    await t.rejects(read(store, handle, size, 1), { code: 'INVALID_ARGUMENT' }, 'starting at the end');
    await t.rejects(read(store, handle, size + 1, 0), { code: 'INVALID_ARGUMENT' }, 'empty range past the end');
  });
}

for (const mode of WRITE_MODES) t.test(`${mode.name}: sizes around every alignment edge store exactly their bytes`, async (t) => {
  const { store } = await newStore(t, mode.opts);
  const A = DIRECT_ALIGN_BYTES;
  const S = WRITE_SLAB_BYTES;
  // The trailer of n bytes is 8 per started block plus the footer: sizes whose data, or data plus
  // trailer, end just before, on and just after a 4 KiB block and a 1 MiB slab.
  const tail = (n: number) => trailerBytes(Math.ceil(n / BS));
  const sizes = [0, 1, A - 1, A, A + 1, BS, BS + 1, S - tail(S) - 1, S - tail(S), S - tail(S) + 1, S - 1, S, S + 1, 2 * S + A - 72, 3 * S + 77];
  let handle = 0;
  for (const n of sizes) {
    const data = pattern(n, n + 1);
    const c = await put(store, ++handle, 1, data);
    t.equal(statSync(store.pathOf(handle)).size, n + tail(n), `${n} bytes: the file is the data plus its trailer, no padding`);
    const meta = await store.readMeta(handle);
    t.same([meta.length, meta.checksum], [n, c.checksum], `${n} bytes: the trailer reads back`);
    t.ok((await read(store, handle, 0, n)).data.equals(data), `${n} bytes read back exactly`);
  }
});

t.test('on a file system that allows it, chunk files are written with O_DIRECT; directIo: false writes through the page cache', async (t) => {
  const dir = tempDir(t);
  // Whether this folder's file system takes O_DIRECT at all (tmpfs before Linux 6.6 does not).
  let supported = true;
  try {
    closeSync(openSync(join(dir, 'probe'), fsc.O_WRONLY | fsc.O_CREAT | fsc.O_DIRECT));
  } catch {
    supported = false;
  }
  for (const mode of WRITE_MODES) {
    const store = await openStore(join(dir, String(WRITE_MODES.indexOf(mode))), [], mode.opts);
    const w = await store.createWriter(1, 1, MAX);
    await w.write(pattern(3 * MiB, 3));
    const tmp = readdirSync(join(dir, String(WRITE_MODES.indexOf(mode)), 'tmp')).map((f) => join(dir, String(WRITE_MODES.indexOf(mode)), 'tmp', f));
    t.equal(tmp.length, 1, `${mode.name}: one temporary file while writing`);
    const flags = openFlagsOf(tmp[0]!);
    t.equal(flags.length, 1, `${mode.name}: the writer holds one descriptor for it`);
    const expectDirect = supported && mode.opts.directIo !== false;
    t.equal(w.direct, expectDirect, `${mode.name}: the writer says whether it writes directly`);
    t.equal((flags[0]! & fsc.O_DIRECT) !== 0, expectDirect, `${mode.name}: the descriptor ${expectDirect ? 'has' : 'lacks'} O_DIRECT`);
    const c = await w.finish();
    await w.commit(c);
    t.ok((await read(store, 1, 0, 3 * MiB)).data.equals(pattern(3 * MiB, 3)), `${mode.name}: the bytes read back`);
  }
});

t.test('concurrent commits share chunks/ folder syncs, and each waits for one that started after its rename', async (t) => {
  const syncs: { sawFiles: Set<string>; doneAt: number }[] = [];
  let clock = 0;
  let running = 0;
  let overlapped = false;
  const { store } = await newStore(t, {
    syncDir: async (dir) => {
      if (++running > 1) overlapped = true;
      const sync = { sawFiles: new Set(readdirSync(dir)), doneAt: Infinity };
      syncs.push(sync);
      await new Promise((r) => setTimeout(r, 3));
      sync.doneAt = ++clock;
      running--;
    },
  });
  const N = 24;
  const committedAt = new Map<number, number>();
  await Promise.all(Array.from({ length: N }, async (_, i) => {
    // Staggered, so commits arrive both while a sync runs and between syncs.
    await new Promise((r) => setTimeout(r, (i % 6) * 2));
    await put(store, i + 1, 1, pattern(100 + i, i));
    committedAt.set(i + 1, clock);
  }));
  for (let h = 1; h <= N; h++) {
    const covering = syncs.filter((s) => s.sawFiles.has(`${h}.chunk`) && s.doneAt <= committedAt.get(h)!);
    if (covering.length === 0) t.fail(`chunk ${h} was acknowledged before any folder sync that saw its rename had finished`);
  }
  t.pass(`every one of ${N} commits waited for a folder sync that saw its file`);
  t.ok(syncs.length < N, `${syncs.length} folder syncs for ${N} commits`);
  t.notOk(overlapped, 'never two folder syncs at once');
});

t.test('the piece sizes a chunk arrives in do not change what is stored', async (t) => {
  const { store } = await newStore(t);
  const data = pattern(5 * BS + 321, 77);
  // (pure 1-byte writes over the whole chunk would be one syscall each: far too slow, so the
  // 1-byte pieces are placed around block edges instead)
  const splits = [[BS - 2, 1, 1, 1, 1, 1], [1, 65535], [65535], [65537], [BS], [3, 5, 7, 65521], [data.length]];
  const sums = new Set<string>();
  for (let i = 0; i < splits.length; i++) {
    const c = await put(store, i + 1, 1, data, splits[i]);
    sums.add(c.checksum);
    const { data: got } = await read(store, i + 1, 0, data.length);
    t.ok(got.equals(data), `split ${JSON.stringify(splits[i])} reads back`);
  }
  t.equal(sums.size, 1, 'same bytes, same checksum, whatever the split');
  t.equal(store.count, splits.length);
});

t.test('writer accepts empty buffers and exact-max chunks, rejects anything larger', async (t) => {
  const { dir, store } = await newStore(t);
  const max = 2 * BS + 10;
  const data = pattern(max, 5);

  const w = await store.createWriter(1, 1, max);
  await w.write(Buffer.alloc(0));
  await writeAll(w, data, [1, 65535, 65537]);
  t.equal(w.bytes, max);
  await t.rejects(w.write(Buffer.alloc(1)), { code: 'BODY_TOO_LARGE', name: 'DfsError' }, 'one byte past max');
  t.equal(w.bytes, max, 'a rejected write is not counted');
  const c = await w.finish();
  t.equal(c.length, max, 'the accepted bytes are what gets stored');
  await w.commit(c);
  t.ok((await read(store, 1, 0, max)).data.equals(data));

  const w2 = await store.createWriter(2, 1, max);
  await t.rejects(w2.write(Buffer.alloc(max + 1)), { code: 'BODY_TOO_LARGE' }, 'a single write larger than max');
  await w2.write(Buffer.alloc(BS));
  await t.rejects(w2.write(Buffer.alloc(max - BS + 1)), { code: 'BODY_TOO_LARGE' }, 'a write that crosses max');
  await w2.abort();
  t.same(readdirSync(join(dir, 'tmp')), [], 'aborting the over-long writer leaves nothing in tmp/');
  t.notOk(existsSync(store.pathOf(2)));
  t.equal(store.get(2), undefined);

  const w3 = await store.createWriter(3, 1, 0);
  await t.rejects(w3.write(Buffer.alloc(1)), { code: 'BODY_TOO_LARGE' }, 'max 0 admits nothing');
  await w3.abort();
});

t.test('abort leaves nothing in chunks/ or tmp/', async (t) => {
  const { dir, store } = await newStore(t);
  const listing = (): { chunks: string[]; tmp: string[] } => ({ chunks: readdirSync(join(dir, 'chunks')), tmp: readdirSync(join(dir, 'tmp')) });

  const w1 = await store.createWriter(1, 1, MAX);
  await writeAll(w1, pattern(3 * BS + 1, 1));
  await w1.abort();
  t.same(listing(), { chunks: [], tmp: [] }, 'abort mid-write');

  const w2 = await store.createWriter(2, 1, MAX);
  await writeAll(w2, pattern(BS, 2));
  await w2.finish();
  await w2.abort();
  t.same(listing(), { chunks: [], tmp: [] }, 'abort after finish, before commit');

  const w3 = await store.createWriter(3, 1, MAX);
  await w3.abort();
  await w3.abort();
  t.same(listing(), { chunks: [], tmp: [] }, 'abort with no bytes, twice');

  t.equal(store.count, 0);
  t.same(store.takeChanges(), { added: [], removed: [] }, 'aborted writes are never reported');

  // the handle is free again
  const c = await put(store, 1, 2, pattern(10, 3));
  t.equal(c.version, 2);
  t.same(listing(), { chunks: ['1.chunk'], tmp: [] });
});

t.test('a handle can only be stored once', async (t) => {
  const { dir, store } = await newStore(t);
  const first = pattern(BS + 3, 1);
  const second = pattern(100, 2);
  const wa = await store.createWriter(5, 1, MAX);
  const wb = await store.createWriter(5, 1, MAX);
  await writeAll(wa, first);
  await writeAll(wb, second);
  const ca = await wa.finish();
  const cb = await wb.finish();
  await wa.commit(ca);
  await t.rejects(wb.commit(cb), { code: 'CHUNK_EXISTS' }, 'second commit of the same handle fails');
  await wb.abort();
  t.same(readdirSync(join(dir, 'tmp')), [], 'loser cleaned up by abort');
  t.ok((await read(store, 5, 0, first.length)).data.equals(first), 'the first commit is what is served');
  t.same(store.get(5), ca);
  await t.rejects(store.createWriter(5, 2, MAX), { code: 'CHUNK_EXISTS' }, 'createWriter for a stored handle fails');
});

t.test('readRange of a chunk that is not stored', async (t) => {
  const { store } = await newStore(t);
  await t.rejects(read(store, 404, 0, 0), { code: 'CHUNK_NOT_FOUND' });
  await t.rejects(store.readMeta(404));
});

t.test('an error thrown by the sink reaches the caller', async (t) => {
  const { store } = await newStore(t);
  await put(store, 1, 1, pattern(20 * BS, 1));
  let calls = 0;
  await t.rejects(
    store.readRange(1, 0, 20 * BS, async () => {
      calls++;
      throw new Error('client went away');
    }),
    /client went away/,
  );
  t.equal(calls, 1, 'no more sink calls after it failed');
  t.ok((await read(store, 1, 0, 20 * BS)).data.length === 20 * BS, 'store still serves the chunk');
});

// A bad range must be INVALID_ARGUMENT: reported as CHECKSUM_MISMATCH it would get a healthy
// replica quarantined. (HTTP callers are already checked by parseIntParam; this guards the store.)
t.test('ranges with a negative offset or length are rejected as invalid arguments', async (t) => {
  const { store } = await newStore(t);
  await put(store, 1, 1, pattern(BS + 100, 1));
  for (const [off, len] of [[-1, 1], [-10, 20], [10, -5]] as const) {
    const { err, got } = await readFailing(store, 1, off, len);
    t.equal(got.length, 0, `${off}+${len}: nothing delivered`);
    t.equal((err as DfsError | undefined)?.code, 'INVALID_ARGUMENT', `${off}+${len} is INVALID_ARGUMENT`);
  }
});

// ---------------------------------------------------------------- corruption

t.test('a flipped data byte fails every range touching its block, and only those', async (t) => {
  const { store } = await newStore(t);
  const nBlocks = 40;
  const size = nBlocks * BS + 1234; // 41 blocks, last one partial
  const data = pattern(size, 21);
  await put(store, 9, 1, data);
  const bad = 20; // inside the second read batch (blocks 16..31)
  flipByte(store.pathOf(9), bad * BS + 777);

  const badStart = bad * BS;
  const badEnd = badStart + BS;
  const touching: Array<[number, number]> = [
    [0, size],
    [badStart, 1],
    [badStart + 777, 1],
    [badEnd - 1, 1],
    [badStart - 1, 2],
    [badEnd - 1, 5],
    [bad * BS - 5 * BS + 3, 6 * BS],
    [16 * BS, BS * 5],
    [17 * BS + 5, size - 17 * BS - 5],
    [19 * BS + 10, 2 * BS],
    [3 * BS + 1, 30 * BS],
  ];
  for (const [off, len] of touching) {
    const { err, got } = await readFailing(store, 9, off, len);
    t.ok(err instanceof DfsError, `${off}+${len} fails with a DfsError`);
    t.equal((err as DfsError).code, 'CHECKSUM_MISMATCH', `${off}+${len} is CHECKSUM_MISMATCH`);
    t.equal((err as DfsError).details.block, bad, `${off}+${len} names the bad block`);
    t.equal((err as DfsError).details.handle, 9);
    const end = off + got.length;
    t.ok(got.equals(data.subarray(off, end)), `${off}+${len}: what was delivered is the true prefix`);
    t.ok(got.length === 0 || end <= badStart, `${off}+${len}: no byte of the bad block was delivered (got up to ${end})`);
    t.ok(got.length === 0 || end % BS === 0, `${off}+${len}: delivery stops on a block edge`);
  }

  const clear: Array<[number, number]> = [
    [0, badStart],
    [badStart - 1, 1],
    [badEnd, size - badEnd],
    [badEnd, 1],
    [0, 16 * BS],
    [32 * BS, size - 32 * BS],
    [size - 1, 1],
  ];
  for (const [off, len] of clear) {
    const { data: got } = await read(store, 9, off, len);
    t.ok(got.equals(data.subarray(off, off + len)), `${off}+${len} (not touching the bad block) still reads correctly`);
  }
  t.ok(store.get(9), 'readRange itself does not drop the chunk; the caller decides');
});

t.test('a flipped byte in the first, last and partial block is detected', async (t) => {
  const { store } = await newStore(t);
  const size = 3 * BS + 99;
  for (const [i, pos] of [0, BS - 1, BS, size - 1, 3 * BS].entries()) {
    const h = 100 + i;
    const data = pattern(size, h);
    await put(store, h, 1, data);
    flipByte(store.pathOf(h), pos, 0x01);
    const block = Math.floor(pos / BS);
    const { err, got } = await readFailing(store, h, 0, size);
    t.equal((err as DfsError | undefined)?.code, 'CHECKSUM_MISMATCH', `flip at ${pos}: full read fails`);
    t.equal((err as DfsError | undefined)?.details.block, block, `flip at ${pos}: names block ${block}`);
    t.ok(got.length <= block * BS, `flip at ${pos}: nothing from the bad block delivered`);
    const { err: err2, got: got2 } = await readFailing(store, h, pos, 1);
    t.equal((err2 as DfsError | undefined)?.code, 'CHECKSUM_MISMATCH', `flip at ${pos}: 1-byte read of it fails`);
    t.equal(got2.length, 0);
  }
});

t.test('a flipped byte anywhere in the trailer or footer is detected', async (t) => {
  const { store } = await newStore(t);
  const size = 2 * BS + 100;
  const data = pattern(size, 31);
  await put(store, 3, 1, data);
  const path = store.pathOf(3);
  const original = readFileSync(path);
  const trailerLen = trailerBytes(3);
  t.equal(original.length, size + trailerLen);
  const missedRead: number[] = [];
  const missedMeta: number[] = [];
  let delivered = 0;
  for (let p = size; p < original.length; p++) {
    const b = Buffer.from(original);
    b[p]! ^= 0xff;
    writeFileSync(path, b);
    const { err, got } = await readFailing(store, 3, 0, 1);
    if ((err as DfsError | undefined)?.code !== 'CHECKSUM_MISMATCH') missedRead.push(p);
    delivered += got.length;
    try {
      await store.readMeta(3);
      missedMeta.push(p);
    } catch {
      // detected
    }
  }
  t.same(missedRead, [], 'readRange fails with CHECKSUM_MISMATCH for every trailer byte');
  t.same(missedMeta, [], 'readMeta rejects every trailer byte flip');
  t.equal(delivered, 0, 'no bytes are delivered from a chunk with a bad trailer');
  writeFileSync(path, original);
  t.ok((await read(store, 3, 0, size)).data.equals(data), 'restored file reads again');
});

t.test('a truncated or extended chunk file is detected', async (t) => {
  const { dir, store } = await newStore(t);
  const size = 2 * BS + 100;
  const full = size + trailerBytes(3);
  const cases: Array<[string, number | 'append']> = [
    ['one byte short', full - 1],
    ['footer cut off', full - FOOTER_BYTES],
    ['trailer cut off', size],
    ['into the data', size - 1],
    ['shorter than a footer', FOOTER_BYTES - 1],
    ['empty', 0],
    ['one byte appended', 'append'],
  ];
  for (const [i, [name, cut]] of cases.entries()) {
    const h = 50 + i;
    await put(store, h, 1, pattern(size, h));
    if (cut === 'append') writeFileSync(store.pathOf(h), Buffer.concat([readFileSync(store.pathOf(h)), Buffer.from([0])]));
    else truncateSync(store.pathOf(h), cut);
    const { err, got } = await readFailing(store, h, 0, 1);
    t.equal((err as DfsError | undefined)?.code, 'CHECKSUM_MISMATCH', `${name}: detected on read`);
    t.equal(got.length, 0, `${name}: nothing delivered`);
  }
  // a reopened store quarantines every one of them
  const warns: Warn[] = [];
  const again = await openStore(dir, warns);
  t.same(again.list(), [], 'none of the damaged files is listed after reopen');
  t.same(readdirSync(join(dir, 'chunks')), [], 'chunks/ no longer holds them');
  t.equal(readdirSync(join(dir, 'corrupt')).length, cases.length, 'all moved to corrupt/');
  t.equal(warns.length, cases.length, 'each quarantine is logged');
});

// ---------------------------------------------------------------- reopen, quarantine, removal

t.test('reopening lists committed chunks, forgets unfinished writes and empties tmp/', async (t) => {
  const dir = tempDir(t);
  const s1 = await openStore(dir);
  const chunks = [
    { handle: 1, version: 1, data: pattern(0, 1) },
    { handle: 2, version: 5, data: pattern(1, 2) },
    { handle: 30, version: 7, data: pattern(BS, 3) },
    { handle: 4000000000, version: 4294967295, data: pattern(3 * BS + 17, 4) },
  ];
  const stored = new Map<number, StoredChunk>();
  for (const c of chunks) stored.set(c.handle, await put(s1, c.handle, c.version, c.data));

  const finishedNotCommitted = await s1.createWriter(77, 1, MAX);
  await writeAll(finishedNotCommitted, pattern(500, 77));
  await finishedNotCommitted.finish();
  const unfinished = await s1.createWriter(78, 1, MAX);
  await writeAll(unfinished, pattern(BS + 5, 78));
  writeFileSync(join(dir, 'tmp', 'junk.tmp'), 'left over');
  writeFileSync(join(dir, 'chunks', 'README'), 'not a chunk');
  writeFileSync(join(dir, 'chunks', '12.chunk.bak'), 'not a chunk either');
  t.ok(readdirSync(join(dir, 'tmp')).length >= 3, 'tmp/ holds leftovers before reopen');

  const warns: Warn[] = [];
  const s2 = await openStore(dir, warns);
  await unfinished.abort(); // close the old handle; the file is already gone
  const listed = [...s2.list()].sort((a, b) => a.handle - b.handle);
  t.same(listed, chunks.map((c) => ({ handle: c.handle, version: c.version, length: c.data.length })), 'committed chunks with versions and lengths');
  for (const c of chunks) {
    t.same(s2.get(c.handle), stored.get(c.handle), `chunk ${c.handle} has the same checksum after reopen`);
    t.ok((await read(s2, c.handle, 0, c.data.length)).data.equals(c.data), `chunk ${c.handle} reads back`);
  }
  t.equal(s2.get(77), undefined, 'finished but uncommitted chunk is not served');
  t.equal(s2.get(78), undefined, 'unfinished chunk is not served');
  t.same(readdirSync(join(dir, 'tmp')), [], 'tmp/ emptied');
  t.equal(s2.count, chunks.length);
  t.equal(s2.usedBytes(), chunks.reduce((n, c) => n + c.data.length, 0));
  t.same(readdirSync(join(dir, 'chunks')).sort(), ['1.chunk', '12.chunk.bak', '2.chunk', '30.chunk', '4000000000.chunk', 'README'], 'unrelated files are left alone');
  t.same(readdirSync(join(dir, 'corrupt')), [], 'nothing quarantined');
  t.same(warns, [], 'no warnings for a clean store');
  await t.rejects(s2.createWriter(30, 8, MAX), { code: 'CHUNK_EXISTS' }, 'reopened store knows its handles');
});

t.test('reopen quarantines a file whose content belongs to another handle', async (t) => {
  const dir = tempDir(t);
  const s1 = await openStore(dir);
  await put(s1, 2, 1, pattern(100, 2));
  writeFileSync(join(dir, 'chunks', '9.chunk'), readFileSync(s1.pathOf(2)));
  await t.rejects(s1.readRange(9, 0, 1, async () => undefined), { code: 'CHECKSUM_MISMATCH' }, 'reading the misnamed file fails');
  const warns: Warn[] = [];
  const s2 = await openStore(dir, warns);
  t.same(s2.list(), [{ handle: 2, version: 1, length: 100 }]);
  const corrupt = readdirSync(join(dir, 'corrupt'));
  t.equal(corrupt.length, 1);
  t.match(corrupt[0], /^9\.\d+\.chunk$/);
  t.equal(warns.length, 1);
  t.match(warns[0]!.obj, { handle: 9 });
});

t.test('moveToCorrupt moves the file to corrupt/ and forgets the chunk', async (t) => {
  const { dir, store } = await newStore(t);
  const data = pattern(BS + 1, 8);
  await put(store, 8, 3, data);
  await put(store, 9, 1, pattern(10, 9));
  const before = readFileSync(store.pathOf(8));
  store.takeChanges();
  await store.moveToCorrupt(8);
  t.notOk(existsSync(store.pathOf(8)), 'gone from chunks/');
  const corrupt = readdirSync(join(dir, 'corrupt'));
  t.equal(corrupt.length, 1);
  t.match(corrupt[0], /^8\.\d+\.chunk$/, 'named after the handle');
  t.ok(readFileSync(join(dir, 'corrupt', corrupt[0]!)).equals(before), 'moved intact for inspection');
  t.equal(store.get(8), undefined);
  t.same(store.list(), [{ handle: 9, version: 1, length: 10 }]);
  t.same(store.takeChanges(), { added: [], removed: [8] }, 'reported as removed');
  await t.rejects(read(store, 8, 0, 1), { code: 'CHUNK_NOT_FOUND' });
  await store.moveToCorrupt(8); // no file, not indexed: harmless
  await store.moveToCorrupt(12345);
  t.same(store.takeChanges(), { added: [], removed: [] }, 'unknown handles are not reported');
  const s2 = await openStore(dir);
  t.same(s2.list(), [{ handle: 9, version: 1, length: 10 }], 'stays out after reopen');
  t.equal(readdirSync(join(dir, 'corrupt')).length, 1, 'reopen keeps corrupt/');
});

t.test('remove deletes the file and reports it unless asked not to', async (t) => {
  const { dir, store } = await newStore(t);
  await put(store, 1, 1, pattern(10, 1));
  await put(store, 2, 1, pattern(20, 2));
  await put(store, 3, 1, pattern(30, 3));
  store.takeChanges();
  await store.remove(1);
  t.notOk(existsSync(store.pathOf(1)));
  t.equal(store.get(1), undefined);
  await store.remove(2, false);
  t.notOk(existsSync(store.pathOf(2)));
  await store.remove(99);
  t.same(store.takeChanges(), { added: [], removed: [1] }, 'only the reported removal');
  t.same(readdirSync(join(dir, 'chunks')), ['3.chunk']);
  t.same(store.list(), [{ handle: 3, version: 1, length: 30 }]);
  t.equal(store.usedBytes(), 30);
  await t.rejects(read(store, 1, 0, 1), { code: 'CHUNK_NOT_FOUND' });
  const c = await put(store, 1, 2, pattern(5, 11));
  t.equal(store.get(1)?.version, 2, 'a removed handle can be stored again');
  t.equal(c.length, 5);
  t.same(readdirSync(join(dir, 'corrupt')), [], 'remove does not quarantine');
});

t.test('takeChanges and restoreChanges', async (t) => {
  const { store } = await newStore(t);
  await put(store, 1, 1, pattern(10, 1));
  await put(store, 2, 2, pattern(20, 2));
  const first = store.takeChanges();
  t.same(first, { added: [{ handle: 1, version: 1, length: 10 }, { handle: 2, version: 2, length: 20 }], removed: [] });
  t.same(store.takeChanges(), { added: [], removed: [] }, 'taken changes are not repeated');
  await put(store, 3, 1, pattern(30, 3));
  await store.remove(1);
  store.restoreChanges(first); // the heartbeat carrying `first` failed
  const again = store.takeChanges();
  // One entry per chunk, the newest change winning: chunk 1 was removed after its addition was
  // taken, so the restored addition must not hide the removal (the master applies added first).
  t.same(
    { added: [...again.added].sort((a, b) => a.handle - b.handle), removed: again.removed },
    { added: [{ handle: 2, version: 2, length: 20 }, { handle: 3, version: 1, length: 30 }], removed: [1] },
    'restored changes never override newer ones',
  );
});

for (const mode of WRITE_MODES) t.test(`${mode.name}: a large chunk written in pieces of every size crosses slabs, write limits and (through the page cache) background syncs intact`, async (t) => {
  const { store, dir } = await newStore(t, mode.opts);
  // 40 MiB: many more slabs than MAX_WRITES_IN_FLIGHT, and two SYNC_EVERY_BYTES, in pieces from 1 byte to 3 MiB.
  const data = pattern(40 * MiB + 12345, 91);
  const chunk = await put(store, 77, 1, data, [...ODD_PIECES, 3 * MiB, 5]);
  t.equal(chunk.length, data.length);
  t.equal(chunk.checksum, chunkChecksum(Array.from({ length: Math.ceil(data.length / BS) }, (_, i) => hashBlock(data.subarray(i * BS, (i + 1) * BS)))));
  t.ok((await read(store, 77, 0, data.length)).data.equals(data), 'every byte reads back in order');
  t.same(readdirSync(join(dir, 'tmp')), [], 'nothing left in tmp/');
});

t.test('aborting a writer with writes in flight leaves nothing behind and refuses further writes', async (t) => {
  const { store, dir } = await newStore(t);
  const w = await store.createWriter(78, 1, MAX);
  // 20 MiB at once: the write waits for slab writes in flight while the abort comes.
  const first = w.write(pattern(20 * MiB, 92)).then(() => 'resolved', (e: Error) => e);
  await w.abort();
  await first;
  await t.rejects(w.write(Buffer.from('x')), 'a write after abort fails');
  await t.rejects(w.finish(), 'and so does finishing');
  t.same(readdirSync(join(dir, 'tmp')), [], 'the temporary file is gone');
  t.equal(store.get(78), undefined);
  t.same(store.writeArenas(), { arenas: 1, idleArenas: 1 }, 'every slab went back to its arena');
});

t.test('a write started before the previous one settled is refused, and the chunk holds only the first', async (t) => {
  const { store } = await newStore(t);
  const w = await store.createWriter(79, 1, MAX);
  const big = pattern(9 * MiB, 94);
  const first = w.write(big);
  await t.rejects(w.write(Buffer.from('interleaved')), { code: 'INTERNAL' });
  await first;
  const c = await w.finish();
  await w.commit(c);
  t.equal(c.length, big.length, 'the refused bytes were not counted');
  t.ok((await read(store, 79, 0, big.length)).data.equals(big), 'the stored bytes are the first write\'s');
});

/** Opens files as the store would, but refuses O_DIRECT at open or on writes, or fails writes with EIO. */
function failingOpen(how: 'direct-open' | 'direct-write' | 'eio-write', calls: number[]): ChunkStoreOptions['openFile'] {
  return async (path, flags, mode) => {
    const direct = typeof flags === 'number' && (flags & fsc.O_DIRECT) !== 0;
    calls.push(typeof flags === 'number' ? flags : -1);
    if (how === 'direct-open' && direct) {
      writeFileSync(path, ''); // the kernel creates the file before it refuses the flag
      throw Object.assign(new Error('EINVAL: invalid argument, open'), { code: 'EINVAL' });
    }
    const fh = await open(path, flags, mode);
    if (how === 'direct-open' || (how === 'direct-write' && !direct)) return fh;
    return new Proxy(fh, {
      get(target, prop) {
        if (prop === 'write') {
          return () => Promise.reject(Object.assign(new Error(how === 'eio-write' ? 'EIO: i/o error, write' : 'EINVAL: invalid argument, write'), { code: how === 'eio-write' ? 'EIO' : 'EINVAL' }));
        }
        const v = Reflect.get(target, prop, target) as unknown;
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      },
    }) as FileHandle;
  };
}

t.test('a file system that refuses O_DIRECT at open: chunks go through the page cache, said once', async (t) => {
  const calls: number[] = [];
  const { store, dir, warns } = await newStore(t, { openFile: failingOpen('direct-open', calls) });
  for (const h of [1, 2]) {
    const w = await store.createWriter(h, 1, MAX);
    t.equal(w.direct, false, `chunk ${h} is written through the page cache`);
    await writeAll(w, pattern(2 * MiB + 5, h));
    await w.commit(await w.finish());
    t.ok((await read(store, h, 0, 2 * MiB + 5)).data.equals(pattern(2 * MiB + 5, h)), `chunk ${h} reads back`);
  }
  t.equal(calls.filter((f) => f !== -1 && (f & fsc.O_DIRECT) !== 0).length, 1, 'O_DIRECT is tried once, not per chunk');
  t.equal(warns.length, 1, 'and the refusal is logged once');
  t.same(readdirSync(join(dir, 'tmp')), [], 'the file the refused open created is gone');
});

t.test('a file system that takes O_DIRECT at open but refuses it on writes: that chunk fails, later ones go through the page cache', async (t) => {
  const calls: number[] = [];
  const { store, dir, warns } = await newStore(t, { openFile: failingOpen('direct-write', calls) });
  const w = await store.createWriter(1, 1, MAX);
  t.equal(w.direct, true);
  const err = await w.write(pattern(5 * MiB, 1)).then(() => w.finish()).then(() => undefined, (e: Error) => e);
  t.match(err, { code: 'EINVAL' }, 'the chunk fails');
  await w.abort();
  t.equal(warns.length, 1, 'the refusal is logged');
  const w2 = await store.createWriter(2, 1, MAX);
  t.equal(w2.direct, false, 'the next chunk is written through the page cache');
  await writeAll(w2, pattern(3 * MiB, 2));
  await w2.commit(await w2.finish());
  t.ok((await read(store, 2, 0, 3 * MiB)).data.equals(pattern(3 * MiB, 2)), 'and reads back');
  t.same(readdirSync(join(dir, 'tmp')), [], 'nothing left in tmp/');
});

for (const mode of WRITE_MODES) t.test(`${mode.name}: a failing disk write fails the chunk, refuses more writes and gives its slabs back`, async (t) => {
  const { store, dir } = await newStore(t, { ...mode.opts, openFile: failingOpen('eio-write', []) });
  const w = await store.createWriter(1, 1, MAX);
  const err = await w.write(pattern(6 * MiB, 1)).then(() => w.finish()).then(() => undefined, (e: Error) => e);
  t.match(err, { code: 'EIO' }, 'the chunk fails with the disk\'s error');
  await t.rejects(w.write(Buffer.from('x')), { code: 'EIO' }, 'later writes are refused');
  await w.abort();
  t.same(readdirSync(join(dir, 'tmp')), [], 'the temporary file is gone');
  t.equal(store.get(1), undefined, 'nothing is stored');
  t.same(store.writeArenas(), { arenas: 1, idleArenas: 1 }, 'every slab went back to its arena');
});

t.test('the slab pool hands out page-aligned slabs from arenas in use first and keeps only a few idle arenas', async (t) => {
  const pool = new SlabPool(2);
  const taken = Array.from({ length: 5 * SLABS_PER_ARENA }, () => pool.take());
  t.same(pool.stats(), { arenas: 5, idleArenas: 0 });
  t.ok(taken.every((s) => s.length === WRITE_SLAB_BYTES && s.byteOffset % DIRECT_ALIGN_BYTES === 0), 'whole slabs, aligned within their arena');
  t.equal(new Set(taken.map((s) => `${s.byteOffset}`)).size, SLABS_PER_ARENA, 'eight distinct slabs per arena');
  for (const s of taken) pool.give(s);
  t.same(pool.stats(), { arenas: 2, idleArenas: 2 }, 'beyond two wholly idle arenas, arenas are let go');
  const again = pool.take();
  t.same(pool.stats(), { arenas: 2, idleArenas: 1 }, 'a slab comes from a kept arena, no new one');
  pool.give(again);
  pool.give(taken.at(-1)!); // from the last arena, let go: ignored
  t.same(pool.stats(), { arenas: 2, idleArenas: 2 });
});

t.test('a read-ahead that fails while the sink is busy fails the read, not the process', async (t) => {
  const { store } = await newStore(t);
  const data = pattern(3 * READ_BATCH_BYTES + 100, 93);
  await put(store, 79, 1, data);
  let unhandled: unknown;
  const onUnhandled = (err: unknown) => {
    unhandled = err;
  };
  process.on('unhandledRejection', onUnhandled);
  t.teardown(() => process.off('unhandledRejection', onUnhandled));
  let calls = 0;
  // During the first batch the file is cut to one batch; the third batch's read-ahead then
  // starts (after the second batch arrives) and fails while the sink still holds batch two.
  const err = await store.readRange(79, 0, data.length, async () => {
    calls++;
    if (calls === 1) truncateSync(store.pathOf(79), READ_BATCH_BYTES);
    if (calls === 2) await new Promise((r) => setTimeout(r, 50));
  }).then(() => undefined, (e: unknown) => e);
  await new Promise((r) => setTimeout(r, 20));
  t.ok(err instanceof DfsError && err.code === 'CHECKSUM_MISMATCH', `the read fails: ${(err as Error)?.message}`);
  t.equal(unhandled, undefined, 'no unhandled rejection');
});

t.test('concurrent reads share pooled batch buffers without handing one to two sinks at once', async (t) => {
  const { store } = await newStore(t);
  const chunks = [81, 82, 83].map((handle, i) => ({ handle, data: pattern(5 * READ_BATCH_BYTES + 77 * (i + 1), 94 + i) }));
  for (const c of chunks) await put(store, c.handle, 1, c.data);
  const r = rng(95);
  const readOnce = async ({ handle, data }: { handle: number; data: Buffer }, offset: number): Promise<void> => {
    const got: Buffer[] = [];
    let lentChanged = false;
    await store.readRange(handle, offset, data.length - offset, async (b) => {
      const copy = Buffer.from(b);
      got.push(copy);
      // While the sink holds the bytes, other reads run; the lent bytes must not change under it.
      await new Promise((res) => setTimeout(res, Math.floor(r() * 4)));
      if (!b.equals(copy)) lentChanged = true;
    });
    t.notOk(lentChanged, `chunk ${handle} from ${offset}: lent bytes stayed put while the sink held them`);
    t.ok(Buffer.concat(got).equals(data.subarray(offset)), `chunk ${handle} from ${offset}: exactly the stored bytes`);
  };
  // Two rounds, so the second one reads into buffers the first gave back.
  for (let round = 0; round < 2; round++) {
    await Promise.all(chunks.flatMap((c) => [readOnce(c, 0), readOnce(c, READ_BATCH_BYTES - 5 + round)]));
  }
});

t.test('a bad block in the middle of a batch fails the read before any of that batch is lent, and later reads are exact', async (t) => {
  const { store } = await newStore(t);
  const data = pattern(4 * READ_BATCH_BYTES + 300, 96);
  const good = pattern(2 * READ_BATCH_BYTES + 5, 97);
  await put(store, 84, 1, data);
  await put(store, 85, 1, good);
  const bad = 2 * READ_BATCH_BYTES + READ_BATCH_BYTES / 2 + 1234; // mid third batch
  flipByte(store.pathOf(84), bad);
  const { err, got } = await readFailing(store, 84, 0, data.length);
  t.ok(err instanceof DfsError && err.code === 'CHECKSUM_MISMATCH', 'the read fails with CHECKSUM_MISMATCH');
  t.equal(got.length, 2 * READ_BATCH_BYTES, 'the sink got the two good batches before it and nothing of the bad one');
  t.ok(got.equals(data.subarray(0, got.length)), 'what it got is exact');
  const after = await read(store, 85, 0, good.length);
  t.ok(after.data.equals(good), 'a read after the failure returns exactly the stored bytes');
});
