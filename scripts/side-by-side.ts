// dfs beside MooseFS on this machine, in one run (issue 16): kill -9 of a chunkserver → every
// chunk back at 3 copies, for the same file size on both (4 chunkservers, 3 copies, 64 MiB
// chunks); and dfs's own failover (kill -9 of the leader master → the next acknowledged write)
// and rolling restart (every master and chunkserver, SIGTERM and start, one at a time, under a
// put/get load: the longest stretch a client saw without a successful write, and failed
// operations). MooseFS 3.0's community edition has one master: it has no failover figure.
//
//   npm run build && node dist/scripts/side-by-side.js [--size 1GiB] [--moosefs DIR] [--no-moosefs] [--only rolling,failover,rerep]
//
// dfs's side starts a fresh local cluster (3 masters, 4 chunkservers) in a temporary folder,
// stops it and removes the folder at the end, and only ever kills its own processes, by pid.
// MooseFS's side is ../shared/peers/moosefs's own `bench.sh rerep`, run when its cluster is up
// (setup.sh). Timings on a shared machine are noisy: compare the two columns of one run only.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { DfsClient } from '../cli/client.js';
import { initChecksums } from '../common/checksum.js';
import { formatBytes, parseSize } from '../common/config.js';
import { closeHttpAgent } from '../common/http.js';
import { cleanUpOnSignals, onCleanup, runCleanup } from './bench/cleanup.js';
import { chunkserverRepair, leaderGap } from './bench/faults.js';
import { LocalCluster, ROOT } from './bench/local-cluster.js';
import { measureMooseFsRerep, mooseFsMissing, type MooseFsRerep } from './bench/moosefs.js';
import { measureRollingRestart, type RollingResult } from './bench/rolling.js';
import { writeSourceFile } from './bench/source.js';

const log = (line: string) => console.error(`side-by-side: ${line}`);
const PARTS = ['rolling', 'failover', 'rerep'] as const;
type Part = (typeof PARTS)[number];

interface Options { sizeBytes: number; moosefsDir: string; moosefs: boolean; only: Set<Part> }

function parseOptions(argv: string[]): Options {
  const o: Options = { sizeBytes: 1024 ** 3, moosefsDir: resolve(ROOT, '..', 'shared', 'peers', 'moosefs'), moosefs: true, only: new Set(PARTS) };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const value = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    if (a === '--size') o.sizeBytes = parseSize(value(), '--size');
    else if (a === '--moosefs') o.moosefsDir = resolve(value());
    else if (a === '--no-moosefs') o.moosefs = false;
    else if (a === '--only') {
      const parts = value().split(',');
      for (const p of parts) if (!PARTS.includes(p as Part)) throw new Error(`--only takes ${PARTS.join(',')}, not ${p}`);
      o.only = new Set(parts as Part[]);
    } else throw new Error(`unknown option ${a} (options: --size, --moosefs DIR, --no-moosefs, --only ${PARTS.join(',')})`);
  }
  return o;
}

interface DfsFigures { rerep?: { totalMs: number; detectMs: number; chunksHeld: number }; failoverMs?: number; rolling?: RollingResult }

async function measureDfs(o: Options, workDir: string): Promise<DfsFigures> {
  const out: DfsFigures = {};
  log(`writing ${formatBytes(o.sizeBytes)} of random bytes`);
  const source = await writeSourceFile(join(workDir, 'source.bin'), o.sizeBytes, 1);
  log('starting a fresh local cluster: 3 masters, 4 chunkservers, 64 MiB chunks, 3 copies');
  const cluster = await LocalCluster.start({ dataDir: join(workDir, 'cluster'), masters: 3, chunkservers: 4, chunkSizeBytes: 64 * 1024 * 1024, replication: 3 });
  const client = new DfsClient(cluster.masters);
  const ctx = { client, replication: 3, root: '/side-by-side', ceilings: [], log, cluster, source, files: 400 };
  // Rolling first (every process is up), then the leader's kill (two masters left), then the chunkserver's.
  if (o.only.has('rolling')) out.rolling = await measureRollingRestart({ cluster, client, root: ctx.root, log });
  if (o.only.has('failover')) out.failoverMs = (await leaderGap(ctx)).median;
  if (o.only.has('rerep')) {
    const [total] = await chunkserverRepair(ctx);
    const d = total!.details as { detectMs: number; chunksHeld: number };
    out.rerep = { totalMs: total!.median, detectMs: d.detectMs, chunksHeld: d.chunksHeld };
  }
  await cluster.stop();
  return out;
}

const s = (ms: number | undefined) => (ms === undefined ? 'n/a' : `${(ms / 1000).toFixed(2)} s`);

function report(o: Options, d: DfsFigures, mfs: MooseFsRerep | string | undefined): void {
  const rows: [string, string, string][] = [];
  if (d.rerep) {
    const m = typeof mfs === 'object' ? mfs : undefined;
    rows.push([`kill -9 chunkserver → every chunk at 3 copies (${formatBytes(o.sizeBytes)})`, s(d.rerep.totalMs), m ? s((m.allBackS ?? NaN) * 1000) : String(mfs ?? 'not run')]);
    rows.push(['  of which: kill -9 → the master marks it dead', s(d.rerep.detectMs), m ? s((m.noticedS ?? NaN) * 1000) : '']);
  }
  if (d.failoverMs !== undefined) rows.push(['kill -9 leader master → next acknowledged write', s(d.failoverMs), 'one master (no failover)']);
  if (d.rolling) {
    const r = d.rolling;
    rows.push([`rolling restart (${r.restarted.join(', ')}): longest stretch without a write`, s(r.rolling.writes.longestGapMs), '']);
    rows.push(['  same load, no restart (this machine\'s noise)', s(r.baseline.writes.longestGapMs), '']);
    rows.push(['  longest stretch without a read', s(r.rolling.reads.longestGapMs), '']);
    rows.push(['  failed operations (writes / reads)', `${r.rolling.writes.failed} / ${r.rolling.reads.failed}`, '']);
    rows.push(['  acknowledged files read back byte-exact', `${r.verified - r.bad.length} of ${r.verified}`, '']);
    rows.push(['  bytes copied by repair meanwhile', formatBytes(r.bytesCopiedDuring), '']);
  }
  const w = Math.max(...rows.map((r) => r[0].length));
  console.log(`\n${'figure'.padEnd(w)}  ${'dfs'.padEnd(12)}  MooseFS`);
  for (const [a, b, c] of rows) console.log(`${a.padEnd(w)}  ${b.padEnd(12)}  ${c}`);
  console.log(`\n${new Date().toISOString()}; one run, both measured in it, on a machine shared with other work: compare within this run only.`);
  if (d.rolling?.bad.length) console.log(`LOST OR WRONG: ${d.rolling.bad.slice(0, 10).join('; ')}`);
  if (d.rolling) for (const e of [...d.rolling.rolling.writes.errors, ...d.rolling.rolling.reads.errors]) console.log(`failed during the rolling restart: ${e}`);
}

async function main(): Promise<void> {
  let o: Options;
  try {
    o = parseOptions(process.argv.slice(2));
  } catch (err) {
    console.error(`side-by-side: ${(err as Error).message}`);
    process.exit(2);
  }
  cleanUpOnSignals('side-by-side');
  await initChecksums();
  const workDir = mkdtempSync(join(tmpdir(), 'dfs-side-'));
  onCleanup(() => rmSync(workDir, { recursive: true, force: true }));
  try {
    const d = await measureDfs(o, workDir);
    await runCleanup(); // dfs's cluster and its 3 copies go before MooseFS writes its own
    let mfs: MooseFsRerep | string | undefined;
    if (o.only.has('rerep') && o.moosefs) {
      mfs = mooseFsMissing(o.moosefsDir);
      if (mfs === undefined) {
        log('MooseFS: bench.sh rerep, same size, one repetition');
        mfs = await measureMooseFsRerep(o.moosefsDir, o.sizeBytes, log).catch((err: Error) => `failed: ${err.message}`);
      }
    }
    report(o, d, mfs);
  } finally {
    await runCleanup();
    await closeHttpAgent();
  }
}

main().then(() => process.exit(0), (err: unknown) => {
  console.error(`side-by-side: FAILED: ${(err as Error).message}`);
  process.exit(1);
});
