// A deterministic simulator for the Raft core. N nodes on an in-memory network driven by one
// seeded PRNG that drops, delays, reorders and duplicates messages, partitions and heals, crashes
// and restarts nodes (a restarted node keeps only what its Storage persisted: a crash during a
// write keeps a prefix of it, like a torn WAL tail), snapshots and compacts, and moves a virtual
// clock. Safety properties are checked after every event; the clients' history is checked for
// linearizability at the end. Same seed, same run.
import { RaftCore } from '../../../master/raft/core.js';
import { MemoryStorage } from '../../../master/raft/memory-storage.js';
import { encodeCommand, encodeRegister, SessionStateMachine, type SessionResult } from '../../../master/raft/session.js';
import { onlyMovesCommit, type Entry, type Message, type Ready } from '../../../master/raft/types.js';
import { mulberry32 } from '../../helpers/rng.js';
import { encodeKv, KvStateMachine } from './kv.js';
import { checkLinearizable, type KvInput, type KvOperation, type KvOutput } from './linearizability.js';

/** The simulator's fault schedules come from the shared seeded PRNG (mulberry32). */
export const createRandom = mulberry32;

export class SimViolation extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SimViolation';
  }
}

export interface SimOptions {
  readonly nodeCount: number;
  /** Virtual time with faults and client load. */
  readonly durationMs: number;
  /** Virtual time after healing everything in which the cluster must converge and clients finish. */
  readonly quietMs: number;
  readonly clients: number;
  readonly keys: number;
  readonly dropRate: number;
  readonly duplicateRate: number;
  readonly maxDelayMs: number;
  readonly crashRate: number;
  readonly partitionRate: number;
  readonly snapshotEveryEntries: number;
  readonly compactKeepEntries: number;
  readonly preVote: boolean;
  readonly checkQuorum: boolean;
  readonly heartbeatTick: number;
  readonly maxInflightMsgs: number;
  readonly maxSizePerMsgBytes: number;
  readonly snapshotChunkBytes: number;
  /** Deliberately broken driver, to prove the checks catch it: send before persisting. */
  readonly unsafeSendBeforePersist: boolean;
  /** Deliberately broken storage: a crash loses the persisted term and vote (as if never fsynced). */
  readonly unsafeLoseHardState: boolean;
}

const TICK_MS = 10;
const ELECTION_TICK = 10;
const CLIENT_TIMEOUT_MS = 250;
const CLIENT_GIVE_UP_MS = 1_200;

/** Parameters drawn from the seed, so the seed alone names the run. */
export function optionsForSeed(seed: number, overrides: Partial<SimOptions> = {}): SimOptions {
  const r = createRandom(seed ^ 0x9e3779b9);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
  return {
    nodeCount: pick([3, 3, 5]),
    durationMs: 2_000,
    quietMs: 4_000,
    clients: pick([2, 3, 4]),
    keys: pick([1, 2, 3]),
    dropRate: pick([0, 0.01, 0.05, 0.15]),
    duplicateRate: pick([0, 0.02, 0.1]),
    maxDelayMs: pick([2, 5, 15, 40]),
    crashRate: pick([0, 0.5, 1.5]),
    partitionRate: pick([0, 0.5, 1.5]),
    snapshotEveryEntries: pick([4, 8, 16, 1000]),
    compactKeepEntries: pick([0, 2, 5]),
    preVote: r() < 0.8,
    checkQuorum: r() < 0.8,
    heartbeatTick: pick([1, 2, 3]),
    maxInflightMsgs: pick([1, 2, 4, 64]),
    maxSizePerMsgBytes: pick([1, 100, 1000, 1 << 20]),
    snapshotChunkBytes: pick([16, 64, 1 << 20]),
    unsafeSendBeforePersist: false,
    unsafeLoseHardState: false,
    ...overrides,
  };
}

interface ClientReply {
  readonly kind: 'notLeader' | 'ok';
  readonly hint?: number;
  readonly value?: unknown;
}

type Reply = (reply: ClientReply) => void;

interface SimNode {
  readonly index: number;
  readonly id: string;
  readonly storage: MemoryStorage;
  core: RaftCore | null;
  sm: SessionStateMachine | null;
  kv: KvStateMachine | null;
  incarnation: number;
  pendingReady: Ready | null;
  processScheduled: boolean;
  applied: number;
  appliedTerm: number;
  snapshotIndex: number;
  /** Commit index already recorded by the checker, this incarnation. */
  checkedCommit: number;
  wasLeaderInTerm: number;
  proposals: Map<number, { term: number; reply: Reply }>;
  reads: Map<string, { key: string; reply: Reply }>;
  confirmedReads: { index: number; key: string; reply: Reply }[];
}

interface ClientOp {
  readonly kind: 'register' | 'put' | 'cas' | 'get';
  readonly key: string;
  readonly input: KvInput | null;
  readonly data: Uint8Array | null;
  readonly call: number;
}

interface SimClient {
  readonly index: number;
  sessionId: string | null;
  seq: number;
  op: ClientOp | null;
  attempt: number;
  guess: number;
  idle: boolean;
}

export interface SimStats {
  events: number;
  elections: number;
  maxTerm: number;
  commits: number;
  crashes: number;
  partitions: number;
  snapshotsSent: number;
  snapshotsInstalled: number;
  opsCompleted: number;
  opsUnknown: number;
  readsCompleted: number;
  messages: number;
}

/** A binary heap of events ordered by (time, insertion order), so ties are deterministic. */
class EventQueue {
  private heap: { time: number; seq: number; run: () => void }[] = [];
  private seq = 0;

  push(time: number, run: () => void): void {
    const item = { time, seq: this.seq++, run };
    const h = this.heap;
    h.push(item);
    let i = h.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (less(h[parent]!, item)) break;
      h[i] = h[parent]!;
      i = parent;
    }
    h[i] = item;
  }

  pop(): { time: number; run: () => void } | undefined {
    const h = this.heap;
    const top = h[0];
    const last = h.pop();
    if (top === undefined || last === undefined || h.length === 0) return top;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      let best = last;
      if (l < h.length && less(h[l]!, best)) {
        m = l;
        best = h[l]!;
      }
      if (r < h.length && less(h[r]!, best)) m = r;
      if (m === i) break;
      h[i] = h[m]!;
      i = m;
    }
    h[i] = last;
    return top;
  }
}

function less(a: { time: number; seq: number }, b: { time: number; seq: number }): boolean {
  return a.time < b.time || (a.time === b.time && a.seq < b.seq);
}

function bytesKey(data: Uint8Array): string {
  return Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('latin1');
}

export class Simulation {
  readonly options: SimOptions;
  readonly stats: SimStats = {
    events: 0, elections: 0, maxTerm: 0, commits: 0, crashes: 0, partitions: 0, snapshotsSent: 0,
    snapshotsInstalled: 0, opsCompleted: 0, opsUnknown: 0, readsCompleted: 0, messages: 0,
  };
  readonly history: KvOperation[] = [];
  private readonly random: () => number;
  private readonly queue = new EventQueue();
  private now = 0;
  private readonly nodes: SimNode[] = [];
  private readonly clients: SimClient[] = [];
  /** Partition group per node; nodes talk only within a group. */
  private group: number[] = [];
  private faulty = true;

  // Checker state, global across incarnations.
  private readonly leaderOfTerm = new Map<number, string>();
  private readonly entryAt = new Map<string, string>(); // "index/term" → data
  private readonly committed = new Map<number, { term: number; data: string; commitTerm: number }>();
  private readonly stateAt = new Map<number, string>(); // applied index → state machine bytes
  private readonly maxTermSent: number[] = [];
  private readonly votesGranted = new Map<string, string>(); // "node/term" → candidate

  constructor(readonly seed: number, options: SimOptions) {
    this.options = options;
    this.random = createRandom(seed);
    for (let i = 0; i < options.nodeCount; i++) {
      this.nodes.push({
        index: i, id: `n${i + 1}`, storage: new MemoryStorage(), core: null, sm: null, kv: null, incarnation: 0,
        pendingReady: null, processScheduled: false, applied: 0, appliedTerm: 0, snapshotIndex: 0, checkedCommit: 0,
        wasLeaderInTerm: -1, proposals: new Map(), reads: new Map(), confirmedReads: [],
      });
      this.maxTermSent.push(0);
    }
    this.group = this.nodes.map(() => 0);
  }

  /** Runs to completion; throws SimViolation when a property fails. */
  run(): SimStats {
    for (const node of this.nodes) this.restart(node);
    for (const node of this.nodes) this.scheduleTick(node, Math.floor(this.random() * TICK_MS));
    for (let c = 0; c < this.options.clients; c++) {
      const client: SimClient = { index: c, sessionId: null, seq: 0, op: null, attempt: 0, guess: c % this.nodes.length, idle: true };
      this.clients.push(client);
      this.at(Math.floor(this.random() * 50), () => this.clientNext(client));
    }
    this.scheduleFault();
    this.at(this.options.durationMs, () => this.healEverything());
    const end = this.options.durationMs + this.options.quietMs;
    let converged = false;
    for (;;) {
      const event = this.queue.pop();
      if (event === undefined) break;
      this.now = event.time;
      if (this.now > end) break;
      event.run();
      this.stats.events++;
      if (!this.faulty && this.now % 50 === 0 && this.clients.every((c) => c.idle) && this.isConverged()) {
        converged = true;
        break;
      }
    }
    if (!converged && !this.isConverged()) {
      throw new SimViolation(`liveness: cluster did not converge within ${this.options.quietMs} ms after healing (${this.describe()})`);
    }
    const result = checkLinearizable(this.history);
    if (!result.ok) throw new SimViolation(`linearizability: history of key ${result.badKey} is not linearizable`);
    return this.stats;
  }

  describe(): string {
    const leader = this.nodes.find((n) => n.core?.role === 'leader');
    const progress = leader === undefined ? '' : ' progress ' + this.nodes.map((n) => JSON.stringify(leader.core!.progressOf(n.id))).join(',');
    return this.nodes
      .map((n) => (n.core === null ? `${n.id}:down` : `${n.id}:${n.core.role}@${n.core.term} c${n.core.log.committed} a${n.applied} l${n.core.log.lastIndex()}`))
      .join(' ') + progress;
  }

  private at(time: number, run: () => void): void {
    this.queue.push(Math.max(time, this.now), run);
  }

  private randomInt(lo: number, hi: number): number {
    return lo + Math.floor(this.random() * (hi - lo + 1));
  }

  // ---- nodes --------------------------------------------------------------------------------

  private restart(node: SimNode): void {
    node.incarnation++;
    const snapshot = node.storage.snapshot();
    node.kv = new KvStateMachine();
    node.sm = new SessionStateMachine(node.kv, { maxSessions: 64 });
    if (snapshot.meta.index > 0) node.sm.restore(snapshot.data);
    node.applied = snapshot.meta.index;
    node.appliedTerm = snapshot.meta.term;
    node.snapshotIndex = snapshot.meta.index;
    node.core = new RaftCore(
      {
        id: node.id,
        peers: this.nodes.map((n) => n.id),
        random: this.random,
        applied: snapshot.meta.index,
        electionTick: ELECTION_TICK,
        heartbeatTick: this.options.heartbeatTick,
        preVote: this.options.preVote,
        checkQuorum: this.options.checkQuorum,
        maxInflightMsgs: this.options.maxInflightMsgs,
        maxSizePerMsgBytes: this.options.maxSizePerMsgBytes,
        snapshotChunkBytes: this.options.snapshotChunkBytes,
        maxEntriesPerMsg: 16,
      },
      node.storage,
    );
    node.pendingReady = null;
    node.processScheduled = false;
    node.checkedCommit = 0;
    node.wasLeaderInTerm = -1;
    if (snapshot.meta.index > 0) this.checkState(node, snapshot.meta.index);
    // What was sent came from persisted state, so a restart may never be behind it.
    if (node.core.term < this.maxTermSent[node.index]!) {
      this.fail(`${node.id} restarted at term ${node.core.term} but had sent messages at term ${this.maxTermSent[node.index]}`);
    }
    this.checkNode(node);
  }

  private crash(node: SimNode): void {
    if (node.core === null) return;
    this.stats.crashes++;
    const ready = node.pendingReady;
    if (ready !== null && this.random() < 0.5) {
      // A torn write: a prefix of the batch's records reached the disk, the rest did not.
      const kept = this.randomInt(0, ready.entries.length);
      node.storage.persistSync({
        snapshot: ready.snapshot,
        entries: ready.entries.slice(0, kept),
        hardState: kept === ready.entries.length && this.random() < 0.5 ? ready.hardState : null,
      });
    }
    if (this.options.unsafeLoseHardState) {
      node.storage.setHardState({ term: 0, vote: null, commit: node.storage.initialState().commit });
    }
    node.core = null;
    node.sm = null;
    node.kv = null;
    node.pendingReady = null;
    node.proposals.clear();
    node.reads.clear();
    node.confirmedReads = [];
    node.incarnation++;
    this.at(this.now + this.randomInt(20, 400), () => {
      if (node.core === null) this.restart(node);
    });
  }

  private scheduleTick(node: SimNode, delay: number): void {
    this.at(this.now + delay, () => {
      // Clocks drift a little: each node's tick interval varies by ±10%.
      this.scheduleTick(node, this.randomInt(TICK_MS - 1, TICK_MS + 1));
      if (node.core === null) return;
      node.core.tick();
      this.afterInput(node);
    });
  }

  private afterInput(node: SimNode): void {
    this.checkNode(node);
    this.scheduleProcess(node);
  }

  private scheduleProcess(node: SimNode): void {
    if (node.processScheduled || node.core === null || node.pendingReady !== null) return;
    node.processScheduled = true;
    this.at(this.now, () => {
      node.processScheduled = false;
      this.processReady(node);
    });
  }

  private processReady(node: SimNode): void {
    const core = node.core;
    if (core === null || node.pendingReady !== null || !core.hasReady()) return;
    const ready = core.ready();
    node.pendingReady = ready;
    const incarnation = node.incarnation;
    const sentFirst = this.options.unsafeSendBeforePersist || ready.sendBeforePersist;
    if (sentFirst) this.send(node, ready.messages);
    // As RaftNode: a Ready that only moves the commit index is applied (and answers clients)
    // before its write, which a crash may then lose.
    const appliedFirst = onlyMovesCommit(ready, node.storage.initialState());
    if (appliedFirst) this.deliverReady(node, ready, sentFirst);
    // The fsync takes a while; messages keep arriving and are stepped meanwhile.
    this.at(this.now + this.randomInt(0, 6), () => {
      if (node.incarnation !== incarnation) return;
      this.finishReady(node, ready, sentFirst, appliedFirst);
    });
  }

  private finishReady(node: SimNode, ready: Ready, sentFirst: boolean, appliedFirst: boolean): void {
    const core = node.core!;
    for (const entry of ready.entries) this.checkEntry(entry);
    node.storage.persistSync({ hardState: ready.hardState, entries: ready.entries, snapshot: ready.snapshot });
    node.pendingReady = null;
    if (!appliedFirst) this.deliverReady(node, ready, sentFirst);
    core.advance(ready);
    if (ready.softState !== null && core.role !== 'leader') {
      for (const p of node.proposals.values()) p.reply({ kind: 'notLeader', hint: this.indexOf(core.leaderId) });
      node.proposals.clear();
      for (const r of node.reads.values()) r.reply({ kind: 'notLeader', hint: this.indexOf(core.leaderId) });
      node.reads.clear();
    }
    if (node.applied - node.snapshotIndex >= this.options.snapshotEveryEntries) {
      const meta = { index: node.applied, term: node.appliedTerm };
      node.storage.saveSnapshotSync({ meta, data: node.sm!.snapshot() }, Math.max(0, meta.index - this.options.compactKeepEntries));
      node.snapshotIndex = meta.index;
    }
    this.checkNode(node);
    this.scheduleProcess(node);
  }

  /** Sends (unless sent already), restores a received snapshot, applies, and serves reads. */
  private deliverReady(node: SimNode, ready: Ready, sentFirst: boolean): void {
    if (!sentFirst) this.send(node, ready.messages);
    if (ready.snapshot !== null) {
      if (ready.snapshot.meta.index <= node.applied) this.fail(`${node.id} restored snapshot ${ready.snapshot.meta.index} at applied ${node.applied}`);
      node.sm!.restore(ready.snapshot.data);
      node.applied = ready.snapshot.meta.index;
      node.appliedTerm = ready.snapshot.meta.term;
      node.snapshotIndex = ready.snapshot.meta.index;
      this.stats.snapshotsInstalled++;
      this.checkState(node, node.applied);
      for (const [index, p] of node.proposals) {
        if (index <= node.applied) {
          node.proposals.delete(index);
          p.reply({ kind: 'notLeader' });
        }
      }
    }
    for (const entry of ready.committedEntries) this.applyEntry(node, entry);
    for (const rs of ready.readStates) {
      const read = node.reads.get(rs.context);
      node.reads.delete(rs.context);
      if (read !== undefined) node.confirmedReads.push({ index: rs.index, ...read });
    }
    this.serveReads(node);
  }

  private applyEntry(node: SimNode, entry: Entry): void {
    if (entry.index !== node.applied + 1) this.fail(`${node.id} applied ${entry.index} after ${node.applied}`);
    const known = this.committed.get(entry.index);
    if (known !== undefined && (known.term !== entry.term || known.data !== bytesKey(entry.data))) {
      this.fail(`state machine safety: ${node.id} applied a different entry at ${entry.index}`);
    }
    const result = entry.data.byteLength === 0 ? undefined : node.sm!.apply(entry.data, entry.index);
    node.applied = entry.index;
    node.appliedTerm = entry.term;
    this.checkState(node, entry.index);
    const pending = node.proposals.get(entry.index);
    if (pending !== undefined) {
      node.proposals.delete(entry.index);
      if (pending.term === entry.term) pending.reply({ kind: 'ok', value: result });
      else pending.reply({ kind: 'notLeader' });
    }
  }

  private serveReads(node: SimNode): void {
    const waiting: SimNode['confirmedReads'] = [];
    for (const read of node.confirmedReads) {
      if (read.index <= node.applied) read.reply({ kind: 'ok', value: node.kv!.get(read.key) });
      else waiting.push(read);
    }
    node.confirmedReads = waiting;
  }

  private indexOf(id: string | null): number | undefined {
    const i = this.nodes.findIndex((n) => n.id === id);
    return i < 0 ? undefined : i;
  }

  // ---- network ------------------------------------------------------------------------------

  private send(from: SimNode, messages: readonly Message[]): void {
    for (const m of messages) {
      this.stats.messages++;
      // Pre-vote traffic carries the term a node would campaign in, not its own.
      if (m.type !== 'preVote' && m.type !== 'preVoteResp' && m.term > this.maxTermSent[from.index]!) this.maxTermSent[from.index] = m.term;
      if (m.type === 'voteResp' && !m.reject) {
        const key = `${from.id}/${m.term}`;
        const previous = this.votesGranted.get(key);
        if (previous !== undefined && previous !== m.to) this.fail(`${from.id} voted for ${previous} and ${m.to} in term ${m.term}`);
        this.votesGranted.set(key, m.to);
      }
      if (m.type === 'snapshot' && m.offset === 0) this.stats.snapshotsSent++;
      const copies = this.faulty && this.random() < this.options.duplicateRate ? 2 : 1;
      for (let c = 0; c < copies; c++) {
        if (this.faulty && this.random() < this.options.dropRate) continue;
        this.at(this.now + this.messageDelay(), () => this.deliver(from, m));
      }
    }
  }

  private messageDelay(): number {
    const tail = this.random() < 0.05 ? 4 : 1;
    return this.randomInt(0, this.options.maxDelayMs * tail);
  }

  private deliver(from: SimNode, m: Message): void {
    const to = this.nodes[this.indexOf(m.to)!]!;
    if (to.core === null || this.group[from.index] !== this.group[to.index]) return;
    to.core.step(m);
    this.afterInput(to);
  }

  // ---- faults -------------------------------------------------------------------------------

  private scheduleFault(): void {
    const rate = this.options.crashRate + this.options.partitionRate;
    if (rate === 0) return;
    // Poisson-ish: mean gap of 1000/rate ms.
    const gap = Math.max(1, Math.floor((-Math.log(1 - this.random()) * 1000) / rate));
    this.at(this.now + gap, () => {
      if (!this.faulty) return;
      const crash = this.random() * rate < this.options.crashRate;
      if (crash) {
        // Prefer the leader half the time: that is where the interesting bugs are.
        const leader = this.nodes.find((n) => n.core?.role === 'leader');
        const victim = leader !== undefined && this.random() < 0.5 ? leader : this.nodes[this.randomInt(0, this.nodes.length - 1)]!;
        this.crash(victim);
      } else if (this.group.some((g) => g !== 0) && this.random() < 0.5) {
        this.group = this.nodes.map(() => 0);
      } else {
        this.stats.partitions++;
        const leader = this.nodes.findIndex((n) => n.core?.role === 'leader');
        if (leader >= 0 && this.random() < 0.4) this.group = this.nodes.map((_, i) => (i === leader ? 1 : 0));
        else this.group = this.nodes.map(() => this.randomInt(0, 2));
      }
      this.scheduleFault();
    });
  }

  private healEverything(): void {
    this.faulty = false;
    this.group = this.nodes.map(() => 0);
    for (const node of this.nodes) if (node.core === null) this.restart(node);
  }

  private isConverged(): boolean {
    const leader = this.nodes.find((n) => n.core?.role === 'leader');
    if (leader === undefined || leader.core!.log.committed === 0) return false;
    if (leader.core!.log.term(leader.core!.log.committed) !== leader.core!.term) return false;
    const target = leader.core!.log.committed;
    return this.nodes.every((n) => n.core !== null && n.applied === target && n.pendingReady === null);
  }

  // ---- clients ------------------------------------------------------------------------------

  private clientNext(client: SimClient): void {
    client.op = null;
    if (!this.faulty) {
      client.idle = true;
      return;
    }
    client.idle = false;
    const key = `k${this.randomInt(1, this.options.keys)}`;
    if (client.sessionId === null) {
      client.op = { kind: 'register', key, input: null, data: encodeRegister(), call: this.now };
    } else {
      const roll = this.random();
      if (roll < 0.35) {
        client.op = { kind: 'get', key, input: { kind: 'get' }, data: null, call: this.now };
      } else {
        client.seq++;
        const value = `c${client.index}s${client.seq}`;
        const input: KvInput =
          roll < 0.7 ? { kind: 'put', value } : { kind: 'cas', expected: this.random() < 0.5 ? null : `c${this.randomInt(0, this.options.clients - 1)}s${this.randomInt(1, client.seq)}`, value };
        const command = input.kind === 'put' ? { op: 'put' as const, key, value } : { op: 'cas' as const, key, expected: input.kind === 'cas' ? input.expected : null, value };
        client.op = { kind: input.kind, key, input, data: encodeCommand(client.sessionId, client.seq, encodeKv(command)), call: this.now };
      }
    }
    this.clientAttempt(client);
  }

  private clientAttempt(client: SimClient): void {
    const op = client.op;
    if (op === null) return;
    if (this.now - op.call > CLIENT_GIVE_UP_MS) {
      this.clientGiveUp(client);
      return;
    }
    const attempt = ++client.attempt;
    const target = this.nodes[client.guess]!;
    const reply: Reply = (r) => {
      if (this.faulty && this.random() < this.options.dropRate) return;
      this.at(this.now + this.messageDelay(), () => this.clientReply(client, attempt, r));
    };
    this.at(this.now + this.messageDelay(), () => this.handleClientRequest(target, op, reply));
    this.at(this.now + CLIENT_TIMEOUT_MS, () => {
      if (client.attempt !== attempt || client.op !== op) return;
      client.guess = this.randomInt(0, this.nodes.length - 1);
      this.clientAttempt(client);
    });
  }

  private handleClientRequest(node: SimNode, op: ClientOp, reply: Reply): void {
    const core = node.core;
    if (core === null) return; // a down server never answers; the client times out
    if (core.role !== 'leader') {
      reply({ kind: 'notLeader', hint: this.indexOf(core.leaderId) });
      return;
    }
    if (op.kind === 'get') {
      const context = `${node.id}/${node.incarnation}/${this.now}/${this.random()}`;
      if (core.readIndex(context) !== 'ok') {
        reply({ kind: 'notLeader' });
        return;
      }
      node.reads.set(context, { key: op.key, reply });
    } else {
      const result = core.propose([op.data!]);
      if (!result.ok) {
        reply({ kind: 'notLeader' });
        return;
      }
      node.proposals.set(result.firstIndex, { term: result.term, reply });
    }
    this.afterInput(node);
  }

  private clientReply(client: SimClient, attempt: number, reply: ClientReply): void {
    const op = client.op;
    if (op === null || client.attempt !== attempt) return;
    if (reply.kind === 'notLeader') {
      client.guess = reply.hint ?? this.randomInt(0, this.nodes.length - 1);
      client.attempt++; // cancel the pending timeout
      this.at(this.now + 5, () => this.clientAttempt(client));
      return;
    }
    if (op.kind === 'register') {
      const result = reply.value as SessionResult;
      if (result.status !== 'registered') this.fail(`register returned ${result.status}`);
      client.sessionId = result.clientId;
      this.clientNext(client);
      return;
    }
    let output: KvOutput;
    if (op.kind === 'get') {
      output = reply.value as string | null;
      this.stats.readsCompleted++;
    } else {
      const result = reply.value as SessionResult;
      if (result.status === 'sessionExpired') {
        // Evicted: earlier attempts may have applied, so the outcome is unknown.
        client.sessionId = null;
        this.clientGiveUp(client);
        return;
      }
      if (result.status !== 'ok') this.fail(`client ${client.index} seq ${client.seq} got ${result.status}`);
      output = result.result as KvOutput;
      this.stats.opsCompleted++;
    }
    this.history.push({ clientId: client.index, key: op.key, input: op.input!, output, call: op.call, ret: this.now });
    this.at(this.now + this.randomInt(0, 20), () => this.clientNext(client));
  }

  private clientGiveUp(client: SimClient): void {
    const op = client.op!;
    client.attempt++;
    if (op.kind === 'put' || op.kind === 'cas') {
      this.stats.opsUnknown++;
      this.history.push({ clientId: client.index, key: op.key, input: op.input!, output: undefined, call: op.call, ret: Infinity });
    }
    this.clientNext(client);
  }

  // ---- safety checks ------------------------------------------------------------------------

  private fail(message: string): never {
    throw new SimViolation(`${message} [t=${this.now}ms ${this.describe()}]`);
  }

  /** Same index and term ⇒ same command, across every node and incarnation. */
  private checkEntry(entry: Entry): void {
    const key = `${entry.index}/${entry.term}`;
    const data = bytesKey(entry.data);
    const known = this.entryAt.get(key);
    if (known === undefined) this.entryAt.set(key, data);
    else if (known !== data) this.fail(`log matching: two different entries at index ${entry.index} term ${entry.term}`);
  }

  /** Every node that reaches an applied index has the same state machine there. */
  private checkState(node: SimNode, index: number): void {
    const state = bytesKey(node.sm!.snapshot());
    const known = this.stateAt.get(index);
    if (known === undefined) this.stateAt.set(index, state);
    else if (known !== state) this.fail(`state machine safety: ${node.id} has a different state at applied index ${index}`);
  }

  private checkNode(node: SimNode): void {
    const core = node.core;
    if (core === null) return;
    if (core.term > this.stats.maxTerm) this.stats.maxTerm = core.term;
    // Election safety: at most one leader per term.
    if (core.role === 'leader') {
      const leader = this.leaderOfTerm.get(core.term);
      if (leader === undefined) {
        this.leaderOfTerm.set(core.term, node.id);
        this.stats.elections++;
      } else if (leader !== node.id) {
        this.fail(`election safety: ${leader} and ${node.id} are both leaders of term ${core.term}`);
      }
      if (node.wasLeaderInTerm !== core.term) {
        node.wasLeaderInTerm = core.term;
        this.checkLeaderCompleteness(node);
      }
    }
    // Record commits as they happen; a commit must never disagree with an earlier one.
    const log = core.log;
    for (let i = Math.max(node.checkedCommit, log.firstIndex() - 1) + 1; i <= log.committed; i++) {
      const entry = log.entryAt(i);
      if (entry === undefined) continue;
      const known = this.committed.get(i);
      const data = bytesKey(entry.data);
      if (known === undefined) {
        this.committed.set(i, { term: entry.term, data, commitTerm: core.term });
        this.stats.commits++;
      } else if (known.term !== entry.term || known.data !== data) {
        this.fail(`${node.id} committed a different entry at ${i} (term ${entry.term}, was ${known.term})`);
      }
    }
    node.checkedCommit = Math.max(node.checkedCommit, log.committed);
    this.checkLogMatching(node);
  }

  /** A new leader holds every entry committed in an earlier term. */
  private checkLeaderCompleteness(node: SimNode): void {
    const log = node.core!.log;
    for (const [index, c] of this.committed) {
      if (c.commitTerm >= node.core!.term) continue;
      if (index > log.lastIndex()) this.fail(`leader completeness: leader ${node.id} of term ${node.core!.term} lacks committed ${index}`);
      if (index >= log.firstIndex() && log.term(index) !== c.term) {
        this.fail(`leader completeness: leader ${node.id} has term ${log.term(index)} at committed ${index} (term ${c.term})`);
      }
    }
  }

  /** If two logs agree on (index, term), they agree on every entry before it. */
  private checkLogMatching(node: SimNode): void {
    const a = node.core!.log;
    for (const other of this.nodes) {
      if (other === node || other.core === null) continue;
      const b = other.core.log;
      const lo = Math.max(a.firstIndex(), b.firstIndex());
      let i = Math.min(a.lastIndex(), b.lastIndex());
      while (i >= lo && a.term(i) !== b.term(i)) i--;
      for (; i >= lo; i--) {
        if (a.term(i) !== b.term(i)) this.fail(`log matching: ${node.id} and ${other.id} agree above ${i} but differ at ${i}`);
      }
    }
  }
}

export function runSeed(seed: number, overrides: Partial<SimOptions> = {}): SimStats {
  return new Simulation(seed, optionsForSeed(seed, overrides)).run();
}
