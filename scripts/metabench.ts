// Metadata benchmark for the Raft-replicated master: operation rate sequentially and with many in
// flight, latency percentiles, and the client-visible gap when the leader is killed.
//
//   npm run build && node dist/scripts/metabench.js [--ops 2000] [--inflight 64] [--masters 3] [--base-port P] [--json out.json] [--small-files N]
//
// --small-files N also puts N files of 4 KiB with --inflight in flight, first as chunks (what
// `--inline-max-bytes 0` gives), then inline in the masters' state (common/inline.ts), on the
// same cluster in the same run, and prints files/s both ways and their ratio.
//
// Starts a fresh local cluster (`dfs cluster`) in a temporary folder, removes it afterwards, and
// only ever stops the processes it started (by pid).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { parseArgs } from 'node:util';
import { DfsClient } from '../cli/client.js';
import { closeHttpAgent } from '../common/http.js';
import { cleanUpOnSignals, onCleanup, runCleanup } from './bench/cleanup.js';
import { LocalCluster } from './bench/local-cluster.js';
import { measureFailoverGap, timeOps, type OpsPhase } from './bench/stats.js';

const USAGE = 'usage: node dist/scripts/metabench.js [--ops 2000] [--inflight 64] [--masters 1|3|5] [--base-port P] [--json out.json] [--small-files N]';
function parseOptions() {
  try {
    return parseArgs({
      options: {
        ops: { type: 'string', default: '2000' },
        inflight: { type: 'string', default: '64' },
        masters: { type: 'string', default: '3' },
        'base-port': { type: 'string' },
        json: { type: 'string' },
        'small-files': { type: 'string', default: '0' },
        help: { type: 'boolean', default: false },
      },
    }).values;
  } catch (err) {
    // An unknown or malformed flag: one line and the usage, never a stack trace.
    console.error(`metabench: ${(err as Error).message}\n${USAGE}`);
    process.exit(2);
  }
}
const args = parseOptions();
if (args.help) {
  console.log(USAGE);
  process.exit(0);
}
const OPS = Number(args.ops);
const INFLIGHT = Number(args.inflight);
const MASTERS = Number(args.masters);
const BASE = args['base-port'] === undefined ? undefined : Number(args['base-port']);
const SMALL_FILES = Number(args['small-files']);
if (!Number.isInteger(SMALL_FILES) || SMALL_FILES < 0) {
  console.error('metabench: --small-files must be a whole number ≥ 0');
  process.exit(2);
}
for (const [name, v] of [['--ops', OPS], ['--inflight', INFLIGHT], ['--masters', MASTERS], ['--base-port', BASE ?? 1]] as const) {
  if (!Number.isInteger(v) || v < 1) {
    console.error(`metabench: ${name} must be a whole number ≥ 1`);
    process.exit(2);
  }
}

interface Phase extends OpsPhase { name: string }

async function phase(name: string, ops: number, inflight: number, op: (i: number) => Promise<unknown>): Promise<Phase> {
  const r = { name, ...await timeOps(ops, inflight, op) };
  console.log(`${name.padEnd(34)} ${String(ops).padStart(6)} ops  ${r.opsPerSec.toFixed(0).padStart(6)} ops/s  p50 ${r.p50Ms.toFixed(2).padStart(7)} ms  p99 ${r.p99Ms.toFixed(2).padStart(7)} ms`);
  return r;
}

/** 4 KiB files as chunks (create, allocate, a 3-way pipeline, complete) and inline (one create), same cluster, same run. */
async function smallFiles(client: DfsClient, phases: Phase[]): Promise<{ chunksPerSec: number; inlinePerSec: number; ratio: number }> {
  const body = Buffer.alloc(4096, 0x5a);
  const chunks = await phase(`4 KiB put as chunks, ${INFLIGHT} in flight`, SMALL_FILES, INFLIGHT, (i) => client.put(Readable.from([body]), `/small/c${i}`, { parents: true, inline: false }));
  const inline = await phase(`4 KiB put inline, ${INFLIGHT} in flight`, SMALL_FILES, INFLIGHT, (i) => client.put(Readable.from([body]), `/small/i${i}`, { parents: true }));
  phases.push(chunks, inline);
  const ratio = inline.opsPerSec / chunks.opsPerSec;
  console.log(`4 KiB files: inline ${inline.opsPerSec.toFixed(0)} files/s, chunks ${chunks.opsPerSec.toFixed(0)} files/s, inline / chunks ${ratio.toFixed(2)}`);
  return { chunksPerSec: chunks.opsPerSec, inlinePerSec: inline.opsPerSec, ratio };
}

async function main(): Promise<void> {
  cleanUpOnSignals('metabench');
  const dir = mkdtempSync(join(tmpdir(), 'dfs-metabench-'));
  onCleanup(() => rmSync(dir, { recursive: true, force: true }));
  const results: Record<string, unknown> = { masters: MASTERS, date: new Date().toISOString() };
  try {
    const cluster = await LocalCluster.start({ dataDir: dir, masters: MASTERS, chunkservers: 3, basePort: BASE });
    const client = new DfsClient(cluster.masters);
    console.log(`cluster: ${MASTERS} masters, 3 chunkservers, data in ${dir}`);
    const phases: Phase[] = [];
    phases.push(await phase('mkdir, sequential', Math.min(OPS, 1000), 1, (i) => client.mkdir(`/seq/d${i}`, true)));
    phases.push(await phase(`mkdir, ${INFLIGHT} in flight`, OPS, INFLIGHT, (i) => client.mkdir(`/par/d${i}`, true)));
    phases.push(await phase('stat, sequential', Math.min(OPS, 1000), 1, (i) => client.stat(`/seq/d${i % 1000}`)));
    phases.push(await phase(`stat, ${INFLIGHT} in flight`, OPS, INFLIGHT, (i) => client.stat(`/par/d${i}`)));
    if (SMALL_FILES > 0) results.smallFiles = await smallFiles(client, phases);
    results.phases = phases;

    if (MASTERS > 1) {
      // Failover: a sequential stream of mkdirs; kill -9 the leader before the 100th.
      const leader = cluster.byAddr((await client.status()).leader ?? '')!;
      const { gapMs, longestOpMs } = await measureFailoverGap((i) => client.mkdir(`/failover/d${i}`, true), () => cluster.kill(leader));
      console.log(`failover: kill -9 of the leader to the first acknowledged operation: ${gapMs.toFixed(0)} ms (longest single operation ${longestOpMs.toFixed(0)} ms)`);
      results.failover = { gapMs, longestOpMs };
    }
    if (args.json) {
      writeFileSync(args.json, JSON.stringify(results, null, 2) + '\n');
      console.log(`results written to ${args.json}`);
    }
  } finally {
    await closeHttpAgent();
    // Stop only what we started (the cluster, by pid), then remove its folder.
    await runCleanup();
  }
}

main().then(() => process.exit(0), (err: unknown) => {
  console.error(`metabench: ${(err as Error).message}`);
  process.exit(1);
});
