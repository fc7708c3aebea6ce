// Starts real master and chunkserver processes (from dist/) on 127.0.0.1 with ephemeral ports
// and temporary data folders, and runs the real `dfs` CLI against them.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, mkdirSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';

export const ROOT = resolve(import.meta.dirname, '..', '..');
export const DFS = join(ROOT, 'dist', 'cli', 'main.js');

if (!existsSync(DFS)) throw new Error(`${DFS} is missing: run npm run build (npm ci does it) before the tests`);

export interface Proc { child: ChildProcess; addr: string; id: string; dataDir: string; pid: number; output: string[] }

export interface ClusterOptions {
  chunkservers?: number;
  chunkSizeBytes?: number;
  replication?: number;
  deadTimeoutMs?: number;
  leaseMs?: number;
  heartbeatMs?: number;
}

/** Spawns `dfs <role> ...` and resolves with its address once it logs that it started. */
function spawnRole(role: 'master' | 'chunkserver', args: string[], startedMsg: string): Promise<Proc> {
  const child = spawn(process.execPath, [DFS, role, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, DFS_LOG_LEVEL: 'info' } });
  const output: string[] = [];
  return new Promise((resolvePromise, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${role} did not start within 20 s:\n${output.join('\n')}`));
    }, 20_000);
    let started = false;
    const onLine = (line: string) => {
      if (output.length < 2000) output.push(line);
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
  master!: Proc;
  readonly chunkservers: (Proc | undefined)[] = [];
  readonly opts: Required<ClusterOptions>;
  private masterPort = 0;

  private constructor(opts: ClusterOptions) {
    this.opts = {
      chunkservers: 4, chunkSizeBytes: 1024 * 1024, replication: 3, deadTimeoutMs: 3000, leaseMs: 60_000, heartbeatMs: 300, ...opts,
    };
    this.dir = mkdtempSync(join(tmpdir(), 'dfs-test-'));
    this.secretFile = join(this.dir, 'secret');
    writeFileSync(this.secretFile, 'test-secret-0123456789abcdef\n');
  }

  static async start(opts: ClusterOptions = {}): Promise<TestCluster> {
    const c = new TestCluster(opts);
    try {
      await c.startMaster();
      for (let i = 0; i < c.opts.chunkservers; i++) await c.startChunkserver(i);
      await c.waitForLive(c.opts.chunkservers);
    } catch (err) {
      await c.stop();
      throw err;
    }
    return c;
  }

  get masters(): string {
    return this.master.addr;
  }

  async startMaster(): Promise<void> {
    const dataDir = join(this.dir, 'm1');
    mkdirSync(dataDir, { recursive: true });
    this.master = await spawnRole('master', [
      '--id', 'm1', '--listen', `127.0.0.1:${this.masterPort}`, '--data', dataDir, '--secret-file', this.secretFile,
      '--chunk-size', String(this.opts.chunkSizeBytes), '--replication', String(this.opts.replication),
      '--dead-timeout-ms', String(this.opts.deadTimeoutMs), '--lease-ms', String(this.opts.leaseMs),
    ], 'master started');
    // A restarted master keeps its address so the chunkservers find it again.
    this.masterPort = Number(this.master.addr.split(':')[1]);
  }

  async startChunkserver(i: number): Promise<Proc> {
    const dataDir = join(this.dir, `cs${i + 1}`);
    mkdirSync(dataDir, { recursive: true });
    const previous = this.chunkservers[i];
    const port = previous ? previous.addr.split(':')[1] : '0';
    const p = await spawnRole('chunkserver', [
      '--id', `cs${i + 1}`, '--listen', `127.0.0.1:${port}`, '--data', dataDir, '--masters', this.master.addr,
      '--secret-file', this.secretFile, '--chunk-size', String(this.opts.chunkSizeBytes), '--heartbeat-ms', String(this.opts.heartbeatMs),
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

  async restartMaster(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    await this.kill(this.master, signal);
    await this.startMaster();
  }

  /** Runs the dfs CLI against this cluster. */
  dfs(args: string[], opts: { input?: Buffer | string; env?: Record<string, string>; timeoutMs?: number } = {}): Promise<RunResult> {
    return runDfs(args, { ...opts, env: { DFS_MASTERS: this.master.addr, ...opts.env } });
  }

  async status(): Promise<{ chunkservers: { id: string; alive: boolean; chunkCount: number }[]; underReplicatedChunks: number; missingChunks: number }> {
    const r = await this.dfs(['status', '--json']);
    if (r.code !== 0) throw new Error(`dfs status failed: ${r.stderr}`);
    return JSON.parse(r.stdout.toString());
  }

  async waitForLive(n: number, timeoutMs = 20_000): Promise<void> {
    await waitFor(async () => (await this.status().catch(() => undefined))?.chunkservers.filter((c) => c.alive).length === n, timeoutMs, `${n} live chunkservers`);
  }

  /** Warnings and errors logged by every process so far: printed when a test fails, to say why. */
  problems(): string[] {
    const lines: string[] = [];
    for (const p of [this.master, ...this.chunkservers]) {
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
    for (const p of [this.master, ...this.chunkservers]) if (p) await this.kill(p).catch(() => undefined);
    rmSync(this.dir, { recursive: true, force: true });
  }
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
