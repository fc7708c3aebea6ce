// The scrubber with real processes: damage one replica on disk and never read the file; the
// chunkserver's background verification finds it, quarantines it, reports it, and the master
// copies a good replica back, all before any client looks.
import t from 'tap';
import { closeSync, existsSync, openSync, readdirSync, readFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytesSeeded, TestCluster, waitFor } from '../helpers/cluster.js';

const CHUNK = 1024 * 1024;

interface Stat { chunks: { handle: number; length: number; replicas: { id: string; addr: string }[] }[] }

t.test('a replica damaged on disk is found by the scrubber and replaced without any read', async (t) => {
  const c = await TestCluster.start({
    chunkservers: 4, chunkSizeBytes: CHUNK,
    // Fast enough that a pass over a few MiB takes a fraction of a second, once a second.
    chunkserverArgs: ['--scrub-rate', '64', '--scrub-interval-ms', '1000'],
  });
  t.teardown(() => c.stop());
  const data = randomBytesSeeded(3 * CHUNK + 12_345, 51);
  const put = await c.dfs(['put', '-', '/s/data.bin'], { input: data });
  t.equal(put.code, 0, put.stderr);
  const stat = async (): Promise<Stat> => JSON.parse((await c.dfs(['stat', '--json', '/s/data.bin'])).stdout.toString()) as Stat;
  const before = await stat();
  t.equal(before.chunks.length, 4);
  const chunk = before.chunks[1]!;
  const bad = chunk.replicas[0]!.id;
  const badDir = join(c.dir, bad);

  // Damage one byte in the middle of the data region of that replica's file.
  const fd = openSync(join(badDir, 'chunks', `${chunk.handle}.chunk`), 'r+');
  const at = Math.floor(chunk.length / 2);
  writeSync(fd, Buffer.from([data[CHUNK + at]! ^ 0xff]), 0, 1, at);
  closeSync(fd);

  const quarantined = () => readdirSync(join(badDir, 'corrupt')).filter((f) => f.startsWith(`${chunk.handle}.`));
  await waitFor(() => quarantined().length === 1, 30_000, `${bad}'s scrubber to quarantine chunk ${chunk.handle}`).catch((err: Error) => {
    throw new Error(`${err.message}\n${c.problems().join('\n')}`);
  });
  t.pass(`${bad} moved the damaged replica to corrupt/ (${quarantined()[0]})`);

  let last = '';
  await waitFor(async () => {
    const s = await stat();
    const ch = s.chunks[1]!;
    last = JSON.stringify(ch.replicas);
    return ch.replicas.length === 3 && (await c.status()).underReplicatedChunks === 0;
  }, 60_000, 'the chunk to be back at 3 replicas').catch((err: Error) => {
    throw new Error(`${err.message}; replicas ${last}\n${c.problems().join('\n')}`);
  });
  t.pass('three live replicas again');

  // Every replica the master counts is a file on a live server holding the original bytes
  // (the new one may be on the server whose damaged copy went to corrupt/).
  const after = (await stat()).chunks[1]!;
  const want = data.subarray(CHUNK, 2 * CHUNK);
  for (const r of after.replicas) {
    const file = join(c.dir, r.id, 'chunks', `${chunk.handle}.chunk`);
    t.ok(existsSync(file), `${r.id} holds chunk ${chunk.handle}`);
    t.ok(readFileSync(file).subarray(0, CHUNK).equals(want), `${r.id}'s copy has the original bytes`);
  }
  const fsck = await c.dfs(['fsck', '/s', '--json']);
  t.match(JSON.parse(fsck.stdout.toString()), { chunks: 4, underReplicated: 0, missing: 0, status: 'HEALTHY' }, 'fsck: healthy');

  // The scrubber says what it did, in the log and in /metrics.
  const badProc = c.chunkservers[Number(bad.slice(2)) - 1]!;
  const metrics = await (await fetch(`http://${badProc.addr}/metrics`)).text();
  t.match(metrics, /^dfs_chunkserver_scrub_corrupt_total\{role="chunkserver"\} 1$/m, 'the corrupt replica is counted');
  t.match(metrics, /^dfs_chunkserver_scrub_passes_total\{role="chunkserver"\} [1-9]/m, 'passes are counted');
  // Log lines go out within LOG_FLUSH_MS of being written (common/log.ts): the counter can be ahead of its line.
  const passes = () => badProc.output.filter((l) => l.includes('"scrub pass done"')).map((l) => JSON.parse(l) as { corrupt?: number });
  await waitFor(() => passes().some((p) => p.corrupt === 1), 5000, 'the pass that found the corrupt replica in the log');
  t.pass('a pass logged the corrupt replica it found');

  const out = join(c.dir, 'data.out');
  const get = await c.dfs(['get', '/s/data.bin', out]);
  t.equal(get.code, 0, get.stderr);
  t.ok(readFileSync(out).equals(data), 'dfs get returns the original bytes');
});

t.test('with the default settings, a flipped byte in a replica nobody reads is found within a minute', async (t) => {
  // No scrub options: what `dfs cluster` and a bare `dfs chunkserver` run.
  const c = await TestCluster.start({ chunkservers: 3, chunkSizeBytes: CHUNK });
  t.teardown(() => c.stop());
  const data = randomBytesSeeded(CHUNK, 52);
  const put = await c.dfs(['put', '-', '/quiet.bin'], { input: data });
  t.equal(put.code, 0, put.stderr);
  const stat = JSON.parse((await c.dfs(['stat', '--json', '/quiet.bin'])).stdout.toString()) as Stat;
  const chunk = stat.chunks[0]!;
  const badDir = join(c.dir, chunk.replicas[0]!.id);
  // Wait for the first pass (it starts with the server) to have read the chunk, so only a later pass can find the damage.
  await new Promise((r) => setTimeout(r, 2000));
  const fd = openSync(join(badDir, 'chunks', `${chunk.handle}.chunk`), 'r+');
  writeSync(fd, Buffer.from([data[1000]! ^ 0x01]), 0, 1, 1000);
  closeSync(fd);
  const flippedAt = Date.now();
  await waitFor(() => readdirSync(join(badDir, 'corrupt')).some((f) => f.startsWith(`${chunk.handle}.`)), 60_000, 'the scrubber to find the flipped byte');
  t.pass(`found ${((Date.now() - flippedAt) / 1000).toFixed(1)} s after the flip, without a read`);
});
