// Metadata benchmark for the Raft-replicated master: operation rate sequentially and with many in
// flight, latency percentiles, and the client-visible gap when the leader is killed.
//
//   npm run build && node dist/scripts/metabench.js [--ops 2000] [--inflight 64] [--masters 3] [--base-port 29400] [--json out.json]
//
// Starts a fresh local cluster (`dfs cluster`) in a temporary folder, removes it afterwards, and
// only ever stops the processes it started (by pid).
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { DfsClient } from '../cli/client.js';
import { closeHttpAgent } from '../common/http.js';
import type { ClusterStatus } from '../common/protocol.js';

const ROOT = resolve(import.meta.dirname, '..', '..');
const DFS = join(ROOT, 'dist', 'cli', 'main.js');

const { values: args } = parseArgs({
  options: {
    ops: { type: 'string', default: '2000' },
    inflight: { type: 'string', default: '64' },
    masters: { type: 'string', default: '3' },
    'base-port': { type: 'string', default: '29400' },
    json: { type: 'string' },
  },
});
const OPS = Number(args.ops);
const INFLIGHT = Number(args.inflight);
const MASTERS = Number(args.masters);
const BASE = Number(args['base-port']);
for (const [name, v] of [['--ops', OPS], ['--inflight', INFLIGHT], ['--masters', MASTERS], ['--base-port', BASE]] as const) {
  if (!Number.isInteger(v) || v < 1) {
    console.error(`metabench: ${name} must be a whole number ≥ 1`);
    process.exit(2);
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

interface Phase { name: string; ops: number; seconds: number; opsPerSec: number; p50Ms: number; p99Ms: number; maxMs: number }

async function phase(name: string, ops: number, inflight: number, op: (i: number) => Promise<unknown>): Promise<Phase> {
  const latencies: number[] = [];
  let next = 0;
  const start = performance.now();
  await Promise.all(Array.from({ length: inflight }, async () => {
    while (next < ops) {
      const i = next++;
      const t0 = performance.now();
      await op(i);
      latencies.push(performance.now() - t0);
    }
  }));
  const seconds = (performance.now() - start) / 1000;
  latencies.sort((a, b) => a - b);
  const r = { name, ops, seconds, opsPerSec: ops / seconds, p50Ms: percentile(latencies, 50), p99Ms: percentile(latencies, 99), maxMs: latencies.at(-1)! };
  console.log(`${name.padEnd(34)} ${String(ops).padStart(6)} ops  ${r.opsPerSec.toFixed(0).padStart(6)} ops/s  p50 ${r.p50Ms.toFixed(2).padStart(7)} ms  p99 ${r.p99Ms.toFixed(2).padStart(7)} ms`);
  return r;
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'dfs-metabench-'));
  const launcher = spawn(process.execPath, [DFS, 'cluster', '--data', dir, '--base-port', String(BASE), '--masters', String(MASTERS), '--chunkservers', '3'], { stdio: ['ignore', 'pipe', 'inherit'] });
  let launcherOut = '';
  launcher.stdout.on('data', (b) => (launcherOut += b));
  const masters = Array.from({ length: MASTERS }, (_, i) => `127.0.0.1:${BASE + i}`);
  const client = new DfsClient(masters);
  const results: Record<string, unknown> = { masters: MASTERS, date: new Date().toISOString() };
  try {
    const deadline = Date.now() + 30_000;
    while (!launcherOut.includes('ready')) {
      if (Date.now() > deadline || launcher.exitCode !== null) throw new Error(`the cluster did not start:\n${launcherOut}`);
      await sleep(100);
    }
    console.log(`cluster: ${MASTERS} masters, 3 chunkservers, data in ${dir}`);
    const phases: Phase[] = [];
    phases.push(await phase('mkdir, sequential', Math.min(OPS, 1000), 1, (i) => client.mkdir(`/seq/d${i}`, true)));
    phases.push(await phase(`mkdir, ${INFLIGHT} in flight`, OPS, INFLIGHT, (i) => client.mkdir(`/par/d${i}`, true)));
    phases.push(await phase('stat, sequential', Math.min(OPS, 1000), 1, (i) => client.stat(`/seq/d${i % 1000}`)));
    phases.push(await phase(`stat, ${INFLIGHT} in flight`, OPS, INFLIGHT, (i) => client.stat(`/par/d${i}`)));
    results.phases = phases;

    if (MASTERS > 1) {
      // Failover: a sequential stream of mkdirs; kill -9 the leader; the gap is the longest time
      // any one operation took around the kill (the client waits for the new leader by itself).
      const status = await client.status();
      const info = JSON.parse(readFileSync(join(dir, 'cluster.json'), 'utf8')) as { processes: { addr: string; pid: number }[] };
      const leader = info.processes.find((p) => p.addr === (status as ClusterStatus).leader)!;
      let killedAt = 0;
      let firstAfter = 0;
      let longest = 0;
      for (let i = 0; i < 400; i++) {
        if (i === 100) {
          process.kill(leader.pid, 'SIGKILL');
          killedAt = performance.now();
        }
        const t0 = performance.now();
        await client.mkdir(`/failover/d${i}`, true);
        const t1 = performance.now();
        longest = Math.max(longest, t1 - t0);
        if (killedAt && !firstAfter) firstAfter = t1;
      }
      const gapMs = firstAfter - killedAt;
      console.log(`failover: kill -9 of the leader to the first acknowledged operation: ${gapMs.toFixed(0)} ms (longest single operation ${longest.toFixed(0)} ms)`);
      results.failover = { gapMs, longestOpMs: longest };
    }
    if (args.json) {
      writeFileSync(args.json, JSON.stringify(results, null, 2) + '\n');
      console.log(`results written to ${args.json}`);
    }
  } finally {
    await closeHttpAgent();
    // Stop only what we started: the launcher (it stops its children), then anything left, by pid.
    const file = join(dir, 'cluster.json');
    const pids = existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as { processes: { pid: number }[] }).processes.map((p) => p.pid) : [];
    const exited = new Promise((r) => launcher.once('exit', r));
    launcher.kill('SIGINT');
    await Promise.race([exited, sleep(8000)]);
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* already gone */
      }
    }
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(`metabench: ${(err as Error).message}`);
  process.exit(1);
});
