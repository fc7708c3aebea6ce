// A rolling restart of a benchmark's local cluster under a put/get load: every master, then every
// chunkserver, stopped with SIGTERM (a leader hands over first) and started again with the very
// command the launcher used, one at a time, each once the one before is back. What a client saw
// is the figure: the longest stretch without a successful write (or read), and operations that
// failed; the same load with no restart, just before, gives the machine's own noise. Every
// acknowledged file is read back at the end. Only this benchmark's own processes are signalled,
// by pid.
import type { ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import type { DfsClient } from '../../cli/client.js';
import type { ProcessInfo } from '../../cli/cluster.js';
import { call } from '../../common/contract/call.js';
import { CLUSTER } from '../../common/contract/index.js';
import { spawnTracked } from './cleanup.js';
import type { LocalCluster } from './local-cluster.js';
import { PutGetLoad, type KindStats } from './load.js';
import { sleep } from './stats.js';

export interface RollingResult {
  restarted: string[];
  baseline: { writes: KindStats; reads: KindStats };
  rolling: { writes: KindStats; reads: KindStats };
  verified: number;
  bad: string[];
  bytesCopiedDuring: number;
}

const BACK_TIMEOUT_MS = 120_000;

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Starts `p` again with its launcher's command; resolves once it logs that it started. */
function respawn(p: ProcessInfo): Promise<ChildProcess> {
  const child = spawnTracked(p.argv[0]!, p.argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
  const started = `${p.role} started`;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${p.id} did not start again within ${BACK_TIMEOUT_MS / 1000} s`)), BACK_TIMEOUT_MS);
    const onLine = (line: string) => {
      if (!line.includes(started)) return;
      clearTimeout(timer);
      p.pid = child.pid!;
      resolve(child);
    };
    createInterface({ input: child.stdout! }).on('line', onLine);
    createInterface({ input: child.stderr! }).on('line', () => undefined);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${p.id} exited (${code}) while starting again`));
    });
  });
}

async function until(cond: () => Promise<boolean>, what: string): Promise<void> {
  const deadline = performance.now() + BACK_TIMEOUT_MS;
  while (!(await cond().catch(() => false))) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(200);
  }
}

/** SIGTERM, wait for the exit, start again, wait until the cluster has it back. */
async function restartOne(cluster: LocalCluster, client: DfsClient, p: ProcessInfo): Promise<void> {
  process.kill(p.pid, 'SIGTERM');
  for (let i = 0; i < 600 && alive(p.pid); i++) await sleep(50);
  if (alive(p.pid)) throw new Error(`${p.id} (pid ${p.pid}) did not stop within 30 s of SIGTERM`);
  await respawn(p);
  if (p.role === 'master') {
    await until(async () => {
      const all = await Promise.all(cluster.masters.map((m) => call(m, CLUSTER.raftStatus, {}, { timeoutMs: 1000 }).catch(() => undefined)));
      return all.every((s) => s !== undefined) && all.filter((s) => s!.role === 'leader').length === 1;
    }, `${p.id} back in a group with one leader`);
  } else {
    await until(async () => (await client.status()).chunkservers.find((c) => c.id === p.id)?.alive === true, `${p.id} registered again`);
  }
}

export async function measureRollingRestart(o: { cluster: LocalCluster; client: DfsClient; root: string; log: (l: string) => void }): Promise<RollingResult> {
  const loadOpts = { fileBytes: 1024 * 1024, replication: 3, pauseMs: 20, maxFiles: 2000 };
  // The machine's own noise: the same load, no restart, for as many writes as one restart gets.
  const baseline = new PutGetLoad(o.client, { ...loadOpts, root: `${o.root}/rolling-baseline` });
  baseline.start();
  await baseline.progress(30, BACK_TIMEOUT_MS);
  await baseline.stop();
  const copiedBefore = (await o.client.status()).repair.bytesCopied;
  const load = new PutGetLoad(o.client, { ...loadOpts, root: `${o.root}/rolling`, seed: 2 });
  load.start();
  await load.progress(5, BACK_TIMEOUT_MS);
  const restarted: string[] = [];
  const order = [...o.cluster.processes.filter((p) => p.role === 'master'), ...o.cluster.processes.filter((p) => p.role === 'chunkserver')];
  for (const p of order) {
    await restartOne(o.cluster, o.client, p);
    restarted.push(p.id);
    o.log(`rolling restart: ${p.id} is back (${load.stats.writes.ok} writes acknowledged, ${load.stats.writes.failed} failed so far)`);
    await load.progress(5, BACK_TIMEOUT_MS);
  }
  await load.stop();
  const bytesCopiedDuring = (await o.client.status()).repair.bytesCopied - copiedBefore;
  const v = await load.verifyAll();
  // The load's small files go, so the re-replication measured next copies only its own file's chunks.
  for (const dir of ['rolling-baseline', 'rolling']) await o.client.remove(`${o.root}/${dir}`, true);
  return { restarted, baseline: baseline.stats, rolling: load.stats, verified: v.checked, bad: [...v.bad, ...load.wrongReads.map((p) => `${p}: a read saw other bytes`)], bytesCopiedDuring };
}
