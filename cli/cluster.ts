import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, fstatSync, mkdirSync, openSync, readSync, writeFileSync, renameSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { newSecret } from '../common/auth.js';
import { DEFAULT_BASE_PORT, DEFAULT_MASTERS, formatBytes } from '../common/config.js';
import { capacityTotals, formatCapacity } from './format.js';
import { DfsError } from '../common/errors.js';
import { call } from '../common/contract/call.js';
import { CLUSTER } from '../common/contract/index.js';
import { clusterTlsArgs, type ClusterTls } from './cluster-tls.js';
import { LeaderClient } from '../common/leader.js';
import type { ClusterStatus } from '../common/protocol.js';
import { findPortHolder, portIsFree, shellCommand } from './ports.js';
import { AUTHORIZATION_HEADER } from '../common/credentials.js';
import { ensureAdminToken } from './token-source.js';

export interface ClusterOptions {
  masters: number;
  chunkservers: number;
  dataDir: string;
  basePort: number;
  chunkSizeBytes: number;
  replication: number;
  deadTimeoutMs: number;
  host: string;
  /** Racks the chunkservers are dealt over in turn (cs1 in rack1, cs2 in rack2, ...); absent or 1: one rack. */
  racks?: number;
  /** The S3 gateway's port; 0: no gateway. Default 9000, or base port + 200 with another base port. */
  s3Port?: number;
  /** The gateway's --domain (virtual-host addressing), recorded in cluster.json. */
  s3Domain?: string;
  /** TLS everywhere, with a throw-away CA and certificate made in <data>/tls (cli/cluster-tls.ts). */
  tls?: boolean;
}

/** One process of the local cluster, as cluster.json lists it. */
export interface ProcessInfo {
  role: 'master' | 'chunkserver' | 's3';
  id: string;
  addr: string;
  pid: number;
  dataDir: string;
  log: string;
  /** The full command line, program first: what restarts this process by hand. */
  argv: string[];
  /** `argv` quoted for a shell, to copy and paste. */
  command: string;
  /** Set once the process has exited (whoever stopped it); `at` is an ISO 8601 time in UTC. */
  exited?: { code: number | null; signal: string | null; at: string };
}

/** A deleted file's space comes back quickly in a demo; production masters default to a minute. */
const LOCAL_GC_GRACE_MS = 10_000;
/** The local cluster keeps what rm moved to the trash for an hour, not a day: it is for trying things. */
const LOCAL_TRASH_INTERVAL_MS = 3600_000;
/**
 * How long the cluster may take to come up: elections and first heartbeats take a few seconds,
 * but a loaded machine starting seven node processes at once can take far longer.
 */
const READY_TIMEOUT_MS = 60_000;
/** Between two looks at whether the cluster is ready. */
const READY_POLL_MS = 200;
/** A process that ignores SIGTERM this long gets SIGKILL. */
const STOP_GRACE_MS = 5000;
/** How long an exit waits before it is reported, in case the launcher is being stopped too. */
const SIGNAL_RACE_MS = 200;
/** How much of the end of a log is read to quote its last line. */
const LOG_TAIL_BYTES = 4096;

/** Where S3 clients look by default (MinIO's and SeaweedFS's gateways use 9000 and 8333). */
const DEFAULT_S3_PORT = 9000;

const MAIN = fileURLToPath(new URL('./main.js', import.meta.url));

/** The rack of the local cluster's chunkserver `i` (from 0) when dealt over `racks` racks: rack1, rack2, ... in turn. */
export function localRack(i: number, racks: number): string {
  return `rack${(i % racks) + 1}`;
}

/** Masters listen on basePort+i, chunkservers on basePort+100+i, the S3 gateway on 9000 (or basePort+200). */
export function clusterLayout(opts: ClusterOptions): { masters: string[]; chunkservers: string[]; s3?: string; s3Domain?: string } {
  const s3Port = opts.s3Port ?? (opts.basePort === DEFAULT_BASE_PORT ? DEFAULT_S3_PORT : opts.basePort + 200);
  return {
    masters: Array.from({ length: opts.masters }, (_, i) => `${opts.host}:${opts.basePort + i}`),
    chunkservers: Array.from({ length: opts.chunkservers }, (_, i) => `${opts.host}:${opts.basePort + 100 + i}`),
    ...(s3Port > 0 ? { s3: `${opts.host}:${s3Port}`, ...(opts.s3Domain ? { s3Domain: opts.s3Domain } : {}) } : {}),
  };
}

function writeJsonAtomic(file: string, value: unknown): void {
  writeFileSync(`${file}.tmp`, JSON.stringify(value, null, 2) + '\n');
  renameSync(`${file}.tmp`, file);
}

const portOf = (addr: string) => Number(addr.slice(addr.lastIndexOf(':') + 1));
const isRunning = (child: ChildProcess) => child.exitCode === null && child.signalCode === null;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Refuses to start when any port of the layout is taken (most often by a process of an earlier
 * run, restarted by hand, that outlived its launcher): one line per taken port naming the pid and
 * command line that hold it, then an error. Checked before anything starts, so nothing does.
 */
async function refuseTakenPorts(host: string, planned: { role: string; id: string; addr: string }[]): Promise<void> {
  const free = await Promise.all(planned.map((p) => portIsFree(host, portOf(p.addr))));
  const taken = planned.filter((_, i) => !free[i]);
  if (taken.length === 0) return;
  for (const p of taken) {
    const holder = findPortHolder(portOf(p.addr));
    const who = typeof holder === 'string' ? holder : `held by pid ${holder.pid}: ${holder.command}`;
    console.error(`dfs cluster: ${p.addr} (${p.role} ${p.id}) is in use, ${who}`);
  }
  throw new DfsError('UNAVAILABLE', `${taken.length === 1 ? 'a port' : `${taken.length} ports`} of the cluster ${taken.length === 1 ? 'is' : 'are'} in use (see above), so nothing was started: stop what holds ${taken.length === 1 ? 'it' : 'them'} (a process restarted by hand outlives the launcher), or choose another --base-port`);
}

/** The last line of a log, for a message that says why a process died; '' if there is none. */
function lastLogLine(file: string): string {
  try {
    const fd = openSync(file, 'r');
    try {
      const size = fstatSync(fd).size;
      const buf = Buffer.alloc(Math.min(size, LOG_TAIL_BYTES));
      readSync(fd, buf, 0, buf.length, size - buf.length);
      const line = buf.toString('utf8').trimEnd().split('\n').pop() ?? '';
      return line.length > 300 ? `${line.slice(0, 300)}...` : line;
    } finally {
      closeSync(fd);
    }
  } catch {
    return '';
  }
}

/**
 * What of the cluster is not up yet, or [] and the leader's status once every master answers
 * its own health check and every chunkserver answers its own and is registered, alive, with
 * the leader. Only our own processes count: a data folder reused from a bigger cluster may list
 * more chunkservers.
 */
async function notReady(layout: { masters: string[] }, procs: ProcessInfo[], token: string): Promise<{ missing: string[]; status?: ClusterStatus }> {
  // The gateway speaks S3, not dfs: any HTTP answer (an S3 error for an unsigned request) will do.
  const answers = async (p: ProcessInfo) => (p.role === 's3'
    ? fetch(`http://${p.addr}/`, { signal: AbortSignal.timeout(1000) }).then(async (r) => (await r.arrayBuffer(), true), () => false)
    : call(p.addr, CLUSTER.health, {}, { timeoutMs: 1000 }).then(() => true, () => false));
  const [healthy, status] = await Promise.all([
    Promise.all(procs.map(answers)),
    call(new LeaderClient(layout.masters, { maxWaitMs: 1000, headers: { [AUTHORIZATION_HEADER]: `Bearer ${token}` } }), CLUSTER.status, {}, { timeoutMs: 1000 }).catch(() => undefined),
  ]);
  const missing = procs.filter((_, i) => !healthy[i]).map((p) => `${p.role} ${p.id} does not answer`);
  if (!status) missing.push('no master leads yet');
  for (const p of procs) {
    if (status && p.role === 'chunkserver' && !status.chunkservers.some((c) => c.id === p.id && c.alive)) missing.push(`chunkserver ${p.id} is not registered with the leader`);
  }
  return { missing, status };
}

/**
 * Waits until every process answers and every chunkserver has registered: the leader's status
 * then, or undefined if the launcher began to stop meanwhile. Gives up after READY_TIMEOUT_MS.
 */
async function waitUntilReady(
  layout: { masters: string[] }, procs: { info: ProcessInfo; child: ChildProcess }[], dataDir: string, stopping: () => boolean, token: string,
): Promise<ClusterStatus | undefined> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (!stopping()) {
    const { missing, status } = await notReady(layout, procs.map((p) => p.info), token);
    if (missing.length === 0 && status && procs.every((p) => isRunning(p.child))) return status;
    if (Date.now() > deadline) {
      throw new DfsError('TIMEOUT', `the cluster did not come up within ${READY_TIMEOUT_MS / 1000} s (${missing.join('; ')}); logs are in ${dataDir}/<id>/. The processes were stopped`);
    }
    await sleep(READY_POLL_MS);
  }
  return undefined;
}

type Layout = ReturnType<typeof clusterLayout>;
/** A process the launcher started. */
interface Launched { info: ProcessInfo; child: ChildProcess }
/** The S3 gateway's access key, printed once the cluster is ready. */
interface S3Key { file: string; accessKeyId: string; secretAccessKey: string }

/**
 * The processes of one local cluster: starts them, records them in cluster.json, reports the
 * ones that exit (an exit while starting fails the start) and stops them all.
 */
class Launcher {
  readonly procs: Launched[] = [];
  readonly secretFile: string;
  readonly clusterFile: string;
  ready = false;
  stopping = false;
  private failStart: (err: DfsError) => void = () => undefined;
  /** Rejects when a process exits while the cluster is starting. */
  readonly died: Promise<never>;

  constructor(private readonly layout: Layout, readonly dataDir: string, private readonly tls: ClusterTls) {
    this.secretFile = join(dataDir, 'secret');
    this.clusterFile = join(dataDir, 'cluster.json');
    this.died = new Promise<never>((_, reject) => (this.failStart = reject));
    this.died.catch(() => undefined); // rejected only while starting, and then awaited
  }

  writeClusterFile(): void {
    writeJsonAtomic(this.clusterFile, {
      masters: this.tls.masters(this.layout.masters), s3Domain: this.layout.s3Domain, dataDir: this.dataDir, secretFile: this.secretFile, ...this.tls.files, launcherPid: process.pid,
      processes: this.procs.map((p) => p.info),
    });
  }

  start(role: ProcessInfo['role'], id: string, addr: string, args: string[]): void {
    const dir = join(this.dataDir, id);
    mkdirSync(dir, { recursive: true });
    const log = join(dir, `${role}.log`);
    const out = openSync(log, 'a');
    // Node's own flags (--cpu-prof, --max-old-space-size, ...) given to `dfs cluster` reach every process.
    const own = role === 's3'
      ? ['--listen', addr, ...this.tls.clientArgs, ...this.tls.s3Args]
      : ['--id', id, '--listen', addr, '--data', dir, '--secret-file', this.secretFile, ...this.tls.serverArgs];
    const argv = [process.execPath, ...process.execArgv, MAIN, role, ...own, ...args];
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', out, out] });
    closeSync(out); // the child has its own copy
    const p = { info: { role, id, addr, pid: child.pid ?? -1, dataDir: dir, log, argv, command: shellCommand(argv) }, child };
    child.on('exit', (code, signal) => this.onExit(p, code, signal));
    child.on('error', () => this.onExit(p, null, null)); // it could not be started at all
    this.procs.push(p);
  }

  private onExit(p: Launched, code: number | null, signal: string | null): void {
    if (p.info.exited) return;
    p.info.exited = { code, signal, at: new Date().toISOString() };
    this.writeClusterFile();
    // Ctrl-C in a terminal reaches the children too, and one may exit before the launcher hears it.
    setTimeout(() => this.reportExit(p, code, signal), SIGNAL_RACE_MS);
  }

  private reportExit(p: Launched, code: number | null, signal: string | null): void {
    if (this.stopping) return;
    const what = `${p.info.role} ${p.info.id} (pid ${p.info.pid}) exited (${signal ?? `code ${code}`})`;
    if (this.ready) {
      console.error(`dfs cluster: ${what}; see ${p.info.log}`);
    } else {
      const last = lastLogLine(p.info.log);
      this.failStart(new DfsError('UNAVAILABLE', `${what} while the cluster was starting${last ? `, its log ends: ${last}` : ''}; see ${p.info.log}. The other processes were stopped`));
    }
  }

  async stopAll(): Promise<void> {
    this.stopping = true;
    const running = this.procs.filter((p) => isRunning(p.child));
    const exits = running.map((p) => new Promise<void>((r) => p.child.once('exit', () => r())));
    for (const p of running) p.child.kill('SIGTERM');
    const timer = setTimeout(() => running.forEach((p) => p.child.kill('SIGKILL')), STOP_GRACE_MS);
    await Promise.all(exits);
    clearTimeout(timer);
  }

  /** Ctrl-C or SIGTERM: stop every process, then exit. */
  readonly onSignal = (): void => {
    if (this.stopping) return;
    console.error(`\ndfs cluster: stopping ${this.procs.filter((p) => isRunning(p.child)).length} processes`);
    void this.stopAll().then(() => process.exit(0));
  };
}

/** Starts the masters and chunkservers of the layout, and the S3 gateway with an access key made once and kept beside the secret. */
async function startAll(l: Launcher, layout: Layout, opts: ClusterOptions, tokenFile: string): Promise<S3Key | undefined> {
  const peers = layout.masters.map((addr, i) => `m${i + 1}=${addr}`).join(',');
  layout.masters.forEach((addr, i) => l.start('master', `m${i + 1}`, addr, [
    '--peers', peers,
    '--chunk-size', String(opts.chunkSizeBytes), '--replication', String(opts.replication), '--dead-timeout-ms', String(opts.deadTimeoutMs),
    '--gc-grace-ms', String(LOCAL_GC_GRACE_MS), '--trash-interval-ms', String(LOCAL_TRASH_INTERVAL_MS),
  ]));
  layout.chunkservers.forEach((addr, i) => l.start('chunkserver', `cs${i + 1}`, addr, [
    '--masters', layout.masters.join(','), '--chunk-size', String(opts.chunkSizeBytes),
    ...((opts.racks ?? 1) > 1 ? ['--rack', localRack(i, opts.racks!)] : []), // rack rule
  ]));
  if (!layout.s3) return undefined;
  const file = join(l.dataDir, 's3-credentials.json');
  const { loadCredentials, writeCredentialsFile } = await import('../s3/credentials.js');
  const key = existsSync(file) ? loadCredentials(file)[0] : await writeCredentialsFile(file);
  l.start('s3', 's3', layout.s3, ['--masters', layout.masters.join(','), '--credentials', file, '--token-file', tokenFile, ...(layout.s3Domain ? ['--domain', layout.s3Domain] : [])]);
  return key && { file, accessKeyId: key.accessKeyId, secretAccessKey: key.secretAccessKey };
}

function printReady(status: ClusterStatus, layout: Layout, opts: ClusterOptions, s3Key: S3Key | undefined): void {
  console.log(`dfs cluster: ready — ${status.chunkservers.filter((c) => c.alive).length} chunkservers: ${formatCapacity(capacityTotals(status.chunkservers))}; chunk size ${formatBytes(opts.chunkSizeBytes)}, replication ${opts.replication}`);
  console.log(`dfs cluster: dashboard at ${opts.tls ? 'https' : 'http'}://${layout.masters[0]}/ui/ (any master's /ui/ leads to the leader)`);
  if (layout.s3 && s3Key) {
    const url = `${opts.tls ? 'https' : 'http'}://${layout.s3}`;
    const bundle = opts.tls ? ` --ca-bundle ${join(dirname(s3Key.file), 'tls', 'ca.pem')}` : '';
    console.log(`dfs cluster: S3 gateway at ${url} (key in ${s3Key.file}):\n  AWS_ACCESS_KEY_ID=${s3Key.accessKeyId} AWS_SECRET_ACCESS_KEY=${s3Key.secretAccessKey} aws --endpoint-url ${url}${bundle} s3 ls`);
  }
}

/**
 * `dfs cluster`: runs masters and chunkservers as separate processes on one machine, data under
 * one folder, in the foreground. It says ready only once every process answers; a process that
 * dies before that stops the start, one that dies after is reported (a demo kills some on
 * purpose). Ctrl-C stops them all; starting again reuses the data.
 */
export async function runCluster(opts: ClusterOptions): Promise<void> {
  if (![1, 3, 5].includes(opts.masters)) throw new DfsError('INVALID_ARGUMENT', '--masters must be 1, 3 or 5 (a Raft group needs an odd count to keep a majority)');
  const layout = clusterLayout(opts);
  await refuseTakenPorts(opts.host, [
    ...layout.masters.map((addr, i) => ({ role: 'master' as const, id: `m${i + 1}`, addr })),
    ...layout.chunkservers.map((addr, i) => ({ role: 'chunkserver' as const, id: `cs${i + 1}`, addr })),
    ...(layout.s3 ? [{ role: 's3' as const, id: 's3', addr: layout.s3 }] : []),
  ]);

  const dataDir = resolve(opts.dataDir);
  mkdirSync(dataDir, { recursive: true });
  const tls = clusterTlsArgs(dataDir, opts);
  const l = new Launcher(layout, dataDir, tls);
  if (!existsSync(l.secretFile)) writeFileSync(l.secretFile, newSecret() + '\n', { mode: 0o600 });
  const admin = ensureAdminToken(dataDir, l.secretFile); // credentials: the admin token beside cluster.json
  process.on('SIGINT', l.onSignal);
  process.on('SIGTERM', l.onSignal);
  const s3Key = await startAll(l, layout, opts, admin.file);
  l.writeClusterFile();

  console.log(`dfs cluster: data in ${dataDir}`);
  for (const { info } of l.procs) console.log(`  ${info.role.padEnd(11)} ${info.id.padEnd(5)} ${info.addr.padEnd(16)} pid ${String(info.pid).padEnd(7)} ${info.dataDir}`);

  try {
    // A process that dies first fails the start.
    const status = await Promise.race([waitUntilReady(layout, l.procs, dataDir, () => l.stopping, admin.token), l.died]);
    if (!status) return; // Ctrl-C while starting: the signal handler exits
    l.ready = true;
    printReady(status, layout, opts, s3Key);
  } catch (err) {
    if (l.stopping) return;
    await l.stopAll();
    throw err;
  }
  const isDefault = layout.masters.join(',') === DEFAULT_MASTERS.join(',');
  const ca = tls.files.tlsCa ? `\n  export DFS_TLS_CA=${tls.files.tlsCa}` : '';
  console.log(`\nPoint dfs at it${isDefault && !opts.tls ? ' (this is also the default)' : ''}, with the admin token (kept in ${admin.file}):\n  export DFS_MASTERS=${tls.masters(layout.masters).join(',')} DFS_TOKEN_FILE=${admin.file}${ca}\n  dfs status\n\nProcesses are listed in ${l.clusterFile}, each with the command that restarts it by hand. Ctrl-C stops the cluster.`);
  await new Promise(() => undefined); // until a signal
}
