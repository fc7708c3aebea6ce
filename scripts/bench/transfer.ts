// Upload and download throughput: 1 client moving the whole source file, and N clients each
// moving one slice of it at the same time, `runs` times each. Every download is hashed and
// compared with what was uploaded: a wrong byte stops the benchmark.
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { formatBytes } from '../../common/config.js';
import { spawnTracked } from './cleanup.js';
import type { ClusterContext } from './context.js';
import { addRatios, figureFromRuns, type Figure } from './report.js';
import { dropPageCache, type CacheState, type Slice, type SourceFile } from './source.js';
import { mibPerSec } from './stats.js';
import type { TransferReply, TransferSpec } from './transfer-worker.js';

export interface TransferOptions extends ClusterContext {
  masters: string[];
  source: SourceFile;
  /** Concurrent clients of the second case (the first is always one client). */
  clients: number;
  runs: number;
  dropCaches: boolean;
}

/** Slow disks and a busy machine are fine; a hung transfer is not. */
const WORKER_TIMEOUT_MS = 20 * 60_000;

interface Worker { ready: Promise<void>; result: Promise<TransferReply>; go(): void }

function startWorker(spec: TransferSpec): Worker {
  const child = spawnTracked(process.execPath, [join(import.meta.dirname, 'transfer-worker.js'), JSON.stringify(spec)], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = createInterface({ input: child.stdout! });
  const ready = new Promise<void>((resolve, reject) => {
    lines.once('line', (l) => (l === 'ready' ? resolve() : reject(new Error(`transfer worker said ${l}`))));
    child.once('exit', (code) => reject(new Error(`transfer worker exited (${code}) before it was ready`)));
  });
  const result = new Promise<TransferReply>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${spec.op} ${spec.dfsPath} did not finish within ${WORKER_TIMEOUT_MS / 60_000} minutes`));
    }, WORKER_TIMEOUT_MS);
    let last: string | undefined;
    lines.on('line', (l) => (last = l));
    child.once('close', (code) => {
      clearTimeout(timer);
      try {
        resolve(JSON.parse(last ?? '') as TransferReply);
      } catch {
        reject(new Error(`${spec.op} ${spec.dfsPath}: the worker exited (${code}) without an answer`));
      }
    });
  });
  ready.catch(() => undefined);
  return { ready, result, go: () => child.stdin!.end('go\n') };
}

/** Runs the transfers side by side; answers the wall time from "go" to the last one done. */
async function runTogether(specs: TransferSpec[]): Promise<{ elapsedMs: number; replies: TransferReply[] }> {
  const workers = specs.map(startWorker);
  await Promise.all(workers.map((w) => w.ready));
  const start = performance.now();
  for (const w of workers) w.go();
  const replies = await Promise.all(workers.map((w) => w.result));
  const elapsedMs = performance.now() - start;
  replies.forEach((r, i) => {
    if (!r.ok) throw new Error(`${specs[i]!.op} ${specs[i]!.dfsPath} failed: ${r.error}`);
  });
  return { elapsedMs, replies };
}

interface Case { clients: number; slices: Slice[]; tag: string; label: string }

function cases(o: TransferOptions): Case[] {
  const whole: Slice = { offsetBytes: 0, lengthBytes: o.source.sizeBytes, hash: o.source.hash };
  const one: Case = { clients: 1, slices: [whole], tag: `1x${sizeTag(o.source.sizeBytes)}`, label: `1 client × ${formatBytes(o.source.sizeBytes)}` };
  if (o.clients === 1) return [one];
  const each = o.source.slices[0]!.lengthBytes;
  return [one, { clients: o.clients, slices: o.source.slices, tag: `${o.clients}x${sizeTag(each)}`, label: `${o.clients} clients × ${formatBytes(each)}` }];
}

/** 1073741824 → "1GiB": a compact size for figure ids. */
function sizeTag(bytes: number): string {
  return formatBytes(bytes).replace(/\.0 /, '').replace(' ', '');
}

async function uploadRun(o: TransferOptions, c: Case, dir: string): Promise<number> {
  const specs = c.slices.map((s, i): TransferSpec => ({
    op: 'put', masters: o.masters, dfsPath: `${dir}/c${i}.bin`, localFile: o.source.path, offsetBytes: s.offsetBytes, lengthBytes: s.lengthBytes, replication: o.replication,
  }));
  const { elapsedMs, replies } = await runTogether(specs);
  replies.forEach((r, i) => {
    if (r.ok && r.bytes !== c.slices[i]!.lengthBytes) throw new Error(`${specs[i]!.dfsPath}: stored ${r.bytes} bytes, sent ${c.slices[i]!.lengthBytes}`);
  });
  return mibPerSec(o.source.sizeBytes, elapsedMs);
}

async function downloadRun(o: TransferOptions, c: Case, dir: string): Promise<{ mibPerSec: number; cache: CacheState }> {
  const cache = dropPageCache(o.dropCaches);
  const specs = c.slices.map((s, i): TransferSpec => ({ op: 'get', masters: o.masters, dfsPath: `${dir}/c${i}.bin`, lengthBytes: s.lengthBytes }));
  const { elapsedMs, replies } = await runTogether(specs);
  replies.forEach((r, i) => {
    const want = c.slices[i]!;
    if (r.ok && (r.bytes !== want.lengthBytes || r.hash !== want.hash)) {
      throw new Error(`WRONG BYTES: ${specs[i]!.dfsPath} came back as ${r.bytes} bytes with xxHash64 ${r.hash}; uploaded ${want.lengthBytes} bytes with xxHash64 ${want.hash}`);
    }
  });
  return { mibPerSec: mibPerSec(o.source.sizeBytes, elapsedMs), cache };
}

/** Upload runs, then a download of each run's files, per case; the files are removed after. */
export async function measureTransfers(o: TransferOptions): Promise<{ upload: Figure[]; download: Figure[] }> {
  const upload: Figure[] = [];
  const download: Figure[] = [];
  for (const c of cases(o)) {
    const dirs = Array.from({ length: o.runs }, (_, r) => `${o.root}/transfer/${c.tag}/run${r}`);
    const up: number[] = [];
    for (const dir of dirs) {
      up.push(await uploadRun(o, c, dir));
      o.log(`upload ${c.label}: ${up.at(-1)!.toFixed(1)} MiB/s`);
    }
    const down: number[] = [];
    let cache: CacheState = 'cold';
    for (const dir of dirs) {
      const d = await downloadRun(o, c, dir);
      down.push(d.mibPerSec);
      if (d.cache === 'warm') cache = 'warm';
      o.log(`download ${c.label}: ${d.mibPerSec.toFixed(1)} MiB/s (${d.cache}, bytes verified)`);
    }
    await o.client.remove(`${o.root}/transfer/${c.tag}`, true);
    const details = { clients: c.clients, bytesPerClient: c.slices[0]!.lengthBytes, totalBytes: o.source.sizeBytes, replication: o.replication };
    upload.push(addRatios(figureFromRuns(`upload.${c.tag}`, `upload ${c.label}`, 'MiB/s', up, { details }), o.ceilings, ['ceiling.write3', 'ceiling.write3-direct', 'ceiling.write1', 'ceiling.http-put']));
    download.push(addRatios(figureFromRuns(`download.${c.tag}`, `download ${c.label}`, 'MiB/s', down, { cache, details }), o.ceilings, ['ceiling.read', 'ceiling.http-get']));
  }
  return { upload, download };
}
