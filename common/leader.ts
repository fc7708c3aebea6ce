import { DfsError } from './errors.js';
import { callJson, type CallOptions } from './http.js';

export interface LeaderClientOptions {
  /** How long to keep trying (an election, redirects, a safe mode) before giving up. */
  maxWaitMs?: number;
  /** How long to keep trying when no master answers at all (nothing running there?). */
  unreachableWaitMs?: number;
  /** Pause between rounds when no master is reachable or none knows a leader yet. */
  retryDelayMs?: number;
  timeoutMs?: number;
  /** Sent on every call. */
  headers?: Record<string, string>;
  /** Signs every call (a chunkserver's per-request proof that it holds the cluster secret). */
  sign?: CallOptions['sign'];
}

/** Header of an exactly-once master request: `<session id>:<sequence number>` (POST /v1/session). */
export const SESSION_HEADER = 'x-dfs-session';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Masters a client learns of at most (a Raft group has 1 to 7): names from the wire are bounded. */
export const MAX_KNOWN_MASTERS = 16;

const ADDR = /^[A-Za-z0-9.-]{1,253}:\d{1,5}$/;
const ID = /^[A-Za-z0-9._-]{1,64}$/;

/** What one master said, for the message when no leader is found: "connection refused", "not the leader...". */
function describe(addr: string, e: DfsError): string {
  const m = e.message.replace(`call to ${addr} `, '');
  const errno = /^failed: (E[A-Z]+)$/.exec(m)?.[1];
  if (errno === 'ECONNREFUSED') return `connection refused (${errno})`;
  if (e.code === 'TIMEOUT') return 'no answer in time';
  return m.replace(/; retry shortly$/, '');
}

/**
 * Calls "the master": whichever master of the group leads. It starts from the masters it is
 * given, remembers the leader, follows NOT_LEADER hints to any master the group names (and learns
 * the whole group from any member's NOT_LEADER, so one address of a follower is enough), moves on
 * when a master is unreachable, and waits out an election or a new leader's safe mode, for a
 * bounded time. Used by the client library and by chunkservers alike. Retried calls carry the
 * same headers, so a mutation sent with a session header (x-dfs-session) is applied once however
 * often it is retried.
 */
export class LeaderClient {
  private current = 0;
  private readonly maxWaitMs: number;
  private readonly retryDelayMs: number;
  /** Master ids by address, as the group named them: to say "m2 127.0.0.1:9401" in messages. */
  private readonly ids = new Map<string, string>();

  constructor(readonly masters: string[], private readonly opts: LeaderClientOptions = {}) {
    if (masters.length === 0) throw new DfsError('INVALID_ARGUMENT', 'no master addresses given');
    this.masters = [...masters];
    this.maxWaitMs = opts.maxWaitMs ?? 15_000;
    this.retryDelayMs = opts.retryDelayMs ?? 100;
  }

  /** Stops asking the current master first: it answered, but it is not one to follow (another cluster's). */
  moveOn(): void {
    this.current = (this.current + 1) % this.masters.length;
  }

  get leader(): string {
    return this.masters[this.current]!;
  }

  /** The index of `addr` among the known masters, adding it if new (and well formed, and room is left); -1 if not. */
  private learn(addr: unknown, id?: unknown): number {
    if (typeof addr !== 'string' || !ADDR.test(addr)) return -1;
    if (typeof id === 'string' && ID.test(id) && this.ids.size < MAX_KNOWN_MASTERS) this.ids.set(addr, id);
    const i = this.masters.indexOf(addr);
    if (i >= 0 || this.masters.length >= MAX_KNOWN_MASTERS) return i;
    this.masters.push(addr);
    return this.masters.length - 1;
  }

  /** Learns the group a NOT_LEADER names (`masters`: id → host:port); answers the hinted leader's index, or -1. */
  private learnFrom(e: DfsError): number {
    const group = e.details.masters;
    if (group && typeof group === 'object' && !Array.isArray(group)) {
      for (const [id, addr] of Object.entries(group as Record<string, unknown>).slice(0, MAX_KNOWN_MASTERS)) this.learn(addr, id);
    }
    return this.learn(e.details.leader);
  }

  private named(addr: string): string {
    const id = this.ids.get(addr);
    return id ? `${id} ${addr}` : addr;
  }

  async call<T>(path: string, opts: CallOptions = {}): Promise<T> {
    let last: DfsError | undefined;
    let sawMaster = false;
    /** Masters that failed this call: a stale hint pointing back at one waits a beat first. */
    const failed = new Set<number>();
    /** What each master last said in this call, for the message if no leader is found. */
    const answers = new Map<string, string>();
    const start = Date.now();
    const deadline = () => start + (sawMaster ? this.maxWaitMs : this.opts.unreachableWaitMs ?? 2_000);
    // Each master is tried at least once, whatever the deadline (masters learnt meanwhile too).
    for (let attempt = 0; attempt < this.masters.length || Date.now() < deadline(); attempt++) {
      const addr = this.masters[this.current]!;
      try {
        return await callJson<T>(addr, path, { timeoutMs: this.opts.timeoutMs, sign: this.opts.sign, ...opts, headers: { ...this.opts.headers, ...opts.headers } });
      } catch (err) {
        const e = err instanceof DfsError ? err : new DfsError('INTERNAL', String(err));
        if (e.code === 'NOT_LEADER') {
          last = e;
          sawMaster = true;
          answers.set(addr, describe(addr, e));
          const i = this.learnFrom(e);
          if (i >= 0 && i !== this.current) {
            if (failed.has(i)) await sleep(this.retryDelayMs); // its followers have not noticed yet
            this.current = i;
            continue;
          }
        } else if (e.code === 'SAFE_MODE') {
          last = e;
          sawMaster = true;
          await sleep(4 * this.retryDelayMs);
          continue; // the same master: it is the leader, waiting for reports
        } else if (e.code === 'UNAVAILABLE' || e.code === 'TIMEOUT') {
          last = e;
          answers.set(addr, describe(addr, e));
          failed.add(this.current);
        } else {
          throw e;
        }
        this.current = (this.current + 1) % this.masters.length;
        if (this.current === 0 || this.masters.length === 1) await sleep(this.retryDelayMs);
      }
    }
    if (last?.code === 'SAFE_MODE') throw last;
    const said = this.masters.map((a) => `${this.named(a)}: ${answers.get(a) ?? 'not asked'}`).join('; ');
    if (sawMaster) throw new DfsError('UNAVAILABLE', `no master leader found (${said}); is a majority of masters running?`);
    throw new DfsError('UNAVAILABLE', `cannot reach a master at ${this.masters.join(', ')} (${said}); is the cluster running? (npm start, or set --masters / DFS_MASTERS)`);
  }
}
