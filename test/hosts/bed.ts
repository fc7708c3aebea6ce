// The namespace bed: a small network of Linux network namespaces on this machine, built as root,
// where each "host" of a dfs cluster has its own network stack and address, so that faults a
// single 127.0.0.1 never shows (a host cut off while its connections hang, a rack switch that
// fails, a one-way partition, a slow link) can be made with the kernel's own tools.
//
//   rack 1: 198.18.1.0/24                          rack 2: 198.18.2.0/24
//   host ── veth ─┐                                ┌─ veth ── host
//   host ── veth ─┤ <tag>-rack1: bridge br0,       │ <tag>-rack2: bridge br0,
//   host ── veth ─┘ gateway 198.18.1.1   ── uplink ── gateway 198.18.2.1 ─┘
//                                 198.18.0.1/30     198.18.0.2/30  (the inter-rack link, a routed hop)
//
// Every name the bed makes is a network namespace whose name starts with the run's tag
// (`dfsb-<pid>-<n>`); every interface lives inside one of them (created there directly, so none
// ever appears in the machine's own namespace), and goes when its namespace goes. The names are
// written to a state file before each is made, and `destroy()` deletes exactly those: on a normal
// end, on a failure (t.teardown), on an uncaught exception, and on SIGINT/SIGTERM/SIGHUP. A bed
// refuses to start while names recorded by an earlier run that is no longer alive still exist.
// Addresses come from 198.18.0.0/15 (RFC 2544's benchmarking range) only, used by nothing else.
import { spawn, spawnSync, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Where beds record their names; one file per bed. */
export const DEFAULT_STATE_DIR = process.env.DFS_BED_STATE_DIR ?? join(tmpdir(), 'dfs-hosts-bed');

/** At most this many hosts: 3 masters and 6 chunkservers, plus a client host. */
export const MAX_HOSTS = 10;

export interface HostSpec {
  /** A short name (letters and digits, at most 8): also names its port on the rack's bridge. */
  name: string;
  rack: 1 | 2;
}

/** The hosts, two racks: masters m1, m2 and chunkservers cs1–cs3 and the client in rack 1; m3 and cs4–cs6 in rack 2. */
export function layout(masters: number, chunkservers: number): HostSpec[] {
  const hosts: HostSpec[] = [];
  for (let i = 1; i <= masters; i++) hosts.push({ name: `m${i}`, rack: i <= 2 ? 1 : 2 });
  for (let i = 1; i <= chunkservers; i++) hosts.push({ name: `cs${i}`, rack: i <= 3 ? 1 : 2 });
  hosts.push({ name: 'cl', rack: 1 });
  return hosts;
}

export interface BedHost extends HostSpec {
  /** The host's network namespace. */
  ns: string;
  /** Its one address. */
  addr: string;
}

interface StateRecord {
  tag: string;
  /** The process that owns the bed; 0 for a bed left up on purpose (`hosts-bed up`). */
  ownerPid: number;
  namespaces: string[];
  hosts: BedHost[];
  /** A folder of the run's files (configs, data), removed with the bed. */
  dir: string;
}

export class BedError extends Error {}

/** Runs `ip`/`tc`, throwing with its stderr on failure. Synchronous, so cleanup can run in an 'exit' handler. */
function sh(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 10_000 });
  if (r.error) throw new BedError(`${cmd} ${args.join(' ')}: ${r.error.message}`);
  if (r.status !== 0) throw new BedError(`${cmd} ${args.join(' ')}: ${r.stderr.trim() || `exit ${r.status}`}`);
  return r.stdout;
}

/** The network namespaces that exist now, by name. */
export function existingNamespaces(): Set<string> {
  const r = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' });
  if (r.status !== 0) return new Set();
  return new Set(r.stdout.split('\n').map((l) => l.split(' ')[0]!).filter(Boolean));
}

function pidAlive(pid: number): boolean {
  if (pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function readRecords(stateDir: string): { file: string; rec: StateRecord }[] {
  if (!existsSync(stateDir)) return [];
  const out: { file: string; rec: StateRecord }[] = [];
  for (const name of readdirSync(stateDir)) {
    if (!name.endsWith('.json')) continue;
    const file = join(stateDir, name);
    try {
      out.push({ file, rec: JSON.parse(readFileSync(file, 'utf8')) as StateRecord });
    } catch {
      /* a file being written by another bed right now */
    }
  }
  return out;
}

/** Beds whose owner is gone (or left up on purpose) and whose names still exist: what `down` removes. */
export function leftovers(stateDir = DEFAULT_STATE_DIR): { tag: string; names: string[] }[] {
  const exist = existingNamespaces();
  const out: { tag: string; names: string[] }[] = [];
  for (const { file, rec } of readRecords(stateDir)) {
    if (pidAlive(rec.ownerPid)) continue;
    const names = rec.namespaces.filter((n) => exist.has(n));
    if (names.length > 0) out.push({ tag: rec.tag, names });
    else rmSync(file, { force: true });
  }
  return out;
}

/** Why namespaces cannot be made here, or undefined when they can (tried for real: add, then delete, one namespace). */
export function namespacesUnavailable(): string | undefined {
  if (process.platform !== 'linux') return `not Linux (${process.platform})`;
  if (process.getuid?.() !== 0) return 'not root (network namespaces need CAP_NET_ADMIN)';
  const probe = `dfsb-probe-${process.pid}`;
  const add = spawnSync('ip', ['netns', 'add', probe], { encoding: 'utf8' });
  if (add.error) return `cannot run ip: ${add.error.message} (Debian: apt-get install iproute2)`;
  if (add.status !== 0) return `ip netns add failed: ${add.stderr.trim()}`;
  spawnSync('ip', ['netns', 'del', probe]);
  const tc = spawnSync('tc', ['-V']);
  if (tc.error) return 'tc is missing (Debian: apt-get install iproute2)';
  return undefined;
}

let beds = 0;
let cleanupInstalled = false;
const live = new Set<NamespaceBed>();

function installCleanup(): void {
  // Sync work only: 'exit' handlers cannot wait. A signal's default action would skip 'exit', so
  // each one cleans up and then dies of the same signal.
  process.on('exit', () => {
    for (const bed of [...live]) bed.destroy();
  });
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(sig, () => {
      for (const bed of [...live]) bed.destroy();
      process.kill(process.pid, sig);
    });
  }
  // An uncaught exception ends the process through 'exit' as well.
}

export interface BedOptions {
  hosts: HostSpec[];
  stateDir?: string;
  /** Leave the bed up when this process ends (the script's `up`); `down` removes it later. */
  persistent?: boolean;
}

export class NamespaceBed {
  readonly tag: string;
  readonly hosts = new Map<string, BedHost>();
  /** A folder for the run's files; removed by destroy(). */
  readonly dir: string;
  private readonly stateFile: string;
  private readonly record: StateRecord;
  private readonly procs = new Set<ChildProcess>();
  private destroyed = false;

  private constructor(opts: BedOptions) {
    const stateDir = opts.stateDir ?? DEFAULT_STATE_DIR;
    this.tag = `dfsb-${process.pid}-${beds++}`;
    this.dir = join(stateDir, this.tag);
    this.stateFile = join(stateDir, `${this.tag}.json`);
    this.record = { tag: this.tag, ownerPid: opts.persistent ? 0 : process.pid, namespaces: [], hosts: [], dir: this.dir };
  }

  /** Builds the network. Throws BedError naming `down` when an earlier run's names still exist. */
  static create(opts: BedOptions): NamespaceBed {
    const stateDir = opts.stateDir ?? DEFAULT_STATE_DIR;
    checkHosts(opts.hosts);
    const stale = leftovers(stateDir);
    if (stale.length > 0) {
      throw new BedError(`namespaces of an earlier bed still exist (${stale.map((s) => s.names.join(', ')).join('; ')}): ` +
        'remove them with `node dist/scripts/hosts-bed.js down` (as root) and start again');
    }
    mkdirSync(stateDir, { recursive: true });
    const bed = new NamespaceBed(opts);
    if (!opts.persistent) {
      if (!cleanupInstalled) installCleanup();
      cleanupInstalled = true;
      live.add(bed);
    }
    mkdirSync(bed.dir, { recursive: true });
    try {
      bed.build(opts.hosts);
    } catch (err) {
      bed.destroy();
      throw err;
    }
    return bed;
  }

  /** Re-opens a persistent bed from its state file (the script's `run` and `status`). */
  static open(stateDir = DEFAULT_STATE_DIR): NamespaceBed | undefined {
    const exist = existingNamespaces();
    const found = readRecords(stateDir).find(({ rec }) => rec.ownerPid === 0 && rec.namespaces.some((n) => exist.has(n)));
    if (!found) return undefined;
    const bed = new NamespaceBed({ hosts: [], stateDir, persistent: true });
    Object.assign(bed, { tag: found.rec.tag, dir: found.rec.dir, stateFile: found.file, record: found.rec });
    for (const h of found.rec.hosts) bed.hosts.set(h.name, h);
    return bed;
  }

  /** Removes every recorded name of the beds whose owner is gone: the script's `down`. */
  static downAll(stateDir = DEFAULT_STATE_DIR): string[] {
    const removed: string[] = [];
    for (const { file, rec } of readRecords(stateDir)) {
      if (pidAlive(rec.ownerPid)) continue;
      removed.push(...removeNames(rec.namespaces));
      rmSync(rec.dir, { recursive: true, force: true });
      rmSync(file, { force: true });
    }
    return removed;
  }

  private saveRecord(): void {
    const tmp = `${this.stateFile}.tmp`;
    writeFileSync(tmp, JSON.stringify(this.record, null, 2));
    renameSync(tmp, this.stateFile);
  }

  /** Records a namespace's name, then makes it: a crash in between leaves a name recorded, never one unrecorded. */
  private addNamespace(name: string): void {
    this.record.namespaces.push(name);
    this.saveRecord();
    sh('ip', ['netns', 'add', name]);
    sh('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
  }

  switchOf(rack: number): string {
    return `${this.tag}-rack${rack}`;
  }

  private build(hosts: HostSpec[]): void {
    for (const rack of [1, 2]) {
      const sw = this.switchOf(rack);
      this.addNamespace(sw);
      sh('ip', ['-n', sw, 'link', 'add', 'br0', 'type', 'bridge']);
      sh('ip', ['-n', sw, 'addr', 'add', `198.18.${rack}.1/24`, 'dev', 'br0']);
      sh('ip', ['-n', sw, 'link', 'set', 'br0', 'up']);
      sh('ip', ['netns', 'exec', sw, 'sysctl', '-q', '-w', 'net.ipv4.ip_forward=1']);
    }
    // The inter-rack link: one veth pair between the two racks' switches, routed.
    const [sw1, sw2] = [this.switchOf(1), this.switchOf(2)];
    sh('ip', ['link', 'add', 'uplink', 'netns', sw1, 'type', 'veth', 'peer', 'name', 'uplink', 'netns', sw2]);
    sh('ip', ['-n', sw1, 'addr', 'add', '198.18.0.1/30', 'dev', 'uplink']);
    sh('ip', ['-n', sw2, 'addr', 'add', '198.18.0.2/30', 'dev', 'uplink']);
    sh('ip', ['-n', sw1, 'link', 'set', 'uplink', 'up']);
    sh('ip', ['-n', sw2, 'link', 'set', 'uplink', 'up']);
    sh('ip', ['-n', sw1, 'route', 'add', '198.18.2.0/24', 'via', '198.18.0.2']);
    sh('ip', ['-n', sw2, 'route', 'add', '198.18.1.0/24', 'via', '198.18.0.1']);
    const next = [0, 11, 11];
    for (const spec of hosts) {
      const host: BedHost = { ...spec, ns: `${this.tag}-${spec.name}`, addr: `198.18.${spec.rack}.${next[spec.rack]!++}` };
      this.addNamespace(host.ns);
      this.hosts.set(host.name, host);
      this.record.hosts.push(host);
      this.saveRecord();
      const sw = this.switchOf(spec.rack);
      const port = `h-${spec.name}`;
      sh('ip', ['link', 'add', 'eth0', 'netns', host.ns, 'type', 'veth', 'peer', 'name', port, 'netns', sw]);
      sh('ip', ['-n', sw, 'link', 'set', port, 'master', 'br0']);
      sh('ip', ['-n', sw, 'link', 'set', port, 'up']);
      sh('ip', ['-n', host.ns, 'addr', 'add', `${host.addr}/24`, 'dev', 'eth0']);
      sh('ip', ['-n', host.ns, 'link', 'set', 'eth0', 'up']);
      sh('ip', ['-n', host.ns, 'route', 'add', 'default', 'via', `198.18.${spec.rack}.1`]);
      // Policy rules that drop packets from a peer (one-way partitions) must come before the
      // 'local' table, or delivery to this host's own address would skip them.
      sh('ip', ['-n', host.ns, 'rule', 'add', 'pref', '1000', 'lookup', 'local']);
      sh('ip', ['-n', host.ns, 'rule', 'del', 'pref', '0']);
    }
  }

  host(name: string): BedHost {
    const h = this.hosts.get(name);
    if (!h) throw new BedError(`no host ${name} in the bed (hosts: ${[...this.hosts.keys()].join(', ')})`);
    return h;
  }

  /**
   * Starts a program inside a host's namespace. `ip netns exec` execs the program in its own
   * process, so the child's pid is the program's: kill -9 and SIGSTOP reach it directly.
   */
  spawn(hostName: string, argv: string[], opts: SpawnOptions = {}): ChildProcess {
    const child = spawn('ip', ['netns', 'exec', this.host(hostName).ns, ...argv], opts);
    this.procs.add(child);
    child.once('exit', () => this.procs.delete(child));
    return child;
  }

  // ---- faults ----

  /** Cuts a host off the network: its port on the rack's switch goes down. */
  isolate(hostName: string, isolated = true): void {
    const h = this.host(hostName);
    sh('ip', ['-n', this.switchOf(h.rack), 'link', 'set', `h-${h.name}`, isolated ? 'down' : 'up']);
  }

  /**
   * Cuts the inter-rack link, both ends. Each switch also gets a blackhole route for the other
   * rack's subnet, so packets are dropped silently (a dead switch answers nothing) instead of
   * coming back as ICMP unreachable.
   */
  cutRacks(cut = true): void {
    for (const [rack, other] of [[1, 2], [2, 1]] as const) {
      const sw = this.switchOf(rack);
      sh('ip', ['-n', sw, 'link', 'set', 'uplink', cut ? 'down' : 'up']);
      if (cut) sh('ip', ['-n', sw, 'route', 'replace', 'blackhole', `198.18.${other}.0/24`]);
      else sh('ip', ['-n', sw, 'route', 'replace', `198.18.${other}.0/24`, 'via', `198.18.0.${rack === 1 ? 2 : 1}`]);
    }
  }

  /**
   * One-way partition: TCP packets from `from` to `to` are dropped silently on arrival at `to`
   * (a policy rule there), while `to` still reaches `from`. TCP needs both ways, so no connection
   * between the two works; what is asymmetric is which side sees what (a SYN that never arrives,
   * or replies that vanish), and that the two still reach everyone else.
   */
  dropOneWay(fromName: string, toName: string, drop = true): void {
    const [from, to] = [this.host(fromName), this.host(toName)];
    sh('ip', ['-n', to.ns, 'rule', drop ? 'add' : 'del', 'from', from.addr, 'ipproto', 'tcp', 'blackhole', 'pref', '100']);
  }

  /** Caps a host's link at `rateKbit` each way (tbf on both ends of its veth); undefined lifts it. */
  capRate(hostName: string, rateKbit: number | undefined): void {
    const h = this.host(hostName);
    for (const [ns, dev] of [[h.ns, 'eth0'], [this.switchOf(h.rack), `h-${h.name}`]] as const) {
      if (rateKbit === undefined) sh('ip', ['netns', 'exec', ns, 'tc', 'qdisc', 'del', 'dev', dev, 'root']);
      else sh('ip', ['netns', 'exec', ns, 'tc', 'qdisc', 'replace', 'dev', dev, 'root', 'tbf', 'rate', `${rateKbit}kbit`, 'burst', '32kb', 'latency', '400ms']);
    }
  }

  // ---- teardown ----

  /** Kills what runs in the bed's namespaces, deletes exactly the recorded names and the run's folder. Idempotent, synchronous. */
  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    live.delete(this);
    for (const p of this.procs) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
    removeNames(this.record.namespaces);
    rmSync(this.dir, { recursive: true, force: true });
    rmSync(this.stateFile, { force: true });
  }
}

function checkHosts(hosts: HostSpec[]): void {
  if (hosts.length === 0 || hosts.length > MAX_HOSTS) throw new BedError(`a bed has 1 to ${MAX_HOSTS} hosts, not ${hosts.length}`);
  const seen = new Set<string>();
  for (const h of hosts) {
    if (!/^[a-z][a-z0-9]{0,7}$/.test(h.name)) throw new BedError(`host name ${JSON.stringify(h.name)}: use 1 to 8 lower-case letters and digits, starting with a letter`);
    if (seen.has(h.name)) throw new BedError(`host ${h.name} is named twice`);
    if (h.rack !== 1 && h.rack !== 2) throw new BedError(`host ${h.name}: rack must be 1 or 2`);
    seen.add(h.name);
  }
}

/**
 * Deletes the named namespaces that still exist, hosts before switches, after killing every
 * process still inside them (a process keeps its namespace, and its interfaces, alive after the
 * name is gone). Only the bed's own namespaces are looked in, so only processes the bed's users
 * started there are killed.
 */
function removeNames(names: string[]): string[] {
  const exist = existingNamespaces();
  const removed: string[] = [];
  for (const name of [...names].reverse()) {
    if (!exist.has(name)) continue;
    const pids = spawnSync('ip', ['netns', 'pids', name], { encoding: 'utf8' }).stdout?.split('\n').filter(Boolean).map(Number) ?? [];
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch { /* gone already */ }
    }
    const r = spawnSync('ip', ['netns', 'del', name], { encoding: 'utf8' });
    if (r.status === 0) removed.push(name);
  }
  return removed;
}
