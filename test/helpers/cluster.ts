// Starts real master and chunkserver processes (from dist/) on 127.0.0.1 with ephemeral ports
// and temporary data folders, and runs the real `dfs` CLI against them.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, mkdirSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { createInterface } from 'node:readline';
import { bootstrapKey, newTokenId, signClientToken } from '../../common/credentials.js';
import { DfsClient } from '../../cli/client.js';

export const ROOT = resolve(import.meta.dirname, '..', '..');
export const DFS = join(ROOT, 'dist', 'cli', 'main.js');

if (!existsSync(DFS)) throw new Error(`${DFS} is missing: run npm run build (npm ci does it) before the tests`);

/** The secret every test cluster shares (each has its own data, so none reaches another). */
export const TEST_SECRET = 'test-secret-0123456789abcdef';

/** An admin token of any test cluster: signed with the bootstrap key of TEST_SECRET, as `dfs cluster` makes its own. */
export const ADMIN_TOKEN = signClientToken(bootstrapKey(Buffer.from(TEST_SECRET)), {
  id: newTokenId(), name: 'test-admin', admin: true, readOnly: false, prefix: '/', issuedAtMs: Date.now(),
});
// Clients in a test's own process (DfsClient, connect()) and every dfs it spawns find the token as
// a user's would, in DFS_TOKEN; a test of anonymous calls sets DFS_TOKEN to '' for its command.
process.env.DFS_TOKEN = ADMIN_TOKEN;

export interface Proc { child: ChildProcess; addr: string; id: string; dataDir: string; pid: number; output: string[] }

export interface ClusterOptions {
  /** Masters in the Raft group (1, 3 or 5). */
  masters?: number;
  chunkservers?: number;
  chunkSizeBytes?: number;
  replication?: number;
  deadTimeoutMs?: number;
  leaseMs?: number;
  heartbeatMs?: number;
  /** Raft log entries between snapshots. */
  snapshotEvery?: number;
  /** Unreferenced replicas are deleted after this long. */
  gcGraceMs?: number;
  /** Balancing threshold (share of the mean use); 0 (the default here) turns balancing off: a move briefly shows a 4th replica, which tests counting replicas would trip on. */
  balanceThreshold?: number;
  /** How long the trash keeps what rm moved there (the master's default, a day, when absent). */
  trashIntervalMs?: number;
  /** More `dfs chunkserver` options, passed to every chunkserver as they are (e.g. --scrub-rate). */
  chunkserverArgs?: string[];
  /** Chunkserver i's rack (`--rack`), by index; absent or short: the default rack. */
  racks?: string[];
  /** More `dfs master` options, passed to every master as they are (e.g. --connection-grace-ms). */
  masterArgs?: string[];
  /**
   * The masters' --inline-max-bytes. Default here 0 (off), unlike a master's: most tests put small
   * files to exercise chunks, replicas and repair. $DFS_TEST_INLINE_MAX_BYTES sets the default,
   * to run those tests with inline files on.
   */
  inlineMaxBytes?: number;
}

/**
 * How long a spawned role may take to log that it started, and a cluster to see its chunkservers
 * live. Generous: CI runs three test files at once on two cores, where a master that replays its
 * log and snapshot took over 20 s to start (raft.test.ts, load average 21). A real hang still fails.
 */
const START_TIMEOUT_MS = 60_000;

/** Spawns `dfs <role> ...` (`bin`: another build of dfs) and resolves with its address once it logs that it started. */
export function spawnRole(role: 'master' | 'chunkserver', args: string[], startedMsg: string, bin = DFS): Promise<Proc> {
  const child = spawn(process.execPath, [bin, role, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, DFS_LOG_LEVEL: 'info' } });
  const output: string[] = [];
  return new Promise((resolvePromise, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${role} did not start within ${START_TIMEOUT_MS / 1000} s:\n${output.join('\n')}`));
    }, START_TIMEOUT_MS);
    let started = false;
    const onLine = (line: string) => {
      // The first 1000 lines (its start) and the last 1000: what went wrong late in a long test is kept too.
      if (output.length >= 2000) output.splice(1000, 1);
      output.push(line);
      if (started) return;
      try {
        const rec = JSON.parse(line) as { msg?: string; addr?: string; id?: string };
        if (rec.msg === startedMsg && rec.addr) {
          started = true;
          clearTimeout(timer);
          resolvePromise({ child, addr: rec.addr, id: rec.id ?? '', dataDir: args[args.indexOf('--data') + 1]!, pid: child.pid!, output });
        }
      } catch {
        /* not a log line */
      }
    };
    createInterface({ input: child.stdout! }).on('line', onLine);
    createInterface({ input: child.stderr! }).on('line', onLine);
    child.once('exit', (code, signal) => {
      if (!started) {
        clearTimeout(timer);
        reject(new Error(`${role} exited (${signal ?? code}) before starting:\n${output.join('\n')}`));
      }
    });
  });
}

export interface RunResult { code: number; stdout: Buffer; stderr: string }

export class TestCluster {
  readonly dir: string;
  readonly secretFile: string;
  /** The masters, by index (m1 is 0); an entry stays after a kill so it can be restarted. */
  readonly masterProcs: Proc[] = [];
  readonly chunkservers: (Proc | undefined)[] = [];
  readonly opts: Required<Omit<ClusterOptions, 'trashIntervalMs' | 'racks'>> & Pick<ClusterOptions, 'trashIntervalMs' | 'racks'>;
  /** Listen addresses of the masters: fixed for the cluster's life, so restarts keep them. */
  private masterAddrs: string[] = [];

  private static readonly live = new Set<TestCluster>();

  private constructor(opts: ClusterOptions) {
    // If the test process dies (a tap timeout, an uncaught error), take our processes with it.
    if (TestCluster.live.size === 0) {
      process.once('exit', () => {
        for (const c of TestCluster.live) {
          for (const p of [...c.masterProcs, ...c.chunkservers]) {
            if (p && p.child.exitCode === null && p.child.signalCode === null) {
              try { process.kill(p.pid, 'SIGKILL'); } catch { /* already gone */ }
            }
          }
        }
      });
    }
    TestCluster.live.add(this);
    this.opts = {
      masters: 1, chunkservers: 4, chunkSizeBytes: 1024 * 1024, replication: 3, deadTimeoutMs: 3000, leaseMs: 60_000, heartbeatMs: 300,
      snapshotEvery: 10_000, gcGraceMs: 1000, balanceThreshold: 0, chunkserverArgs: [], masterArgs: [],
      inlineMaxBytes: Number(process.env.DFS_TEST_INLINE_MAX_BYTES ?? 0), ...opts,
    };
    this.dir = mkdtempSync(join(tmpdir(), 'dfs-test-'));
    this.secretFile = join(this.dir, 'secret');
    writeFileSync(this.secretFile, `${TEST_SECRET}\n`);
  }

  static async start(opts: ClusterOptions = {}): Promise<TestCluster> {
    const c = new TestCluster(opts);
    try {
      // A group of one may listen on port 0; a larger group needs its addresses up front.
      c.masterAddrs = c.opts.masters === 1 ? ['127.0.0.1:0'] : (await freePorts(c.opts.masters)).map((p) => `127.0.0.1:${p}`);
      await Promise.all(c.masterAddrs.map((_, i) => c.startMaster(i)));
      // Started together: each is a node start (CPU and disk), none waits for another.
      await Promise.all(Array.from({ length: c.opts.chunkservers }, (_, i) => c.startChunkserver(i)));
      await c.waitForLive(c.opts.chunkservers);
    } catch (err) {
      await c.stop();
      throw err;
    }
    return c;
  }

  /** The first master (the only one in a group of one). */
  get master(): Proc {
    return this.masterProcs[0]!;
  }

  /** DFS_MASTERS for this cluster: every master's address. */
  get masters(): string {
    return this.masterAddrs.join(',');
  }

  /** The `dfs master` arguments for master i; `peers: false` leaves `--peers` out, as a person restarting it by hand might. */
  masterArgs(i: number, opts: { peers?: boolean } = {}): string[] {
    const id = `m${i + 1}`;
    const dataDir = join(this.dir, id);
    const peers = this.masterAddrs.length > 1 && opts.peers !== false ? ['--peers', this.masterAddrs.map((a, j) => `m${j + 1}=${a}`).join(',')] : [];
    return [
      '--id', id, '--listen', this.masterAddrs[i]!, '--data', dataDir, '--secret-file', this.secretFile,
      '--chunk-size', String(this.opts.chunkSizeBytes), '--replication', String(this.opts.replication),
      '--dead-timeout-ms', String(this.opts.deadTimeoutMs), '--lease-ms', String(this.opts.leaseMs),
      '--snapshot-every', String(this.opts.snapshotEvery), '--gc-grace-ms', String(this.opts.gcGraceMs),
      '--balance-threshold', String(this.opts.balanceThreshold), '--inline-max-bytes', String(this.opts.inlineMaxBytes), ...this.opts.masterArgs, ...peers,
      ...(this.opts.trashIntervalMs !== undefined ? ['--trash-interval-ms', String(this.opts.trashIntervalMs)] : []),
    ];
  }

  async startMaster(i = 0, opts: { peers?: boolean } = {}): Promise<Proc> {
    const dataDir = join(this.dir, `m${i + 1}`);
    mkdirSync(dataDir, { recursive: true });
    const p = await spawnRole('master', this.masterArgs(i, opts), 'master started');
    this.masterProcs[i] = p;
    // A restarted master keeps its address so the chunkservers find it again.
    this.masterAddrs[i] = p.addr;
    return p;
  }

  /** Every master's address, by index. */
  get masterAddresses(): string[] {
    return [...this.masterAddrs];
  }

  /** The master that currently leads, by asking each live one; throws if none does. */
  async leader(): Promise<{ index: number; proc: Proc }> {
    const s = await this.status();
    const leaderAddr = (s as unknown as { leader: string | null }).leader;
    const index = this.masterAddrs.indexOf(leaderAddr ?? '');
    if (index < 0) throw new Error(`no leader known: ${JSON.stringify(s)}`);
    return { index, proc: this.masterProcs[index]! };
  }

  async startChunkserver(i: number): Promise<Proc> {
    const dataDir = join(this.dir, `cs${i + 1}`);
    mkdirSync(dataDir, { recursive: true });
    const previous = this.chunkservers[i];
    const port = previous ? previous.addr.split(':')[1] : '0';
    const p = await spawnRole('chunkserver', [
      '--id', `cs${i + 1}`, '--listen', `127.0.0.1:${port}`, '--data', dataDir, '--masters', this.masters,
      '--secret-file', this.secretFile, '--chunk-size', String(this.opts.chunkSizeBytes), '--heartbeat-ms', String(this.opts.heartbeatMs),
      ...this.opts.chunkserverArgs, ...(this.opts.racks?.[i] !== undefined ? ['--rack', this.opts.racks[i]] : []), // rack rule
    ], 'chunkserver started');
    this.chunkservers[i] = p;
    return p;
  }

  /** kill -9 (or another signal), and wait until the process is gone. */
  async kill(p: Proc, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    if (p.child.exitCode !== null || p.child.signalCode !== null) return;
    const gone = new Promise<void>((r) => p.child.once('exit', () => r()));
    process.kill(p.pid, signal);
    await gone;
  }

  async restartMaster(signal: NodeJS.Signals = 'SIGKILL', i = 0): Promise<void> {
    await this.kill(this.masterProcs[i]!, signal);
    await this.startMaster(i);
  }

  /** Runs the dfs CLI against this cluster. */
  dfs(args: string[], opts: { input?: Buffer | string; env?: Record<string, string>; timeoutMs?: number } = {}): Promise<RunResult> {
    return runDfs(args, { ...opts, env: { DFS_MASTERS: this.masters, ...opts.env } });
  }

  /**
   * The cluster's status (what `dfs status --json` prints), asked from this process with the
   * client library the CLI uses: tests poll it often, and a CLI start per poll costs ~0.4 s of
   * CPU. Tests of `dfs status` itself run the CLI (status-cli.test.ts).
   */
  async status(): Promise<{ chunkservers: { id: string; alive: boolean; chunkCount: number }[]; underReplicatedChunks: number; missingChunks: number }> {
    const s = await new DfsClient(this.masterAddrs, { token: ADMIN_TOKEN }).status();
    return JSON.parse(JSON.stringify(s));
  }

  async waitForLive(n: number, timeoutMs = START_TIMEOUT_MS): Promise<void> {
    await waitFor(async () => (await this.status().catch(() => undefined))?.chunkservers.filter((c) => c.alive).length === n, timeoutMs, `${n} live chunkservers`);
  }

  /** Warnings and errors logged by every process so far: printed when a test fails, to say why. */
  problems(): string[] {
    const lines: string[] = [];
    for (const p of [...this.masterProcs, ...this.chunkservers]) {
      for (const line of p?.output ?? []) {
        try {
          if ((JSON.parse(line) as { level?: number }).level! >= 40) lines.push(`${p!.id}: ${line}`);
        } catch {
          lines.push(`${p!.id}: ${line}`);
        }
      }
    }
    return lines;
  }

  async stop(): Promise<void> {
    TestCluster.live.delete(this);
    for (const p of [...this.masterProcs, ...this.chunkservers]) if (p) await this.kill(p).catch(() => undefined);
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Ports the OS says are free now (bound to port 0, then released) for a group that needs them up front. */
export async function freePorts(n: number): Promise<number[]> {
  const servers = await Promise.all(Array.from({ length: n }, () => new Promise<Server>((resolveServer, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => resolveServer(srv));
  })));
  const ports = servers.map((srv) => (srv.address() as AddressInfo).port);
  await Promise.all(servers.map((srv) => new Promise((r) => srv.close(r))));
  return ports;
}

/** Runs `dfs` as a user would: a separate process, arguments, stdin, exit code. */
export function runDfs(args: string[], opts: { input?: Buffer | string; env?: Record<string, string>; timeoutMs?: number } = {}): Promise<RunResult> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, [DFS, ...args], { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, ...opts.env } });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`dfs ${args.join(' ')} did not finish within ${opts.timeoutMs ?? 60_000} ms`));
    }, opts.timeoutMs ?? 60_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolvePromise({ code: code ?? -1, stdout: Buffer.concat(out), stderr: Buffer.concat(err).toString() });
    });
    child.stdin.on('error', () => undefined);
    child.stdin.end(opts.input ?? '');
  });
}

export async function waitFor(cond: () => Promise<boolean> | boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await cond()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

/** Deterministic pseudo-random bytes, so a failure can be reproduced. */
export function randomBytesSeeded(n: number, seed = 1): Buffer {
  const buf = Buffer.allocUnsafe(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    buf[i] = x & 0xff;
  }
  return buf;
}
