// Append (issue 19, item 1) with real processes and small chunks: appends in several steps across
// chunk boundaries read back byte for byte, from a local file, stdin and the Node API; a replica
// of the last chunk killed before and during an append; the stale replica it leaves is never
// served and is replaced; bad input fails with a stable code and changes nothing.
import t from 'tap';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { request } from 'undici';
import { ADMIN_TOKEN, randomBytesSeeded, ROOT, TestCluster, waitFor } from '../helpers/cluster.js';

const dfsPackage = (await import(join(ROOT, 'dist', 'cli', 'index.js'))) as typeof import('../../cli/index.js');
const { connect } = dfsPackage;

const CHUNK = 128 * 1024;
const cluster = await TestCluster.start({ chunkservers: 4, chunkSizeBytes: CHUNK, replication: 3, gcGraceMs: 4000 });
const dfs = connect(cluster.masters);
const local = mkdtempSync(join(tmpdir(), 'dfs-append-'));
t.teardown(async () => {
  await dfs.close();
  await cluster.stop();
  rmSync(local, { recursive: true, force: true });
});

interface ChunkView { handle: number; version: number; length: number; token: string; replicas: { id: string; addr: string }[] }
interface StatView { size: number; state: string; chunks: ChunkView[] }

/** The master's view of a file, chunks and live replicas included, straight from its HTTP API. */
async function statOf(path: string): Promise<StatView> {
  const { proc } = await cluster.leader();
  const res = await fetch(`http://${proc.addr}/v1/fs/stat?path=${encodeURIComponent(path)}&chunks=1`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
  if (res.status !== 200) throw new Error(`stat ${path}: ${res.status} ${await res.text()}`);
  return (await res.json()) as StatView;
}

async function fsckOf(path: string): Promise<{ chunks: number; files: number }> {
  const { proc } = await cluster.leader();
  const res = await fetch(`http://${proc.addr}/v1/fs/fsck?path=${encodeURIComponent(path)}`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
  if (res.status !== 200) throw new Error(`fsck ${path}: ${res.status} ${await res.text()}`);
  return (await res.json()) as { chunks: number; files: number };
}

/** A master route called as a client would, with the admin token. */
async function post(route: string, body: unknown): Promise<{ status: number; body: Record<string, unknown> }> {
  const { proc } = await cluster.leader();
  const res = await fetch(`http://${proc.addr}${route}`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

async function cat(path: string): Promise<Buffer> {
  const r = await cluster.dfs(['cat', path]);
  if (r.code !== 0) throw new Error(`dfs cat ${path}: ${r.stderr}`);
  return r.stdout;
}

const serverOf = (id: string) => cluster.chunkservers[Number(id.slice(2)) - 1]!;

t.test('dfs append from a file and from stdin, in steps across chunk boundaries, reads back byte for byte', async (t) => {
  const first = randomBytesSeeded(100 * 1024, 1);
  t.equal((await cluster.dfs(['put', '-', '/log.bin'], { input: first })).code, 0);
  const before = await statOf('/log.bin');
  t.equal(before.chunks.length, 1);
  t.equal(before.chunks[0]!.version, 1);

  // 50 KiB from a local file: 28 KiB fill the first chunk, 22 KiB start a second.
  const second = randomBytesSeeded(50 * 1024, 2);
  writeFileSync(join(local, 'second.bin'), second);
  const a = await cluster.dfs(['append', join(local, 'second.bin'), '/log.bin']);
  t.equal(a.code, 0, a.stderr);
  t.match(a.stdout.toString(), `/log.bin: ${150 * 1024} bytes (${50 * 1024} appended)`);
  const mid = await statOf('/log.bin');
  t.same(mid.chunks.map((c) => c.length), [CHUNK, 22 * 1024]);
  t.equal(mid.chunks[0]!.handle, before.chunks[0]!.handle, 'the last chunk was filled in place, under its handle');
  t.ok(mid.chunks[0]!.version > 1, `at a new version (${mid.chunks[0]!.version})`);
  t.equal(mid.chunks[0]!.replicas.length, 3, 'which its three replicas hold at once');

  // 300 KiB from stdin: fills the second chunk, one whole chunk, and the start of another.
  const third = randomBytesSeeded(300 * 1024, 3);
  const b = await cluster.dfs(['append', '-', '/log.bin', '--json'], { input: third });
  t.equal(b.code, 0, b.stderr);
  t.equal((JSON.parse(b.stdout.toString()) as { size: number }).size, 450 * 1024);
  const after = await statOf('/log.bin');
  t.same(after.chunks.map((c) => c.length), [CHUNK, CHUNK, CHUNK, 450 * 1024 - 3 * CHUNK]);
  t.ok(after.chunks[1]!.version > 1);
  t.ok((await cat('/log.bin')).equals(Buffer.concat([first, second, third])), 'the file reads back byte for byte');

  // The client library: appendFile from a buffer, and an empty append changes nothing.
  const fourth = randomBytesSeeded(5000, 4);
  const info = await dfs.appendFile('/log.bin', fourth);
  t.equal(info.size, 450 * 1024 + 5000);
  t.equal((await dfs.appendFile('/log.bin', '')).size, 450 * 1024 + 5000, 'an empty append leaves the size');
  t.ok((await dfs.readFile('/log.bin')).equals(Buffer.concat([first, second, third, fourth])));
});

t.test('bad input: a stable error code, one line, and nothing changed', async (t) => {
  const data = randomBytesSeeded(3000, 5);
  t.equal((await cluster.dfs(['put', '-', '/bad/f.bin'], { input: data })).code, 0);
  t.equal((await cluster.dfs(['mkdir', '/bad/dir'])).code, 0);

  const missing = await cluster.dfs(['append', '-', '/bad/none.bin'], { input: 'x' });
  t.not(missing.code, 0);
  t.match(missing.stderr, /^dfs: .*does not exist.*\n$/);
  await t.rejects(dfs.appendFile('/bad/none.bin', 'x'), { code: 'NOT_FOUND' });
  await t.rejects(dfs.appendFile('/bad/dir', 'x'), { code: 'IS_A_DIRECTORY' });
  const noLocal = await cluster.dfs(['append', join(local, 'nope.bin'), '/bad/f.bin']);
  t.not(noLocal.code, 0);
  t.match(noLocal.stderr, /^dfs: local file .* does not exist\n$/);

  // Another client holds the file's lease (an append opened and not finished): FILE_BUSY.
  const held = await post('/v1/fs/append', { path: '/bad/f.bin' });
  t.equal(held.status, 200);
  const busy = await cluster.dfs(['append', '-', '/bad/f.bin'], { input: 'more' });
  t.not(busy.code, 0);
  t.match(busy.stderr, /being appended to by another client/);
  await t.rejects(dfs.appendFile('/bad/f.bin', 'more'), { code: 'FILE_BUSY' });
  t.equal((await post('/v1/fs/abandon', { writeId: held.body.writeId })).status, 200);
  // A file under construction by another writer (created, not completed).
  t.equal((await post('/v1/fs/create', { path: '/bad/open.bin' })).status, 200);
  await t.rejects(dfs.appendFile('/bad/open.bin', 'more'), { code: 'FILE_BUSY' });

  t.ok((await cat('/bad/f.bin')).equals(data), 'the file is as it was');
  t.equal((await statOf('/bad/f.bin')).chunks[0]!.version, 1, 'at its old version');
});

t.test('a replica of the last chunk killed before an append: the append goes on without it; its stale replica is never served and is replaced', async (t) => {
  const first = randomBytesSeeded(70 * 1024, 6);
  t.equal((await cluster.dfs(['put', '-', '/k.bin'], { input: first })).code, 0);
  const [chunk] = (await statOf('/k.bin')).chunks;
  const victim = chunk!.replicas[0]!.id;
  await cluster.kill(serverOf(victim));
  const more = randomBytesSeeded(100 * 1024, 7);
  const r = await cluster.dfs(['append', '-', '/k.bin'], { input: more });
  t.equal(r.code, 0, r.stderr);
  const want = Buffer.concat([first, more]);
  t.ok((await cat('/k.bin')).equals(want), 'the file reads back right');
  const after = (await statOf('/k.bin')).chunks[0]!;
  t.ok(after.version > chunk!.version, 'the last chunk has a new version');
  t.notOk(after.replicas.some((x) => x.id === victim), 'the killed server is not among its replicas');

  // Back with the old version: its replica is stale, so it serves nothing at the new version...
  await cluster.startChunkserver(Number(victim.slice(2)) - 1);
  const readVictim = async (): Promise<{ status: number; code?: string }> => {
    const res = await request(`http://${serverOf(victim).addr}/v1/chunks/${after.handle}?version=${after.version}&offset=0&length=10`, { headers: { 'x-dfs-token': after.token } });
    const body = (await res.body.json()) as { error?: { code: string } };
    return { status: res.statusCode, code: body.error?.code };
  };
  t.match(await readVictim(), { status: 409, code: 'STALE_VERSION' }, 'the stale replica is refused to readers');
  // ...is reported in its registration, found stale by the master and deleted after the grace period...
  await waitFor(async () => (await readVictim()).code !== 'STALE_VERSION', 60_000, 'the stale replica to be deleted');
  t.pass('the stale replica was deleted');
  // ...the master never lists it, and the chunk is back at three current replicas.
  await waitFor(async () => (await statOf('/k.bin')).chunks.every((c) => c.replicas.length === 3), 60_000, 'three current replicas of every chunk')
    .catch(async (err: Error) => {
      t.comment(JSON.stringify((await statOf('/k.bin')).chunks.map((c) => ({ h: c.handle, v: c.version, r: c.replicas.map((x) => x.id) }))));
      t.comment(cluster.problems().slice(-30).join('\n'));
      throw err;
    });
  t.ok((await cat('/k.bin')).equals(want), 'and the file still reads back right');
});

t.test('a replica of the last chunk killed during an append: the append completes on the others', async (t) => {
  const first = randomBytesSeeded(30 * 1024, 8);
  t.equal((await cluster.dfs(['put', '-', '/during.bin'], { input: first })).code, 0);
  await cluster.waitForLive(4);
  const [chunk] = (await statOf('/during.bin')).chunks;
  const source = new PassThrough();
  let progressed = 0;
  const retries: string[] = [];
  const appending = dfs.client.append(source, '/during.bin', { onProgress: (n) => (progressed = n), onRetry: (m) => retries.push(m) });
  const part1 = randomBytesSeeded(40 * 1024, 9);
  const part2 = randomBytesSeeded(200 * 1024, 10);
  source.write(part1);
  await waitFor(() => progressed >= part1.length, 20_000, 'the first bytes sent to the last chunk');
  // Readers see the old length while the append runs.
  t.equal((await statOf('/during.bin')).size, first.length);
  const victim = chunk!.replicas[chunk!.replicas.length - 1]!.id;
  await cluster.kill(serverOf(victim));
  source.end(part2);
  const info = await appending;
  t.equal(info.size, first.length + part1.length + part2.length);
  t.ok(retries.length > 0, `the append was retried without the dead replica (${retries[0]})`);
  t.ok((await cat('/during.bin')).equals(Buffer.concat([first, part1, part2])), 'the file reads back right');
  await cluster.startChunkserver(Number(victim.slice(2)) - 1);
  await cluster.waitForLive(4);
});

t.test('snapshot a tree, append to the original, both read back right; delete the original, the snapshot still reads', async (t) => {
  const a = randomBytesSeeded(150 * 1024, 11); // a full chunk and a partial last one
  const b = randomBytesSeeded(10 * 1024, 12);
  t.equal((await cluster.dfs(['put', '-', '/tree/a.bin'], { input: a })).code, 0);
  t.equal((await cluster.dfs(['put', '-', '/tree/sub/b.bin'], { input: b })).code, 0);
  const chunksBefore = (await fsckOf('/')).chunks;
  const snap = await cluster.dfs(['snapshot', '/tree', '/tree-snap']);
  t.equal(snap.code, 0, snap.stderr);
  const fsck = await fsckOf('/');
  t.equal(fsck.chunks, chunksBefore, 'fsck counts a chunk the snapshot shares once');
  const snapFsck = await fsckOf('/tree-snap');
  t.equal(snapFsck.files, 2, 'fsck still counts every file of the snapshot');
  t.equal(snapFsck.chunks, (await fsckOf('/tree')).chunks, 'and each side alone counts its chunks');
  t.match(snap.stdout.toString(), '/tree-snap: a snapshot of /tree');
  const orig = await statOf('/tree/a.bin');
  const copy = await statOf('/tree-snap/a.bin');
  t.same(copy.chunks.map((c) => c.handle), orig.chunks.map((c) => c.handle), 'the copy shares the chunks');
  t.ok(orig.chunks.every((c) => (c as ChunkView & { shared?: number }).shared === 2), 'stat says each is shared by 2 files');
  const stat = await cluster.dfs(['stat', '/tree-snap/a.bin']);
  t.match(stat.stdout.toString(), 'shared by 2 files');
  const du = JSON.parse((await cluster.dfs(['du', '-s', '/', '--json'])).stdout.toString()) as { bytes: number; sharedBytes: number };
  const duPerFile = JSON.parse((await cluster.dfs(['du', '-s', '--per-file', '/', '--json'])).stdout.toString()) as { bytes: number };
  t.equal(duPerFile.bytes - du.bytes, a.length + b.length, 'du counts shared bytes once; --per-file counts them per file');
  t.ok(du.sharedBytes >= a.length + b.length);

  // The first append to the shared last chunk copies it first, on the chunkservers that hold it.
  const more = randomBytesSeeded(40 * 1024, 13);
  const r = await cluster.dfs(['append', '-', '/tree/a.bin'], { input: more });
  t.equal(r.code, 0, r.stderr);
  const after = await statOf('/tree/a.bin');
  t.equal(after.chunks[0]!.handle, orig.chunks[0]!.handle, 'the full first chunk is still shared');
  t.not(after.chunks[1]!.handle, orig.chunks[1]!.handle, 'the last chunk is a copy under a new handle');
  t.equal(after.chunks[1]!.replicas.length, 3);
  t.same((await statOf('/tree-snap/a.bin')).chunks.map((c) => [c.handle, c.version, c.length]), copy.chunks.map((c) => [c.handle, c.version, c.length]), 'the snapshot is unchanged');
  t.ok((await cat('/tree/a.bin')).equals(Buffer.concat([a, more])), 'the original reads back with the append');
  t.ok((await cat('/tree-snap/a.bin')).equals(a), 'the snapshot reads back as it was');

  // Delete the original: only what nobody shares goes; the snapshot still reads after garbage collection.
  const ownChunk = after.chunks[1]!.handle;
  const holding = () => cluster.chunkservers.filter((p) => existsSync(join(cluster.dir, p!.id, 'chunks', `${ownChunk}.chunk`))).length;
  t.equal(holding(), 3, 'the copy is on three disks');
  t.equal((await cluster.dfs(['rm', '-r', '--skip-trash', '/tree'])).code, 0);
  // Garbage collection ran: the original's own last chunk (the copy) is gone from every disk.
  await waitFor(() => holding() === 0, 60_000, 'the deleted file\'s own chunk to be collected');
  t.ok((await cat('/tree-snap/a.bin')).equals(a), 'the snapshot still reads');
  t.ok((await cat('/tree-snap/sub/b.bin')).equals(b));
  t.ok((await statOf('/tree-snap/a.bin')).chunks.every((c) => c.replicas.length === 3 && !(c as ChunkView & { shared?: number }).shared), 'its chunks are its own now, with every replica');
});

t.test('setrep -w below a snapshot\'s replication converges: the shared chunks keep the snapshot\'s, and it says so', async (t) => {
  const data = randomBytesSeeded(200 * 1024, 21); // two chunks
  t.equal((await cluster.dfs(['put', '-', '/rep/big.bin'], { input: data })).code, 0);
  t.equal((await cluster.dfs(['snapshot', '/rep', '/rep-mon'])).code, 0);
  const r = await cluster.dfs(['setrep', '-w', '--timeout', '60', '2', '/rep/big.bin']);
  t.equal(r.code, 0, `it converges (${r.stderr})`);
  t.match(r.stdout.toString(), /converged: 0 chunks with 2 replicas each; 2 shared with a snapshot of higher replication keep that/);
  const fsck = JSON.parse((await cluster.dfs(['fsck', '/rep', '--json'])).stdout.toString()) as { overReplicated: number; underReplicated: number; keptHigher?: number };
  t.same([fsck.overReplicated, fsck.underReplicated, fsck.keptHigher], [0, 0, 2], 'fsck: nothing over- or under-replicated; 2 chunks kept at the snapshot\'s replication');
  t.match((await cluster.dfs(['fsck', '/rep'])).stdout.toString(), /2 shared with a snapshot of higher replication, kept at that/);
  t.ok((await statOf('/rep/big.bin')).chunks.every((c) => c.replicas.length === 3), 'the shared chunks still have 3 replicas');

  // The snapshot down to 2 as well: now the chunks go down to 2.
  const s = await cluster.dfs(['setrep', '-w', '--timeout', '60', '2', '/rep-mon/big.bin']);
  t.equal(s.code, 0, s.stderr);
  t.match(s.stdout.toString(), /converged: 2 chunks with 2 replicas each\n/);
  t.ok((await statOf('/rep/big.bin')).chunks.every((c) => c.replicas.length === 2), 'both files\' chunks have 2 replicas');
  t.ok((await cat('/rep-mon/big.bin')).equals(data) && (await cat('/rep/big.bin')).equals(data), 'both read back');
});
