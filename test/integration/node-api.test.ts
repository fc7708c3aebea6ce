// The Node API (issue 17, item 5) as a program gets it: imported from the built package entry
// (dist/cli/index.js, the package's `exports`), against a real cluster. Streams in and out with
// pipeline(), back-pressure measured on a chunkserver's own byte counter, ranges at chunk
// edges, errors by code, a write stream destroyed midway, and the fs-shaped calls.
import t from 'tap';
import { once } from 'node:events';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { request } from 'undici';
import { randomBytesSeeded, ROOT, TestCluster } from '../helpers/cluster.js';

// What a program imports: the built entry, not the sources.
const dfsPackage = (await import(join(ROOT, 'dist', 'cli', 'index.js'))) as typeof import('../../cli/index.js');
const { connect, DfsError } = dfsPackage;

const CHUNK = 1024 * 1024;
const cluster = await TestCluster.start({ chunkservers: 3, chunkSizeBytes: CHUNK, replication: 2 });
const dfs = connect(cluster.masters);
t.teardown(async () => {
  await dfs.close();
  await cluster.stop();
});

/** Keeps what it is given. */
function collector(): { sink: Writable; bytes(): Buffer } {
  const got: Buffer[] = [];
  return {
    sink: new Writable({ write(piece: Buffer, _enc, done) { got.push(piece); done(); } }),
    bytes: () => Buffer.concat(got),
  };
}

/** `buf` in pieces of uneven sizes, as a network source gives them. */
function piecesOf(buf: Buffer): Readable {
  const pieces: Buffer[] = [];
  for (let at = 0, k = 0; at < buf.length; k++) {
    const n = [1, 7000, 65536, 300_001][k % 4]!;
    pieces.push(buf.subarray(at, at + n));
    at += n;
  }
  return Readable.from(pieces, { objectMode: false });
}

async function readRange(path: string, opts: { start?: number; end?: number }, handle = dfs): Promise<Buffer> {
  const { sink, bytes } = collector();
  await pipeline(handle.createReadStream(path, opts), sink);
  return bytes();
}

/** The error an operation fails with, or undefined. */
async function failure(work: () => Promise<unknown>): Promise<{ code?: string; message?: string } | undefined> {
  try {
    await work();
    return undefined;
  } catch (err) {
    return err as { code?: string };
  }
}

/** Bytes all chunkservers of `c` have served to readers so far. */
async function servedBytes(c: TestCluster): Promise<number> {
  let total = 0;
  for (const cs of c.chunkservers) {
    const text = await (await request(`http://${cs!.addr}/metrics`)).body.text();
    total += Number(/^dfs_chunkserver_read_bytes_total(?:{[^}]*})? (\d+)/m.exec(text)?.[1] ?? 0);
  }
  return total;
}

const data = randomBytesSeeded(3 * CHUNK + 12_345, 17);

t.test('a multi-chunk file streams in and out with pipeline(), byte for byte', async (t) => {
  const ws = dfs.createWriteStream('/in/a.bin', { parents: true });
  await pipeline(piecesOf(data), ws);
  t.equal(ws.file?.size, data.length, "the stream knows the completed file when 'finish' comes");
  const st = await dfs.stat('/in/a.bin');
  t.equal(st.state, 'complete', "complete on the master once pipeline() resolves ('finish' waited for it)");
  t.ok(st.isFile() && !st.isDirectory(), 'stat says it is a file');
  t.equal(st.chunkCount, 4, 'four chunks');
  t.ok((await readRange('/in/a.bin', {})).equals(data), 'read back byte for byte');
  t.ok((await dfs.readFile('/in/a.bin')).equals(data), 'readFile gives the same bytes');

  const empty = dfs.createWriteStream('/in/empty');
  empty.end();
  await once(empty, 'finish');
  t.equal((await dfs.readFile('/in/empty')).length, 0, 'a stream ended at once makes an empty file');
});

t.test('put, writeFile and appendFile take bytes in memory as they are: empty, inline, chunks, a view into a larger buffer', async (t) => {
  const empty = await dfs.client.put(new Uint8Array(0), '/mem/empty', { parents: true });
  t.match(empty, { size: 0, state: 'complete' }, 'no bytes: an empty file');
  const backing = randomBytesSeeded(10_000, 23);
  const view = new Uint8Array(backing.buffer, backing.byteOffset + 1000, 3000);
  const small = await dfs.client.put(view, '/mem/small');
  t.equal(small.size, 3000, 'a view: its own bytes, not the buffer behind it');
  t.equal((await dfs.client.stat('/mem/small', true)).chunks?.length, 1, 'one chunk (inline files are off here: test/integration/inline.test.ts puts bytes inline)');
  t.ok((await dfs.readFile('/mem/small')).equals(backing.subarray(1000, 4000)), 'read back byte for byte');
  const big = new Uint8Array(data); // a plain Uint8Array, not a Buffer
  const file = await dfs.client.put(big, '/mem/big');
  t.match(file, { size: data.length, chunkCount: 4 }, 'several chunks from one piece in memory');
  t.ok((await dfs.readFile('/mem/big')).equals(data), 'read back byte for byte');
  await dfs.writeFile('/mem/w', view);
  await dfs.appendFile('/mem/w', new Uint8Array(backing.buffer, backing.byteOffset, 10));
  t.ok((await dfs.readFile('/mem/w')).equals(Buffer.concat([backing.subarray(1000, 4000), backing.subarray(0, 10)])), 'writeFile, then appendFile, of views');
  t.equal((await failure(() => dfs.client.put(view, '/mem/small')))?.code, 'EXISTS', 'a put of bytes over a file, without overwrite, is refused as any put');
  async function* pieces(): AsyncGenerator<Buffer> {
    yield Buffer.from('from ');
    yield Buffer.from('a generator');
  }
  await dfs.client.put(pieces() as unknown as Readable, '/mem/gen');
  t.equal((await dfs.readFile('/mem/gen')).toString(), 'from a generator', 'any async iterable of bytes still reads as a stream');
  const odd = await failure(() => dfs.client.put({ length: 3 } as unknown as Readable, '/mem/odd'));
  t.equal(odd?.code, 'INVALID_ARGUMENT', 'neither bytes nor a stream: refused, not taken for an empty file');
  t.equal((await failure(() => dfs.stat('/mem/odd')))?.code, 'NOT_FOUND', 'and nothing was made');
});

t.test('a put whose signal is already aborted stops before the master hears of it: bytes, empty or not, and a stream', async (t) => {
  const stopped = new AbortController();
  stopped.abort();
  const sources: [string, () => Uint8Array | Readable][] = [
    ['empty bytes', () => new Uint8Array(0)],
    ['bytes', () => new Uint8Array(3000)],
    ['a stream', () => piecesOf(data.subarray(0, 5000))],
  ];
  for (const [what, source] of sources) {
    const path = `/stopped/${what.replace(/ /g, '-')}`;
    const err = await failure(() => dfs.client.put(source(), path, { parents: true, signal: stopped.signal }));
    t.equal(err?.code, 'INTERRUPTED', `${what}: INTERRUPTED (${err?.message})`);
    t.equal((await failure(() => dfs.stat(path)))?.code, 'NOT_FOUND', `${what}: nothing was made`);
  }
  t.match(await dfs.client.put(new Uint8Array(0), '/stopped/after', { parents: true, signal: new AbortController().signal }), { size: 0 }, 'a signal never aborted changes nothing');
});

t.test('ranges: inside a chunk, across an edge, a whole chunk, the last byte, past the end', async (t) => {
  await dfs.writeFile('/ranges.bin', data);
  const size = data.length;
  const cases: [string, { start?: number; end?: number }][] = [
    ['inside the first chunk', { start: 10, end: 20 }],
    ['the first byte', { end: 0 }],
    ['across a chunk edge', { start: CHUNK - 5, end: CHUNK + 4 }],
    ['exactly the second chunk', { start: CHUNK, end: 2 * CHUNK - 1 }],
    ['from an edge to the end', { start: 2 * CHUNK }],
    ['across three chunks', { start: CHUNK - 1, end: 3 * CHUNK }],
    ['the last byte', { start: size - 1 }],
    ['end past the file: stops at its end', { start: size - 3, end: size + 100 }],
    ['start at the size: nothing', { start: size }],
  ];
  for (const [what, range] of cases) {
    const want = data.subarray(range.start ?? 0, range.end === undefined ? size : range.end + 1);
    t.ok((await readRange('/ranges.bin', range)).equals(want), `${what} (${want.length} bytes)`);
  }
  const past = await failure(() => readRange('/ranges.bin', { start: size + 1 }));
  t.equal(past?.code, 'INVALID_ARGUMENT', `start past the end is an error: ${past?.message}`);
  t.throws(() => dfs.createReadStream('/ranges.bin', { start: 5, end: 4 }), { code: 'INVALID_ARGUMENT' }, 'start after end throws at once, as fs does');
  t.throws(() => dfs.createReadStream('/ranges.bin', { start: -1 }), { code: 'INVALID_ARGUMENT' }, 'a negative start too');
});

t.test('back-pressure: a paused reader stops the chunkserver mid-chunk; a full write stream says so', async (t) => {
  // Chunks far larger than what a connection buffers (undici's 1 MiB and the kernel's socket
  // buffers), so that a chunkserver that kept sending would show.
  const BIG_CHUNK = 16 * 1024 * 1024;
  const own = await TestCluster.start({ chunkservers: 1, replication: 1, chunkSizeBytes: BIG_CHUNK });
  const bp = connect(own.masters);
  t.teardown(async () => {
    await bp.close();
    await own.stop();
  });
  const big = randomBytesSeeded(2 * BIG_CHUNK, 5);
  await bp.writeFile('/big.bin', big);
  const before = await servedBytes(own);
  const rs = bp.createReadStream('/big.bin');
  await once(rs, 'readable');
  await new Promise((r) => setTimeout(r, 1000)); // nobody reads: everything in flight fills up and stops
  const served = (await servedBytes(own)) - before;
  await new Promise((r) => setTimeout(r, 500));
  t.ok(rs.bytesRead <= 1024 * 1024, `the stream took ${rs.bytesRead} bytes (its buffer), not the file`);
  // What is in flight is undici's buffer and the sockets' (which the kernel sizes) of two reads, the current chunk's and
  // the next one's asked for ahead (client-download.ts); it must stop growing, well short of the file.
  t.ok(served < BIG_CHUNK * 1.5, `the chunkserver sent ${(served / 2 ** 20).toFixed(1)} MiB of the 32 MiB file (16 MiB chunks) while the reader paused`);
  t.equal((await servedBytes(own)) - before, served, 'and then nothing more');
  const { sink, bytes } = collector();
  await pipeline(rs, sink);
  t.ok(bytes().equals(big), 'then the rest flows, byte for byte');
  t.ok((await servedBytes(own)) - before >= big.length, 'and the counter saw all of it (the measure above bites)');

  const again = bp.createReadStream('/big.bin');
  await once(again, 'readable');
  again.destroy();
  await new Promise((r) => again.once('close', r));
  t.ok(again.bytesRead < BIG_CHUNK, `a read stream destroyed midway stops (after ${again.bytesRead} bytes)`);
  t.ok((await readRange('/big.bin', { start: 5, end: 9 }, bp)).equals(big.subarray(5, 10)), 'and the next read works');

  const ws = bp.createWriteStream('/big-w.bin', { highWaterMark: 64 * 1024 });
  let accepted = 0;
  while (ws.write(big.subarray(accepted, accepted + 16 * 1024))) accepted += 16 * 1024;
  t.ok(accepted < 256 * 1024, `write() returns false after ${accepted} bytes: the producer is told to wait`);
  ws.destroy();
  await new Promise((r) => ws.once('close', r));
});

t.test('errors carry their codes', async (t) => {
  const rs = dfs.createReadStream('/no/such/file');
  const [err] = (await once(rs, 'error').catch((e: unknown) => [e])) as [InstanceType<typeof DfsError>];
  t.ok(err instanceof DfsError, 'a DfsError');
  t.equal(err.code, 'NOT_FOUND', `read stream of a missing file: ${err.message}`);
  t.equal((await failure(() => dfs.readFile('/no/such/file')))?.code, 'NOT_FOUND', 'readFile of a missing file');
  t.equal((await failure(() => dfs.stat('/no/such/file')))?.code, 'NOT_FOUND', 'stat of a missing file');
  t.equal((await failure(() => readRange('/in', {})))?.code, 'IS_A_DIRECTORY', 'a read stream of a directory');
  t.equal((await failure(() => dfs.readFile('/in')))?.code, 'IS_A_DIRECTORY', 'readFile of a directory');
  t.equal((await failure(() => dfs.stat('relative')))?.code, 'INVALID_PATH', 'a bad path rejects (it does not throw)');

  const exists = await failure(() => pipeline(piecesOf(data.subarray(0, 1000)), dfs.createWriteStream('/in/a.bin')));
  t.equal(exists?.code, 'EXISTS', `a write stream over a file without overwrite: ${exists?.message}`);
  t.ok((await dfs.readFile('/in/a.bin')).equals(data), 'and the file is untouched');
  await pipeline(piecesOf(data.subarray(0, 1000)), dfs.createWriteStream('/in/a.bin', { overwrite: true }));
  t.equal((await dfs.stat('/in/a.bin')).size, 1000, 'with overwrite it is replaced');
  t.equal((await failure(() => dfs.writeFile('/in/a.bin', 'x')))?.code, 'EXISTS', 'writeFile without overwrite');
  t.equal((await failure(() => dfs.writeFile('/nowhere/x', 'x')))?.code, 'NOT_FOUND', 'writeFile under a missing directory');
  t.equal((await failure(() => dfs.mkdir('/in')))?.code, 'EXISTS', 'mkdir of an existing directory');
  t.equal((await failure(() => dfs.readdir('/in/a.bin')))?.code, 'NOT_A_DIRECTORY', 'readdir of a file');
  t.equal((await failure(() => dfs.rm('/in')))?.code, 'DIRECTORY_NOT_EMPTY', 'rm of a full directory without recursive');
  t.equal((await failure(() => dfs.rename('/in/nothing', '/x')))?.code, 'NOT_FOUND', 'rename of a missing path');
});

t.test('a write stream destroyed midway leaves no file and frees the path at once', async (t) => {
  const ws = dfs.createWriteStream('/half.bin');
  let errored = false;
  ws.on('error', () => (errored = true));
  for (let at = 0; at < 2.5 * CHUNK; at += 64 * 1024) {
    if (!ws.write(data.subarray(at, at + 64 * 1024))) await once(ws, 'drain');
  }
  await new Promise((r) => setTimeout(r, 300)); // the first chunks reach their servers
  ws.destroy();
  await once(ws, 'close');
  t.notOk(errored, "destroy() without an error emits no 'error'");
  t.equal((await failure(() => dfs.stat('/half.bin')))?.code, 'NOT_FOUND', 'no file');
  await dfs.writeFile('/half.bin', 'again');
  t.equal((await dfs.readFile('/half.bin')).toString(), 'again', 'the path is free at once (no overwrite, no lease to wait out)');

  const failing = dfs.createWriteStream('/failed.bin');
  failing.write(data.subarray(0, 1000));
  const closed = new Promise((r) => failing.once('close', r)); // 'error' and 'close' come in one tick
  failing.destroy(new Error('the source broke'));
  const [err] = (await once(failing, 'error')) as [Error];
  t.equal(err.message, 'the source broke', 'destroy(err) emits that error');
  await closed;
  t.equal((await failure(() => dfs.stat('/failed.bin')))?.code, 'NOT_FOUND', 'and leaves no file either');
});

t.test('readdir, mkdir, rm, rename', async (t) => {
  await dfs.mkdir('/tree/sub/deeper', { recursive: true });
  await dfs.mkdir('/tree/sub', { recursive: true });
  t.pass('mkdir recursive of an existing directory is no error');
  await dfs.writeFile('/tree/f.txt', 'hello');
  t.same(await dfs.readdir('/tree'), ['f.txt', 'sub'], 'names');
  const entries = await dfs.readdir('/tree', { withFileTypes: true });
  t.same(entries.map((e) => [e.name, e.isFile(), e.isDirectory()]), [['f.txt', true, false], ['sub', false, true]], 'withFileTypes: entries that say what they are');
  t.equal(entries[0]!.size, 5, 'with their sizes');
  t.ok(entries[0]!.mtime instanceof Date, 'and times');
  await dfs.rename('/tree/f.txt', '/tree/sub/');
  t.same(await dfs.readdir('/tree/sub'), ['deeper', 'f.txt'], "rename to a path ending in '/' moves into it");
  await dfs.rm('/nothing/here', { force: true });
  t.pass('rm force of a missing path is no error');
  t.equal((await failure(() => dfs.rm('/nothing/here')))?.code, 'NOT_FOUND', 'without force it is NOT_FOUND');
  await dfs.rm('/tree', { recursive: true });
  t.equal((await failure(() => dfs.stat('/tree')))?.code, 'NOT_FOUND', 'rm recursive removes the tree');
});

t.test('readFile refuses a file over its limit', async (t) => {
  await dfs.writeFile('/limit.bin', data.subarray(0, 5000));
  const over = await failure(() => dfs.readFile('/limit.bin', { maxBytes: 4999 }));
  t.equal(over?.code, 'BODY_TOO_LARGE', `per call: ${over?.message}`);
  t.match(over?.message, /createReadStream/, 'the message says what to do instead');
  t.equal((await dfs.readFile('/limit.bin', { maxBytes: 5000 })).length, 5000, 'a file at the limit is read');
  const small = connect(cluster.masters, { readFileMaxBytes: 100 });
  t.equal((await failure(() => small.readFile('/limit.bin')))?.code, 'BODY_TOO_LARGE', 'per handle (connect option)');
  t.equal(dfsPackage.READ_FILE_MAX_BYTES, 1024 ** 3, 'the default is 1 GiB');
});

t.test('close() abandons a write still open', async (t) => {
  const other = connect(cluster.masters.split(','));
  const ws = other.createWriteStream('/open-at-close.bin');
  ws.write(data.subarray(0, 100_000));
  await new Promise((r) => setTimeout(r, 200));
  await other.close();
  t.ok(ws.destroyed, 'the stream is destroyed');
  t.equal((await failure(() => dfs.stat('/open-at-close.bin')))?.code, 'NOT_FOUND', 'and its file abandoned');
});

t.test('docs/CLIENT.md documents every method of the handle', async (t) => {
  const doc = readFileSync(join(ROOT, 'docs', 'CLIENT.md'), 'utf8');
  const methods = Object.getOwnPropertyNames(dfsPackage.DfsHandle.prototype).filter((m) => m !== 'constructor' && !m.startsWith('track'));
  t.ok(methods.length >= 10, `${methods.length} methods`);
  for (const m of methods) t.match(doc, new RegExp(`^### \`?(dfs\\.)?${m}\\(`, 'm'), `${m} has a section`);
  t.match(doc, /^### `?connect\(/m, 'connect has a section');
});

t.test('the package is typed: a strict TypeScript program type-checks against the built entry', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'dfs-types-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'use.mts'), `
    import { connect, DfsError, type DfsStats, type DfsEntry } from ${JSON.stringify(join(ROOT, 'dist', 'cli', 'index.js'))};
    import { pipeline } from 'node:stream/promises';
    const dfs = connect('127.0.0.1:9400');
    const s: DfsStats = await dfs.stat('/x');
    const names: string[] = await dfs.readdir('/');
    const entries: DfsEntry[] = await dfs.readdir('/', { withFileTypes: true });
    await pipeline(dfs.createReadStream('/x', { start: 1, end: 2 }), dfs.createWriteStream('/y', { overwrite: true }));
    try { await dfs.rm('/z'); } catch (e) { if (e instanceof DfsError && e.code === 'NOT_FOUND') console.log(s.size, names, entries); }
    // @ts-expect-error: a number is no path
    await dfs.stat(1);
    // @ts-expect-error: no such option
    dfs.createWriteStream('/y', { overwrit: true });
  `);
  const args = ['--noEmit', '--strict', '--module', 'nodenext', '--moduleResolution', 'nodenext', '--target', 'es2022', '--skipLibCheck',
    '--types', 'node', '--typeRoots', join(ROOT, 'node_modules', '@types'), join(dir, 'use.mts')];
  const tsc = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
  const result = await new Promise<{ code: number; out: string }>((resolve) => {
    execFile(process.execPath, [tsc, ...args], { env: { ...process.env, NODE_OPTIONS: '' } }, (err, stdout, stderr) => resolve({ code: err ? 1 : 0, out: stdout + stderr }));
  });
  t.equal(result.code, 0, `tsc accepts it and its @ts-expect-error lines ${result.out}`);
});
