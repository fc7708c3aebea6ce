// The copier's bandwidth cap (chunkserver/copier.ts): two copies at once share one limiter, and the
// time it makes them wait adds up to what they received at the capped rate. The clock is a fake
// one, so nothing here depends on how fast this machine is.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { Copier } from '../../chunkserver/copier.js';
import { ChunkStore, type StoredChunk } from '../../chunkserver/store/index.js';
import { BlockHasher, chunkChecksum, initChecksums } from '../../common/checksum.js';
import { closeHttpAgent } from '../../common/http.js';
import type { Logger } from '../../common/log.js';
import { MiB, RateLimiter } from '../../common/rate.js';
import { FakeClock } from '../helpers/clock.js';
import { mulberry32 } from '../helpers/rng.js';

await initChecksums();

const noop = (): void => undefined;
const quiet = { info: noop, warn: noop, error: noop, debug: noop, trace: noop, fatal: noop, child: () => quiet } as unknown as Logger;

function bytesFor(handle: number, size: number): Buffer {
  const next = mulberry32(handle);
  return Buffer.from(Array.from({ length: size }, () => Math.floor(next() * 256)));
}

function checksumOf(data: Buffer): string {
  const h = new BlockHasher();
  h.update(data);
  return chunkChecksum(h.finish());
}

/** A stand-in source chunkserver: serves GET /v1/chunks/:handle in 64 KiB writes. */
async function source(chunks: Map<number, Buffer>): Promise<{ server: Server; addr: string }> {
  const server = createServer((req, res) => {
    const handle = Number(/^\/v1\/chunks\/(\d+)/.exec(req.url ?? '')?.[1]);
    const data = chunks.get(handle);
    if (!data) {
      res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { code: 'CHUNK_NOT_FOUND', message: 'no' } }));
      return;
    }
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(data.length) });
    for (let off = 0; off < data.length; off += 64 * 1024) res.write(data.subarray(off, off + 64 * 1024));
    res.end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, addr: `127.0.0.1:${(server.address() as AddressInfo).port}` };
}

/** Counts what passes through it: every received byte must be charged to the one shared cap. */
class CountingLimiter extends RateLimiter {
  takenBytes = 0;
  override take(bytes: number, signal?: AbortSignal): Promise<void> {
    this.takenBytes += bytes;
    return super.take(bytes, signal);
  }
}

t.test('copies share the cap: they finish only once the clock has paid for every byte', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'dfs-copier-test-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const store = new ChunkStore(dir, quiet);
  await store.open();
  const chunks = new Map([[7, bytesFor(7, 3 * MiB + 5)], [8, bytesFor(8, 2 * MiB)]]);
  const total = [...chunks.values()].reduce((n, d) => n + d.length, 0);
  const src = await source(chunks);
  t.teardown(async () => {
    await closeHttpAgent();
    await new Promise((r) => src.server.close(r));
  });

  const clock = new FakeClock();
  const rate = new CountingLimiter(4, { clock, burstBytes: 0 });
  const stored: StoredChunk[] = [];
  let copier: Copier | undefined;
  const allStored = new Promise<void>((resolve) => {
    copier = new Copier(store, { concurrency: 2, maxQueued: 8, timeoutMs: 60_000, maxChunkBytes: 64 * MiB, rate }, (c) => {
      stored.push(c);
      if (stored.length === 2) resolve();
    }, quiet);
  });
  copier!.add([...chunks].map(([handle, data]) => ({ handle, version: 1, length: data.length, checksum: checksumOf(data), source: src.addr, timeoutMs: 60_000, token: 'tok' })));
  t.equal(copier!.running, 2, 'both copies run at once');

  // Time moves only here, 100 ms at a time, whenever a copy waits for the cap. (The real-time
  // timeout only keeps a failed copy from hanging the test: a failure is then reported.)
  let advancedMs = 0;
  const failed: number[] = [];
  while (stored.length < 2 && advancedMs < 100_000 && failed.length === 0) {
    await Promise.race([clock.untilSleeping(), allStored, new Promise((r) => setTimeout(r, 1000))]);
    failed.push(...copier!.takeFailed());
    if (clock.pending === 0) continue;
    clock.advance(100);
    advancedMs += 100;
  }
  t.same(failed, [], 'no copy failed');
  t.equal(stored.length, 2, 'both copies finished');
  t.equal(rate.takenBytes, total, 'every byte received was charged to the one limiter');
  t.ok(advancedMs >= (total / (4 * MiB)) * 1000, `not before ${total} bytes at 4 MiB/s had been paid for (${advancedMs} ms)`);
  for (const [handle, data] of chunks) {
    const got: Buffer[] = [];
    await store.readRange(handle, 0, data.length, async (b) => {
      got.push(Buffer.from(b));
    });
    t.ok(Buffer.concat(got).equals(data), `chunk ${handle} holds the source's bytes`);
  }
});

t.test('a copy gets the order\'s time from its arrival, its wait in the queue included', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'dfs-copier-test-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const store = new ChunkStore(dir, quiet);
  await store.open();
  // A source that never answers: only the order's time ends the copies.
  const server = createServer(() => undefined);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(async () => {
    await closeHttpAgent();
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });
  const addr = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  const copier = new Copier(store, { concurrency: 1, maxQueued: 8, timeoutMs: 600_000, maxChunkBytes: MiB }, noop, quiet);
  const started = process.hrtime.bigint();
  copier.add([1, 2].map((handle) => ({ handle, version: 1, length: 10, checksum: '0000000000000000', source: addr, timeoutMs: 300, token: 'tok' })));
  const failed: number[] = [];
  for (let i = 0; i < 100 && failed.length < 2; i++) {
    await new Promise((r) => setTimeout(r, 50));
    failed.push(...copier.takeFailed());
  }
  const tookMs = Number(process.hrtime.bigint() - started) / 1e6;
  t.same(failed.sort(), [1, 2], 'both copies failed');
  t.ok(tookMs < 3000, `within the order's time, not the server's 10 minutes, nor twice it for the queued one (${Math.round(tookMs)} ms)`);
});

/** An opened chunk store in a folder removed after the test. */
async function tempStore(t: Test): Promise<ChunkStore> {
  const dir = mkdtempSync(join(tmpdir(), 'dfs-copier-test-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const store = new ChunkStore(dir, quiet);
  await store.open();
  return store;
}

t.test('an order for a chunk held here at an older version replaces it; at its version or a later one it is reported again, not copied', async (t) => {
  const store = await tempStore(t);
  // Here: chunk 5 at version 2 (its first bytes, as a replica that missed appends) and chunk 6 at version 4.
  const stale = bytesFor(5, 1000);
  for (const [handle, version, data] of [[5, 2, stale], [6, 4, bytesFor(6, 500)]] as const) {
    const w = await store.createWriter(handle, version, MiB);
    await w.write(data);
    await w.commit(await w.finish());
  }
  store.takeChanges();
  const current = Buffer.concat([stale, bytesFor(55, 3000)]);
  const src = await source(new Map([[5, current], [6, bytesFor(66, 700)]]));
  t.teardown(async () => {
    await closeHttpAgent();
    await new Promise((r) => src.server.close(r));
  });
  const stored: StoredChunk[] = [];
  const copier = new Copier(store, { concurrency: 2, maxQueued: 8, timeoutMs: 60_000, maxChunkBytes: MiB }, (c) => stored.push(c), quiet);
  copier.add([
    { handle: 5, version: 3, length: current.length, checksum: checksumOf(current), source: src.addr, timeoutMs: 60_000, token: 'tok' },
    { handle: 6, version: 4, length: 700, checksum: checksumOf(bytesFor(66, 700)), source: src.addr, timeoutMs: 60_000, token: 'tok' },
  ]);
  t.equal(copier.running, 1, 'only the stale chunk is copied');
  const failed: number[] = [];
  for (let i = 0; i < 200 && stored.length < 2 && failed.length === 0; i++) {
    await new Promise((r) => setTimeout(r, 25));
    failed.push(...copier.takeFailed());
  }
  t.same(failed, [], 'no copy failed');
  t.same(stored.map((c) => [c.handle, c.version]).sort(), [[5, 3], [6, 4]], 'chunk 6 reported again as it is; chunk 5 stored at the new version');
  t.equal(store.get(5)?.version, 3, 'the copy replaced the stale replica');
  const got: Buffer[] = [];
  await store.readRange(5, 0, current.length, async (b) => void got.push(Buffer.from(b)));
  t.ok(Buffer.concat(got).equals(current), 'chunk 5 holds the source\'s current bytes');
  const changes = store.takeChanges();
  t.same(changes.added.map((c) => [c.handle, c.version]).sort(), [[5, 3], [6, 4]], 'the next heartbeat reports both');
  t.equal(await store.removeOrdered(5), true, 'a delete the master asks for after that report goes ahead');
  t.equal(store.get(5), undefined);
});

t.test('a delete the master asks for is not done while this server has stored the chunk again and not yet reported it', async (t) => {
  const store = await tempStore(t);
  const w = await store.createCopyWriter(9, 2, MiB);
  await w.write(bytesFor(9, 100));
  await w.commit(await w.finish());
  await t.rejects(store.createCopyWriter(9, 2, MiB), { code: 'CHUNK_EXISTS' }, 'no copy over the same version');
  await t.rejects(store.createCopyWriter(9, 1, MiB), { code: 'CHUNK_EXISTS' }, 'nor over a later one');
  t.equal(await store.removeOrdered(9), false, 'kept: the master has not heard of it');
  t.equal(store.get(9)?.version, 2);
  t.same(store.takeChanges().added.map((c) => c.handle), [9], 'and the next heartbeat reports it');
  t.equal(await store.removeOrdered(9), true, 'once reported, the master\'s delete goes ahead');
  t.equal(store.get(9), undefined);
});

t.test('an order for a later version of a chunk being copied runs after that copy; one queued gives way to a later one', async (t) => {
  const store = await tempStore(t);
  // The source answers each chunk's first request only when told: the copy stays running meanwhile.
  const v1 = bytesFor(5, 1000);
  const v2 = Buffer.concat([v1, bytesFor(52, 500)]);
  const v3 = Buffer.concat([v2, bytesFor(53, 500)]);
  let answer = 0;
  let release!: () => void;
  const held = new Promise<void>((r) => (release = r));
  const server = createServer((req, res) => {
    const length = Number(new URL(req.url!, 'http://x').searchParams.get('length'));
    const data = [v1, v2, v3].find((d) => d.length === length)!;
    const send = () => res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(data.length) }).end(data);
    if (answer++ === 0) void held.then(send);
    else send();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(async () => {
    await closeHttpAgent();
    await new Promise((r) => server.close(r));
  });
  const addr = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  const order = (version: number, data: Buffer) => ({ handle: 5, version, length: data.length, checksum: checksumOf(data), source: addr, timeoutMs: 60_000, token: 'tok' });
  const stored: StoredChunk[] = [];
  const copier = new Copier(store, { concurrency: 4, maxQueued: 8, timeoutMs: 60_000, maxChunkBytes: MiB }, (c) => stored.push(c), quiet);
  copier.add([order(1, v1)]);
  t.equal(copier.running, 1, 'version 1 is being copied');
  copier.add([order(1, v1)]);
  copier.add([order(2, v2)]);
  copier.add([order(3, v3)]);
  t.equal(copier.running, 1, 'the later versions wait for it, not beside it');
  release();
  const failed: number[] = [];
  for (let i = 0; i < 200 && stored.length < 2 && failed.length === 0; i++) {
    await new Promise((r) => setTimeout(r, 25));
    failed.push(...copier.takeFailed());
  }
  t.same(failed, [], 'no copy failed');
  t.same(stored.map((c) => c.version), [1, 3], 'version 1, then version 3 (which took version 2\'s place in the queue)');
  const got: Buffer[] = [];
  await store.readRange(5, 0, v3.length, async (b) => void got.push(Buffer.from(b)));
  t.ok(Buffer.concat(got).equals(v3), 'the chunk holds version 3\'s bytes');
});
