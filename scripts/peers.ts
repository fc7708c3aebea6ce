// dfs's metadata path beside etcd and MooseFS, in one run (issue 20). On a fresh local dfs cluster
// (3 masters, 3 chunkservers), warmed up: mkdirs and linearizable stats with each --inflight in
// flight, and empty and 4 KiB files with the first, every phase from --procs client processes: 1
// by default, as etcd's benchmark runs (one process, one connection pool); more spreads the same
// calls over several clients, each batching fewer (cli/meta-batch.ts). Before those, sequential
// creates in rounds, alternating with etcd's sequential puts (below). Then, with dfs stopped,
// where they are set up on this machine (../shared/peers: `bash etcd/setup.sh`, `bash
// moosefs/setup.sh`), etcd's own benchmark (puts and linearizable gets with each --inflight in
// flight, through its HTTP gateway, as dfs is reached) and MooseFS's `bench.sh meta`, one after
// the other. Prints one table with the ratios; p50 and p99 over every operation of a phase.
//
//   npm run build && node dist/scripts/peers.js [--ops 4000] [--inflight 64,256] [--procs 1] [--seq-rounds 3] [--no-etcd] [--no-moosefs] [--json out.json]
//
// The sequential row is the one this machine's noise moves most (a quiet minute and a busy one
// differ by 2×), so it is measured in --seq-rounds rounds, each dfs's then etcd's, and each
// column shows its round with the median p50; the log shows every round's pair.
//
// It stops only what it started (the dfs cluster, by pid) and removes its folder; the peers'
// clusters stay as their setup scripts left them (their teardown.sh stops them).
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { cleanUpOnSignals, onCleanup, runCleanup, spawnTracked } from './bench/cleanup.js';
import { LocalCluster, ROOT } from './bench/local-cluster.js';
import type { MetaOp, MetaReply, MetaSpec } from './bench/meta-worker.js';
import { mooseFsMissing } from './bench/moosefs.js';
import { percentile } from './bench/stats.js';

const USAGE = 'usage: node dist/scripts/peers.js [--ops 4000] [--inflight 64,256] [--procs 1] [--seq-rounds 3] [--no-etcd] [--no-moosefs] [--json out.json]';
const PEERS = resolve(ROOT, '..', 'shared', 'peers');
const ETCD_BASE = '/tmp/etcdbench';
/** A phase that takes longer than this is stuck, not slow. */
const PHASE_TIMEOUT_MS = 10 * 60_000;
const log = (line: string) => console.error(`peers: ${line}`);

/**
 * Each client process's warm-up before it measures, as etcd's bench.js warms its one client in the
 * process that measures (300 sequential puts, then 2,000 with 64 in flight): of the phase's own
 * call, spread over --procs.
 */
const WORKER_WARM_UP = { sequential: 300, count: 2000, inflight: 64 };
/**
 * The masters' own warm-up, once, before the first phase: V8 compiles a server's hot paths after
 * thousands of calls, and a master measured at its start measured that (sequential mkdirs took
 * 2.8 ms at p50 after 2,600 calls, 1.6-1.8 ms after 20,000 more); etcd is compiled ahead.
 */
const CLUSTER_WARM_UP = 20_000;
/**
 * A sequential phase's client warms up with calls one at a time only, and more of them: the
 * warm-up's calls 64 at a time go to the leader in batches (cli/meta-batch.ts), so they warm
 * neither the client's nor the masters' path of one call per request, and V8 compiles that path
 * only after a few thousand calls. Measured on 2026-12-07, five rounds each: with etcd's warm-up
 * (300 sequential, 2,000 in batches) an empty file's create took 1.89-2.61 ms at p50 beside etcd's
 * 1.30-1.63 ms; after 2,500 sequential calls, 1.43-1.56 ms beside etcd's 1.15-1.25 ms. etcd's
 * server is compiled ahead and its client is one HTTP call, so 300 calls warm it.
 */
const SEQUENTIAL_WARM_UP = { sequential: 2_500, count: 0, inflight: 1 };

interface Row { what: string; dfs?: Rate; etcd?: Rate; moosefs?: Rate }
interface Rate { opsPerSec: number; p50Ms?: number; p99Ms?: number }

function options() {
  let v;
  try {
    v = parseArgs({ options: {
      ops: { type: 'string', default: '4000' }, inflight: { type: 'string', default: '64,256' }, procs: { type: 'string', default: '1' }, 'seq-rounds': { type: 'string', default: '3' },
      'no-etcd': { type: 'boolean', default: false }, 'no-moosefs': { type: 'boolean', default: false }, json: { type: 'string' }, help: { type: 'boolean', default: false },
    } }).values;
  } catch (err) {
    console.error(`peers: ${(err as Error).message}\n${USAGE}`);
    process.exit(2);
  }
  if (v.help) {
    console.log(USAGE);
    process.exit(0);
  }
  const whole = (raw: string, flag: string, max: number) => {
    const n = Number(raw);
    if (!Number.isInteger(n) || n < 1 || n > max) {
      console.error(`peers: ${flag} must be a whole number from 1 to ${max}\n${USAGE}`);
      process.exit(2);
    }
    return n;
  };
  const procs = whole(v.procs, '--procs', 32);
  const inflight = v.inflight.split(',').map((s) => whole(s, '--inflight', 4096));
  if (inflight.some((n) => n < procs)) {
    console.error(`peers: each --inflight must be at least --procs (${procs}): every process keeps one or more in flight`);
    process.exit(2);
  }
  return { ops: whole(v.ops, '--ops', 1_000_000), inflight, procs, seqRounds: whole(v['seq-rounds'], '--seq-rounds', 20), etcd: !v['no-etcd'], moosefs: !v['no-moosefs'], json: v.json };
}

/** One phase of `count` operations over `procs` worker processes, `inflight` in flight in all. */
async function dfsPhase(masters: string[], op: MetaOp, base: string, count: number, inflight: number, procs: number, warm = WORKER_WARM_UP): Promise<Rate> {
  const share = (n: number, i: number) => Math.floor(n / procs) + (i < n % procs ? 1 : 0);
  const workers = Array.from({ length: procs }, (_, i) => {
    const from = Array.from({ length: i }, (_, j) => share(count, j)).reduce((a, b) => a + b, 0);
    const spec: MetaSpec = {
      op, masters, base, from, count: share(count, i), inflight: share(inflight, i),
      warm: { sequential: share(warm.sequential, i), count: share(warm.count, i), inflight: Math.max(1, share(warm.inflight, i)) },
    };
    const child = spawnTracked(process.execPath, [join(import.meta.dirname, 'bench', 'meta-worker.js'), JSON.stringify(spec)], { stdio: ['pipe', 'pipe', 'inherit'] });
    const lines = createInterface({ input: child.stdout! });
    const ready = new Promise<void>((res, rej) => {
      lines.once('line', (l) => (l === 'ready' ? res() : rej(new Error(`worker: ${l}`))));
      child.once('exit', (code) => rej(new Error(`worker exited (${code}) before it was ready`)));
    });
    const done = new Promise<MetaReply>((res, rej) => {
      const timer = setTimeout(() => child.kill('SIGKILL'), PHASE_TIMEOUT_MS);
      let last = '';
      lines.on('line', (l) => (last = l));
      child.once('close', (code) => {
        clearTimeout(timer);
        try {
          res(JSON.parse(last) as MetaReply);
        } catch {
          rej(new Error(`${op}: a worker exited (${code}) without an answer`));
        }
      });
    });
    ready.catch(() => undefined);
    return { ready, done, go: () => child.stdin!.end('go\n') };
  });
  await Promise.all(workers.map((w) => w.ready));
  const start = performance.now();
  for (const w of workers) w.go();
  const replies = await Promise.all(workers.map((w) => w.done));
  const elapsedMs = performance.now() - start;
  const lat: number[] = [];
  for (const r of replies) {
    if (!r.ok) throw new Error(`${op}: ${r.error}`);
    lat.push(...r.latenciesMs);
  }
  lat.sort((a, b) => a - b);
  return { opsPerSec: count / (elapsedMs / 1000), p50Ms: percentile(lat, 50), p99Ms: percentile(lat, 99) };
}

interface Dfs {
  cluster: LocalCluster;
  phase: (what: string, op: MetaOp, base: string, count: number, inflight: number, procs: number) => Promise<Rate>;
}

/** A fresh local dfs cluster (3 masters, 3 chunkservers), warmed up (CLUSTER_WARM_UP). */
async function startDfs(): Promise<Dfs> {
  const dir = mkdtempSync(join(tmpdir(), 'dfs-peers-'));
  onCleanup(() => rmSync(dir, { recursive: true, force: true }));
  const cluster = await LocalCluster.start({ dataDir: join(dir, 'cluster'), masters: 3, chunkservers: 3 });
  log(`dfs: 3 masters, 3 chunkservers in ${dir}`);
  const m = cluster.masters;
  // The masters' warm-up (CLUSTER_WARM_UP): JIT, connections, the first snapshot. Not timed, not
  // shown. Each phase's client then warms up itself (WORKER_WARM_UP; a sequential round's,
  // SEQUENTIAL_WARM_UP).
  const none = { sequential: 0, count: 0, inflight: 1 };
  await dfsPhase(m, 'mkdir', '/warm', CLUSTER_WARM_UP, 64, 1, none);
  await dfsPhase(m, 'create', '/warm-files', CLUSTER_WARM_UP / 4, 64, 1, none);
  await dfsPhase(m, 'put4k', '/warm-small', CLUSTER_WARM_UP / 10, 64, 1, none);
  const phase = async (what: string, op: MetaOp, base: string, count: number, inflight: number, procs: number) => {
    const r = await dfsPhase(m, op, base, count, inflight, procs, inflight === 1 ? SEQUENTIAL_WARM_UP : WORKER_WARM_UP);
    log(`dfs ${what}: ${r.opsPerSec.toFixed(0)} ops/s, p50 ${r.p50Ms!.toFixed(2)} ms, p99 ${r.p99Ms!.toFixed(2)} ms`);
    return r;
  };
  return { cluster, phase };
}

async function measureDfs(o: ReturnType<typeof options>, rows: Row[], dfs: Dfs): Promise<void> {
  const { phase } = dfs;
  for (const n of o.inflight) rows.push({ what: `write, ${n} in flight (dfs: mkdir; etcd: put)`, dfs: await phase(`mkdir, ${n} in flight`, 'mkdir', `/mk${n}`, o.ops, n, o.procs) });
  for (const n of o.inflight) rows.push({ what: `linearizable read, ${n} in flight (dfs: stat; etcd: get)`, dfs: await phase(`stat, ${n} in flight`, 'stat', `/mk${n}`, o.ops, n, o.procs) });
  const first = o.inflight[0]!;
  rows.push({ what: `empty files, ${first} in flight (MooseFS: create, 4 processes)`, dfs: await phase(`create, ${first} in flight`, 'create', '/empty', o.ops, first, o.procs) });
  rows.push({ what: `4 KiB files, ${first} in flight`, dfs: await phase(`4 KiB files, ${first} in flight`, 'put4k', '/small', Math.min(o.ops, 2000), first, o.procs) });
}

/** The round with the median p50 (the lower middle of an even count). */
function medianRound(rounds: Rate[]): Rate | undefined {
  return [...rounds].sort((a, b) => a.p50Ms! - b.p50Ms!)[Math.floor((rounds.length - 1) / 2)];
}

/**
 * The sequential row: --seq-rounds rounds, each a dfs phase and then etcd's (while both clusters
 * are up, so each is measured beside the other idle), so a noisy minute falls on both.
 */
async function measureSequential(o: ReturnType<typeof options>, row: Row, dfs: Dfs, etcd: boolean): Promise<void> {
  const seq = Math.min(o.ops, 1000);
  const ours: Rate[] = [];
  const theirs: Rate[] = [];
  for (let r = 1; r <= o.seqRounds; r++) {
    const d = await dfs.phase(`create, sequential (round ${r})`, 'create', `/seq${r}`, seq, 1, 1);
    ours.push(d);
    if (!etcd) continue;
    const out = join(ETCD_BASE, `peers-seq-${r}.json`);
    await runScript(process.execPath, [join(PEERS, 'etcd', 'bench.js'), '--runs', '1', '--phases', 'seq', '--out', out], {
      NODE_PATH: join(ETCD_BASE, 'node_modules'), DRIVERS: 'http', SEQ_N: String(seq),
    });
    const e = etcdRate(out, 'seq_put_leader');
    if (!e) throw new Error(`etcd's bench wrote no seq_put_leader to ${out}`);
    theirs.push(e);
    log(`round ${r}: sequential p50 dfs ${d.p50Ms!.toFixed(2)} ms, etcd ${e.p50Ms!.toFixed(2)} ms (dfs/etcd rate ${(d.opsPerSec / e.opsPerSec).toFixed(2)}×)`);
  }
  row.dfs = medianRound(ours);
  row.etcd = medianRound(theirs);
}

/** Runs a peer's own script to its end; its stderr is shown, its stdout kept. */
function runScript(cmd: string, args: string[], env: Record<string, string>): Promise<string> {
  return new Promise((res, rej) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, ...env } });
    let out = '';
    child.stdout!.on('data', (b: Buffer) => (out += b.toString()));
    const timer = setTimeout(() => child.kill('SIGTERM'), PHASE_TIMEOUT_MS * 2);
    child.on('error', rej);
    child.on('close', (code) => {
      clearTimeout(timer);
      if (code === 0) res(out);
      else rej(new Error(`${cmd} ${args.join(' ')} exited ${code}`));
    });
  });
}

function etcdMissing(): string | undefined {
  if (!existsSync(join(PEERS, 'etcd', 'bench.js'))) return `no ${join(PEERS, 'etcd', 'bench.js')}`;
  for (const n of ['e1', 'e2', 'e3']) {
    const pidFile = join(ETCD_BASE, 'pids', `${n}.pid`);
    try {
      process.kill(Number(readFileSync(pidFile, 'utf8').trim()), 0);
    } catch {
      return `etcd member ${n} is not running (run: bash ${join(PEERS, 'etcd', 'setup.sh')})`;
    }
  }
  return undefined;
}

interface EtcdPhase { ops_s: number; p50: number; p99: number }
type EtcdRun = Record<string, EtcdPhase | string | number>;

/** A phase of the run etcd's bench.js wrote to `out`. */
function etcdRate(out: string, phase: string): Rate | undefined {
  const run = (JSON.parse(readFileSync(out, 'utf8')) as { runs: EtcdRun[] }).runs[0]!;
  const p = run[phase] as EtcdPhase | undefined;
  return p ? { opsPerSec: p.ops_s, p50Ms: p.p50, p99Ms: p.p99 } : undefined;
}

async function measureEtcd(o: ReturnType<typeof options>, rows: Row[]): Promise<void> {
  for (const n of o.inflight) {
    const out = join(ETCD_BASE, `peers-${n}.json`);
    // The HTTP gateway driver: dfs is reached by HTTP and JSON too. One run per in-flight count.
    await runScript(process.execPath, [join(PEERS, 'etcd', 'bench.js'), '--runs', '1', '--phases', 'conc,read', '--out', out], {
      NODE_PATH: join(ETCD_BASE, 'node_modules'), DRIVERS: 'http', INFLIGHT: String(n), CONC_N: String(o.ops), READ_N: String(o.ops),
    });
    const row = (prefix: string) => rows.find((r) => r.what.startsWith(prefix));
    row(`write, ${n} in flight`)!.etcd = etcdRate(out, 'conc_put');
    row(`linearizable read, ${n} in flight`)!.etcd = etcdRate(out, 'conc_get_linearizable');
  }
}

async function measureMooseFs(o: ReturnType<typeof options>, rows: Row[]): Promise<void> {
  const dir = join(PEERS, 'moosefs');
  const before = existsSync('/tmp/mfs/results/raw.tsv') ? readFileSync('/tmp/mfs/results/raw.tsv', 'utf8').split('\n').length - 1 : 0;
  await runScript('bash', [join(dir, 'bench.sh'), 'meta'], { NFILES: String(Math.min(o.ops, 10_000)), REPS: '1', QUIET_MAX: '30' });
  const found = readFileSync('/tmp/mfs/results/raw.tsv', 'utf8').split('\n').slice(before).map((l) => l.split('\t'))
    .find((r) => r[0] === 'meta' && /^create_\d+_files_4proc$/.test(r[1] ?? ''));
  if (found) rows.find((r) => r.what.startsWith('empty files'))!.moosefs = { opsPerSec: Number(found[3]) };
}

function render(rows: Row[]): string {
  const f = (r?: Rate) => (r ? `${r.opsPerSec.toFixed(0)}/s${r.p50Ms !== undefined ? ` p50 ${r.p50Ms.toFixed(2)} p99 ${r.p99Ms!.toFixed(1)} ms` : ''}` : '—');
  const ratio = (a?: Rate, b?: Rate) => (a && b ? `${(a.opsPerSec / b.opsPerSec).toFixed(2)}×` : '—');
  const lines = ['| | dfs | etcd | dfs/etcd | MooseFS | dfs/MooseFS |', '| --- | --- | --- | --- | --- | --- |'];
  for (const r of rows) lines.push(`| ${r.what} | ${f(r.dfs)} | ${f(r.etcd)} | ${ratio(r.dfs, r.etcd)} | ${f(r.moosefs)} | ${ratio(r.dfs, r.moosefs)} |`);
  return lines.join('\n');
}

async function main(): Promise<void> {
  const o = options();
  cleanUpOnSignals('peers');
  const rows: Row[] = [];
  const notes: string[] = [];
  try {
    const etcdWhy = o.etcd ? etcdMissing() : 'not asked for (--no-etcd)';
    if (etcdWhy) notes.push(`etcd not measured: ${etcdWhy}`);
    const dfs = await startDfs();
    const sequential: Row = { what: `write, sequential (dfs: create an empty file; etcd: put; the median of ${o.seqRounds} rounds)` };
    rows.push(sequential);
    // Sequential first: etcd's sequential puts come before its own load phases, so dfs's do too.
    await measureSequential(o, sequential, dfs, !etcdWhy);
    await measureDfs(o, rows, dfs);
    await dfs.cluster.stop();
    if (!etcdWhy) await measureEtcd(o, rows);
    const mfsWhy = o.moosefs ? mooseFsMissing(join(PEERS, 'moosefs')) : 'not asked for (--no-moosefs)';
    if (mfsWhy) notes.push(`MooseFS not measured: ${mfsWhy}`);
    else await measureMooseFs(o, rows);
  } finally {
    await runCleanup();
  }
  console.log(render(rows));
  for (const n of notes) console.log(n);
  if (o.json) writeFileSync(o.json, JSON.stringify({ date: new Date().toISOString(), options: o, rows, notes }, null, 2) + '\n');
}

main().then(() => process.exit(0), (err: unknown) => {
  console.error(`peers: ${(err as Error).message}`);
  process.exit(1);
});
