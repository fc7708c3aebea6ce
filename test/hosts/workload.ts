// A metadata load for the partition scenarios, recorded as a history for the linearizability
// checker: a few files whose replication factor is a register (setrep writes it, stat reads
// it), written and read by clients on the client host, one of them pinned to one master (it
// never follows a leader hint, so a stale answer from a cut-off leader would be seen).
import type { HostCluster } from './host-cluster.js';
import { checkPerKey, MAX_OPS, registerModel, type Operation, type RegisterInput } from './linearizability.js';

export type RegisterOp = Operation<RegisterInput, number> & { key: string };

export const KEYS = ['/reg/a', '/reg/b', '/reg/c', '/reg/d', '/reg/e', '/reg/f', '/reg/g', '/reg/h'];
/** A new file's replication: every key's value before the first write. */
export const INITIAL = 3;

/**
 * Operations a key gets at most: the checker takes MAX_OPS a key, and each of the load's four
 * loops has one more in flight when it counts. A loop stops once every key has had its share, so
 * a load left running longer than planned stays checkable (a rolling restart on a fast machine
 * made 1,069 on one key).
 */
const MAX_OPS_PER_KEY = MAX_OPS - 10;

export class MetadataLoad {
  readonly history: RegisterOp[] = [];
  /** Operations started per key, recorded or not. */
  private readonly started = new Map<string, number>();
  /** Outcomes by kind, for the test's messages: ok, unknown (a write that failed), failed reads. */
  readonly counts = { writesOk: 0, writesUnknown: 0, readsOk: 0, readsFailed: 0, pinnedOk: 0, pinnedRefused: 0 };
  private running = true;
  private readonly loops: Promise<void>[] = [];
  private seed = 12345;

  /** Only the client calls are used: the bed's client agent, or one in this process (local-agent.ts). */
  constructor(private readonly c: Pick<HostCluster, 'call'>) {}

  /** Makes the files (each starts at INITIAL). */
  static async prepare(c: Pick<HostCluster, 'call'>): Promise<void> {
    for (const key of KEYS) {
      const r = await c.call({ op: 'touch', path: key });
      if (!r.ok) throw new Error(`could not create ${key}: ${r.code} ${r.message}`);
    }
  }

  private next(n: number): number {
    this.seed = (this.seed * 1103515245 + 12345) & 0x7fffffff;
    return (this.seed >>> 16) % n; // an LCG's low bits cycle: use the high ones
  }

  /** A key for the next operation, counted; undefined once every key has had MAX_OPS_PER_KEY (the loop ends). */
  private pickKey(): string | undefined {
    const first = this.next(KEYS.length);
    for (let k = 0; k < KEYS.length; k++) {
      const key = KEYS[(first + k) % KEYS.length]!;
      const n = this.started.get(key) ?? 0;
      if (n < MAX_OPS_PER_KEY) {
        this.started.set(key, n + 1);
        return key;
      }
    }
    return undefined;
  }

  /** Whether the load stopped on its bound before it was told to stop. */
  get capped(): boolean {
    return KEYS.every((k) => (this.started.get(k) ?? 0) >= MAX_OPS_PER_KEY);
  }

  /** Starts two writers, a reader through the leader and a reader pinned to `pinned` (a master's address). */
  start(pinned: string): void {
    this.loops.push(this.writer('w1'), this.writer('w2'), this.reader('r1'), this.pinnedReader('p1', pinned));
  }

  private async writer(client: string): Promise<void> {
    for (let key = this.pickKey(); this.running && key !== undefined; key = this.pickKey()) {
      const value = 1 + this.next(9);
      const call = performance.now();
      const r = await this.c.call({ op: 'setrep', path: key, value }).catch(() => undefined);
      const ret = performance.now();
      // A write that failed may still have been applied (its answer was lost): outcome unknown.
      this.history.push({ key, client, input: { kind: 'write', value }, output: undefined, call, ret: r?.ok ? ret : Infinity });
      if (r?.ok) this.counts.writesOk++;
      else this.counts.writesUnknown++;
      await sleep(40);
    }
  }

  private async reader(client: string): Promise<void> {
    for (let key = this.pickKey(); this.running && key !== undefined; key = this.pickKey()) {
      const call = performance.now();
      const r = await this.c.call({ op: 'stat', path: key }).catch(() => undefined);
      const ret = performance.now();
      if (r?.ok) {
        this.history.push({ key, client, input: { kind: 'read' }, output: r.value as number, call, ret });
        this.counts.readsOk++;
      } else this.counts.readsFailed++;
      await sleep(40);
    }
  }

  private async pinnedReader(client: string, addr: string): Promise<void> {
    for (let key = this.pickKey(); this.running && key !== undefined; key = this.pickKey()) {
      const call = performance.now();
      const r = await this.c.call({ op: 'pinnedStat', path: key, addr }).catch(() => undefined);
      const ret = performance.now();
      if (r?.ok) {
        this.history.push({ key, client, input: { kind: 'read' }, output: r.value as number, call, ret });
        this.counts.pinnedOk++;
      } else this.counts.pinnedRefused++;
      await sleep(40);
    }
  }

  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.loops);
  }

  check(): ReturnType<typeof checkPerKey> {
    return checkPerKey(() => registerModel(INITIAL), this.history);
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Samples every master's own view every 200 ms while it runs: the leaders seen (id and term,
 * in order, a change counted each time the pair changes) and each master's highest term.
 */
export class LeaderWatch {
  readonly changes: string[] = [];
  readonly maxTerm = new Map<string, number>();
  /**
   * Every role each master was seen in ('down' when it did not answer). The status route shows a
   * pre-candidate as a follower, so a follower that knows no leader is 'follower without a leader'.
   */
  readonly rolesSeen = new Map<string, Set<string>>();
  private last = '';
  private running = true;
  private readonly loop: Promise<void>;
  constructor(private readonly c: HostCluster, private readonly onSample?: (views: Awaited<ReturnType<HostCluster['raftViews']>>, at: number) => void) {
    this.loop = this.run();
  }
  private async run(): Promise<void> {
    while (this.running) {
      const views = await this.c.raftViews();
      const at = performance.now();
      for (const v of views) {
        this.maxTerm.set(v.id, Math.max(this.maxTerm.get(v.id) ?? -1, v.term));
        if (!this.rolesSeen.has(v.id)) this.rolesSeen.set(v.id, new Set());
        this.rolesSeen.get(v.id)!.add(v.role === 'follower' && v.leader === null ? 'follower without a leader' : v.role);
      }
      const leaders = views.filter((v) => v.role === 'leader').map((v) => `${v.id}@${v.term}`).sort().join('+');
      if (leaders && leaders !== this.last) {
        this.changes.push(leaders);
        this.last = leaders;
      }
      this.onSample?.(views, at);
      await sleep(200);
    }
  }
  async stop(): Promise<void> {
    this.running = false;
    await this.loop;
  }
}
