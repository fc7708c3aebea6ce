import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, openSync, writeFileSync, renameSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { newSecret } from '../common/auth.js';
import { DEFAULT_MASTERS, formatBytes } from '../common/config.js';
import { DfsError } from '../common/errors.js';
import { LeaderClient } from '../common/leader.js';
import type { ClusterStatus } from '../common/protocol.js';

export interface ClusterOptions {
  masters: number;
  chunkservers: number;
  dataDir: string;
  basePort: number;
  chunkSizeBytes: number;
  replication: number;
  deadTimeoutMs: number;
  host: string;
}

export interface ProcessInfo { role: 'master' | 'chunkserver'; id: string; addr: string; pid: number; dataDir: string; log: string }

/** A deleted file's space comes back quickly in a demo; production masters default to a minute. */
const LOCAL_GC_GRACE_MS = 10_000;

const MAIN = fileURLToPath(new URL('./main.js', import.meta.url));

/** Masters listen on basePort+i, chunkservers on basePort+100+i. */
export function clusterLayout(opts: ClusterOptions): { masters: string[]; chunkservers: string[] } {
  return {
    masters: Array.from({ length: opts.masters }, (_, i) => `${opts.host}:${opts.basePort + i}`),
    chunkservers: Array.from({ length: opts.chunkservers }, (_, i) => `${opts.host}:${opts.basePort + 100 + i}`),
  };
}

function writeJsonAtomic(file: string, value: unknown): void {
  writeFileSync(`${file}.tmp`, JSON.stringify(value, null, 2) + '\n');
  renameSync(`${file}.tmp`, file);
}

/**
 * `dfs cluster`: runs masters and chunkservers as separate processes on one machine, data under
 * one folder, in the foreground. Ctrl-C stops them all; starting again reuses the data.
 */
export async function runCluster(opts: ClusterOptions): Promise<void> {
  if (![1, 3, 5].includes(opts.masters)) throw new DfsError('INVALID_ARGUMENT', '--masters must be 1, 3 or 5 (a Raft group needs an odd count to keep a majority)');
  const dataDir = resolve(opts.dataDir);
  mkdirSync(dataDir, { recursive: true });
  const secretFile = join(dataDir, 'secret');
  if (!existsSync(secretFile)) writeFileSync(secretFile, newSecret() + '\n', { mode: 0o600 });
  const layout = clusterLayout(opts);
  const procs: { info: ProcessInfo; child: ChildProcess }[] = [];
  let stopping = false;

  const start = (role: ProcessInfo['role'], id: string, addr: string, args: string[]) => {
    const dir = join(dataDir, id);
    mkdirSync(dir, { recursive: true });
    const log = join(dir, `${role}.log`);
    const out = openSync(log, 'a');
    // Node's own flags (--cpu-prof, --max-old-space-size, ...) given to `dfs cluster` reach every process.
    const child = spawn(process.execPath, [...process.execArgv, MAIN, role, '--id', id, '--listen', addr, '--data', dir, '--secret-file', secretFile, ...args], {
      stdio: ['ignore', out, out],
    });
    const info: ProcessInfo = { role, id, addr, pid: child.pid!, dataDir: dir, log };
    child.on('exit', (code, signal) => {
      if (!stopping) console.error(`dfs cluster: ${role} ${id} (pid ${info.pid}) exited (${signal ?? `code ${code}`}); see ${log}`);
    });
    procs.push({ info, child });
  };

  const peers = layout.masters.map((addr, i) => `m${i + 1}=${addr}`).join(',');
  layout.masters.forEach((addr, i) => start('master', `m${i + 1}`, addr, [
    '--peers', peers,
    '--chunk-size', String(opts.chunkSizeBytes), '--replication', String(opts.replication), '--dead-timeout-ms', String(opts.deadTimeoutMs),
    '--gc-grace-ms', String(LOCAL_GC_GRACE_MS),
  ]));
  layout.chunkservers.forEach((addr, i) => start('chunkserver', `cs${i + 1}`, addr, [
    '--masters', layout.masters.join(','), '--chunk-size', String(opts.chunkSizeBytes),
  ]));
  writeJsonAtomic(join(dataDir, 'cluster.json'), {
    masters: layout.masters, dataDir, secretFile, launcherPid: process.pid, processes: procs.map((p) => p.info),
  });

  const stop = async () => {
    if (stopping) return;
    stopping = true;
    console.error(`\ndfs cluster: stopping ${procs.length} processes`);
    const exits = procs.map((p) => (p.child.exitCode !== null || p.child.signalCode !== null) ? Promise.resolve() : new Promise<void>((r) => p.child.once('exit', () => r())));
    for (const p of procs) p.child.kill('SIGTERM');
    const timer = setTimeout(() => procs.forEach((p) => p.child.kill('SIGKILL')), 5000);
    await Promise.all(exits);
    clearTimeout(timer);
    process.exit(0);
  };
  process.on('SIGINT', () => void stop());
  process.on('SIGTERM', () => void stop());

  console.log(`dfs cluster: data in ${dataDir}`);
  for (const { info } of procs) console.log(`  ${info.role.padEnd(11)} ${info.id.padEnd(5)} ${info.addr.padEnd(16)} pid ${String(info.pid).padEnd(7)} ${info.dataDir}`);

  // Ready once the master answers and every chunkserver has registered.
  const deadline = Date.now() + 30_000;
  let status: ClusterStatus | undefined;
  while (Date.now() < deadline && !stopping) {
    status = await new LeaderClient(layout.masters, { maxWaitMs: 1000 }).call<ClusterStatus>('/v1/cluster/status', { timeoutMs: 1000 }).catch(() => undefined);
    if (status && status.chunkservers.filter((c) => c.alive).length >= opts.chunkservers) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  if (!status) {
    console.error(`dfs cluster: the master did not come up within 30 s; see ${procs[0]!.info.log}`);
  } else {
    const cap = status.chunkservers.reduce((n, c) => n + c.capacityBytes, 0);
    console.log(`dfs cluster: ready — ${status.chunkservers.filter((c) => c.alive).length} chunkservers (${formatBytes(cap)} raw), chunk size ${formatBytes(opts.chunkSizeBytes)}, replication ${opts.replication}`);
  }
  const isDefault = layout.masters.join(',') === DEFAULT_MASTERS.join(',');
  console.log(`\nPoint dfs at it${isDefault ? ' (this is also the default)' : ''}:\n  export DFS_MASTERS=${layout.masters.join(',')}\n  dfs status\n\nProcesses are listed in ${join(dataDir, 'cluster.json')}. Ctrl-C stops the cluster.`);
  await new Promise(() => undefined); // until a signal
}
