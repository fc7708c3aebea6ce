// The copier's bandwidth cap (chunkserver/copier.ts): two copies at once share one limiter, and the
// time it makes them wait adds up to what they received at the capped rate. The clock is a fake
// one, so nothing here depends on how fast this machine is.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
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
  copier.add([1, 2].map((handle) => ({ handle, version: 1, length: 10, checksum: '0000000000000000', source: addr, timeoutMs: 300 })));
  const failed: number[] = [];
  for (let i = 0; i < 100 && failed.length < 2; i++) {
    await new Promise((r) => setTimeout(r, 50));
    failed.push(...copier.takeFailed());
  }
  const tookMs = Number(process.hrtime.bigint() - started) / 1e6;
  t.same(failed.sort(), [1, 2], 'both copies failed');
  t.ok(tookMs < 3000, `within the order's time, not the server's 10 minutes, nor twice it for the queued one (${Math.round(tookMs)} ms)`);
});
