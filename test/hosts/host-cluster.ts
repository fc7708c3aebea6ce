// A dfs cluster on the hosts of a bed: 3 masters and up to 6 chunkservers over two racks, and a
// client host, each process started by `dfs <role> --config <file>` from a config file written
// as docs/DEPLOY.md says, listening on its host's own address.
//
// Two networks under it. As root, the namespace bed (bed.ts): every host is a network namespace
// with an address in 198.18.0.0/15, and faults are the kernel's (links down, dropped packets,
// tbf). Without permission to make namespaces, the tests say so and run on 127.0.1.x addresses
// of this machine instead, where every server sits behind a fault proxy (fault-proxy.ts): it
// listens on its host's address, advertises its proxy's (127.0.0.1:port, which every peer,
// chunkserver and client dials), and the faults are the proxy's (pause, refuse, rate cap).
import { bootstrapKey, newTokenId, signClientToken } from '../../common/credentials.js';
import { spawn, spawnSync, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { DFS, ROOT, type RunResult } from '../helpers/cluster.js';
import { layout, NamespaceBed, namespacesUnavailable, type HostSpec } from './bed.js';
import { FaultProxy } from './fault-proxy.js';
import type { AgentReply, AgentRequest } from './agent.js';

export const MASTER_PORT = 9400;
export const CHUNKSERVER_PORT = 9500;
const AGENT = join(ROOT, 'test', 'hosts', 'agent.ts');
/** Servers start with no NODE_OPTIONS, as on a host (test/helpers/untracked-children.mjs keeps tap's tracker out). */
const QUIET_ENV = { NODE_OPTIONS: '', DFS_LOG_LEVEL: 'info', DFS_MASTERS: '', DFS_CLUSTER_SECRET: '' };

/** Hosts on this machine's loopback (127.0.1.x), for a machine where namespaces cannot be made. */
class LoopbackNet {
  readonly addrs = new Map<string, string>();
  readonly dir = mkdtempSync(join(tmpdir(), 'dfs-hosts-'));
  private readonly procs = new Set<ChildProcess>();
  constructor(hosts: HostSpec[]) {
    hosts.forEach((h, i) => this.addrs.set(h.name, `127.0.1.${i + 11}`));
  }
  spawn(_host: string, argv: string[], opts: SpawnOptions): ChildProcess {
    const child = spawn(argv[0]!, argv.slice(1), opts);
    this.procs.add(child);
    return child;
  }
  destroy(): void {
    for (const p of this.procs) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
    rmSync(this.dir, { recursive: true, force: true });
  }
}

export interface ServerProc {
  id: string;
  host: string;
  role: 'master' | 'chunkserver';
  child: ChildProcess;
  pid: number;
  /** The address the others dial (the proxy's, on the loopback network). */
  addr: string;
  /** The fault proxy in front of it, on the loopback network only. */
  proxy?: FaultProxy;
  output: string[];
}

export interface HostClusterOptions {
  masters?: number;
  chunkservers?: number;
  chunkSize?: string;
  /** More keys for every master's config file (deadTimeoutMs, gcGraceMs, ...). */
  masterSettings?: Record<string, unknown>;
  chunkserverSettings?: Record<string, unknown>;
}

export class HostCluster {
  readonly servers: ServerProc[] = [];
  /** Why the namespace bed was not used, when it was not. */
  readonly fallbackReason: string | undefined;
  readonly bed: NamespaceBed | undefined;
  private readonly loop: LoopbackNet | undefined;
  private agent: { child: ChildProcess; pending: Map<number, (r: AgentReply) => void>; next: number } | undefined;
  readonly dir: string;
  /** The cluster's admin token (made with its secret in startAll), given to every process this spawns. */
  private token = '';

  private constructor(private readonly hosts: HostSpec[]) {
    this.fallbackReason = process.env.DFS_HOSTS_LOOPBACK === '1' ? 'DFS_HOSTS_LOOPBACK=1 asks for the loopback network' : namespacesUnavailable();
    if (this.fallbackReason === undefined) this.bed = NamespaceBed.create({ hosts });
    else this.loop = new LoopbackNet(hosts);
    this.dir = this.bed?.dir ?? this.loop!.dir;
  }

  get kind(): 'namespaces' | 'loopback' {
    return this.bed ? 'namespaces' : 'loopback';
  }

  /** Builds the network and starts the cluster; `log` says which network it is on. */
  static async start(opts: HostClusterOptions, log: (msg: string) => void): Promise<HostCluster> {
    const masters = opts.masters ?? 3;
    const c = new HostCluster(layout(masters, opts.chunkservers ?? 6));
    log(c.bed
      ? `namespace bed ${c.bed.tag}: ${[...c.bed.hosts.values()].map((h) => `${h.name}=${h.addr} (rack ${h.rack})`).join(', ')}`
      : `no network namespaces here (${c.fallbackReason}): hosts on 127.0.1.x behind fault proxies instead`);
    try {
      await c.startAll(opts);
    } catch (err) {
      await c.stop();
      throw err;
    }
    return c;
  }

  addrOf(host: string): string {
    return this.bed ? this.bed.host(host).addr : this.loop!.addrs.get(host)!;
  }

  spawnOn(host: string, argv: string[], opts: SpawnOptions = {}): ChildProcess {
    const o: SpawnOptions = { cwd: ROOT, ...opts, env: { ...process.env, ...QUIET_ENV, DFS_TOKEN: this.token, ...opts.env } };
    return this.bed ? this.bed.spawn(host, argv, o) : this.loop!.spawn(host, argv, o);
  }

  get masters(): ServerProc[] {
    return this.servers.filter((s) => s.role === 'master');
  }
  get chunkservers(): ServerProc[] {
    return this.servers.filter((s) => s.role === 'chunkserver');
  }
  server(id: string): ServerProc {
    return this.servers.find((s) => s.id === id)!;
  }

  /** Writes the secret and one config file per process (docs/DEPLOY.md, steps 3 and 4). */
  private async startAll(opts: HostClusterOptions): Promise<void> {
    const etc = join(this.dir, 'etc');
    mkdirSync(etc, { recursive: true });
    const secretFile = join(etc, 'secret');
    const secret = randomBytes(32).toString('hex');
    writeFileSync(secretFile, `${secret}\n`, { mode: 0o600 });
    // The first admin token, signed with the bootstrap key as `dfs token bootstrap` does (DEPLOY.md step 6): every client process gets it.
    this.token = signClientToken(bootstrapKey(Buffer.from(secret)), { id: newTokenId(), name: 'admin', admin: true, readOnly: false, prefix: '/', issuedAtMs: Date.now() });
    const masterIds = Array.from({ length: opts.masters ?? 3 }, (_, i) => `m${i + 1}`);
    const csIds = Array.from({ length: opts.chunkservers ?? 6 }, (_, i) => `cs${i + 1}`);
    // On the loopback network each server's proxy must exist first: its address is what the others dial.
    const proxies = new Map<string, FaultProxy>();
    if (this.loop) {
      for (const id of [...masterIds, ...csIds]) proxies.set(id, await FaultProxy.start(`${this.addrOf(id)}:${id.startsWith('m') ? MASTER_PORT : CHUNKSERVER_PORT}`));
    }
    const publicAddr = (id: string, port: number) => proxies.get(id)?.address ?? `${this.addrOf(id)}:${port}`;
    const peers = Object.fromEntries(masterIds.map((id) => [id, publicAddr(id, MASTER_PORT)]));
    const file = (id: string, role: string, port: number, extra: Record<string, unknown>) => {
      const path = join(etc, `${role}-${id}.json`);
      const advertise = proxies.get(id) ? { advertise: proxies.get(id)!.address } : {};
      writeFileSync(path, JSON.stringify({
        role, id, listen: `${this.addrOf(id)}:${port}`, ...advertise, data: join(this.dir, 'data', id), secretFile, chunkSize: opts.chunkSize ?? '4MiB', ...extra,
      }, null, 2));
      return path;
    };
    await Promise.all(masterIds.map((id) => this.startServer(id, 'master', file(id, 'master', MASTER_PORT, { peers, ...opts.masterSettings }), proxies.get(id))));
    for (const id of csIds) {
      const rack = `rack${this.hosts.find((h) => h.name === id)!.rack}`; // rack rule: each chunkserver in its host's rack
      await this.startServer(id, 'chunkserver', file(id, 'chunkserver', CHUNKSERVER_PORT, { masters: Object.values(peers), heartbeatMs: 500, rack, ...opts.chunkserverSettings }), proxies.get(id));
    }
    this.startAgent(Object.values(peers));
    await this.call({ op: 'status' }, 20_000).catch(() => undefined);
  }

  /** `dfs <role> --config <file>` on its own host; resolves once it logs that it started. */
  startServer(id: string, role: 'master' | 'chunkserver', config: string, proxy?: FaultProxy): Promise<ServerProc> {
    const child = this.spawnOn(id, [process.execPath, DFS, role, '--config', config], { stdio: ['ignore', 'pipe', 'pipe'] });
    const output: string[] = [];
    const startedMsg = `${role} started`;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${id} did not start within 30 s:\n${output.join('\n')}`)), 30_000);
      let started = false;
      const onLine = (line: string) => {
        if (output.length < 2000) output.push(line);
        if (started || !line.includes(startedMsg)) return;
        started = true;
        clearTimeout(timer);
        const s: ServerProc = { id, host: id, role, child, pid: child.pid!, addr: proxy?.address ?? `${this.addrOf(id)}:${role === 'master' ? MASTER_PORT : CHUNKSERVER_PORT}`, proxy, output };
        const i = this.servers.findIndex((x) => x.id === id);
        if (i >= 0) this.servers[i] = s;
        else this.servers.push(s);
        resolve(s);
      };
      createInterface({ input: child.stdout! }).on('line', onLine);
      createInterface({ input: child.stderr! }).on('line', onLine);
      child.once('exit', (code, signal) => {
        if (started) return;
        clearTimeout(timer);
        reject(new Error(`${id} exited (${signal ?? code}) before starting:\n${output.join('\n')}`));
      });
    });
  }

  /** Starts `id` again from its config file (after a kill), at the same address. */
  restart(id: string): Promise<ServerProc> {
    const s = this.server(id);
    return this.startServer(id, s.role, join(this.dir, 'etc', `${s.role}-${id}.json`), s.proxy);
  }

  private startAgent(masters: string[]): void {
    const child = this.spawnOn('cl', [process.execPath, '--import', 'tsx', AGENT, masters.join(',')], {
      stdio: ['pipe', 'pipe', 'inherit'], env: {},
    });
    const pending = new Map<number, (r: AgentReply) => void>();
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const r = JSON.parse(line) as AgentReply;
      pending.get(r.id)?.(r);
      pending.delete(r.id);
    });
    child.once('exit', () => {
      for (const done of pending.values()) done({ id: -1, ok: false, code: 'AGENT_EXITED', message: 'the client agent exited' });
      pending.clear();
    });
    this.agent = { child, pending, next: 1 };
  }

  /** Asks the client host's agent; never throws for a dfs error (the reply says ok: false and its code). */
  call(req: Omit<AgentRequest, 'id'>, timeoutMs = 30_000): Promise<AgentReply> {
    const a = this.agent!;
    const id = a.next++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        a.pending.delete(id);
        reject(new Error(`the agent did not answer ${JSON.stringify(req)} within ${timeoutMs} ms`));
      }, timeoutMs);
      a.pending.set(id, (r) => {
        clearTimeout(timer);
        resolve(r);
      });
      a.child.stdin!.write(`${JSON.stringify({ ...req, id })}\n`);
    });
  }

  /** Runs the `dfs` CLI on the client host, as a user there would. */
  dfs(args: string[], opts: { input?: Buffer; timeoutMs?: number; env?: Record<string, string> } = {}): Promise<RunResult> {
    const child = this.spawnOn('cl', [process.execPath, DFS, ...args], { stdio: ['pipe', 'pipe', 'pipe'], env: { DFS_MASTERS: this.masters.map((m) => m.addr).join(','), ...opts.env } });
    return collect(child, opts.input, opts.timeoutMs ?? 60_000, `dfs ${args.join(' ')}`);
  }

  /** A `dfs` CLI process on the client host whose stdin the test holds. */
  dfsHeld(args: string[]): ChildProcess {
    return this.spawnOn('cl', [process.execPath, DFS, ...args], { stdio: ['pipe', 'pipe', 'pipe'], env: { DFS_MASTERS: this.masters.map((m) => m.addr).join(',') } });
  }

  async liveChunkservers(): Promise<number> {
    const r = await this.call({ op: 'status' }, 20_000).catch(() => undefined);
    if (!r?.ok) return -1;
    return (r.value as { chunkservers: { alive: boolean }[] }).chunkservers.filter((x) => x.alive).length;
  }

  /** Each master's own view (role, term, leader), asked of it directly; an unreachable one is 'down'. */
  async raftViews(): Promise<{ id: string; role: string; term: number; leader: string | null }[]> {
    return Promise.all(this.masters.map(async (m) => {
      const r = await this.call({ op: 'raftStatus', addr: m.addr }, 10_000).catch(() => undefined);
      const v = r?.ok ? (r.value as { role: string; term: number; leader: string | null }) : { role: 'down', term: -1, leader: null };
      return { id: m.id, role: v.role, term: v.term, leader: v.leader };
    }));
  }

  /** kill -9 (or another signal) a server by its pid; waits for a kill to take. */
  async signal(id: string, sig: NodeJS.Signals): Promise<void> {
    const s = this.server(id);
    const gone = sig === 'SIGKILL' ? new Promise<void>((r) => (s.child.exitCode !== null || s.child.signalCode !== null ? r() : s.child.once('exit', () => r()))) : Promise.resolve();
    process.kill(s.pid, sig);
    await gone;
  }

  /**
   * Chunkserver-to-chunkserver connections open now, as [from, to] ids: the hops of the
   * pipelines under way (a pipeline of a, b, c shows a→b and b→c). From `ss` on each chunkserver's
   * host, by the owning pid.
   */
  pipelineHops(): [string, string][] {
    const byAddr = new Map(this.chunkservers.map((s) => [s.addr, s.id]));
    const hops: [string, string][] = [];
    for (const s of this.chunkservers) {
      if (s.child.exitCode !== null || s.child.signalCode !== null) continue;
      for (const line of this.ss(s.host, ['-H', '-t', '-n', '-p', 'state', 'established'])) {
        const cols = line.trim().split(/\s+/);
        if (cols.length < 5 || !line.includes(`pid=${s.pid},`)) continue;
        const to = byAddr.get(cols[3]!);
        if (to && to !== s.id) hops.push([s.id, to]);
      }
    }
    return hops;
  }

  /** The local addresses that `id`'s process listens on (TCP), from `ss` on its host. */
  listening(id: string): string[] {
    const s = this.server(id);
    return this.ss(s.host, ['-H', '-t', '-l', '-n', '-p']).filter((l) => l.includes(`pid=${s.pid},`)).map((l) => l.trim().split(/\s+/)[3]!);
  }

  /** `ss` on a host (in its namespace on the bed), as lines. */
  private ss(host: string, argv: string[]): string[] {
    const r = this.bed ? spawnSync('ip', ['netns', 'exec', this.bed.host(host).ns, 'ss', ...argv], { encoding: 'utf8' }) : spawnSync('ss', argv, { encoding: 'utf8' });
    if (r.error || r.status !== 0) throw new Error(`ss failed (${r.error?.message ?? r.stderr.trim()}): it comes with iproute2 (Debian: apt-get install iproute2)`);
    return r.stdout.split('\n');
  }

  /** Warnings and errors the servers logged: printed when a test fails, to say why. */
  problems(): string[] {
    const lines: string[] = [];
    for (const s of this.servers) for (const line of s.output) if (/"level":(4|5|6)\d/.test(line) || !line.startsWith('{')) lines.push(`${s.id}: ${line}`);
    return lines.slice(-200);
  }

  async stop(): Promise<void> {
    this.agent?.child.stdin?.end();
    for (const s of this.servers) if (s.child.exitCode === null && s.child.signalCode === null) s.child.kill('SIGKILL');
    this.agent?.child.kill('SIGKILL');
    for (const s of this.servers) await s.proxy?.close();
    this.bed?.destroy();
    this.loop?.destroy();
  }
}

function collect(child: ChildProcess, input: Buffer | undefined, timeoutMs: number, what: string): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const out: Buffer[] = [];
    let err = '';
    child.stdout!.on('data', (b: Buffer) => out.push(b));
    child.stderr!.on('data', (b: Buffer) => (err += b));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${what} did not finish within ${timeoutMs} ms`));
    }, timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, stdout: Buffer.concat(out), stderr: err });
    });
    child.stdin!.on('error', () => undefined);
    child.stdin!.end(input ?? Buffer.alloc(0));
  });
}

/** Waits for `cond`, polling every 200 ms. */
export async function until(cond: () => Promise<boolean> | boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline) {
    if (await cond()) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}
