// Every setting of the two server roles in one table: its config-file key, its command-line flag,
// its default, how it is checked, and what it trades. `dfs master` and `dfs chunkserver` build
// their flags from it, and `--config FILE` is checked against it, so a setting cannot be accepted
// by one and unknown to the other, and no default lives in two places. Precedence: a flag given
// on the command line, then the environment (DFS_MASTERS, DFS_CLUSTER_SECRET), then the file,
// then the default. Every mistake in a file is one line naming the file, the key and the fix:
// settings accepted but wrong are what MooseFS and HDFS users complain about most.
import { readFileSync, statSync } from 'node:fs';
import { isIP } from 'node:net';
import { networkInterfaces } from 'node:os';
import { DEFAULT_BASE_PORT, DEFAULT_MASTERS, parseAddr, parseAddrList, parseSize } from './config.js';
import { CHUNKSERVER_DEFAULTS, MASTER_DEFAULTS } from './defaults.js';
import { DfsError } from './errors.js';
import { parseRateMiBps } from './rate.js';
import { DEFAULT_RACK, parseRack } from './racks.js';
import { INLINE_MAX_BYTES_LIMIT } from './inline.js';

export type Role = 'master' | 'chunkserver';

/** A config file is a few KiB; anything this large is a wrong path. */
const MAX_CONFIG_BYTES = 256 * 1024;
/** Masters in one Raft group, at most. */
export const MAX_MASTERS = 7;

interface Setting {
  /** The config file's key (camelCase). */
  key: string;
  /** The command-line flag, without dashes. */
  flag: string;
  roles: readonly Role[];
  describe: string;
  /** As it would be typed; absent: no default (optional, or required). */
  default?: string | number;
  required?: boolean;
  /** What yargs parses the flag as; the file may give a number as a JSON number or a string. */
  type: 'string' | 'number';
  /** Checks and converts a value from a flag or a file; `what` names where it came from. */
  parse: (raw: unknown, what: string) => unknown;
}

/** A value as the user wrote it: yargs turns a non-number given to a number flag into NaN. */
function show(raw: unknown): string {
  return typeof raw === 'number' ? String(raw) : JSON.stringify(raw);
}

function str(raw: unknown, what: string): string {
  if (typeof raw !== 'string' || raw.length === 0 || raw.length > 4096) throw new DfsError('INVALID_ARGUMENT', `${what} must be a non-empty string`);
  return raw;
}

function id(raw: unknown, what: string): string {
  const s = str(raw, what);
  if (!/^[A-Za-z0-9_-]{1,32}$/.test(s)) throw new DfsError('INVALID_ARGUMENT', `${what} must be 1-32 letters, digits, '-' or '_', not ${JSON.stringify(s)}`);
  return s;
}

function int(min: number, max = Number.MAX_SAFE_INTEGER) {
  return (raw: unknown, what: string): number => {
    const n = typeof raw === 'string' && /^\d+$/.test(raw.trim()) ? Number(raw) : raw;
    if (typeof n !== 'number' || !Number.isInteger(n) || n < min || n > max) {
      throw new DfsError('INVALID_ARGUMENT', `${what} must be a whole number from ${min}${max === Number.MAX_SAFE_INTEGER ? ' up' : ` to ${max}`}, not ${show(raw)}`);
    }
    return n;
  };
}

function size(raw: unknown, what: string): number {
  if (typeof raw !== 'string' && typeof raw !== 'number') throw new DfsError('INVALID_ARGUMENT', `${what} must be a size (e.g. 64MiB), not ${show(raw)}`);
  const n = parseSize(raw, what);
  if (n < 64 * 1024 || n > 1024 ** 3) throw new DfsError('INVALID_ARGUMENT', `${what} must be from 64KiB to 1GiB, not ${show(raw)}`);
  return n;
}

function fraction(raw: unknown, what: string): number {
  const n = typeof raw === 'string' && raw.trim() !== '' ? Number(raw) : raw;
  if (typeof n !== 'number' || !Number.isFinite(n) || n < 0 || n > 10) throw new DfsError('INVALID_ARGUMENT', `${what} must be a number from 0 to 10, not ${show(raw)}`);
  return n;
}

function listenAddr(raw: unknown, what: string): string {
  const s = str(raw, what);
  parseAddr(s, what, true);
  return s;
}

function addr(raw: unknown, what: string): string {
  const s = str(raw, what);
  const { host, port } = parseAddr(s, what);
  return `${host}:${port}`;
}

/** `m1=host:port,m2=...` (a flag) or `{ "m1": "host:port", ... }` (a file): 1 to 7 masters, distinct ids and addresses. */
export function parsePeers(raw: unknown, what = '--peers'): Record<string, string> {
  const pairs: [string, unknown][] = [];
  if (typeof raw === 'string') {
    for (const part of raw.split(',')) {
      const m = /^([^=]*)=(.*)$/.exec(part.trim());
      if (!m) throw new DfsError('INVALID_ARGUMENT', `${what}: ${JSON.stringify(part)} is not id=host:port`);
      pairs.push([m[1]!, m[2]!]);
    }
  } else if (typeof raw === 'object' && raw !== null && !Array.isArray(raw)) {
    pairs.push(...Object.entries(raw));
  } else {
    throw new DfsError('INVALID_ARGUMENT', `${what} must be id=host:port,... or an object of id: "host:port"`);
  }
  const peers: Record<string, string> = {};
  for (const [k, v] of pairs) {
    const key = id(k, `${what}: a master id`);
    if (peers[key] !== undefined) throw new DfsError('INVALID_ARGUMENT', `${what} names ${key} twice`);
    peers[key] = addr(v, `${what}: ${key}'s address`);
  }
  const n = Object.keys(peers).length;
  if (n === 0) throw new DfsError('INVALID_ARGUMENT', `${what} names no master`);
  if (new Set(Object.values(peers)).size !== n) throw new DfsError('INVALID_ARGUMENT', `${what} gives two masters the same address`);
  if (n > MAX_MASTERS) throw new DfsError('INVALID_ARGUMENT', `${what}: at most ${MAX_MASTERS} masters`);
  return peers;
}

function masterList(raw: unknown, what: string): string[] {
  if (Array.isArray(raw)) return raw.map((a, i) => addr(a, `${what}[${i}]`));
  return parseAddrList(str(raw, what), what);
}

const BOTH: readonly Role[] = ['master', 'chunkserver'];
const MASTER: readonly Role[] = ['master'];
const CHUNKSERVER: readonly Role[] = ['chunkserver'];

export const SETTINGS: readonly Setting[] = [
  { key: 'id', flag: 'id', roles: BOTH, type: 'string', parse: id, describe: 'this server\'s id (a master: default m1; a chunkserver: default the one in its data folder, or a new one)' },
  { key: 'listen', flag: 'listen', roles: BOTH, type: 'string', parse: listenAddr, describe: 'host:port to listen on (port 0: any free port); default 127.0.0.1:9400 (master), 127.0.0.1:9500 (chunkserver)' },
  { key: 'advertise', flag: 'advertise', roles: BOTH, type: 'string', parse: addr, describe: 'host:port the others reach this server at, when not the listen address (e.g. listening on 0.0.0.0); must be an address of this host' },
  { key: 'data', flag: 'data', roles: BOTH, type: 'string', parse: str, required: true, describe: 'data folder (a master: its log and snapshot; a chunkserver: its chunk files)' },
  { key: 'secretFile', flag: 'secret-file', roles: BOTH, type: 'string', parse: str, describe: 'file with the cluster secret (or $DFS_CLUSTER_SECRET)' },
  { key: 'tlsCert', flag: 'tls-cert', roles: BOTH, type: 'string', parse: str, describe: 'PEM certificate: serve HTTPS (with --tls-key); docs/SECURITY.md' },
  { key: 'tlsKey', flag: 'tls-key', roles: BOTH, type: 'string', parse: str, describe: 'PEM private key of --tls-cert' },
  { key: 'tlsCa', flag: 'tls-ca', roles: BOTH, type: 'string', parse: str, describe: 'PEM CA of the cluster: trust it, and demand a certificate it signed from peers (mutual TLS)' },
  { key: 'chunkSize', flag: 'chunk-size', roles: BOTH, type: 'string', parse: size, default: `${MASTER_DEFAULTS.chunkSizeBytes / 1024 / 1024}MiB`, describe: 'a master: chunk size for new files; a chunkserver: the largest chunk accepted (the cluster\'s chunk size)' },
  // master
  { key: 'peers', flag: 'peers', roles: MASTER, type: 'string', parse: parsePeers, describe: 'the Raft group: id=host:port,... with this master included. Needed on a master\'s first start only: the group is recorded in its data folder, and a later --peers must match it (a new folder without it: a group of one)' },
  { key: 'replication', flag: 'replication', roles: MASTER, type: 'number', parse: int(1, 16), default: MASTER_DEFAULTS.replication, describe: 'default replicas per chunk' },
  { key: 'deadTimeoutMs', flag: 'dead-timeout-ms', roles: MASTER, type: 'number', parse: int(1), default: MASTER_DEFAULTS.deadTimeoutMs, describe: 'a chunkserver silent this long is dead: shorter finds losses sooner, longer copies less after a brief pause' },
  { key: 'connectionGraceMs', flag: 'connection-grace-ms', roles: MASTER, type: 'number', parse: int(1), default: MASTER_DEFAULTS.connectionGraceMs, describe: 'a chunkserver whose connection to the leader dropped without notice (a crash, kill -9) is suspect at once and dead after this long unless it connects again: shorter re-replicates sooner after a crash, longer rides out a link that reconnects' },
  { key: 'restartGraceMs', flag: 'restart-grace-ms', roles: MASTER, type: 'number', parse: int(1), default: MASTER_DEFAULTS.restartGraceMs, describe: 'a chunkserver stopped cleanly (SIGTERM: a restart, an upgrade) is held this long, suspect but not dead, before its chunks are copied elsewhere: longer forgives a slower restart or reboot, shorter re-replicates sooner when it does not come back (decommission a server you retire)' },
  { key: 'leaseMs', flag: 'lease-ms', roles: MASTER, type: 'number', parse: int(1), default: MASTER_DEFAULTS.writeLeaseMs, describe: 'a writer silent this long loses its unfinished file' },
  { key: 'snapshotEvery', flag: 'snapshot-every', roles: MASTER, type: 'number', parse: int(1), default: MASTER_DEFAULTS.snapshotEveryEntries, describe: 'Raft log entries between snapshots, at least (more for a big namespace, staggered between masters)' },
  { key: 'compactKeep', flag: 'compact-keep', roles: MASTER, type: 'number', parse: int(0), default: MASTER_DEFAULTS.compactKeepEntries, describe: 'Raft log entries kept behind a snapshot: a master at most this far behind catches up by appends, one further behind gets the whole snapshot; more costs memory and WAL space' },
  { key: 'tickMs', flag: 'tick-ms', roles: MASTER, type: 'number', parse: int(1, 10_000), default: MASTER_DEFAULTS.tickIntervalMs, describe: 'Raft tick; elections time out after 10-20 ticks' },
  { key: 'gcGraceMs', flag: 'gc-grace-ms', roles: MASTER, type: 'number', parse: int(0), default: MASTER_DEFAULTS.gcGraceMs, describe: 'unreferenced or stale replicas are deleted after this long' },
  { key: 'copiesPerServer', flag: 'copies-per-server', roles: MASTER, type: 'number', parse: int(1, 64), default: MASTER_DEFAULTS.copiesPerServer, describe: 're-replication and balancing copies one chunkserver takes part in at once' },
  { key: 'trashIntervalMs', flag: 'trash-interval-ms', roles: MASTER, type: 'number', parse: int(1000), default: MASTER_DEFAULTS.trashIntervalMs, describe: 'dfs rm keeps things in /.trash this long before the leader expunges them (HDFS fs.trash.interval): longer gives more time to restore, shorter frees space sooner' },
  { key: 'inlineMaxBytes', flag: 'inline-max-bytes', roles: MASTER, type: 'number', parse: int(0, INLINE_MAX_BYTES_LIMIT), default: MASTER_DEFAULTS.inlineMaxBytes, describe: `files of at most this many bytes are kept inline in the masters' replicated state (one Raft command a file, no chunkserver), 0 to ${INLINE_MAX_BYTES_LIMIT}: larger costs master memory, Raft log and snapshot space; 0 turns it off` },
  { key: 'balanceThreshold', flag: 'balance-threshold', roles: MASTER, type: 'number', parse: fraction, default: MASTER_DEFAULTS.balanceThreshold, describe: 'move replicas when a server\'s use strays from the mean by more than this share of it (0: never)' },
  // chunkserver
  { key: 'masters', flag: 'masters', roles: CHUNKSERVER, type: 'string', parse: masterList, describe: `the masters to report to, host:port,... (or $DFS_MASTERS); default ${DEFAULT_MASTERS.join(',')}` },
  { key: 'heartbeatMs', flag: 'heartbeat-ms', roles: CHUNKSERVER, type: 'number', parse: int(50, 60_000), default: CHUNKSERVER_DEFAULTS.heartbeatIntervalMs, describe: 'heartbeat interval' },
  { key: 'scrubRate', flag: 'scrub-rate', roles: CHUNKSERVER, type: 'string', parse: (raw, what) => parseRateMiBps(raw, what, 'no scrubbing'), default: String(CHUNKSERVER_DEFAULTS.scrubRateMiBps), describe: 'MiB/s of stored chunks re-verified in the background (fractions allowed); 0: no scrubbing' },
  { key: 'scrubIntervalMs', flag: 'scrub-interval-ms', roles: CHUNKSERVER, type: 'number', parse: int(1000, 7 * 24 * 3_600_000), default: CHUNKSERVER_DEFAULTS.scrubIntervalMs, describe: 'least time between the starts of two full scrub passes (1000 to a week); a store larger than rate × interval is scrubbed back to back' },
  { key: 'rack', flag: 'rack', roles: CHUNKSERVER, type: 'string', parse: parseRack, default: DEFAULT_RACK, describe: 'this server\'s failure domain (rack, room): the replicas of a chunk are spread over two racks at least; one rack for all (the default) spreads nothing' },
  { key: 'copyRate', flag: 'copy-rate', roles: CHUNKSERVER, type: 'string', parse: (raw, what) => parseRateMiBps(raw, what), default: String(CHUNKSERVER_DEFAULTS.copyRateMiBps), describe: 'cap in MiB/s on re-replication copies received, all together; 0: no cap' },
];

/** The config file's own keys, besides the settings. */
const FILE_ONLY_KEYS = ['role'];

function settingsOf(role: Role): Setting[] {
  return SETTINGS.filter((s) => s.roles.includes(role));
}

/** yargs options for a role, built from the table. No yargs defaults: a flag left out must be told apart from one given. */
export function roleOptions(role: Role): Record<string, { type: 'string' | 'number'; describe: string; defaultDescription?: string }> {
  const out: Record<string, { type: 'string' | 'number'; describe: string; defaultDescription?: string }> = {
    config: { type: 'string', describe: 'a JSON file of settings (keys as in docs/DEPLOY.md); flags given here override it' },
  };
  for (const s of settingsOf(role)) {
    if (s.flag === 'masters') continue; // the global --masters flag
    out[s.flag] = { type: s.type, describe: s.required ? `${s.describe} (required)` : s.describe, ...(s.default !== undefined ? { defaultDescription: String(s.default) } : {}) };
  }
  return out;
}

function readConfigFile(file: string): Record<string, unknown> {
  const fail = (why: string) => new DfsError('INVALID_CONFIG', `config ${file}: ${why}`);
  let text: string;
  try {
    const st = statSync(file);
    if (!st.isFile()) throw fail('is not a file');
    if (st.size > MAX_CONFIG_BYTES) throw fail(`is ${st.size} bytes; a config file is at most ${MAX_CONFIG_BYTES}`);
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if (err instanceof DfsError) throw err;
    throw fail(`cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw fail(`is not valid JSON (${(err as Error).message})`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw fail('must hold one JSON object of settings');
  const dup = duplicateKey(text);
  if (dup) throw fail(`names "${dup}" twice in one object (JSON keeps only the last, silently)`);
  return raw as Record<string, unknown>;
}

/**
 * The first key that appears twice in one object of a valid JSON text, if any. JSON.parse keeps
 * the last of them without a word, so two masters given the same id would quietly become one.
 */
export function duplicateKey(text: string): string | undefined {
  const objects: (Set<string> | null)[] = []; // null: an array
  let i = 0;
  while (i < text.length) {
    const c = text[i]!;
    if (c === '"') {
      let j = i + 1;
      while (text[j] !== '"') j += text[j] === '\\' ? 2 : 1;
      const token = JSON.parse(text.slice(i, j + 1)) as string;
      let k = j + 1;
      while (/\s/.test(text[k] ?? '')) k++;
      const top = objects.at(-1);
      if (text[k] === ':' && top) {
        if (top.has(token)) return token;
        top.add(token);
      }
      i = j + 1;
      continue;
    }
    if (c === '{') objects.push(new Set());
    else if (c === '[') objects.push(null);
    else if (c === '}' || c === ']') objects.pop();
    i++;
  }
  return undefined;
}

/** The addresses of this host's network interfaces, for checking an advertised address. */
function localAddresses(): Set<string> {
  const out = new Set<string>(['127.0.0.1', '::1', 'localhost']);
  for (const list of Object.values(networkInterfaces())) for (const a of list ?? []) out.add(a.address);
  return out;
}

export interface MasterSettings {
  id: string; listen: string; advertise?: string; data: string; secretFile?: string; chunkSize: number;
  tlsCert?: string; tlsKey?: string; tlsCa?: string;
  peers?: Record<string, string>; replication: number; deadTimeoutMs: number; connectionGraceMs: number; restartGraceMs: number; leaseMs: number; snapshotEvery: number; compactKeep: number;
  tickMs: number; gcGraceMs: number; copiesPerServer: number; balanceThreshold: number; trashIntervalMs: number; inlineMaxBytes: number;
}

export interface ChunkserverSettings {
  id?: string; listen: string; advertise?: string; data: string; secretFile?: string; chunkSize: number;
  tlsCert?: string; tlsKey?: string; tlsCa?: string;
  masters: string[]; heartbeatMs: number; scrubRate: number; scrubIntervalMs: number; copyRate: number; rack: string;
}

type ResolvedSettings = Record<string, unknown>;

/**
 * The settings a server runs with: each from its flag, the environment, the config file or its
 * default, checked. Throws INVALID_CONFIG naming the file and key for a bad file, and
 * INVALID_ARGUMENT for a bad flag.
 */
export function resolveSettings(role: 'master', flags: Record<string, unknown>, env?: NodeJS.ProcessEnv): MasterSettings;
export function resolveSettings(role: 'chunkserver', flags: Record<string, unknown>, env?: NodeJS.ProcessEnv): ChunkserverSettings;
export function resolveSettings(role: Role, flags: Record<string, unknown>, env: NodeJS.ProcessEnv = process.env): MasterSettings | ChunkserverSettings {
  const file = typeof flags.config === 'string' ? flags.config : undefined;
  const fromFile = file ? readConfigFile(file) : {};
  const known = new Set([...FILE_ONLY_KEYS, ...settingsOf(role).map((s) => s.key)]);
  for (const key of Object.keys(fromFile)) {
    if (known.has(key)) continue;
    const other = SETTINGS.find((s) => s.key === key);
    const hint = other
      ? `it is a ${other.roles.join(' and ')} setting, not a ${role} one`
      : `known keys: ${[...known].sort().join(', ')}`;
    throw new DfsError('INVALID_CONFIG', `config ${file}: unknown key "${key}" (${hint})`);
  }
  if (fromFile.role !== undefined && fromFile.role !== role) {
    throw new DfsError('INVALID_CONFIG', `config ${file}: "role" is ${JSON.stringify(fromFile.role)}, but this is dfs ${role}; use the file with dfs ${String(fromFile.role)}, or fix "role"`);
  }
  const out: ResolvedSettings = {};
  for (const s of settingsOf(role)) {
    const flag = flags[s.flag];
    const envValue = s.key === 'masters' ? env.DFS_MASTERS : undefined;
    if (flag !== undefined) out[s.key] = s.parse(flag, `--${s.flag}`);
    else if (envValue !== undefined && envValue !== '') out[s.key] = s.parse(envValue, 'DFS_MASTERS');
    else if (fromFile[s.key] !== undefined) {
      try {
        out[s.key] = s.parse(fromFile[s.key], `"${s.key}"`);
      } catch (err) {
        throw new DfsError('INVALID_CONFIG', `config ${file}: ${(err as Error).message}`);
      }
    } else if (s.default !== undefined) out[s.key] = s.parse(s.default, `the default ${s.flag}`);
    else if (s.required) throw new DfsError('INVALID_ARGUMENT', `--${s.flag} is required${file ? ` (or "${s.key}" in ${file})` : ''}`);
  }
  out.listen ??= `127.0.0.1:${role === 'master' ? DEFAULT_BASE_PORT : DEFAULT_BASE_PORT + 100}`;
  if (role === 'master') out.id ??= 'm1';
  if (role === 'chunkserver') out.masters ??= DEFAULT_MASTERS;
  if (typeof out.advertise === 'string') {
    const host = out.advertise.slice(0, out.advertise.lastIndexOf(':'));
    // The loopback interface owns all of 127.0.0.0/8, though it lists only 127.0.0.1.
    if (isIP(host) !== 0 && !localAddresses().has(host) && !host.startsWith('127.')) {
      const where = flags.advertise !== undefined ? '--advertise' : `config ${file}: "advertise"`;
      throw new DfsError(flags.advertise !== undefined ? 'INVALID_ARGUMENT' : 'INVALID_CONFIG', `${where}: ${host} is not an address of this host; give the address the others reach this host at`);
    }
  }
  // Every key was parsed by its own setting's parse above, so the shape holds.
  return out as unknown as MasterSettings | ChunkserverSettings;
}
