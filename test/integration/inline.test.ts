// Small files kept inline in the masters' replicated state (common/inline.ts), on real clusters:
// put and read back through the CLI and DfsClient, readable with every chunkserver dead, intact
// through restarts of every master and their Raft snapshots; one byte over the limit goes to
// chunks; bad inline bodies are refused with a code and change nothing; snapshot, trash, append,
// quotas, du and fsck handle inline files; --inline-max-bytes 0 turns it off.
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import t from 'tap';
import { DfsClient } from '../../cli/client.js';
import { initChecksums } from '../../common/checksum.js';
import { FS } from '../../common/contract/index.js';
import { DfsError } from '../../common/errors.js';
import { inlineBody } from '../../common/inline.js';
import { ADMIN_TOKEN, randomBytesSeeded, TestCluster } from '../helpers/cluster.js';

const CHUNK = 256 * 1024;
const LIMIT = 4096;

await initChecksums();

/** What a read wrote into its sink. */
async function collect(read: (sink: Writable) => Promise<unknown>): Promise<Buffer> {
  const pieces: Buffer[] = [];
  await read(new Writable({ write(piece: Buffer, _enc, done) { pieces.push(piece); done(); } }));
  return Buffer.concat(pieces);
}

async function refusal(p: Promise<unknown>): Promise<DfsError | undefined> {
  return p.then(() => undefined, (err: unknown) => err as DfsError);
}

t.test('inline files on a 3-master cluster', async (t) => {
  const c = await TestCluster.start({ masters: 3, chunkservers: 3, chunkSizeBytes: CHUNK, inlineMaxBytes: LIMIT, snapshotEvery: 16 });
  t.teardown(() => c.stop());
  const client = new DfsClient(c.masters.split(','), { token: ADMIN_TOKEN });
  const files = new Map<string, Buffer>();

  await t.test('put and get through the CLI: up to the limit inline, one byte over in chunks', async (t) => {
    for (const size of [1, 100, LIMIT, LIMIT + 1]) {
      const data = randomBytesSeeded(size, size);
      const local = join(c.dir, `in-${size}`);
      writeFileSync(local, data);
      const put = await c.dfs(['put', '-q', local, `/cli/${size}.bin`]);
      t.equal(put.code, 0, put.stderr);
      const stat = JSON.parse((await c.dfs(['stat', '--json', `/cli/${size}.bin`])).stdout.toString()) as { size: number; state: string; chunks: unknown[]; inline?: { size: number } };
      t.equal(stat.size, size, `${size} bytes: its size`);
      t.equal(stat.state, 'complete');
      t.equal(stat.chunks.length, size <= LIMIT ? 0 : 1, `${size} bytes: ${size <= LIMIT ? 'no chunk' : 'one chunk'}`);
      t.equal(stat.inline?.size, size <= LIMIT ? size : undefined, `${size} bytes: ${size <= LIMIT ? 'inline' : 'not inline'}`);
      const out = join(c.dir, `out-${size}`);
      const get = await c.dfs(['get', '-q', `/cli/${size}.bin`, out]);
      t.equal(get.code, 0, get.stderr);
      t.ok(readFileSync(out).equals(data), `${size} bytes: dfs get gives them back byte for byte`);
      t.ok((await c.dfs(['cat', `/cli/${size}.bin`])).stdout.equals(data), `${size} bytes: and dfs cat`);
      files.set(`/cli/${size}.bin`, data);
    }
    const stdin = await c.dfs(['put', '-', '/cli/stdin.txt'], { input: 'from stdin\n' });
    t.equal(stdin.code, 0, stdin.stderr);
    t.equal((await c.dfs(['cat', '/cli/stdin.txt'])).stdout.toString(), 'from stdin\n', 'a put from stdin goes inline and reads back');
    files.set('/cli/stdin.txt', Buffer.from('from stdin\n'));
    const status = JSON.parse((await c.dfs(['status', '--json'])).stdout.toString()) as { inline: { files: number; bytes: number; maxFileBytes: number } };
    t.match(status.inline, { files: 4, bytes: 1 + 100 + LIMIT + 11, maxFileBytes: LIMIT }, 'status counts the inline files and bytes');
    t.match((await c.dfs(['status'])).stdout.toString(), /^inline: 4 files of at most 4(\.0)? KiB in the masters' state, [\d.]+ KiB of 256(\.0)? MiB$/m, 'dfs status says so');
    t.match((await c.dfs(['stat', '/cli/100.bin'])).stdout.toString(), /^inline: +in the masters' state, checksum [0-9a-f]{16} \(no chunkserver holds it\)$/m, 'dfs stat shows an inline file');
  });

  await t.test('DfsClient: put, get and ranged reads; overwrite as a create', async (t) => {
    const data = randomBytesSeeded(3000, 42);
    const info = await client.put(Readable.from([data]), '/api/a.bin', { parents: true });
    t.match(info, { size: 3000, state: 'complete', chunkCount: 0 }, 'put answers the complete file');
    t.ok((await collect((sink) => client.get('/api/a.bin', sink))).equals(data), 'get gives the bytes back');
    t.ok((await collect((sink) => client.getRange('/api/a.bin', sink, 100, 2000))).equals(data.subarray(100, 2000)), 'a ranged read gives its range');
    t.equal((await collect((sink) => client.getRange('/api/a.bin', sink, 5, 5))).length, 0, 'an empty range gives nothing');
    t.equal((await refusal(client.put(Readable.from([data]), '/api/a.bin')))?.code, 'EXISTS', 'a put over it without overwrite is refused, as any create');
    const other = randomBytesSeeded(200, 43);
    await client.put(Readable.from([other]), '/api/a.bin', { overwrite: true });
    t.ok((await collect((sink) => client.get('/api/a.bin', sink))).equals(other), 'an overwrite replaces it');
    const big = randomBytesSeeded(CHUNK + 10, 44);
    await client.put(Readable.from([big]), '/api/a.bin', { overwrite: true });
    t.equal((await client.stat('/api/a.bin', true)).chunks?.length, 2, 'a large file over an inline one goes to chunks');
    await client.put(Readable.from([other]), '/api/a.bin', { overwrite: true });
    t.ok((await client.stat('/api/a.bin', true)).inline, 'and a small one over that is inline again');
    files.set('/api/a.bin', other);
    await client.put(Readable.from([data]), '/api/chunks.bin', { parents: true, inline: false });
    t.equal((await client.stat('/api/chunks.bin', true)).chunks?.length, 1, 'inline: false writes chunks');
    const backing = randomBytesSeeded(8000, 45);
    const view = new Uint8Array(backing.buffer, backing.byteOffset + 500, 2500);
    t.match(await client.put(view, '/api/mem.bin'), { size: 2500, chunkCount: 0 }, 'bytes in memory (a view into a larger buffer) go inline too');
    t.ok((await collect((sink) => client.get('/api/mem.bin', sink))).equals(backing.subarray(500, 3000)), 'its own bytes, not the buffer behind it');
    files.set('/api/mem.bin', backing.subarray(500, 3000));
  });

  await t.test('a bad inline body is refused with a code and changes nothing', async (t) => {
    const data = randomBytesSeeded(500, 7);
    const body = inlineBody(data);
    const wrong = await refusal(client.mutate(FS.create, { path: '/bad/x', overwrite: false, parents: true, empty: false, inline: { ...body, checksum: '0123456789abcdef' } }));
    t.equal(wrong?.code, 'INLINE_CHECKSUM_MISMATCH', 'a wrong checksum');
    const short = await refusal(client.mutate(FS.create, { path: '/bad/x', overwrite: false, parents: true, empty: false, inline: { ...body, size: 499 } }));
    t.equal(short?.code, 'INLINE_CHECKSUM_MISMATCH', 'a size that is not the data\'s');
    const large = randomBytesSeeded(LIMIT + 1, 8);
    const over = await refusal(client.mutate(FS.create, { path: '/bad/x', overwrite: false, parents: true, empty: false, inline: inlineBody(large) }));
    t.equal(over?.code, 'INLINE_REFUSED', 'a body over the limit');
    t.match(over?.details, { reason: 'too-large', inlineMaxBytes: LIMIT }, 'which says why and the limit');
    t.equal((await refusal(client.stat('/bad')))?.code, 'NOT_FOUND', 'nothing was made, not even the parent');
    const put = await c.dfs(['put', '-', '/bad/y'], { input: 'x'.repeat(10) });
    t.equal(put.code, 0, 'a good put to the same place works');
  });

  await t.test('snapshot, trash and restore, du, quotas and fsck', async (t) => {
    const data = randomBytesSeeded(1000, 9);
    await client.put(Readable.from([data]), '/tree/f.bin', { parents: true });
    t.equal((await c.dfs(['snapshot', '/tree', '/tree-snap'])).code, 0, 'dfs snapshot');
    await client.put(Readable.from([Buffer.from('changed')]), '/tree/f.bin', { overwrite: true });
    t.ok((await c.dfs(['cat', '/tree-snap/f.bin'])).stdout.equals(data), 'the snapshot keeps the bytes it copied');
    files.set('/tree-snap/f.bin', data);

    const rm = await c.dfs(['rm', '/tree-snap/f.bin']);
    t.equal(rm.code, 0, rm.stderr);
    const inTrash = /to the trash: (\S+)\n$/.exec(rm.stdout.toString())![1]!;
    t.ok((await c.dfs(['cat', inTrash])).stdout.equals(data), 'in the trash, still readable');
    t.equal((await c.dfs(['trash', 'restore', inTrash])).code, 0, 'dfs trash restore');
    t.ok((await c.dfs(['cat', '/tree-snap/f.bin'])).stdout.equals(data), 'restored whole');

    const du = JSON.parse((await c.dfs(['du', '-s', '--json', '/tree-snap'])).stdout.toString()) as { bytes: number; files: number; chunks: number };
    t.match(du, { bytes: 1000, files: 1, chunks: 0 }, 'du counts an inline file\'s bytes');
    const fsck = await c.dfs(['fsck', '--files', '/tree-snap']);
    t.equal(fsck.code, 0, fsck.stdout.toString());
    t.match(fsck.stdout.toString(), /HEALTHY/, 'fsck: an inline file is healthy');

    t.equal((await c.dfs(['mkdir', '/q'])).code, 0);
    t.equal((await c.dfs(['quota', 'set', '/q', '--bytes', String(3 * 1500)])).code, 0, 'a space quota of 1,500 bytes × 3');
    t.equal((await c.dfs(['put', '-', '/q/a'], { input: randomBytesSeeded(1000, 10) })).code, 0, 'an inline file within it');
    const over = await c.dfs(['put', '-', '/q/b'], { input: randomBytesSeeded(600, 11) });
    t.equal(over.code, 1, 'one past it is refused');
    t.match(over.stderr, /quota/, over.stderr);
    t.equal((await c.dfs(['stat', '/q/b'])).code, 1, 'and not made');
  });

  await t.test('append turns an inline file into chunks; record append to an inline file', async (t) => {
    const head = randomBytesSeeded(2000, 12);
    const tail = randomBytesSeeded(3000, 13);
    await client.put(Readable.from([head]), '/ap/f.bin', { parents: true });
    const app = await c.dfs(['append', '-', '/ap/f.bin'], { input: tail });
    t.equal(app.code, 0, app.stderr);
    const st = await client.stat('/ap/f.bin', true);
    t.equal(st.inline, undefined, 'no longer inline');
    t.equal(st.chunks?.length, 1, 'one chunk');
    t.ok((await c.dfs(['cat', '/ap/f.bin'])).stdout.equals(Buffer.concat([head, tail])), 'the old bytes, then the appended ones');
    files.set('/ap/f.bin', Buffer.concat([head, tail]));

    await client.put(Readable.from([Buffer.from('not records')]), '/ap/rec', { parents: true });
    const rec = await client.recordAppend('/ap/rec', Buffer.from('record one'));
    t.equal(rec.offset, 11, 'the record goes after the inline bytes');
    const records = [];
    for await (const r of client.readRecords('/ap/rec')) records.push(r.data.toString());
    t.same(records, ['record one'], 'the record reads back (the old bytes are skipped as no record)');
    await client.put(Readable.from([Buffer.from('inline only')]), '/ap/rec2', { parents: true });
    const none = [];
    for await (const r of client.readRecords('/ap/rec2')) none.push(r);
    t.equal(none.length, 0, 'an inline file without records reads as none');
  });

  await t.test('concat of inline sources: the client writes them as chunks first', async (t) => {
    const a = randomBytesSeeded(100, 14);
    const b = randomBytesSeeded(200, 15);
    await client.put(Readable.from([a]), '/cc/a', { parents: true });
    await client.put(Readable.from([b]), '/cc/b', { parents: true });
    const joined = await client.concat(['/cc/a', '/cc/b'], '/cc/ab');
    t.equal(joined.size, 300, 'concat succeeds');
    t.ok((await collect((sink) => client.get('/cc/ab', sink))).equals(Buffer.concat([a, b])), 'with both files\' bytes in order');
  });

  await t.test('every master restarted, with Raft snapshots taken: inline files intact', async (t) => {
    const snapshots = [0, 1, 2].filter((i) => readdirSync(join(c.dir, `m${i + 1}`, 'raft')).includes('raft.snapshot'));
    t.ok(snapshots.length > 0, `Raft snapshots were taken (every 16 entries here) on masters ${snapshots.map((i) => `m${i + 1}`).join(', ')}`);
    for (let i = 0; i < 3; i++) await c.kill(c.masterProcs[i]!);
    for (let i = 0; i < 3; i++) await c.startMaster(i);
    await c.waitForLive(3); // the files of chunks among them need their replicas reported
    const fresh = new DfsClient(c.masters.split(','), { token: ADMIN_TOKEN });
    for (const [path, data] of files) t.ok((await collect((sink) => fresh.get(path, sink))).equals(data), `${path} reads back after the restart`);
  });

  await t.test('every chunkserver killed: inline files are still readable', async (t) => {
    for (const cs of c.chunkservers) if (cs) await c.kill(cs);
    for (const [path, data] of files) {
      const st = await client.stat(path, true);
      if (!st.inline) continue;
      t.ok((await c.dfs(['cat', path])).stdout.equals(data), `${path}: dfs cat with no chunkserver`);
      t.ok((await collect((sink) => client.getRange(path, sink, 1, data.length))).equals(data.subarray(1)), `${path}: a ranged read too`);
    }
    const put = await c.dfs(['put', '-', '/late.txt'], { input: 'written with no chunkserver' });
    t.equal(put.code, 0, 'a small file can still be written');
    t.equal((await c.dfs(['cat', '/late.txt'])).stdout.toString(), 'written with no chunkserver');
  });
});

t.test('--inline-max-bytes 0 turns inline files off', async (t) => {
  const c = await TestCluster.start({ masters: 1, chunkservers: 3, chunkSizeBytes: CHUNK, inlineMaxBytes: 0 });
  t.teardown(() => c.stop());
  const client = new DfsClient(c.masters.split(','), { token: ADMIN_TOKEN });
  t.equal((await c.dfs(['put', '-', '/small'], { input: 'tiny' })).code, 0);
  const st = await client.stat('/small', true);
  t.equal(st.inline, undefined, 'a small file is not inline');
  t.equal(st.chunks?.length, 1, 'it is in a chunk');
  const off = await refusal(client.mutate(FS.create, { path: '/x', overwrite: false, parents: false, empty: false, inline: inlineBody(Buffer.from('tiny')) }));
  t.equal(off?.code, 'INLINE_REFUSED', 'an inline create is refused');
  t.match(off?.details, { reason: 'off', inlineMaxBytes: 0 });
  const bad = await c.dfs(['master', '--data', join(c.dir, 'never'), '--inline-max-bytes', '16385']);
  t.equal(bad.code, 2, 'a master refuses a limit over 16 KiB (a usage error)');
  t.match(bad.stderr, /inline-max-bytes must be a whole number from 0 to 16384/, bad.stderr);
});
