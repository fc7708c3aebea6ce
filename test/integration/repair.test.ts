// Re-replication, as a person would watch it: kill -9 a chunkserver, see the under-replicated
// count rise and fall back to zero, then restart it and see its surplus replicas go away.
import t from 'tap';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytesSeeded, TestCluster, waitFor } from '../helpers/cluster.js';

const CHUNK = 128 * 1024;

interface Stat { chunks: { handle: number; token: string; replicas: { id: string }[] }[] }

t.test('kill -9 a chunkserver: its chunks are copied back to 3 replicas; it comes back: surplus replicas go', async (t) => {
  const c = await TestCluster.start({ chunkservers: 4, chunkSizeBytes: CHUNK, deadTimeoutMs: 2000 });
  t.teardown(() => c.stop());
  const a = randomBytesSeeded(12 * CHUNK + 5, 31);
  const b = randomBytesSeeded(5 * CHUNK, 32);
  t.equal((await c.dfs(['put', '-', '/r/a.bin'], { input: a })).code, 0);
  t.equal((await c.dfs(['put', '-', '/r/b.bin'], { input: b })).code, 0);
  const stat = async (p: string) => JSON.parse((await c.dfs(['stat', '--json', p])).stdout.toString()) as Stat;

  // The victim: the server holding the most replicas.
  const before = [...(await stat('/r/a.bin')).chunks, ...(await stat('/r/b.bin')).chunks];
  const counts = new Map<string, number>();
  for (const ch of before) for (const r of ch.replicas) counts.set(r.id, (counts.get(r.id) ?? 0) + 1);
  const victimId = [...counts].sort((x, y) => y[1] - x[1])[0]![0];
  const victimIndex = Number(victimId.slice(2)) - 1;
  const held = before.filter((ch) => ch.replicas.some((r) => r.id === victimId)).length;
  t.ok(held > 0, `${victimId} holds ${held} replicas`);
  await c.kill(c.chunkservers[victimIndex]!);

  // Declared dead within the dead timeout. The under-replicated window that follows can be
  // shorter than one `dfs status` (a process start) on a busy machine, so the repair itself is
  // checked below by the copies the master counts, not by catching that window.
  let peak = 0;
  await waitFor(async () => {
    const s = await c.status();
    peak = Math.max(peak, s.underReplicatedChunks);
    return s.chunkservers.find((x) => x.id === victimId)?.alive === false;
  }, 15_000, 'the dead server to be noticed');
  t.pass(`${victimId} was declared dead (under-replicated chunks seen at most: ${peak})`);
  const during = await c.dfs(['fsck', '/r', '--json']);
  const report = JSON.parse(during.stdout.toString()) as { files: number; chunks: number; missing: number; status: string };
  t.match(report, { files: 2, chunks: 18, missing: 0, status: 'HEALTHY' }, 'fsck: under-replicated is still healthy (every chunk readable)');
  await waitFor(async () => (await c.status()).underReplicatedChunks === 0, 60_000, 'under-replicated chunks to fall back to 0');
  t.pass('under-replicated count back to 0');
  const fsck = await c.dfs(['fsck']);
  t.equal(fsck.code, 0, fsck.stderr);
  t.match(fsck.stdout.toString(), /^files: 2 \(and 0 being written, not checked\): 2 healthy, 0 under-replicated, 0 missing, 0 corrupt\nchunks: 18: 0 under-replicated, 0 missing, 0 corrupt, \d+ over-replicated\nThe filesystem under path '\/' is HEALTHY\n$/);

  for (const p of ['/r/a.bin', '/r/b.bin']) {
    const s = await stat(p);
    t.ok(s.chunks.every((ch) => ch.replicas.length === 3 && !ch.replicas.some((r) => r.id === victimId)), `${p}: every chunk has 3 live replicas again, none on the dead server`);
    for (const ch of s.chunks) {
      for (const r of ch.replicas) t.ok(existsSync(join(c.dir, r.id, 'chunks', `${ch.handle}.chunk`)), `chunk ${ch.handle} is on disk at ${r.id}`);
    }
  }
  t.ok((await c.dfs(['cat', '/r/a.bin'])).stdout.equals(a), 'a.bin reads back byte-identical');
  t.ok((await c.dfs(['cat', '/r/b.bin'])).stdout.equals(b), 'b.bin reads back byte-identical');
  const status = await c.status() as unknown as { repair: { copiesDone: number } };
  t.ok(status.repair.copiesDone >= held, `status counts the copies (${status.repair.copiesDone} done)`);

  // The live view: frames a second apart, text or one JSON object a line; --count stops it.
  const watch = await c.dfs(['status', '--watch', '--count', '2']);
  t.equal(watch.code, 0, watch.stderr);
  t.equal(watch.stdout.toString().match(/^copy rate: .+\/s/gm)?.length, 2, 'two text frames, each with the copy rate');
  const watchJson = await c.dfs(['status', '--watch', '--json', '--count', '2']);
  const frames = watchJson.stdout.toString().trim().split('\n').map((l) => JSON.parse(l) as { repair: { bytesCopied: number } });
  t.equal(frames.length, 2);
  t.ok(frames.every((f) => f.repair.bytesCopied >= held * CHUNK / 2), 'bytes copied are reported');

  // Bring the dead server back: its replicas are now surplus, and go away.
  await c.startChunkserver(victimIndex);
  await waitFor(async () => {
    const all = [...(await stat('/r/a.bin')).chunks, ...(await stat('/r/b.bin')).chunks];
    return all.every((ch) => ch.replicas.length === 3);
  }, 30_000, 'every chunk to be back to exactly 3 replicas');
  t.pass('surplus replicas were dropped: every chunk has exactly 3');
  // Balancing may then move replicas back onto the returned (emptier) server: compare the disk
  // with the master's current view, until the two agree and nothing is moving.
  await waitFor(async () => {
    const s = await c.status() as unknown as { repair: { movesInFlight: number; copiesInFlight: number } };
    const now = [...(await stat('/r/a.bin')).chunks, ...(await stat('/r/b.bin')).chunks];
    const onDisk = new Set(readdirSync(join(c.dir, victimId, 'chunks')).map((f) => Number(f.split('.')[0])));
    return s.repair.copiesInFlight === 0 && now.every((ch) => ch.replicas.length === 3 && onDisk.has(ch.handle) === ch.replicas.some((r) => r.id === victimId));
  }, 30_000, `${victimId}'s disk to hold exactly the replicas the master counts`);
  t.pass('the returning server deleted its surplus chunk files');
  t.ok((await c.dfs(['cat', '/r/a.bin'])).stdout.equals(a), 'a.bin still reads back byte-identical');
});

t.test('fsck names missing chunks and fails when a chunk has no live replica', async (t) => {
  const c = await TestCluster.start({ chunkservers: 1, replication: 1, chunkSizeBytes: CHUNK, deadTimeoutMs: 1500 });
  t.teardown(() => c.stop());
  t.equal((await c.dfs(['put', '-', '/only.bin'], { input: randomBytesSeeded(2 * CHUNK, 5) })).code, 0);
  t.equal((await c.dfs(['fsck', '/only.bin'])).code, 0, 'healthy while its only server lives');
  await c.kill(c.chunkservers[0]!);
  await waitFor(async () => (await c.dfs(['fsck'])).code === 1, 15_000, 'fsck to see the chunks missing');
  const r = await c.dfs(['fsck']);
  t.match(r.stdout.toString(), /^\/only\.bin: MISSING \(2 of 2 chunks\)\n {2}chunk #0 \(handle \d+\) MISSING\n {2}chunk #1 \(handle \d+\) MISSING\n/, 'the file and each missing chunk are named');
  t.match(r.stdout.toString(), /\nfiles: 1 \(and 0 being written, not checked\): 0 healthy, 0 under-replicated, 1 missing, 0 corrupt\n/);
  t.match(r.stdout.toString(), /The filesystem under path '\/' is CORRUPT\n$/);
  t.equal((await c.dfs(['fsck', '/nope'])).stderr.replace(/ \(request [0-9a-f]{16}\)\n$/, '\n'), 'dfs: /nope does not exist\n');
});

t.test('a corrupt replica is replaced by a fresh copy', async (t) => {
  const c = await TestCluster.start({ chunkservers: 4, chunkSizeBytes: CHUNK });
  t.teardown(() => c.stop());
  const data = randomBytesSeeded(2 * CHUNK + 3, 41);
  t.equal((await c.dfs(['put', '-', '/c.bin'], { input: data })).code, 0);
  const s = JSON.parse((await c.dfs(['stat', '--json', '/c.bin'])).stdout.toString()) as Stat;
  const chunk = s.chunks[0]!;
  const bad = chunk.replicas[0]!.id;
  // Damage it on disk, then read it directly so the server finds out and reports it.
  const { openSync, writeSync, closeSync } = await import('node:fs');
  const fd = openSync(join(c.dir, bad, 'chunks', `${chunk.handle}.chunk`), 'r+');
  writeSync(fd, Buffer.from([0xde, 0xad]), 0, 2, 100);
  closeSync(fd);
  const addr = c.chunkservers[Number(bad.slice(2)) - 1]!.addr;
  const res = await fetch(`http://${addr}/v1/chunks/${chunk.handle}`, { headers: { 'x-dfs-token': chunk.token } });
  t.equal(res.status, 502, 'the damaged replica refuses to serve');
  await res.arrayBuffer();
  let last = '';
  await waitFor(async () => {
    const now = JSON.parse((await c.dfs(['stat', '--json', '/c.bin'])).stdout.toString()) as Stat;
    last = JSON.stringify(now.chunks[0]!.replicas);
    return now.chunks[0]!.replicas.length === 3;
  }, 30_000, 'a new replica to replace the corrupt one').catch((err: Error) => {
    throw new Error(`${err.message}; replicas ${last}\n${c.problems().join('\n')}`);
  });
  t.pass('three replicas again');
  // Every replica, the new one included (it may be on the server whose copy was damaged: the
  // damaged file was moved to corrupt/), serves the right bytes.
  const now = JSON.parse((await c.dfs(['stat', '--json', '/c.bin'])).stdout.toString()) as { chunks: { handle: number; token: string; replicas: { id: string; addr: string }[] }[] };
  for (const r of now.chunks[0]!.replicas) {
    const got = Buffer.from(await (await fetch(`http://${r.addr}/v1/chunks/${chunk.handle}`, { headers: { 'x-dfs-token': now.chunks[0]!.token } })).arrayBuffer());
    t.ok(got.equals(data.subarray(0, CHUNK)), `${r.id} serves the chunk's bytes`);
  }
  t.equal(readdirSync(join(c.dir, bad, 'corrupt')).length, 1, 'the damaged file is kept in corrupt/');
  t.ok((await c.dfs(['cat', '/c.bin'])).stdout.equals(data));
});
