// The machine's own ceilings, measured in the same run with the same sizes as the dfs figures:
// what the disk does with one and with three fsynced sequential writers (three also with
// O_DIRECT, as chunkservers write where the file system allows), a sequential read, and
// what undici moves over loopback HTTP to and from another process. A dfs figure divided by its
// ceiling is comparable across machines; the raw MiB/s are not.
import { randomFillSync } from 'node:crypto';
import { constants as fsc, rmSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { Readable } from 'node:stream';
import { request } from 'undici';
import { alignedBuffer, DIRECT_ALIGN_BYTES } from '../../chunkserver/store/index.js';
import { buildUrl, httpAgent, readJson } from '../../common/http.js';
import { killChild, spawnTracked } from './cleanup.js';
import { figureFromOps, figureFromRuns, type Figure } from './report.js';
import { dropPageCache, type CacheState } from './source.js';
import { MiB, mibPerSec, timeOps } from './stats.js';

export interface CeilingOptions {
  dir: string;
  sizeBytes: number;
  chunkSizeBytes: number;
  runs: number;
  dropCaches: boolean;
  /** Round trips for the request-rate ceiling, and how many at once for its concurrent half. */
  pingOps: number;
  inflight: number;
  log: (line: string) => void;
}

/** Random, so no layer below (a thin-provisioned or compressing disk) gets to skip the work. */
function randomPiece(): Buffer {
  return randomFillSync(Buffer.allocUnsafe(MiB));
}

/**
 * `copies` writers at once, each `sizeBytes` to a file of its own in 1 MiB writes, with an fsync
 * after every chunk and at the end, as a chunkserver does per chunk. Answers MiB/s per copy.
 * `direct`: with O_DIRECT, from page-aligned memory, as chunkservers write where they can
 * (undefined when this file system refuses it).
 */
async function writeCopies(dir: string, copies: number, sizeBytes: number, chunkSizeBytes: number, direct = false): Promise<{ mibPerSec: number; files: string[] } | undefined> {
  const random = randomPiece();
  const piece = direct ? alignedBuffer(random.length) : random;
  if (direct) random.copy(piece);
  const files = Array.from({ length: copies }, (_, i) => join(dir, `ceiling-${copies}-${i}.bin`));
  if (direct) {
    try {
      await (await open(files[0]!, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_DIRECT)).close();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EINVAL') throw err;
      rmSync(files[0]!, { force: true }); // the kernel creates the file before it refuses the flag
      return undefined;
    }
    // O_DIRECT writes whole blocks: sizes that are not a multiple of 4 KiB round up.
    sizeBytes = Math.ceil(sizeBytes / DIRECT_ALIGN_BYTES) * DIRECT_ALIGN_BYTES;
    chunkSizeBytes = Math.ceil(chunkSizeBytes / DIRECT_ALIGN_BYTES) * DIRECT_ALIGN_BYTES;
  }
  const start = performance.now();
  await Promise.all(files.map(async (file) => {
    const fh = await open(file, direct ? fsc.O_WRONLY | fsc.O_CREAT | fsc.O_TRUNC | fsc.O_DIRECT : 'w');
    try {
      let sinceSync = 0;
      for (let pos = 0; pos < sizeBytes;) {
        const n = Math.min(piece.length, sizeBytes - pos, chunkSizeBytes - sinceSync);
        await fh.write(piece, 0, n, pos);
        pos += n;
        sinceSync += n;
        if (sinceSync === chunkSizeBytes || pos === sizeBytes) {
          await fh.sync();
          sinceSync = 0;
        }
      }
    } finally {
      await fh.close();
    }
  }));
  return { mibPerSec: mibPerSec(sizeBytes, performance.now() - start), files };
}

async function readSequential(file: string, sizeBytes: number, dropCaches: boolean): Promise<{ mibPerSec: number; cache: CacheState }> {
  const cache = dropPageCache(dropCaches);
  const buf = Buffer.allocUnsafe(MiB);
  const start = performance.now();
  const fh = await open(file, 'r');
  let total = 0;
  try {
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, buf.length, total);
      if (bytesRead === 0) break;
      total += bytesRead;
    }
  } finally {
    await fh.close();
  }
  if (total !== sizeBytes) throw new Error(`read ${total} bytes back from ${file}, wrote ${sizeBytes}`);
  return { mibPerSec: mibPerSec(sizeBytes, performance.now() - start), cache };
}

interface LoopbackServer { addr: string; stop(): Promise<void> }

/** The loopback server as its own process, as a chunkserver is: one core each for client and server. */
async function startLoopbackServer(): Promise<LoopbackServer> {
  const script = join(import.meta.dirname, 'loopback-server.js');
  const child = spawnTracked(process.execPath, [script], { stdio: ['pipe', 'pipe', 'inherit'] });
  const first = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout! }).once('line', resolve);
    child.once('exit', (code) => reject(new Error(`the loopback server exited (${code}) before listening`)));
  });
  const { addr } = JSON.parse(first) as { addr: string };
  return { addr, stop: () => killChild(child) };
}

async function httpPut(addr: string, sizeBytes: number): Promise<number> {
  const piece = randomPiece();
  async function* body(): AsyncGenerator<Buffer> {
    for (let sent = 0; sent < sizeBytes; sent += piece.length) yield piece.subarray(0, Math.min(piece.length, sizeBytes - sent));
  }
  const start = performance.now();
  const res = await request(buildUrl(addr, '/sink'), { method: 'PUT', dispatcher: httpAgent(), body: Readable.from(body()) });
  const reply = (await readJson(res.body)) as { bytes: number };
  if (reply.bytes !== sizeBytes) throw new Error(`loopback server received ${reply.bytes} bytes of ${sizeBytes}`);
  return mibPerSec(sizeBytes, performance.now() - start);
}

async function httpGet(addr: string, sizeBytes: number): Promise<number> {
  const start = performance.now();
  const res = await request(buildUrl(addr, '/source', { bytes: sizeBytes }), { method: 'GET', dispatcher: httpAgent() });
  let total = 0;
  for await (const piece of res.body) total += (piece as Buffer).length;
  if (total !== sizeBytes) throw new Error(`loopback server sent ${total} bytes of ${sizeBytes}`);
  return mibPerSec(sizeBytes, performance.now() - start);
}

async function ping(addr: string): Promise<void> {
  const res = await request(buildUrl(addr, '/ping'), { method: 'GET', dispatcher: httpAgent() });
  await res.body.dump();
}

/** Every ceiling, `runs` times each for the byte-moving ones (median, min, max). */
export async function measureCeilings(o: CeilingOptions): Promise<Figure[]> {
  const write1: number[] = [], write3: number[] = [], write3direct: number[] = [], read: number[] = [], put: number[] = [], get: number[] = [];
  let cache: CacheState = 'cold';
  for (let run = 0; run < o.runs; run++) {
    const one = (await writeCopies(o.dir, 1, o.sizeBytes, o.chunkSizeBytes))!;
    write1.push(one.mibPerSec);
    const back = await readSequential(one.files[0]!, o.sizeBytes, o.dropCaches);
    read.push(back.mibPerSec);
    if (back.cache === 'warm') cache = 'warm';
    rmSync(one.files[0]!);
    const three = (await writeCopies(o.dir, 3, o.sizeBytes, o.chunkSizeBytes))!;
    write3.push(three.mibPerSec);
    for (const f of three.files) rmSync(f);
    const threeDirect = await writeCopies(o.dir, 3, o.sizeBytes, o.chunkSizeBytes, true);
    if (threeDirect) write3direct.push(threeDirect.mibPerSec);
    for (const f of threeDirect?.files ?? []) rmSync(f);
    o.log(`ceilings run ${run + 1}/${o.runs}: write ${write1.at(-1)!.toFixed(0)} MiB/s, 3 writers ${write3.at(-1)!.toFixed(0)} MiB/s each`
      + `${threeDirect ? ` (O_DIRECT ${threeDirect.mibPerSec.toFixed(0)})` : ''}, read ${read.at(-1)!.toFixed(0)} MiB/s (${back.cache})`);
  }
  const server = await startLoopbackServer();
  try {
    for (let run = 0; run < o.runs; run++) {
      put.push(await httpPut(server.addr, o.sizeBytes));
      get.push(await httpGet(server.addr, o.sizeBytes));
    }
    const pingSeq = await timeOps(o.pingOps, 1, () => ping(server.addr));
    const pingPar = await timeOps(o.pingOps, o.inflight, () => ping(server.addr));
    const size = { sizeBytes: o.sizeBytes };
    return [
      figureFromRuns('ceiling.write1', 'disk: 1 writer, fsync per chunk', 'MiB/s', write1, { details: { ...size, chunkSizeBytes: o.chunkSizeBytes } }),
      figureFromRuns('ceiling.write3', 'disk: 3 writers at once (MiB/s each)', 'MiB/s', write3, { details: { ...size, chunkSizeBytes: o.chunkSizeBytes } }),
      ...(write3direct.length ? [figureFromRuns('ceiling.write3-direct', 'disk: 3 writers at once, O_DIRECT (each)', 'MiB/s', write3direct, { details: { ...size, chunkSizeBytes: o.chunkSizeBytes } })] : []),
      figureFromRuns('ceiling.read', 'disk: sequential read', 'MiB/s', read, { cache, details: size }),
      figureFromRuns('ceiling.http-put', 'loopback HTTP (undici) upload', 'MiB/s', put, { details: size }),
      figureFromRuns('ceiling.http-get', 'loopback HTTP (undici) download', 'MiB/s', get, { details: size }),
      figureFromOps('ceiling.http-rtt-1', 'loopback HTTP round trips, sequential', pingSeq),
      figureFromOps(`ceiling.http-rtt-${o.inflight}`, `loopback HTTP round trips, ${o.inflight} in flight`, pingPar),
    ];
  } finally {
    await server.stop();
  }
}
