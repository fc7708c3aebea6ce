// The limits that must fit together, and the one place their relations are checked. Each role
// calls checkLimits at start with its settings; a setting that breaks a relation is refused
// there, with the relation named, rather than found by a server that can never register.
import { DfsError } from './errors.js';

/** Largest JSON body any route accepts. */
export const MAX_JSON_BODY_BYTES = 8 * 1024 * 1024;

/**
 * Chunks in one page of a registration report. A server sends its full report in pages of at
 * most this many (as HDFS and QFS split block reports), so no server is too large to register.
 */
export const MAX_REPORT_PAGE_CHUNKS = 50_000;
/** Chunks in one whole report: the master holds a report's pages until the last arrives. */
export const MAX_REPORT_CHUNKS = 10_000_000;
/** Pages in one report. */
export const MAX_REPORT_PAGES = Math.ceil(MAX_REPORT_CHUNKS / MAX_REPORT_PAGE_CHUNKS);
/** Reports the master assembles at once (one per server): each may hold MAX_REPORT_CHUNKS. */
export const MAX_PENDING_REPORTS = 64;

/** Added (or removed) chunks one heartbeat carries: the rest wait for the next beat. */
export const MAX_HEARTBEAT_CHANGES = 50_000;
/** The heartbeat schema's cap on its added and removed lists. */
export const MAX_HEARTBEAT_LIST = 100_000;
/**
 * Changes a chunkserver keeps for its heartbeats. Past it, it forgets them and registers again
 * with a full report: a master that cannot keep up gets one bounded report, not an endless backlog.
 */
export const MAX_CHANGE_BACKLOG = 1_000_000;

/** Digits of the largest number a report entry may carry (Number.MAX_SAFE_INTEGER). */
const MAX_NUMBER_DIGITS = String(Number.MAX_SAFE_INTEGER).length;
/**
 * The most bytes one report entry takes in JSON, and its comma: every number at its widest.
 * `{"handle":…,"version":…,"length":…},`
 */
export const MAX_REPORT_ENTRY_BYTES = '{"handle":,"version":,"length":},'.length + 3 * MAX_NUMBER_DIGITS;
/** The most bytes a bare handle takes in a JSON list, with its comma. */
export const MAX_HANDLE_ENTRY_BYTES = MAX_NUMBER_DIGITS + 1;
/** Failed copies one heartbeat reports. */
export const MAX_COPY_FAILED = 10_000;
/** A register or heartbeat body without its chunk lists: ids, address, stats, a report id (generous). */
export const MAX_REPORT_OVERHEAD_BYTES = 4096;

/** A chunk stream (a client's upload or read, a pipeline hop) must finish within this. */
export const CHUNK_TIMEOUT_MS = 10 * 60_000;
/**
 * The leader writes a byte down each chunkserver's link this often; a chunkserver that hears
 * nothing for LINK_SILENCE_MS takes the leader for gone and connects again (to whoever leads).
 */
export const LINK_KEEPALIVE_MS = 1000;
export const LINK_SILENCE_MS = 3 * LINK_KEEPALIVE_MS;
/** A chunkserver waits this long before it opens its link again after it closed or failed. */
export const LINK_RETRY_MS = 200;
/** A chunkserver stopping cleanly tells the leader so (one try, this long at most) before its link closes. */
export const STOPPING_NOTICE_TIMEOUT_MS = 1000;
/**
 * Longest line a chunkserver reads from its link (the opening line and `{"beat":true}` are far
 * shorter): a longer one ends the link as malformed.
 */
export const LINK_MAX_LINE_BYTES = 4096;
/** The leader's probe of a chunkserver a client reported unreachable waits this long for an answer. */
export const PROBE_TIMEOUT_MS = 1000;
/** One probe a server at most this often, however many clients report it. */
export const PROBE_MIN_INTERVAL_MS = 1000;
/**
 * The shared HTTP client's connect timeout (to chunkservers and masters alike): a host that is
 * gone (no RST, its packets dropped) costs a read this long before it moves to the next replica,
 * not undici's default 10 s a chunk. A TCP handshake within one network takes milliseconds.
 */
export const CONNECT_TIMEOUT_MS = 2000;
/** A client's report of an unreachable chunkserver waits this long for the master at most (it is a hint). */
export const UNREACHABLE_REPORT_TIMEOUT_MS = 2000;
/** Chunkserver links one master holds open at most (one a chunkserver). */
export const MAX_CHUNKSERVER_LINKS = 4096;
/**
 * A record append's write lease (capped by the master's --lease-ms): it holds the file for one
 * record only, so a writer that dies mid-record keeps the others waiting this long at most. The
 * client renews it every third, as any write's.
 */
export const RECORD_LEASE_MS = 10_000;
/** Write tokens the master signs are good this long: at least a chunk stream's time. */
export const WRITE_TOKEN_TTL_MS = 10 * 60_000;

/** The settings whose relations are checked; each role passes those it has. */
export interface LimitSettings {
  /** A chunkserver's heartbeat interval. */
  heartbeatIntervalMs?: number;
  /** The master's dead timeout: a server silent this long is dead. */
  deadTimeoutMs?: number;
  /** The master's grace for a chunkserver whose connection dropped (see master/registry/liveness.ts). */
  connectionGraceMs?: number;
  /** The master's hold for a chunkserver that stopped cleanly to restart. */
  restartGraceMs?: number;
  /** A chunk stream (a client's, a pipeline's) must finish within this. */
  chunkTimeoutMs?: number;
  /** Write tokens the master signs are good this long. */
  writeTokenTtlMs?: number;
  /** The master's base time for a copy to finish (see RepairLimits.copyTimeoutMs). */
  copyTimeoutMs?: number;
  /** How long after its order the master waits past a copy's own timeout before re-planning it. */
  copyReportSlackMs?: number;
  /** Garbage grace: no shorter than the dead timeout, or a replica reported late is deleted as garbage. */
  gcGraceMs?: number;
}

interface Relation {
  name: string;
  holds: (s: Required<LimitSettings>) => boolean;
  /** The settings it reads: checked only when all are given. */
  uses: (keyof LimitSettings)[];
}

/** Every relation, each named as it reads. */
export const RELATIONS: Relation[] = [
  {
    name: 'a report page of MAX_REPORT_PAGE_CHUNKS entries at MAX_REPORT_ENTRY_BYTES each fits in MAX_JSON_BODY_BYTES',
    holds: () => MAX_REPORT_PAGE_CHUNKS * MAX_REPORT_ENTRY_BYTES + MAX_REPORT_OVERHEAD_BYTES <= MAX_JSON_BODY_BYTES,
    uses: [],
  },
  {
    name: 'a heartbeat of MAX_HEARTBEAT_CHANGES added, as many removed and MAX_COPY_FAILED failed copies fits in MAX_JSON_BODY_BYTES',
    holds: () => MAX_HEARTBEAT_CHANGES * (MAX_REPORT_ENTRY_BYTES + MAX_HANDLE_ENTRY_BYTES) + MAX_COPY_FAILED * MAX_HANDLE_ENTRY_BYTES + MAX_REPORT_OVERHEAD_BYTES <= MAX_JSON_BODY_BYTES,
    uses: [],
  },
  { name: 'MAX_HEARTBEAT_CHANGES <= MAX_HEARTBEAT_LIST (the schema cap)', holds: () => MAX_HEARTBEAT_CHANGES <= MAX_HEARTBEAT_LIST, uses: [] },
  { name: 'MAX_HEARTBEAT_CHANGES <= MAX_CHANGE_BACKLOG', holds: () => MAX_HEARTBEAT_CHANGES <= MAX_CHANGE_BACKLOG, uses: [] },
  { name: 'MAX_REPORT_PAGES * MAX_REPORT_PAGE_CHUNKS >= MAX_REPORT_CHUNKS', holds: () => MAX_REPORT_PAGES * MAX_REPORT_PAGE_CHUNKS >= MAX_REPORT_CHUNKS, uses: [] },
  {
    name: 'heartbeatIntervalMs * 3 <= deadTimeoutMs (a server that misses two beats is not dead yet)',
    holds: (s) => s.heartbeatIntervalMs * 3 <= s.deadTimeoutMs,
    uses: ['heartbeatIntervalMs', 'deadTimeoutMs'],
  },
  {
    name: 'connectionGraceMs <= deadTimeoutMs (a dropped connection finds a crash no later than silence does; else it adds nothing)',
    holds: (s) => s.connectionGraceMs <= s.deadTimeoutMs,
    uses: ['connectionGraceMs', 'deadTimeoutMs'],
  },
  {
    name: 'connectionGraceMs >= LINK_RETRY_MS (a chunkserver redials at once when a link that lived closes; the grace leaves room for one failed try and its pause)',
    holds: (s) => s.connectionGraceMs >= LINK_RETRY_MS,
    uses: ['connectionGraceMs'],
  },
  {
    name: 'restartGraceMs >= deadTimeoutMs (a clean stop is forgiven no less than a pause, and so than a crash)',
    holds: (s) => s.restartGraceMs >= s.deadTimeoutMs,
    uses: ['restartGraceMs', 'deadTimeoutMs'],
  },
  {
    name: 'writeTokenTtlMs >= chunkTimeoutMs (a token outlives the longest chunk stream it admits)',
    holds: (s) => s.writeTokenTtlMs >= s.chunkTimeoutMs,
    uses: ['writeTokenTtlMs', 'chunkTimeoutMs'],
  },
  {
    name: 'copyReportSlackMs >= 2 * heartbeatIntervalMs (a copy order is collected by one beat and its replica reported by the next)',
    holds: (s) => s.copyReportSlackMs >= 2 * s.heartbeatIntervalMs,
    uses: ['copyReportSlackMs', 'heartbeatIntervalMs'],
  },
  {
    name: 'copyTimeoutMs > 0 and copyReportSlackMs >= deadTimeoutMs (the master waits for a copy\'s news at least as long as for a heartbeat)',
    holds: (s) => s.copyTimeoutMs > 0 && s.copyReportSlackMs >= s.deadTimeoutMs,
    uses: ['copyTimeoutMs', 'copyReportSlackMs', 'deadTimeoutMs'],
  },
  {
    name: 'gcGraceMs >= 0 and deadTimeoutMs > 0',
    holds: (s) => s.gcGraceMs >= 0 && s.deadTimeoutMs > 0,
    uses: ['gcGraceMs', 'deadTimeoutMs'],
  },
];

/** Refuses settings that break a relation between limits (INVALID_CONFIG, naming each broken one). */
export function checkLimits(settings: LimitSettings): void {
  const broken = RELATIONS.filter((r) => r.uses.every((k) => settings[k] !== undefined) && !r.holds(settings as Required<LimitSettings>));
  if (broken.length === 0) return;
  const values = Object.entries(settings).map(([k, v]) => `${k}=${v}`).join(', ');
  throw new DfsError('INVALID_CONFIG', `limits that do not fit together: ${broken.map((r) => r.name).join('; ')} (with ${values}); change the settings so they hold`);
}

/** Throws when `cond` is false: an invariant broke, and going on could corrupt data. */
export function assert(cond: unknown, what: string): asserts cond {
  if (!cond) throw new Error(`assertion failed: ${what}`);
}
