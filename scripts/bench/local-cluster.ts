// A fresh local cluster for a benchmark: the real `dfs cluster` launcher in a folder of its own,
// on ports that were free a moment before, stopped by pid when the benchmark ends.
import { ADMIN_TOKEN_FILE } from '../../cli/token-source.js';
import type { ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';
import type { ProcessInfo } from '../../cli/cluster.js';
import { isRunning, onCleanup, spawnTracked } from './cleanup.js';
import { sleep } from './stats.js';

export const ROOT = resolve(import.meta.dirname, '..', '..', '..');
export const DFS = join(ROOT, 'dist', 'cli', 'main.js');

export interface LocalClusterOptions {
  dataDir: string;
  masters: number;
  chunkservers: number;
  chunkSizeBytes?: number;
  replication?: number;
  /** Masters on basePort+i, chunkservers on basePort+100+i (the launcher's layout); default: a free range. */
  basePort?: number;
}

/** Whether `port` on 127.0.0.1 can be bound right now. */
function portIsFree(port: number): Promise<boolean> {
  return new Promise((r) => {
    const srv = createServer();
    srv.once('error', () => r(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => r(true)));
  });
}

/**
 * A base port whose whole layout is free, so that a benchmark never lands on a cluster someone
 * else runs (tests and other benchmarks share this machine). Racy by nature, hence the retries.
 */
export async function freeBasePort(masters: number, chunkservers: number): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = 20_000 + Math.floor(Math.random() * 30_000);
    const ports = [...Array.from({ length: masters }, (_, i) => base + i), ...Array.from({ length: chunkservers }, (_, i) => base + 100 + i)];
    if ((await Promise.all(ports.map(portIsFree))).every(Boolean)) return base;
  }
  throw new Error('found no free range of ports on 127.0.0.1');
}

export class LocalCluster {
  private constructor(
    readonly dataDir: string,
    readonly masters: string[],
    readonly processes: ProcessInfo[],
    private readonly launcher: ChildProcess,
    private readonly launcherLog: () => string,
  ) {}

  /** Starts `dfs cluster` and resolves once it says every chunkserver registered. */
  static async start(opts: LocalClusterOptions): Promise<LocalCluster> {
    const basePort = opts.basePort ?? await freeBasePort(opts.masters, opts.chunkservers);
    // No S3 gateway: the bench measures dfs itself (and the gateway's port could be taken).
    const args = [DFS, 'cluster', '--data', opts.dataDir, '--base-port', String(basePort), '--masters', String(opts.masters), '--chunkservers', String(opts.chunkservers), '--s3-port', '0'];
    if (opts.chunkSizeBytes !== undefined) args.push('--chunk-size', String(opts.chunkSizeBytes));
    if (opts.replication !== undefined) args.push('--replication', String(opts.replication));
    // Output is kept, not shown: the launcher reports each process we kill -9 on purpose.
    const launcher = spawnTracked(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    launcher.stdout!.on('data', (b: Buffer) => (output += b.toString()));
    launcher.stderr!.on('data', (b: Buffer) => (output += b.toString()));
    // Registered before waiting, so a cluster that never gets ready is stopped all the same.
    const cluster = new LocalCluster(opts.dataDir, [], [], launcher, () => output);
    onCleanup(() => cluster.stop());
    const deadline = Date.now() + 60_000;
    while (!/dfs cluster: ready/.test(output)) {
      if (Date.now() > deadline || !isRunning(launcher) || /did not come up/.test(output)) throw new Error(`the local cluster did not start:\n${output}`);
      await sleep(100);
    }
    const info = JSON.parse(readFileSync(join(opts.dataDir, 'cluster.json'), 'utf8')) as { masters: string[]; processes: ProcessInfo[] };
    // The cluster's admin token, for the clients of this process and the workers it spawns.
    // (A DFS_TOKEN from the caller's environment names another cluster's token: it would win, so it goes.)
    delete process.env.DFS_TOKEN;
    process.env.DFS_TOKEN_FILE = join(opts.dataDir, ADMIN_TOKEN_FILE);
    cluster.masters.push(...info.masters);
    cluster.processes.push(...info.processes);
    return cluster;
  }

  /** The launcher's output so far: says why a process exited. */
  get log(): string {
    return this.launcherLog();
  }

  byAddr(addr: string): ProcessInfo | undefined {
    return this.processes.find((p) => p.addr === addr);
  }

  /** kill -9 one of the cluster's processes, by pid, and wait until it is gone. */
  async kill(proc: ProcessInfo): Promise<void> {
    process.kill(proc.pid, 'SIGKILL');
    for (let i = 0; i < 100 && pidAlive(proc.pid); i++) await sleep(50);
  }

  /** Ctrl-C to the launcher (it stops its children); whatever is left after 10 s gets kill -9 by pid. */
  async stop(): Promise<void> {
    if (!isRunning(this.launcher)) return;
    const exited = new Promise((r) => this.launcher.once('exit', r));
    this.launcher.kill('SIGINT');
    const timedOut = await Promise.race([exited.then(() => false), sleep(10_000).then(() => true)]);
    if (!timedOut) return;
    for (const { pid } of this.processes.length > 0 ? this.processes : readProcesses(this.dataDir)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* already gone */
      }
    }
  }
}

/** The processes a launcher wrote down, if it got that far. */
function readProcesses(dataDir: string): ProcessInfo[] {
  const file = join(dataDir, 'cluster.json');
  return existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as { processes: ProcessInfo[] }).processes : [];
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
