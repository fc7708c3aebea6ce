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
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { DfsClient } from '../cli/client.js';
import { closeHttpAgent } from '../common/http.js';
import { cleanUpOnSignals, onCleanup, runCleanup } from './bench/cleanup.js';
import { LocalCluster } from './bench/local-cluster.js';
import { describePhase, ONE_CLIENT_IN_FLIGHT, RECORD_SIZES, recordPhase, snapshotPhase, type RecordPhase } from './bench/records.js';

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

async function main(): Promise<void> {
  cleanUpOnSignals('recordbench');
  const dir = mkdtempSync(join(tmpdir(), 'dfs-recordbench-'));
  onCleanup(() => rmSync(dir, { recursive: true, force: true }));
  const results: Record<string, unknown> = { clients: CLIENTS, chunkSizeBytes: CHUNK, date: new Date().toISOString() };
  try {
    const cluster = await LocalCluster.start({ dataDir: dir, masters: 1, chunkservers: 3, chunkSizeBytes: CHUNK });
    const clients = Array.from({ length: CLIENTS }, () => new DfsClient(cluster.masters));
    console.log(`cluster: 1 master, 3 chunkservers, ${CHUNK}-byte chunks, data in ${dir}`);
    for (const [key, inFlight] of [['recordAppend', undefined], ['recordAppendOneClient', ONE_CLIENT_IN_FLIGHT]] as const) {
      const phases: RecordPhase[] = [];
      for (const size of RECORD_SIZES) {
        phases.push(await recordPhase(clients, `/records-${size}${inFlight ? '-batched' : ''}`, RECORDS, size, inFlight));
        console.log(describePhase(phases.at(-1)!));
      }
      results[key] = phases;
    }
    const s = await snapshotPhase(clients[0]!, '', FILES, cluster.processes.find((p) => p.role === 'master')!.pid);
    console.log(`tree of ${FILES} empty files made at ${s.filesPerSec.toFixed(0)} files/s`);
    console.log(`snapshot of the ${FILES}-file tree: ${s.snapshotMs.toFixed(1)} ms; a mkdir: p50 ${s.mkdirP50Ms.toFixed(2)} ms, p99 ${s.mkdirP99Ms.toFixed(2)} ms`);
    console.log(`master resident memory: ${s.masterRssBeforeMiB?.toFixed(0)} MiB before the snapshot, ${s.masterRssAfterMiB?.toFixed(0)} MiB after (the copy's nodes; no chunk is copied)`);
    results.snapshot = s;
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
