// Record append and snapshot benchmark (issue 19): 8 clients appending records to one file
// (records/s and MiB/s, for 4 KiB and 64 KiB records), one client with 64 record appends out
// (which it sends together: group commit), and a snapshot of a tree of many empty
// files, timed against a mkdir's latency on the same cluster, with the master's resident memory
// before and after it.
//
//   npm run build && node dist/scripts/recordbench.js [--records 400] [--clients 8] [--files 100000] [--chunk-size 4194304] [--json out.json]
//
// Starts a fresh local cluster (`dfs cluster`: 1 master, 3 chunkservers) in a temporary folder,
// removes it afterwards, and only ever stops the processes it started (by pid).
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { parseArgs } from 'node:util';
import { DfsClient } from '../cli/client.js';
import { closeHttpAgent } from '../common/http.js';
import { cleanUpOnSignals, onCleanup, runCleanup } from './bench/cleanup.js';
import { LocalCluster } from './bench/local-cluster.js';
import { timeOps } from './bench/stats.js';

const USAGE = 'usage: node dist/scripts/recordbench.js [--records 400] [--clients 8] [--files 100000] [--chunk-size 4194304] [--json out.json]';
function parseOptions() {
  try {
    return parseArgs({
      options: {
        records: { type: 'string', default: '400' },
        clients: { type: 'string', default: '8' },
        files: { type: 'string', default: '100000' },
        'chunk-size': { type: 'string', default: String(4 * 1024 * 1024) },
        json: { type: 'string' },
        help: { type: 'boolean', default: false },
      },
    }).values;
  } catch (err) {
    console.error(`recordbench: ${(err as Error).message}\n${USAGE}`);
    process.exit(2);
  }
}
const args = parseOptions();
if (args.help) {
  console.log(USAGE);
  process.exit(0);
}
const RECORDS = Number(args.records);
const CLIENTS = Number(args.clients);
const FILES = Number(args.files);
const CHUNK = Number(args['chunk-size']);
for (const [name, v] of [['--records', RECORDS], ['--clients', CLIENTS], ['--files', FILES], ['--chunk-size', CHUNK]] as const) {
  if (!Number.isInteger(v) || v < 1) {
    console.error(`recordbench: ${name} must be a whole number ≥ 1`);
    process.exit(2);
  }
}

/**
 * `RECORDS` records of `size` bytes to one new file: from `CLIENTS` clients at once, each with one
 * record out (every record an append of its own); or, `inFlight` given, from the first client
 * alone with that many calls out, which it sends together (cli/record-batch.ts).
 */
async function recordPhase(clients: DfsClient[], size: number, inFlight?: number): Promise<Record<string, number>> {
  const path = `/records-${size}${inFlight ? '-batched' : ''}`;
  await clients[0]!.put(Readable.from([]), path);
  const data = Buffer.alloc(size, 0x61);
  let next = 0;
  const start = performance.now();
  const writers = inFlight ? Array.from({ length: inFlight }, () => clients[0]!) : clients;
  await Promise.all(writers.map(async (c) => {
    while (next < RECORDS) {
      next++;
      await c.recordAppend(path, data);
    }
  }));
  const seconds = (performance.now() - start) / 1000;
  const r = { recordBytes: size, records: RECORDS, seconds, recordsPerSec: RECORDS / seconds, mibPerSec: (RECORDS * size) / seconds / 1024 / 1024, ...(inFlight ? { oneClientInFlight: inFlight } : {}) };
  const who = inFlight ? `1 client, ${inFlight} in flight` : `${CLIENTS} clients`;
  console.log(`record append, ${who}, ${String(size / 1024).padStart(2)} KiB records: ${RECORDS} in ${seconds.toFixed(2)} s, ${r.recordsPerSec.toFixed(1)} records/s, ${r.mibPerSec.toFixed(2)} MiB/s`);
  return r;
}

/** A process's resident memory in MiB, from /proc (undefined where there is none). */
function rssMiB(pid: number): number | undefined {
  const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : undefined;
}

/** A tree of `FILES` empty files (100 folders), snapshotted once; a mkdir's latency beside it, and the master's memory before and after. */
async function snapshotPhase(client: DfsClient, masterPid: number): Promise<Record<string, number | undefined>> {
  const made = await timeOps(FILES, 64, (i) => client.put(Readable.from([]), `/tree/d${i % 100}/f${i}`, { parents: true }));
  console.log(`tree of ${FILES} empty files made at ${made.opsPerSec.toFixed(0)} files/s`);
  const mkdir = await timeOps(200, 1, (i) => client.mkdir(`/mk/d${i}`, true));
  const rssBeforeMiB = rssMiB(masterPid);
  const start = performance.now();
  await client.snapshot('/tree', '/tree-snap');
  const snapshotMs = performance.now() - start;
  const rssAfterMiB = rssMiB(masterPid);
  console.log(`snapshot of the ${FILES}-file tree: ${snapshotMs.toFixed(1)} ms; a mkdir: p50 ${mkdir.p50Ms.toFixed(2)} ms, p99 ${mkdir.p99Ms.toFixed(2)} ms`);
  console.log(`master resident memory: ${rssBeforeMiB?.toFixed(0)} MiB before the snapshot, ${rssAfterMiB?.toFixed(0)} MiB after (the copy's nodes; no chunk is copied)`);
  return { files: FILES, snapshotMs, mkdirP50Ms: mkdir.p50Ms, mkdirP99Ms: mkdir.p99Ms, masterRssBeforeMiB: rssBeforeMiB, masterRssAfterMiB: rssAfterMiB };
}

async function main(): Promise<void> {
  cleanUpOnSignals('recordbench');
  const dir = mkdtempSync(join(tmpdir(), 'dfs-recordbench-'));
  onCleanup(() => rmSync(dir, { recursive: true, force: true }));
  const results: Record<string, unknown> = { clients: CLIENTS, chunkSizeBytes: CHUNK, date: new Date().toISOString() };
  try {
    const cluster = await LocalCluster.start({ dataDir: dir, masters: 1, chunkservers: 3, chunkSizeBytes: CHUNK });
    const clients = Array.from({ length: CLIENTS }, () => new DfsClient(cluster.masters));
    console.log(`cluster: 1 master, 3 chunkservers, ${CHUNK}-byte chunks, data in ${dir}`);
    results.recordAppend = [await recordPhase(clients, 4 * 1024), await recordPhase(clients, 64 * 1024)];
    results.recordAppendOneClient = [await recordPhase(clients, 4 * 1024, 64), await recordPhase(clients, 64 * 1024, 64)];
    results.snapshot = await snapshotPhase(clients[0]!, cluster.processes.find((p) => p.role === 'master')!.pid);
    if (args.json) {
      writeFileSync(args.json, JSON.stringify(results, null, 2) + '\n');
      console.log(`results written to ${args.json}`);
    }
  } finally {
    await closeHttpAgent();
    await runCleanup();
  }
}

main().then(() => process.exit(0), (err: unknown) => {
  console.error(`recordbench: ${(err as Error).message}`);
  process.exit(1);
});
