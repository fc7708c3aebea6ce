// Throughput benchmark (issue 5): upload and download MiB/s, small-file and metadata operation
// rates, failover and re-replication times, master memory per file, and, measured in the same run
// with the same sizes, the machine's own ceilings (disk and loopback HTTP), so every dfs figure is
// also a ratio of what this machine could do at best. Ratios are what we compare across machines.
//
//   npm run bench -- [--size 1GiB] [--runs 3] [--faults] [--only upload,download] ...   (--help lists all)
//
// By default it starts a fresh local cluster (3 masters, 4 chunkservers) in a temporary folder and
// removes it afterwards; with --masters it measures a running cluster under a folder of its own,
// which it deletes at the end. It prints a table and writes every figure to a JSON file. It stops
// only what it started, by pid, and only ever talks to the addresses it is given (127.0.0.1 by
// default).
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, release, tmpdir, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { DfsClient } from '../cli/client.js';
import { initChecksums } from '../common/checksum.js';
import { formatBytes } from '../common/config.js';
import { closeHttpAgent } from '../common/http.js';
import { measureCeilings } from './bench/ceilings.js';
import { cleanUpOnSignals, onCleanup, runCleanup } from './bench/cleanup.js';
import type { ClusterContext } from './bench/context.js';
import { measureFaults } from './bench/faults.js';
import { LocalCluster, ROOT } from './bench/local-cluster.js';
import { measureMetadata } from './bench/metadata.js';
import { parseOptions, USAGE, UsageError, type BenchOptions } from './bench/options.js';
import { renderTable, type Figure, type SectionName } from './bench/report.js';
import { measureRecords } from './bench/records.js';
import { measureScale } from './bench/scale.js';
import { writeSourceFile, type SourceFile } from './bench/source.js';
import { measureTransfers } from './bench/transfer.js';

const log = (line: string) => console.error(`bench: ${line}`);

/** Clients of the record-append phase with one record out each (issue 19: 8). */
const RECORD_CLIENTS = 8;
/** Round trips timed for the request-rate ceiling: plenty for stable percentiles, over in a second or two. */
const PING_OPS = 2000;

interface Target { client: DfsClient; masters: string[]; chunkSizeBytes: number; description: string; local?: LocalCluster }

/** A fresh local cluster, or the running one named by --masters. */
async function connect(o: BenchOptions, workDir: string): Promise<Target> {
  if (o.masters) {
    const client = new DfsClient(o.masters);
    const s = await client.status();
    const live = s.chunkservers.filter((c) => c.alive).length;
    return { client, masters: o.masters, chunkSizeBytes: s.chunkSizeBytes, description: `running cluster at ${o.masters.join(',')}: ${s.masters.length} masters, ${live} live chunkservers` };
  }
  log('starting a fresh local cluster: 3 masters, 4 chunkservers');
  const local = await LocalCluster.start({ dataDir: join(workDir, 'cluster'), masters: 3, chunkservers: 4, chunkSizeBytes: o.chunkSizeBytes, replication: o.replication, basePort: o.basePort });
  return { client: new DfsClient(local.masters), masters: local.masters, chunkSizeBytes: o.chunkSizeBytes!, description: 'fresh local cluster: 3 masters, 4 chunkservers', local };
}

async function measureWithCluster(o: BenchOptions, workDir: string, source: SourceFile | undefined, ceilings: Figure[], results: Partial<Record<SectionName, Figure[]>>): Promise<Target> {
  const target = await connect(o, workDir);
  // Everything this run writes lives below one folder of its own, removed at the end.
  const root = `/bench-${Date.now().toString(36)}`;
  onCleanup(() => target.client.remove(root, true).then(() => undefined, () => undefined));
  const common: ClusterContext = { client: target.client, replication: o.replication, root, ceilings, log };
  if (o.sections.has('upload') || o.sections.has('download')) {
    const t = await measureTransfers({ ...common, masters: target.masters, source: source!, clients: o.clients, runs: o.runs, dropCaches: o.dropCaches });
    if (o.sections.has('upload')) results.upload = t.upload;
    if (o.sections.has('download')) results.download = t.download;
  }
  if (o.sections.has('metadata')) results.metadata = await measureMetadata({ ...common, files: o.files, inflight: o.inflight });
  if (o.sections.has('records')) {
    const leader = (await target.client.status()).masters.find((m) => m.role === 'leader');
    const masterPid = leader && target.local?.byAddr(leader.addr)?.pid;
    results.records = await measureRecords({ ...common, masters: target.masters, records: o.records, clients: RECORD_CLIENTS, files: o.files, masterPid });
  }
  if (o.sections.has('faults')) results.faults = await measureFaults({ ...common, cluster: target.local!, source: source!, files: o.files });
  return target;
}

function machine(): Record<string, string | number> {
  return { cpus: cpus().length, cpuModel: cpus()[0]?.model ?? 'unknown', memoryBytes: totalmem(), platform: process.platform, kernel: release(), node: process.version };
}

async function run(o: BenchOptions): Promise<void> {
  await initChecksums();
  const startedAt = new Date();
  const workDir = mkdtempSync(join(tmpdir(), 'dfs-bench-'));
  let measured = false;
  onCleanup(() => {
    // --keep: a failed run leaves its cluster's data and logs for a look.
    if (o.keep && !measured) console.error(`bench: kept ${workDir} (the cluster's data and logs)`);
    else rmSync(workDir, { recursive: true, force: true });
  });
  const results: Partial<Record<SectionName, Figure[]>> = {};
  const needsBytes = ['ceilings', 'upload', 'download', 'faults'].some((s) => o.sections.has(s as SectionName));
  const needsCluster = ['upload', 'download', 'metadata', 'records', 'faults'].some((s) => o.sections.has(s as SectionName));

  let source: SourceFile | undefined;
  if (needsBytes) {
    log(`writing ${formatBytes(o.sizeBytes)} of random bytes to ${workDir}`);
    source = await writeSourceFile(join(workDir, 'source.bin'), o.sizeBytes, o.clients);
  }
  // With --masters the chunk size is the running cluster's; ask it first, ceilings use the same.
  let target: Target | undefined;
  let ceilings: Figure[] = [];
  if (o.sections.has('ceilings')) {
    const chunkSizeBytes = o.chunkSizeBytes ?? (await new DfsClient(o.masters!).status()).chunkSizeBytes;
    ceilings = await measureCeilings({ dir: workDir, sizeBytes: o.sizeBytes, chunkSizeBytes, runs: o.runs, dropCaches: o.dropCaches, pingOps: PING_OPS, inflight: o.inflight, log });
    results.ceilings = ceilings;
  }
  if (needsCluster) target = await measureWithCluster(o, workDir, source, ceilings, results);
  measured = true;
  await runCleanup(); // the cluster and its files go before the scale run needs the memory
  if (o.sections.has('scale')) results.scale = await measureScale(o.scaleFiles, log);

  const context = {
    date: startedAt.toISOString(), elapsedMs: Date.now() - startedAt.getTime(), machine: machine(), target: target?.description ?? 'none',
    options: { ...o, sections: [...o.sections], chunkSizeBytes: target?.chunkSizeBytes ?? o.chunkSizeBytes },
  };
  console.log(`dfs bench, ${context.date}: ${context.machine.cpus} × ${context.machine.cpuModel}, ${formatBytes(totalmem())}, node ${process.version}`);
  console.log(`${context.target}; size ${formatBytes(o.sizeBytes)}, chunk ${formatBytes(context.options.chunkSizeBytes ?? 0)}, replication ${o.replication}, runs ${o.runs}\n`);
  console.log(renderTable(results));
  console.log('\nratio: the median divided by the ceiling named after it (measured in this run, same sizes); (warm): the page cache could not be dropped.');
  console.log('Times after a kill and master memory have no machine ceiling: compare them as they are.');
  const jsonFile = o.jsonFile ?? join(ROOT, 'bench-results', `bench-${context.date.replace(/[:.]/g, '-')}.json`);
  mkdirSync(dirname(jsonFile), { recursive: true });
  writeFileSync(jsonFile, JSON.stringify({ version: 1, ...context, sections: results }, null, 2) + '\n');
  console.log(`\nresults written to ${jsonFile}`);
}

async function main(): Promise<void> {
  let o: BenchOptions | 'help';
  try {
    o = parseOptions(process.argv.slice(2));
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    console.error(`bench: ${err.message}\n\n${USAGE}`);
    process.exit(2);
  }
  if (o === 'help') {
    console.log(USAGE);
    return;
  }
  cleanUpOnSignals('bench');
  try {
    await run(o);
  } finally {
    await runCleanup();
    await closeHttpAgent();
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(`bench: FAILED: ${(err as Error).message}`);
    process.exit(1);
  },
);
