// The read path end to end: ranged chunk GETs across read-batch edges, a reader hanging up
// mid-chunk, and DfsClient.get (with the next chunk's read asked for early) against damaged
// replicas, a slow sink and a download that cannot finish.
import t, { type Test } from 'tap';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { request } from 'undici';
import { READ_BATCH_BYTES } from '../../chunkserver/store/index.js';
import { DfsClient } from '../../cli/client.js';
import { initChecksums } from '../../common/checksum.js';
import { DfsError } from '../../common/errors.js';
import { closeHttpAgent } from '../../common/http.js';
import type { StatReply } from '../../common/protocol.js';
import { randomBytesSeeded, TestCluster } from '../helpers/cluster.js';

await initChecksums();
t.teardown(() => closeHttpAgent());

/** Three read batches and a bit: every chunk crosses batch edges, and the last one is short. */
const CHUNK = 3 * READ_BATCH_BYTES + 4096;

/** Damages one byte of a replica's file (chunks here are a few MiB: read and written whole). */
function flipByte(file: string, offset: number): void {
  const b = readFileSync(file);
  b[offset]! ^= 0xff;
  writeFileSync(file, b);
}

/** A sink that keeps what it is given; with `delayMs` it takes its time over each write. */
function collector(delayMs = 0): { sink: Writable; bytes(): Buffer } {
  const got: Buffer[] = [];
  const sink = new Writable({
    highWaterMark: 64 * 1024,
    write(piece: Buffer, _enc, done) {
      got.push(Buffer.from(piece));
      if (delayMs > 0) setTimeout(done, delayMs);
      else done();
    },
  });
  return { sink, bytes: () => Buffer.concat(got) };
}

async function setup(t: Test, size: number, seed: number): Promise<{ c: TestCluster; data: Buffer; info: StatReply; client: DfsClient }> {
  const c = await TestCluster.start({ chunkservers: 4, chunkSizeBytes: CHUNK });
  t.teardown(() => c.stop());
  const data = randomBytesSeeded(size, seed);
  const put = await c.dfs(['put', '-', '/f.bin'], { input: data });
  t.equal(put.code, 0, put.stderr);
  const client = new DfsClient(c.masters.split(','));
  return { c, data, info: await client.stat('/f.bin', true), client };
}

t.test('ranged chunk reads across read-batch edges return exactly the asked bytes', async (t) => {
  const { data, info } = await setup(t, CHUNK, 41);
  const chunk = info.chunks![0]!;
  const addr = chunk.replicas[0]!.addr;
  const B = READ_BATCH_BYTES;
  const ranges: Array<[number, number]> = [
    [0, CHUNK], [0, B], [0, B + 1], [B - 1, 2], [B - 1, B + 2], [B, B], [B + 1, 2 * B - 1], [2 * B - 7, CHUNK - 2 * B + 7], [3 * B, 4096], [CHUNK - 1, 1], [12345, 2 * B + 99],
  ];
  for (const [offset, length] of ranges) {
    const res = await request(`http://${addr}/v1/chunks/${chunk.handle}?offset=${offset}&length=${length}`, { headers: { 'x-dfs-token': chunk.token } });
    t.equal(res.statusCode, 200, `${offset}+${length}: 200`);
    const got = Buffer.from(await res.body.arrayBuffer());
    t.ok(got.equals(data.subarray(offset, offset + length)), `${offset}+${length}: exactly those bytes`);
  }
});

t.test('a reader that hangs up mid-chunk leaves the chunkserver serving exact bytes', async (t) => {
  const { data, info } = await setup(t, CHUNK, 42);
  const chunk = info.chunks![0]!;
  const addr = chunk.replicas[0]!.addr;
  for (let i = 0; i < 5; i++) {
    const res = await request(`http://${addr}/v1/chunks/${chunk.handle}`, { headers: { 'x-dfs-token': chunk.token } });
    for await (const _piece of res.body) break; // leaving the loop destroys the body: the socket closes
  }
  const res = await request(`http://${addr}/v1/chunks/${chunk.handle}`, { headers: { 'x-dfs-token': chunk.token } });
  t.ok(Buffer.from(await res.body.arrayBuffer()).equals(data), 'a full read afterwards is exact');
});

t.test('get of a multi-chunk file is exact through a slow sink', async (t) => {
  const { data, client } = await setup(t, 4 * CHUNK + 777, 43);
  const { sink, bytes } = collector(1);
  let last = 0;
  await client.get('/f.bin', sink, { onProgress: (n) => (last = n) });
  sink.end();
  await finished(sink); // get hands over every byte; a slow sink may still be writing them
  t.ok(bytes().equals(data), 'every byte, in order');
  t.equal(last, data.length, 'progress reaches the file size');
});

t.test('get fails over from replicas damaged in the first batch (the early read) and mid-chunk', async (t) => {
  const { c, data, info, client } = await setup(t, 4 * CHUNK + 777, 44);
  // Two of three replicas of chunk 1 fail in their first batch (so the early read asked for it
  // while chunk 0 streamed fails wherever it went); two of chunk 2 fail in their second batch,
  // after some bytes were sent, so the read resumes on the third replica at that offset.
  const damage = [[1, 100], [2, READ_BATCH_BYTES + 70_000]] as const;
  for (const [index, offset] of damage) {
    const chunk = info.chunks![index]!;
    for (const r of chunk.replicas.slice(0, 2)) flipByte(join(c.dir, r.id, 'chunks', `${chunk.handle}.chunk`), offset);
  }
  // A slow sink keeps the early read waiting long enough for its server to find the damage and
  // cut the connection before its turn.
  for (const delayMs of [2, 0]) {
    const { sink, bytes } = collector(delayMs);
    await client.get('/f.bin', sink);
    sink.end();
    await finished(sink);
    t.ok(bytes().equals(data), `every byte, in order, from the good replicas (sink delay ${delayMs} ms)`);
  }
});

t.test('a get that cannot finish rejects once, without an unhandled rejection, after the good prefix', async (t) => {
  const { c, data, info, client } = await setup(t, 3 * CHUNK, 45);
  let unhandled: unknown;
  const onUnhandled = (err: unknown): void => {
    unhandled = err;
  };
  process.on('unhandledRejection', onUnhandled);
  t.teardown(() => process.off('unhandledRejection', onUnhandled));
  const last = info.chunks![2]!;
  for (const r of last.replicas) flipByte(join(c.dir, r.id, 'chunks', `${last.handle}.chunk`), 10);
  const { sink, bytes } = collector();
  const err = await client.get('/f.bin', sink).then(() => undefined, (e: unknown) => e);
  t.ok(err instanceof DfsError, `the get fails: ${(err as Error)?.message}`);
  t.ok(bytes().equals(data.subarray(0, 2 * CHUNK)), 'the sink got the first two chunks, exact, and nothing of the third');
  await new Promise((r) => setTimeout(r, 100));
  t.equal(unhandled, undefined, 'no unhandled rejection');
});
