// A deterministic simulator for the Raft module as it runs: N real RaftNode drivers, each around
// its real core, on an in-memory network driven by one seeded PRNG, in virtual time. The
// simulator owns every source of nondeterminism the driver has: its ticker, its disk (a write is
// durable when the simulator says so; a crash before that keeps a prefix of it, like a torn WAL
// tail) and its transport (messages dropped, delayed, reordered, duplicated, partitioned). After
// each event it lets the drivers' promise chains run to rest, then checks safety (election
// safety, log matching, leader completeness, state machine safety, durable-before-send) and
// availability; the clients' history is checked for linearizability at the end.
//
// The run is a sequence of phases of varied length: faulty phases (random crashes, partitions,
// loss, and faults that fire on the cluster's state: the leader crashes right after an entry of
// an earlier term reaches a majority, which is how Figure 8 of the Raft paper starts; a leader
// crashes right after its own entries reach its disk only; a follower crashes right after it
// acknowledges) and calm phases (healed, no loss, short delays), where a settled leader must stay.
// With `membership`, an operator also changes the group while all this goes on: it adds a fresh
// node as a learner, promotes it, removes voters (the leader too) and transfers leadership; a
// removed node stops on its own. Then every commit must be on a majority of the committing
// leader's voters' disks, and configurations in any log change one voter at a time with at most
// one change uncommitted on a leader.
// Same seed, same run.
import type { RaftConfigInput } from '../../../master/raft/config.js';
import { isMember, votersChanged } from '../../../master/raft/conf-change.js';
import { RaftCore } from '../../../master/raft/core.js';
import { NotLeaderError, RaftError } from '../../../master/raft/errors.js';
import { MemoryStorage } from '../../../master/raft/memory-storage.js';
import { RaftNode } from '../../../master/raft/node.js';
import { encodeCommand, encodeRegister, SessionStateMachine, type SessionResult } from '../../../master/raft/session.js';
import type { StateMachine } from '../../../master/raft/state-machine.js';
import type { LogStorage } from '../../../master/raft/storage.js';
import type { ConfState, Entry, Message } from '../../../master/raft/types.js';
import { mulberry32 } from '../../helpers/rng.js';
import { EventQueue } from './event-queue.js';
import { encodeKv, KvStateMachine } from './kv.js';
import { checkLinearizable, type KvInput, type KvOperation, type KvOutput } from './linearizability.js';
import { plantInCore, plantInDriver, type PlantedBug } from './planted-bugs.js';
import { completeWrite, SimStorage, type PendingWrite } from './sim-storage.js';

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
  /** Virtual time of alternating faulty and calm phases, with client load. */
  readonly durationMs: number;
  /** Mean length of a faulty phase; each is drawn between a tenth of it and twice it. */
  readonly faultyPhaseMs: number;
  /** Mean length of a calm phase (healed, no loss, short delays), drawn the same way. */
  readonly calmPhaseMs: number;
  /** Virtual time after healing everything in which the cluster must converge and clients finish. */
  readonly quietMs: number;
  readonly clients: number;
  /** A client retries an operation it has no answer to after this long (on another node). */
  readonly clientTimeoutMs: number;
  readonly keys: number;
  readonly dropRate: number;
  readonly duplicateRate: number;
  readonly maxDelayMs: number;
  /** Random crashes per second of faulty phase. */
  readonly crashRate: number;
  /** Random partition changes per second of faulty phase. */
  readonly partitionRate: number;
  /** Chance that a leader crashes right after an entry of an earlier term reaches a majority. */
  readonly oldTermMajorityCrashChance: number;
  /** Chance that a leader crashes right after an entry of its term reaches one node short of a majority. */
  readonly minorityEntryCrashChance: number;
  /** Chance that a follower crashes right after it sends an acknowledgement. */
  readonly ackCrashChance: number;
  readonly snapshotEveryEntries: number;
  readonly compactKeepEntries: number;
  readonly preVote: boolean;
  readonly checkQuorum: boolean;
  readonly heartbeatTick: number;
  readonly maxInflightMsgs: number;
  readonly maxSizePerMsgBytes: number;
  readonly snapshotChunkBytes: number;
  /**
   * Check at every send that what the message depends on is on the sender's disk (Figure 2:
   * persistent state is updated on stable storage before responding to RPCs). Off, a driver
   * that sends too early is caught only by what it breaks after crashes.
   */
  readonly checkDurableBeforeSend: boolean;
  /** A deliberate bug, to prove the checks catch it; null for the real thing. */
  readonly plant: PlantedBug | null;
  /**
   * Membership changes at run time: three voters start, and `nodeCount - 3` fresh nodes wait to
   * be added; an operator acts every `membershipEveryMs` on average.
   */
  readonly membership: boolean;
  readonly membershipEveryMs: number;
}

const TICK_MS = 10;
const ELECTION_TICK = 10;
/** A leader that hears from no majority must step down within two election timeouts (ticks drift up to +10%). */
const STEP_DOWN_LIMIT_MS = 2 * ELECTION_TICK * (TICK_MS + 1) + TICK_MS;
const CALM_MAX_DELAY_MS = 10;
/** How long a leader crashed in the middle of building Figure 8 stays down at most. */
const HOLD_DOWN_MAX_MS = 1_000;
const CLIENT_GIVE_UP_MS = 1_200;

/** Parameters drawn from the seed, so the seed alone names the run. */
export function optionsForSeed(seed: number, overrides: Partial<SimOptions> = {}): SimOptions {
  const r = createRandom(seed ^ 0x9e3779b9);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
  const drawn: SimOptions = {
    nodeCount: pick([3, 3, 5]),
    durationMs: 2_500,
    faultyPhaseMs: pick([200, 800, 2000]),
    calmPhaseMs: pick([100, 300, 600]),
    quietMs: 4_000,
    clients: pick([2, 3, 4]),
    clientTimeoutMs: 250,
    keys: pick([1, 2, 3]),
    dropRate: pick([0, 0.01, 0.05, 0.15]),
    duplicateRate: pick([0, 0.02, 0.1]),
    maxDelayMs: pick([2, 5, 15, 40]),
    crashRate: pick([0, 0.5, 1.5, 3]),
    partitionRate: pick([0, 0.5, 1.5]),
    oldTermMajorityCrashChance: pick([0.5, 0.9, 1]),
    minorityEntryCrashChance: pick([0, 0.2, 0.5]),
    ackCrashChance: pick([0, 0.01, 0.05]),
    snapshotEveryEntries: pick([4, 8, 16, 1000]),
    compactKeepEntries: pick([0, 2, 5]),
    preVote: r() < 0.8,
    checkQuorum: r() < 0.8,
    heartbeatTick: pick([1, 2, 3]),
    maxInflightMsgs: pick([1, 2, 4, 64]),
    maxSizePerMsgBytes: pick([1, 100, 1000, 1 << 20]),
    snapshotChunkBytes: pick([16, 64, 1 << 20]),
    checkDurableBeforeSend: true,
    plant: null,
    membership: false,
    membershipEveryMs: 150,
  };
  // A third of the seeds build Figure 8 of the Raft paper on purpose: three nodes, no random
  // crashes or partitions to break the chain, appends of one or two entries (so an old-term entry
  // can reach a majority before the new leader's no-op does) and the state-triggered crashes on.
  const figure8 = r() < 1 / 3;
  const figure8Options: Partial<SimOptions> = figure8
    ? {
        nodeCount: 3, crashRate: 0, partitionRate: 0, faultyPhaseMs: 2_000, maxSizePerMsgBytes: pick([1, 100]),
        minorityEntryCrashChance: 0.5, oldTermMajorityCrashChance: 1,
      }
    : {};
  // Membership runs have six slots (three voters to start, three fresh nodes) and no Figure 8
  // triggers, which assume a fixed majority.
  const membershipOptions: Partial<SimOptions> = overrides.membership === true
    ? { nodeCount: 6, oldTermMajorityCrashChance: 0, minorityEntryCrashChance: 0 }
    : {};
  return {
    ...drawn,
    ...figure8Options,
    ...membershipOptions,
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
  /** What survives a crash. */
  readonly disk: MemoryStorage;
  raft: RaftNode | null;
  core: RaftCore | null;
  kv: KvStateMachine | null;
  incarnation: number;
  tick: (() => void) | null;
  write: PendingWrite | null;
  /** Incarnations whose messages still in the network were lost with them. */
  readonly lostIncarnations: Set<number>;
  /** Highest index handed to the state machine this incarnation (no-ops are not). */
  lastApplied: number;
  /** Commit index already recorded by the checker, this incarnation. */
  checkedCommit: number;
  wasLeaderInTerm: number;
  leaderSince: number;
  /** When this node last got a response to its appends or heartbeats from each peer, in its current term. */
  readonly heardAt: Map<string, number>;
  /** In a partition group smaller than a quorum: the highest term in that group when it formed. */
  isolatedAtTerm: number | null;
  /** The (term, index) at which the old-term-majority fault last fired, so it fires once. */
  oldTermMark: string;
  /** The (term, index) at which the minority-entry fault last fired, so it fires once. */
  minorityMark: string;
  /** The group this node starts with (bootstrap); null for a fresh node not added yet. */
  bootstrap: { peers: readonly string[]; learners: readonly string[] } | null;
  /** Stopped on its own after learning it was removed; never restarted. */
  removed: boolean;
}

interface ClientOp {
  readonly kind: 'register' | 'put' | 'cas' | 'get';
  readonly key: string;
  readonly input: KvInput | null;
  readonly data: Uint8Array | null;
  readonly call: number;
  recorded: boolean;
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
  oldTermMajorityCrashes: number;
  minorityEntryCrashes: number;
  ackCrashes: number;
  partitions: number;
  phases: number;
  settledCalmPhases: number;
  snapshotsSent: number;
  snapshotsInstalled: number;
  confChangesCommitted: number;
  transfers: number;
  removedStopped: number;
  opsCompleted: number;
  opsUnknown: number;
  readsCompleted: number;
  messages: number;
}

function bytesKey(data: Uint8Array): string {
  return Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('latin1');
}

/** Lets every promise chain the last event started run to rest (setImmediate runs after all microtasks). */
function settle(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

export class Simulation {
  readonly options: SimOptions;
  readonly stats: SimStats = {
    events: 0, elections: 0, maxTerm: 0, commits: 0, crashes: 0, oldTermMajorityCrashes: 0, minorityEntryCrashes: 0,
    ackCrashes: 0, partitions: 0, phases: 0, settledCalmPhases: 0, snapshotsSent: 0, snapshotsInstalled: 0,
    confChangesCommitted: 0, transfers: 0, removedStopped: 0, opsCompleted: 0, opsUnknown: 0, readsCompleted: 0, messages: 0,
  };
  readonly history: KvOperation[] = [];
  private readonly random: () => number;
  private readonly queue = new EventQueue();
  private now = 0;
  private readonly nodes: SimNode[] = [];
  private readonly quorum: number;
  private readonly clients: SimClient[] = [];
  /** Partition group per node; nodes talk only within a group. */
  private group: number[] = [];
  private phase: 'faulty' | 'calm' = 'faulty';
  /** In a calm phase: the leader every node agreed on, which must then stay. */
  private settled: { leader: SimNode; term: number } | null = null;
  /** In a calm phase: "to<from/term" for each append or heartbeat and each response delivered. */
  private readonly calmContacts = new Set<string>();
  /**
   * TimeoutNow messages sent and not yet delivered or lost. A transfer abandoned after its
   * election timeout can leave one in flight, and its target then campaigns on purpose.
   */
  private timeoutNowsInFlight = 0;
  private ending = false;
  /** The first violation, also when it was raised inside a driver (which would swallow it). */
  private violation: SimViolation | null = null;
  private readonly dirty = new Set<SimNode>();
  /** Figure 8 in the making: an entry left on a minority by a crashed leader. */
  private orphan: { index: number; term: number } | null = null;
  /** Leaders crashed with an entry that conflicts with the orphan, kept down until its holders re-elect one of them. */
  private readonly heldDown = new Set<SimNode>();

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
    const initial = options.membership ? 3 : options.nodeCount;
    this.quorum = Math.floor(initial / 2) + 1;
    const initialIds = Array.from({ length: initial }, (_, i) => `n${i + 1}`);
    for (let i = 0; i < options.nodeCount; i++) {
      this.nodes.push({
        index: i, id: `n${i + 1}`, disk: new MemoryStorage(), raft: null, core: null, kv: null, incarnation: 0, tick: null,
        write: null, lostIncarnations: new Set(), lastApplied: 0, checkedCommit: 0, wasLeaderInTerm: -1, leaderSince: 0,
        heardAt: new Map(), isolatedAtTerm: null, oldTermMark: '', minorityMark: '',
        bootstrap: i < initial ? { peers: initialIds, learners: [] } : null, removed: false,
      });
      this.maxTermSent.push(0);
    }
    this.group = this.nodes.map(() => 0);
  }

  /** Runs to completion; rejects with SimViolation when a property fails. */
  async run(): Promise<SimStats> {
    for (const node of this.nodes) if (this.runs(node)) this.restart(node);
    for (const node of this.nodes) this.scheduleTick(node, Math.floor(this.random() * TICK_MS));
    if (this.options.membership) this.scheduleMembership();
    for (let c = 0; c < this.options.clients; c++) {
      const client: SimClient = { index: c, sessionId: null, seq: 0, op: null, attempt: 0, guess: c % this.nodes.length, idle: true };
      this.clients.push(client);
      this.at(Math.floor(this.random() * 50), () => this.clientNext(client));
    }
    this.startPhase('faulty');
    this.scheduleFault();
    this.at(this.options.durationMs, () => this.end());
    const end = this.options.durationMs + this.options.quietMs;
    let converged = false;
    for (;;) {
      const event = this.queue.pop();
      if (event === undefined) break;
      this.now = event.time;
      if (this.now > end) break;
      event.run();
      await settle();
      this.afterEvent();
      this.stats.events++;
      if (this.ending && this.now % 50 === 0 && this.clients.every((c) => c.idle) && this.isConverged()) {
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
      .map((n) => {
        if (n.core === null || n.raft === null) return `${n.id}:down`;
        const s = n.raft.status();
        return `${n.id}:${s.role}@${s.term} c${s.commitIndex} a${s.appliedIndex} l${s.lastIndex}`;
      })
      .join(' ') + ` groups ${this.group.join('')} ${this.phase}` + progress;
  }

  /** Whether the node is part of the run: started at some point and not removed. */
  private runs(node: SimNode): boolean {
    return node.bootstrap !== null && !node.removed;
  }

  /** Nodes the leader's configuration names (all of them without membership changes). */
  private members(leader: SimNode): SimNode[] {
    const conf = leader.core!.conf();
    return this.nodes.filter((n) => isMember(conf, n.id));
  }

  private at(time: number, run: () => void): void {
    this.queue.push(Math.max(time, this.now), run);
  }

  private randomInt(lo: number, hi: number): number {
    return lo + Math.floor(this.random() * (hi - lo + 1));
  }

  private afterEvent(): void {
    if (this.violation !== null) throw this.violation;
    for (const node of this.dirty) this.checkNode(node);
    this.dirty.clear();
    this.checkAvailability();
    if (this.phase === 'faulty') {
      this.crashOnOldTermMajority();
      this.crashOnMinorityEntry();
    }
  }

  // ---- nodes --------------------------------------------------------------------------------

  private restart(node: SimNode): void {
    const incarnation = ++node.incarnation;
    const kv = new KvStateMachine();
    const sm = new SessionStateMachine(kv, { maxSessions: 64 });
    const storage = new SimStorage(node.disk, (write) => this.startWrite(node, incarnation, write));
    node.kv = kv;
    node.lastApplied = node.disk.snapshot().meta.index;
    node.checkedCommit = 0;
    node.wasLeaderInTerm = -1;
    node.oldTermMark = '';
    node.minorityMark = '';
    node.write = null;
    let starting = true;
    const raft = new RaftNode({
      id: node.id,
      peers: node.bootstrap!.peers,
      learners: node.bootstrap!.learners,
      onRemoved: () => this.at(this.now, () => this.stopRemoved(node, incarnation)),
      storage,
      transport: { send: (messages) => this.send(node, incarnation, messages) },
      stateMachine: this.checkedStateMachine(node, () => starting, sm),
      tickIntervalMs: TICK_MS,
      snapshotEveryEntries: this.options.snapshotEveryEntries,
      compactKeepEntries: this.options.compactKeepEntries,
      raft: {
        random: this.random,
        electionTick: ELECTION_TICK,
        heartbeatTick: this.options.heartbeatTick,
        preVote: this.options.preVote,
        checkQuorum: this.options.checkQuorum,
        maxInflightMsgs: this.options.maxInflightMsgs,
        maxSizePerMsgBytes: this.options.maxSizePerMsgBytes,
        snapshotChunkBytes: this.options.snapshotChunkBytes,
        maxEntriesPerMsg: 16,
      },
      startTicker: (onTick) => {
        node.tick = onTick;
        return () => {
          if (node.incarnation === incarnation) node.tick = null;
        };
      },
      createCore: (config: RaftConfigInput, logStorage: LogStorage) => {
        const core = new RaftCore(config, logStorage);
        plantInCore(this.options.plant, core);
        node.core = core;
        return core;
      },
      onFatal: (error) => this.record(`${node.id} stopped on a fatal error: ${error.message}`),
    });
    plantInDriver(this.options.plant, raft);
    node.raft = raft;
    raft.start();
    starting = false;
    const snapshot = node.disk.snapshot();
    if (snapshot.meta.index > 0) this.checkState(node, sm, snapshot.meta.index);
    // What was sent came from persisted state, so a restart may never be behind it.
    if (node.core!.term < this.maxTermSent[node.index]!) {
      this.fail(`${node.id} restarted at term ${node.core!.term} but had sent messages at term ${this.maxTermSent[node.index]}`);
    }
    this.dirty.add(node);
  }

  /** Wraps the state machine to check each command and each restored snapshot against the others. */
  private checkedStateMachine(node: SimNode, starting: () => boolean, sm: SessionStateMachine): StateMachine {
    return {
      apply: (data, index) => {
        const applied = node.raft?.status().appliedIndex ?? 0;
        if (index !== applied + 1 || index <= node.lastApplied) this.fail(`${node.id} applied ${index} after ${applied}`);
        const known = this.committed.get(index);
        if (known !== undefined && known.data !== bytesKey(data)) this.fail(`state machine safety: ${node.id} applied a different entry at ${index}`);
        const result = sm.apply(data, index);
        node.lastApplied = index;
        this.checkState(node, sm, index);
        return result;
      },
      snapshot: () => sm.snapshot(),
      restore: (data) => {
        sm.restore(data);
        if (starting() || node.raft === null) return; // the snapshot on disk, restored at start
        const index = node.disk.snapshot().meta.index;
        if (index <= node.raft.status().appliedIndex) this.fail(`${node.id} restored snapshot ${index} at applied ${node.raft.status().appliedIndex}`);
        node.lastApplied = index;
        this.stats.snapshotsInstalled++;
        this.checkState(node, sm, index);
      },
    };
  }

  private startWrite(node: SimNode, incarnation: number, write: PendingWrite): void {
    if (node.incarnation !== incarnation) return; // a crashed incarnation's write never completes
    if (node.write !== null) this.fail(`${node.id} started a write while another was in flight`);
    node.write = write;
    // The fsync takes a while; messages keep arriving and are stepped meanwhile.
    this.at(this.now + this.randomInt(0, 6), () => {
      if (node.incarnation !== incarnation) return;
      if (write.kind === 'persist') for (const entry of write.batch.entries) this.checkEntry(entry);
      completeWrite(node.disk, write);
      node.write = null;
      this.dirty.add(node);
      write.done();
    });
  }

  /** The node's process is gone: its memory with it, and anything it still had in flight is ignored. */
  private dropProcess(node: SimNode): void {
    node.incarnation++;
    node.raft = null;
    node.core = null;
    node.kv = null;
    node.tick = null;
    node.write = null;
  }

  /** A node that learned it was removed stops for good (the driver asked it to). */
  private stopRemoved(node: SimNode, incarnation: number): void {
    if (node.incarnation !== incarnation || node.raft === null) return;
    this.stats.removedStopped++;
    node.removed = true;
    this.dropProcess(node);
  }

  private crash(node: SimNode, loseInFlight = this.random() < 0.5, restartAfterMs = this.randomInt(20, 400)): void {
    if (node.raft === null) return;
    this.stats.crashes++;
    const write = node.write;
    if (write !== null && write.kind === 'persist' && this.random() < 0.5) {
      // A torn write: a prefix of the batch's records reached the disk, the rest did not.
      const { batch } = write;
      const kept = this.randomInt(0, batch.entries.length);
      for (const entry of batch.entries.slice(0, kept)) this.checkEntry(entry);
      node.disk.persistSync({
        snapshot: batch.snapshot,
        entries: batch.entries.slice(0, kept),
        hardState: kept === batch.entries.length && this.random() < 0.5 ? batch.hardState : null,
      });
    }
    if (this.options.plant === 'loseHardState') {
      node.disk.setHardState({ term: 0, vote: null, commit: node.disk.initialState().commit });
    }
    // The abandoned RaftNode keeps waiting for its write, which never completes: it never runs again.
    if (loseInFlight) node.lostIncarnations.add(node.incarnation);
    this.dropProcess(node);
    this.at(this.now + restartAfterMs, () => {
      if (node.raft === null && this.runs(node)) this.restart(node);
    });
  }

  private scheduleTick(node: SimNode, delay: number): void {
    this.at(this.now + delay, () => {
      // Clocks drift a little: each node's tick interval varies by ±10%.
      this.scheduleTick(node, this.randomInt(TICK_MS - 1, TICK_MS + 1));
      if (node.tick === null) return;
      node.tick();
      this.dirty.add(node);
    });
  }

  private indexOf(id: string | null): number | undefined {
    const i = this.nodes.findIndex((n) => n.id === id);
    return i < 0 ? undefined : i;
  }

  // ---- network ------------------------------------------------------------------------------

  private send(from: SimNode, incarnation: number, messages: readonly Message[]): void {
    if (from.incarnation !== incarnation) return;
    let crashAfterAck = false;
    for (const m of messages) {
      this.stats.messages++;
      if (this.options.checkDurableBeforeSend) this.checkDurableBeforeSend(from, m);
      // Pre-vote traffic carries the term a node would campaign in, not its own.
      if (m.type !== 'preVote' && m.type !== 'preVoteResp' && m.term > this.maxTermSent[from.index]!) this.maxTermSent[from.index] = m.term;
      if (m.type === 'voteResp' && !m.reject) {
        const key = `${from.id}/${m.term}`;
        const previous = this.votesGranted.get(key);
        if (previous !== undefined && previous !== m.to) this.fail(`${from.id} voted for ${previous} and ${m.to} in term ${m.term}`);
        this.votesGranted.set(key, m.to);
      }
      if (m.type === 'snapshot' && m.offset === 0) this.stats.snapshotsSent++;
      if (m.type === 'appendResp' && !m.reject && this.phase === 'faulty' && this.random() < this.options.ackCrashChance) crashAfterAck = true;
      const faulty = this.phase === 'faulty';
      const copies = faulty && this.random() < this.options.duplicateRate ? 2 : 1;
      for (let c = 0; c < copies; c++) {
        if (faulty && this.random() < this.options.dropRate) continue;
        if (m.type === 'timeoutNow') this.timeoutNowsInFlight++;
        this.at(this.now + this.messageDelay(), () => {
          if (m.type === 'timeoutNow') this.timeoutNowsInFlight--;
          this.deliver(from, incarnation, m);
        });
      }
    }
    if (crashAfterAck) {
      // Before anything else happens to it, its next write included.
      this.stats.ackCrashes++;
      this.at(this.now, () => {
        if (from.incarnation === incarnation && this.phase === 'faulty') this.crash(from);
      });
    }
  }

  /** Figure 2: a node updates its persistent state on stable storage before it answers. */
  private checkDurableBeforeSend(from: SimNode, m: Message): void {
    const durable = from.disk.initialState();
    if (m.type !== 'preVote' && m.type !== 'preVoteResp' && m.term > durable.term) {
      this.fail(`${from.id} sent ${m.type} at term ${m.term} before term ${m.term} was on its disk (${durable.term})`);
    }
    if (m.type === 'voteResp' && !m.reject && (durable.term !== m.term || durable.vote !== m.to)) {
      this.fail(`${from.id} granted its vote to ${m.to} in term ${m.term} before the vote was on its disk`);
    }
    if (m.type === 'appendResp' && !m.reject && m.index > from.disk.lastIndex()) {
      this.fail(`${from.id} acknowledged index ${m.index} with only ${from.disk.lastIndex()} on its disk`);
    }
  }

  private messageDelay(): number {
    if (this.phase === 'calm') return this.randomInt(0, Math.min(this.options.maxDelayMs, CALM_MAX_DELAY_MS));
    const tail = this.random() < 0.05 ? 4 : 1;
    return this.randomInt(0, this.options.maxDelayMs * tail);
  }

  private deliver(from: SimNode, incarnation: number, m: Message): void {
    if (from.lostIncarnations.has(incarnation)) return;
    const to = this.nodes[this.indexOf(m.to)!]!;
    if (to.raft === null || this.group[from.index] !== this.group[to.index]) return;
    const response = m.type === 'appendResp' || m.type === 'heartbeatResp' || m.type === 'snapshotResp';
    if (response && m.term === to.core!.term) to.heardAt.set(m.from, this.now);
    if (this.phase === 'calm' && (response || m.type === 'append' || m.type === 'heartbeat' || m.type === 'snapshot')) {
      this.calmContacts.add(`${m.to}<${m.from}/${m.term}`);
    }
    to.raft.receive(m);
    this.dirty.add(to);
  }

  // ---- phases and faults --------------------------------------------------------------------

  private startPhase(kind: 'faulty' | 'calm'): void {
    if (this.ending) return;
    this.enterPhase(kind);
    const mean = kind === 'faulty' ? this.options.faultyPhaseMs : this.options.calmPhaseMs;
    const length = Math.max(10, Math.round(mean * (0.1 + 1.9 * this.random())));
    this.at(this.now + length, () => this.startPhase(kind === 'faulty' ? 'calm' : 'faulty'));
  }

  private enterPhase(kind: 'faulty' | 'calm'): void {
    this.stats.phases++;
    this.phase = kind;
    this.settled = null;
    this.calmContacts.clear();
    if (kind === 'calm') this.heal();
  }

  /** Heals for good: the cluster must converge and the clients finish. */
  private end(): void {
    this.enterPhase('calm');
    this.ending = true;
  }

  private scheduleFault(): void {
    const rate = this.options.crashRate + this.options.partitionRate;
    if (rate === 0) return;
    // Poisson-ish: mean gap of 1000/rate ms of faulty time.
    const gap = Math.max(1, Math.floor((-Math.log(1 - this.random()) * 1000) / rate));
    this.at(this.now + gap, () => {
      if (this.ending) return;
      this.scheduleFault();
      if (this.phase !== 'faulty') return;
      const crash = this.random() * rate < this.options.crashRate;
      if (crash) {
        // Prefer the leader half the time: that is where the interesting bugs are.
        const leader = this.nodes.find((n) => n.core?.role === 'leader');
        const victim = leader !== undefined && this.random() < 0.5 ? leader : this.nodes[this.randomInt(0, this.nodes.length - 1)]!;
        if (this.runs(victim)) this.crash(victim);
      } else if (this.group.some((g) => g !== 0) && this.random() < 0.5) {
        this.setGroups(this.nodes.map(() => 0));
      } else {
        this.stats.partitions++;
        const leader = this.nodes.findIndex((n) => n.core?.role === 'leader');
        if (leader >= 0 && this.random() < 0.4) this.setGroups(this.nodes.map((_, i) => (i === leader ? 1 : 0)));
        else this.setGroups(this.nodes.map(() => this.randomInt(0, 2)));
      }
    });
  }

  /**
   * Figure 8 of the Raft paper: once an entry of an earlier term is on a majority, the leader
   * crashes before its own term's entries follow (what it sent is lost with it). A leader that
   * committed that entry by counting replicas (§5.4.2) has now committed an entry that a node
   * holding a later term's entry at that index may overwrite.
   */
  private crashOnOldTermMajority(): void {
    for (const node of this.nodes) {
      const core = node.core;
      if (core === null || core.role !== 'leader') continue;
      const matches = this.nodes.map((n) => core.progressOf(n.id)?.match ?? 0).sort((a, b) => b - a);
      const index = matches[this.quorum - 1]!;
      const term = core.log.term(index);
      if (index === 0 || term === undefined || term === core.term) continue;
      const mark = `${core.term}/${index}`;
      if (node.oldTermMark === mark) continue;
      node.oldTermMark = mark;
      if (this.random() < this.options.oldTermMajorityCrashChance) {
        // Figure 8 (d): the leader that held the conflicting entry comes back; this one stays
        // down a while, so that one may win.
        this.stats.oldTermMajorityCrashes++;
        this.crash(node, true, this.randomInt(200, 500));
        for (const held of this.heldDown) this.at(this.now + this.randomInt(0, 30), () => held.raft === null && this.runs(held) && this.restart(held));
        this.heldDown.clear();
        this.orphan = null;
      }
    }
  }

  /**
   * The other half of Figure 8: a leader crashes while its newest entry is one node short of a
   * majority (for three nodes: on its own disk only), and what it sent is lost with it. Those
   * holders can later elect one of them, which then carries that entry of an old term.
   */
  /** The orphan, unless something was committed at its index since (then it cannot build Figure 8). */
  private liveOrphan(): { index: number; term: number } | null {
    if (this.orphan !== null && this.committed.has(this.orphan.index)) this.orphan = null;
    return this.orphan;
  }

  /** How many nodes the leader knows to hold its entry at `index`, itself included once on its disk. */
  private holders(core: RaftCore, index: number): number {
    return this.nodes.filter((n) => (core.progressOf(n.id)?.match ?? 0) >= index).length;
  }

  private crashOnMinorityEntry(): void {
    // While a conflicting leader is held down, let the orphan's holders bring it to a majority.
    if (this.heldDown.size > 0) return;
    for (const node of this.nodes) {
      const core = node.core;
      if (core === null || core.role !== 'leader') continue;
      const last = core.log.lastIndex();
      if (core.log.term(last) !== core.term || last <= core.log.committed) continue;
      if (this.holders(core, last) !== this.quorum - 1) continue;
      const mark = `${core.term}/${last}`;
      if (node.minorityMark === mark) continue;
      node.minorityMark = mark;
      if (this.random() < this.options.minorityEntryCrashChance) {
        this.stats.minorityEntryCrashes++;
        const orphan = this.liveOrphan();
        if (orphan !== null && core.log.term(orphan.index) === core.term && this.holders(core, orphan.index) < this.quorum) {
          // Figure 8 (b): this leader's entry conflicts with the orphan; keep it down while the
          // orphan's holders elect one of them, which brings the orphan to a majority.
          this.heldDown.add(node);
          this.crash(node, true, HOLD_DOWN_MAX_MS);
        } else {
          // Figure 8 (a).
          this.orphan = { index: last, term: core.term };
          this.crash(node, true);
        }
      }
    }
  }

  private setGroups(group: number[]): void {
    this.group = group;
    for (const node of this.nodes) node.isolatedAtTerm = null;
    // With membership changes the majority moves; the pre-vote check keeps to fixed groups.
    if (this.options.membership) return;
    for (const g of new Set(group)) {
      const members = this.nodes.filter((n) => group[n.index] === g);
      if (members.length >= this.quorum) continue;
      const term = Math.max(...members.map((n) => n.core?.term ?? n.disk.initialState().term));
      for (const node of members) node.isolatedAtTerm = term;
    }
  }

  private heal(): void {
    this.heldDown.clear();
    this.orphan = null;
    this.setGroups(this.nodes.map(() => 0));
    for (const node of this.nodes) if (node.raft === null && this.runs(node)) this.restart(node);
  }

  private isConverged(): boolean {
    const leader = this.nodes.find((n) => n.core?.role === 'leader');
    if (leader === undefined || leader.core!.log.committed === 0) return false;
    if (leader.core!.log.term(leader.core!.log.committed) !== leader.core!.term) return false;
    const target = leader.core!.log.committed;
    return this.members(leader).every((n) => n.raft !== null && n.raft.status().appliedIndex === target && n.write === null);
  }

  // ---- membership changes -------------------------------------------------------------------

  /** The operator: every so often, one membership change or transfer on whichever node leads. */
  private scheduleMembership(): void {
    const gap = this.randomInt(this.options.membershipEveryMs / 2, this.options.membershipEveryMs * 2);
    this.at(this.now + gap, () => {
      if (this.ending) return;
      this.scheduleMembership();
      const leader = this.nodes.find((n) => n.core?.role === 'leader');
      if (leader === undefined) return;
      this.operate(leader);
    });
  }

  private operate(leader: SimNode): void {
    const raft = leader.raft!;
    const conf = leader.core!.conf();
    const roll = this.random();
    const ignore = (): void => undefined;
    // A deliberate change of leader or group: the calm phase's settled leader may change with it.
    this.settled = null;
    this.dirty.add(leader);
    if (conf.learners.length > 0) {
      const learner = conf.learners[0]!;
      const type = roll < 0.85 ? 'promote' : 'remove';
      raft.proposeConfChange({ type, node: learner }).then(() => void this.stats.confChangesCommitted++, ignore);
      return;
    }
    const fresh = this.nodes.find((n) => n.bootstrap === null);
    if (roll < 0.3 && fresh !== undefined) {
      raft.proposeConfChange({ type: 'addLearner', node: fresh.id }).then(() => void this.stats.confChangesCommitted++, ignore);
      if (leader.core!.conf().learners.includes(fresh.id)) {
        // Started with an empty disk; it learns the group from the leader (a snapshot or the log).
        fresh.bootstrap = { peers: conf.voters, learners: [fresh.id] };
        this.restart(fresh);
      }
    } else if (roll < 0.55 && conf.voters.length > 2) {
      const victim = conf.voters[this.randomInt(0, conf.voters.length - 1)]!;
      raft.proposeConfChange({ type: 'remove', node: victim }).then(() => void this.stats.confChangesCommitted++, ignore);
    } else if (roll < 0.9) {
      const others = conf.voters.filter((v) => v !== leader.id);
      if (others.length === 0) return;
      this.stats.transfers++;
      raft.transferLeadership(others[this.randomInt(0, others.length - 1)]).catch(ignore);
    }
  }

  /**
   * Configurations in a log change one voter at a time (§4.1), and a leader never has two
   * changes uncommitted at once.
   */
  private checkConfs(node: SimNode): void {
    const core = node.core!;
    const confs = (core as unknown as { confs: { index: number; conf: ConfState }[] }).confs;
    // The bootstrap configuration (index 0) is only a joining node's guess until the log says.
    for (let i = 1; i < confs.length; i++) {
      if (confs[i - 1]!.index === 0) continue;
      if (votersChanged(confs[i - 1]!.conf, confs[i]!.conf) > 1) {
        this.fail(`membership: ${node.id}'s configuration at ${confs[i]!.index} changes more than one voter`);
      }
    }
    if (core.role === 'leader' && confs.filter((c) => c.index > core.log.committed).length > 1) {
      this.fail(`membership: leader ${node.id} has two configuration changes uncommitted`);
    }
  }

  /** A leader's new commit index is on a majority of its voters' disks (learners never count). */
  private checkCommitQuorum(node: SimNode): void {
    const core = node.core!;
    const index = core.log.committed;
    const term = core.log.term(index);
    if (index === 0 || term === undefined) return;
    const voters = core.conf().voters;
    const holding = voters.filter((id) => {
      const disk = this.nodes[this.indexOf(id)!]!.disk;
      return disk.snapshot().meta.index >= index || disk.term(index) === term;
    });
    if (holding.length < Math.floor(voters.length / 2) + 1) {
      this.fail(`commit quorum: leader ${node.id} committed ${index} held by ${holding.length} of voters ${voters.join(',')}`);
    }
  }

  // ---- availability checks ------------------------------------------------------------------

  private checkAvailability(): void {
    for (const node of this.nodes) {
      const core = node.core;
      if (core === null) continue;
      // Check-quorum: a leader that hears from no majority steps down (within two election timeouts).
      if (this.options.checkQuorum && core.role === 'leader' && this.now - node.leaderSince > STEP_DOWN_LIMIT_MS) {
        const voters = core.conf().voters;
        const heard = voters.filter((v) => v !== node.id && this.now - (node.heardAt.get(v) ?? -Infinity) <= STEP_DOWN_LIMIT_MS).length;
        if (heard + (voters.includes(node.id) ? 1 : 0) < Math.floor(voters.length / 2) + 1) this.fail(`check-quorum: ${node.id} still leads after ${STEP_DOWN_LIMIT_MS} ms without hearing from a majority`);
      }
      // Pre-vote: a node that cannot reach a majority cannot win a pre-vote, so its term stays
      // (one campaign may have won its pre-vote just before the partition).
      if (this.options.preVote && node.isolatedAtTerm !== null && core.term > node.isolatedAtTerm + 1) {
        this.fail(`pre-vote: ${node.id}, cut off from a majority since term ${node.isolatedAtTerm}, raised its term to ${core.term}`);
      }
    }
    if (this.phase === 'calm') this.checkCalm();
  }

  /** Without faults, once every node follows one leader, nobody starts an election. */
  private checkCalm(): void {
    const settled = this.settled;
    if (settled === null) {
      const leader = this.nodes.find((n) => n.core?.role === 'leader');
      if (leader === undefined) return;
      // A leader handing over (or whose TimeoutNow is still on its way), or with a membership
      // change pending, may change on purpose.
      if (leader.core!.leadTransferee !== null || this.timeoutNowsInFlight > 0 || leader.core!.confIndex() > leader.core!.log.committed) return;
      const term = leader.core!.term;
      // Every follower heard the leader since the calm began (so its election timer restarted),
      // and the leader heard every follower (so its check-quorum window holds a majority).
      const agreed = (n: SimNode): boolean =>
        n === leader ||
        (n.core !== null && n.core.term === term && n.core.leaderId === leader.id &&
          this.calmContacts.has(`${n.id}<${leader.id}/${term}`) && this.calmContacts.has(`${leader.id}<${n.id}/${term}`));
      if (this.members(leader).every(agreed)) {
        this.settled = { leader, term };
        this.stats.settledCalmPhases++;
      }
      return;
    }
    if (settled.leader.core === null || settled.leader.core.role !== 'leader') {
      this.fail(`availability: ${settled.leader.id} stopped leading term ${settled.term} with no fault`);
    }
    for (const node of this.members(settled.leader)) {
      if (node.core !== null && node.core.term !== settled.term) {
        this.fail(`availability: ${node.id} moved to term ${node.core.term} while ${settled.leader.id} led term ${settled.term} with no fault`);
      }
    }
  }

  // ---- clients ------------------------------------------------------------------------------

  private clientNext(client: SimClient): void {
    client.op = null;
    if (this.ending) {
      client.idle = true;
      return;
    }
    client.idle = false;
    const key = `k${this.randomInt(1, this.options.keys)}`;
    if (client.sessionId === null) {
      client.op = { kind: 'register', key, input: null, data: encodeRegister(), call: this.now, recorded: false };
    } else {
      const roll = this.random();
      if (roll < 0.35) {
        client.op = { kind: 'get', key, input: { kind: 'get' }, data: null, call: this.now, recorded: false };
      } else {
        client.seq++;
        const value = `c${client.index}s${client.seq}`;
        const input: KvInput =
          roll < 0.7 ? { kind: 'put', value } : { kind: 'cas', expected: this.random() < 0.5 ? null : `c${this.randomInt(0, this.options.clients - 1)}s${this.randomInt(1, client.seq)}`, value };
        const command = input.kind === 'put' ? { op: 'put' as const, key, value } : { op: 'cas' as const, key, expected: input.kind === 'cas' ? input.expected : null, value };
        client.op = { kind: input.kind, key, input, data: encodeCommand(client.sessionId, client.seq, encodeKv(command)), call: this.now, recorded: false };
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
      if (this.phase === 'faulty' && this.random() < this.options.dropRate) return;
      this.at(this.now + this.messageDelay(), () => this.clientReply(client, attempt, r));
    };
    this.at(this.now + this.messageDelay(), () => this.handleClientRequest(target, op, reply));
    this.at(this.now + this.options.clientTimeoutMs, () => {
      if (client.attempt !== attempt || client.op !== op) return;
      client.guess = this.randomInt(0, this.nodes.length - 1);
      this.clientAttempt(client);
    });
  }

  private handleClientRequest(node: SimNode, op: ClientOp, reply: Reply): void {
    const raft = node.raft;
    const kv = node.kv;
    if (raft === null || kv === null) return; // a down server never answers; the client times out
    const incarnation = node.incarnation;
    // A server that crashed since never answers.
    const answer: Reply = (r) => {
      if (node.incarnation === incarnation) reply(r);
    };
    const answerError = (error: unknown): void => {
      if (error instanceof NotLeaderError) answer({ kind: 'notLeader', hint: this.indexOf(error.leaderId) });
      else if (error instanceof RaftError && error.code === 'RAFT_BUSY') answer({ kind: 'notLeader' });
      else if (!(error instanceof RaftError && error.code === 'RAFT_STOPPED')) this.record(`client request failed: ${String(error)}`);
    };
    const status = raft.status();
    if (status.role !== 'leader') {
      answer({ kind: 'notLeader', hint: this.indexOf(status.leaderId) });
      return;
    }
    if (op.kind === 'get') {
      raft.linearizableRead().then(() => answer({ kind: 'ok', value: kv.get(op.key) }), answerError);
    } else {
      raft.propose(op.data!).then((value) => answer({ kind: 'ok', value }), answerError);
    }
    this.dirty.add(node);
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
    // Done: cancel the pending timeout, which would otherwise retry (and record) the operation
    // again if it fired before the next operation starts.
    client.attempt++;
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
    this.recordOperation(client, op, output, this.now);
    this.at(this.now + this.randomInt(0, 20), () => this.clientNext(client));
  }

  private clientGiveUp(client: SimClient): void {
    const op = client.op!;
    client.attempt++;
    if (op.kind === 'put' || op.kind === 'cas') {
      this.stats.opsUnknown++;
      this.recordOperation(client, op, undefined, Infinity);
    }
    this.clientNext(client);
  }

  private recordOperation(client: SimClient, op: ClientOp, output: KvOutput, ret: number): void {
    if (op.recorded) this.fail(`client ${client.index} recorded its ${op.kind} called at ${op.call} ms twice`);
    op.recorded = true;
    this.history.push({ clientId: client.index, key: op.key, input: op.input!, output, call: op.call, ret });
  }

  // ---- safety checks ------------------------------------------------------------------------

  private fail(message: string): never {
    throw this.record(message);
  }

  /** Keeps the first violation: one raised inside a driver's callback is caught by the driver. */
  private record(message: string): SimViolation {
    this.violation ??= new SimViolation(`${message} [t=${this.now}ms ${this.describe()}]`);
    return this.violation;
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
  private checkState(node: SimNode, sm: SessionStateMachine, index: number): void {
    const state = bytesKey(sm.snapshot() as Uint8Array);
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
        node.leaderSince = this.now;
        node.heardAt.clear();
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
    if (core.role === 'leader' && log.committed > node.checkedCommit) this.checkCommitQuorum(node);
    node.checkedCommit = Math.max(node.checkedCommit, log.committed);
    this.checkLogMatching(node);
    this.checkConfs(node);
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

export function runSeed(seed: number, overrides: Partial<SimOptions> = {}): Promise<SimStats> {
  return new Simulation(seed, optionsForSeed(seed, overrides)).run();
}
