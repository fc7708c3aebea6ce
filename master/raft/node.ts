// The driver around the pure core: owns the clock (a tick timer), the Storage, the Transport and
// the StateMachine, and runs the Ready loop: persist (one fsync) → send → apply → advance (a
// leader sends first and persists meanwhile: Ready.sendBeforePersist; a Ready that only moves the
// commit index applies first and writes it afterwards: onlyMovesCommit). It
// turns proposals and reads into promises for the master.
import type { RaftConfig, RaftConfigInput } from './config.js';
import { decodeConfEntry, isConfEntryData, isMember, type ConfChange } from './conf-change.js';
import { RaftCore, type ConfChangeRefusal } from './core.js';
import { NotLeaderError, RaftError } from './errors.js';
import { ChunkedSnapshotData } from './snapshot-data.js';
import { capturePieces, type StateMachine } from './state-machine.js';
import type { LogStorage, Storage } from './storage.js';
import { onlyMovesCommit, type ConfState, type Message, type NodeId, type Ready, type Role } from './types.js';

export type { StateMachine } from './state-machine.js';

/** Moves messages between nodes. Delivery is best effort: Raft retries what is lost. */
export interface Transport {
  /** Queues messages for delivery; must not block and must not throw for an unreachable peer. */
  send(messages: readonly Message[]): void;
}

/**
 * Calls `onTick` every `intervalMs` until the returned function is called. The default uses
 * setInterval; the simulator passes one that ticks in virtual time.
 */
export type StartTicker = (onTick: () => void, intervalMs: number) => () => void;

function startIntervalTicker(onTick: () => void, intervalMs: number): () => void {
  const timer = setInterval(onTick, intervalMs);
  // Never keeps the process alive on its own.
  timer.unref();
  return () => clearInterval(timer);
}

/**
 * What the driver reports for metrics; every method optional. Called synchronously from the Ready
 * loop: it must only count, never block or throw. The core knows nothing of it.
 */
export interface RaftNodeObserver {
  /** `count` proposals were appended to the leader's log (one batch). */
  proposed?(count: number): void;
  /** A proposal of this node's committed and applied, `seconds` after propose() was called. */
  committed?(seconds: number): void;
}

export interface RaftNodeOptions {
  readonly id: NodeId;
  /**
   * The voters the group starts with, this node included unless it joins as a learner. The
   * configuration in the log or snapshot replaces it once there is one.
   */
  readonly peers: readonly NodeId[];
  /** Learners the group starts with: a node joining an existing group names itself here. */
  readonly learners?: readonly NodeId[];
  /**
   * Called when a configuration commits here (an entry applied, or a snapshot installed that
   * carries one), in log order: the master records its group durably. Must not throw.
   */
  readonly onConfCommitted?: (conf: ConfState, index: number) => void;
  /** Called once when a committed configuration no longer names this node: it should stop. */
  readonly onRemoved?: () => void;
  readonly storage: Storage;
  readonly transport: Transport;
  readonly stateMachine: StateMachine;
  /**
   * Wall-clock length of one Raft tick. Election timeout = electionTick × tickIntervalMs (1–2 s
   * by default). Shorter: faster failover but more sensitivity to GC and fsync pauses.
   */
  readonly tickIntervalMs?: number;
  /**
   * Applied entries between snapshots, at least (snapshotInterval says how many more a node
   * waits). Smaller: faster restarts and a shorter WAL, but more time spent serialising the
   * state machine.
   */
  readonly snapshotEveryEntries?: number;
  /** A snapshot once the entries applied since the last hold this many bytes (MAX_LOG_BYTES_BETWEEN_SNAPSHOTS). */
  readonly maxLogBytesBetweenSnapshots?: number;
  /**
   * Entries kept in the log behind a snapshot so a follower a little behind catches up by
   * appends instead of a full snapshot transfer; costs that much memory and WAL.
   */
  readonly compactKeepEntries?: number;
  /** Largest command accepted by `propose`; keeps WAL records and appends bounded. */
  readonly maxProposalBytes?: number;
  /** Proposals waiting for commit; beyond it `propose` fails fast with RAFT_BUSY. */
  readonly maxPendingProposals?: number;
  /** Core settings (electionTick, heartbeatTick, maxInflightMsgs, ...); see config.ts. */
  readonly raft?: Partial<Omit<RaftConfig, 'id' | 'peers' | 'learners' | 'applied'>>;
  /** Called once if the node hits an unrecoverable error (a failed fsync); the node stops. */
  readonly onFatal?: (error: Error) => void;
  /** The tick source; setInterval unless a test drives time itself. */
  readonly startTicker?: StartTicker;
  /**
   * Builds the core; `new RaftCore` unless a test wants to hold the core it drives (the
   * simulator checks its log after every event, and plants bugs in it to prove the checks bite).
   */
  readonly createCore?: (config: RaftConfigInput, storage: LogStorage) => RaftCore;
  /** Metrics hooks; with one, each proposal's start is timed (performance.now). */
  readonly observer?: RaftNodeObserver;
}

export const NODE_DEFAULTS = {
  tickIntervalMs: 100,
  snapshotEveryEntries: 10_000,
  compactKeepEntries: 1_000,
  maxProposalBytes: 1024 * 1024,
  maxPendingProposals: 10_000,
} as const;

export interface RaftStatus {
  readonly id: NodeId;
  readonly role: Role;
  readonly term: number;
  readonly leaderId: NodeId | null;
  readonly commitIndex: number;
  readonly appliedIndex: number;
  readonly lastIndex: number;
  readonly snapshotIndex: number;
  /** Snapshots installed from the leader since this node started (a follower too far behind for appends). */
  readonly snapshotsReceived: number;
}

export interface LeaderChange {
  readonly leaderId: NodeId | null;
  readonly term: number;
  /** Whether this node is now the leader. */
  readonly isLeader: boolean;
}

interface Waiter<T> {
  resolve(value: T): void;
  reject(error: Error): void;
}

interface PendingProposal extends Waiter<unknown> {
  readonly term: number;
  /** performance.now() at propose(), when an observer times proposals. */
  readonly startedMs?: number;
}

export class RaftNode {
  readonly id: NodeId;
  private readonly options: RaftNodeOptions;
  private readonly storage: Storage;
  private readonly stateMachine: StateMachine;
  private core: RaftCore | null = null;
  private stopTicker: (() => void) | null = null;
  private state: 'new' | 'running' | 'stopped' = 'new';
  private processing: Promise<void> | null = null;
  private rerun = false;

  private appliedIndex = 0;
  private appliedTerm = 0;
  private snapshotIndex = 0;
  /** Bytes of the entries applied since the last snapshot was taken (or received). */
  private bytesSinceSnapshot = 0;
  private snapshotsReceived = 0;
  /** A snapshot being written in the background, if any. */
  private snapshotting: Promise<void> | null = null;

  private proposalBatch: { data: Uint8Array; waiter: Waiter<unknown>; startedMs?: number }[] = [];
  private readonly proposals = new Map<number, PendingProposal>();
  private readBatch: Waiter<void>[] = [];
  private readSeq = 0;
  /** Reads waiting for leadership confirmation, by ReadIndex context (one round out at most). */
  private readonly unconfirmedReads = new Map<string, Waiter<void>[]>();
  /** The term the round out was started in: the core drops it when its term moves on. */
  private readRoundTerm = -1;
  /** Confirmed reads waiting for the state machine to reach their index. */
  private confirmedReads: { index: number; waiters: Waiter<void>[] }[] = [];
  private readonly leaderListeners = new Set<(change: LeaderChange) => void>();
  private lastLeader: { leaderId: NodeId | null; term: number } = { leaderId: null, term: 0 };
  /** Configuration changes waiting for their entry to commit, by log index. */
  private readonly confChanges = new Map<number, PendingProposal>();
  /** Transfers waiting for this node to stop leading (or for the core to abandon them). */
  private transfers: Waiter<void>[] = [];
  private removed = false;
  /**
   * Whether a committed configuration named this node (a bootstrap voter starts so). A joining
   * node applies older configurations without itself first: those do not remove it.
   */
  private wasMember: boolean;

  constructor(options: RaftNodeOptions) {
    this.options = options;
    this.id = options.id;
    this.storage = options.storage;
    this.stateMachine = options.stateMachine;
    this.wasMember = options.peers.includes(options.id);
  }

  /** Restores the state machine from the latest snapshot and starts ticking. */
  start(): void {
    if (this.state !== 'new') throw new Error('raft node can be started only once');
    const snapshot = this.storage.snapshot();
    if (snapshot.meta.index > 0) this.stateMachine.restore(snapshot.data);
    this.appliedIndex = snapshot.meta.index;
    this.appliedTerm = snapshot.meta.term;
    this.snapshotIndex = snapshot.meta.index;
    const createCore = this.options.createCore ?? ((config, storage) => new RaftCore(config, storage));
    this.core = createCore(
      {
        random: Math.random,
        ...this.options.raft,
        id: this.options.id,
        peers: this.options.peers,
        learners: this.options.learners ?? [],
        applied: snapshot.meta.index,
      },
      this.storage,
    );
    this.state = 'running';
    const tickIntervalMs = this.options.tickIntervalMs ?? NODE_DEFAULTS.tickIntervalMs;
    const startTicker = this.options.startTicker ?? startIntervalTicker;
    this.stopTicker = startTicker(() => this.onTick(), tickIntervalMs);
    this.schedule();
  }

  /** Stops ticking, fails everything pending with RAFT_STOPPED and closes the storage. */
  async stop(): Promise<void> {
    if (this.state === 'stopped') return;
    this.state = 'stopped';
    this.stopTicker?.();
    this.stopTicker = null;
    await this.processing;
    await this.snapshotting;
    this.failAll(new RaftError('RAFT_STOPPED', 'raft node stopped'));
    await this.storage.close();
  }

  /**
   * Replicates a command; resolves with StateMachine.apply()'s result once it is committed and
   * applied here. Rejects with NotLeaderError when this node is not leader or loses leadership
   * before the command commits (then the outcome is unknown: retry with the same session seq).
   */
  propose(data: Uint8Array): Promise<unknown> {
    const core = this.requireRunning();
    const maxBytes = this.options.maxProposalBytes ?? NODE_DEFAULTS.maxProposalBytes;
    if (data.byteLength === 0 || data.byteLength > maxBytes) {
      return Promise.reject(new RaftError('RAFT_PROPOSAL_TOO_LARGE', `a command must be 1..${maxBytes} bytes`));
    }
    if (isConfEntryData(data)) return Promise.reject(new RaftError('RAFT_BAD_COMMAND', 'a command may not start like a configuration entry'));
    if (core.role !== 'leader') return Promise.reject(new NotLeaderError(core.leaderId, false));
    const maxPending = this.options.maxPendingProposals ?? NODE_DEFAULTS.maxPendingProposals;
    if (this.proposals.size + this.proposalBatch.length >= maxPending) {
      return Promise.reject(new RaftError('RAFT_BUSY', 'too many proposals in flight: retry later'));
    }
    return new Promise((resolve, reject) => {
      // Proposals arriving in one event-loop turn go into one log append and one fsync.
      if (this.proposalBatch.length === 0) queueMicrotask(() => this.flushProposals());
      const startedMs = this.options.observer?.committed ? performance.now() : undefined;
      this.proposalBatch.push({ data, waiter: { resolve, reject }, startedMs });
    });
  }

  /**
   * Resolves once this node, as leader, may serve a read that reflects every write committed
   * before the call (ReadIndex: leadership confirmed by a majority, state machine caught up).
   */
  linearizableRead(): Promise<void> {
    const core = this.requireRunning();
    if (core.role !== 'leader') return Promise.reject(new NotLeaderError(core.leaderId, false));
    return new Promise((resolve, reject) => {
      // One heartbeat round at a time, as etcd's read loop: reads that arrive while one is out
      // share the next, started when it is confirmed (or fails). A round per read cost a busy
      // leader a frame to each follower and back per stat (each request is its own event-loop
      // turn): two thirds of its Raft stream writes under a stat load.
      // Bounded as the core bounds its pending rounds: beyond it a read is refused at once.
      if (this.readBatch.length >= core.config.maxPendingReads) {
        reject(new RaftError('RAFT_BUSY', 'too many pending reads'));
        return;
      }
      if (this.readBatch.length === 0 && this.unconfirmedReads.size === 0) queueMicrotask(() => this.flushReads());
      this.readBatch.push({ resolve, reject });
    });
  }

  /**
   * Proposes a single-server membership change; resolves with the new configuration once its
   * entry is committed here. Rejects with NotLeaderError, or RaftError RAFT_CONF_CHANGE_REFUSED
   * (why in the message: another change pending, a learner still behind, no quorum left, ...).
   */
  proposeConfChange(change: ConfChange): Promise<ConfState> {
    const core = this.requireRunning();
    const result = core.proposeConfChange(change);
    if (!result.ok) return Promise.reject(confRefusal(result.reason, result.message, core.leaderId));
    this.schedule();
    return new Promise((resolve, reject) => {
      this.confChanges.set(result.index, { term: result.term, resolve: resolve as (value: unknown) => void, reject });
    });
  }

  /**
   * Hands leadership to `to` (or the most caught-up voter): resolves with the voter it was handed
   * to once this node no longer leads; rejects with RAFT_TRANSFER_FAILED when the core abandoned it (an election timeout).
   */
  transferLeadership(to?: NodeId): Promise<NodeId> {
    const core = this.requireRunning();
    const result = core.transferLeadership(to);
    if (result === 'notLeader') return Promise.reject(new NotLeaderError(core.leaderId, false));
    if (result === 'notVoter') return Promise.reject(new RaftError('RAFT_CONF_CHANGE_REFUSED', `${to ?? 'no other voter'} cannot take over: not a voter of the group`));
    const target = core.leadTransferee!;
    this.schedule();
    return new Promise<void>((resolve, reject) => this.transfers.push({ resolve, reject })).then(() => target);
  }

  /** The configuration in effect now and, on the leader, how far each member's log matches. */
  membership(): { conf: ConfState; confIndex: number; progress: Record<NodeId, { match: number }> } {
    const core = this.requireRunning();
    const progress: Record<NodeId, { match: number }> = {};
    const conf = core.conf();
    for (const id of [...conf.voters, ...conf.learners]) {
      const pr = core.progressOf(id);
      if (pr !== undefined) progress[id] = { match: pr.match };
    }
    return { conf, confIndex: core.confIndex(), progress };
  }

  /** Inbound message from the transport. Messages for another node are dropped. */
  receive(message: Message): void {
    if (this.state !== 'running' || message.to !== this.id) return;
    this.withCore((core) => core.step(message));
  }

  /** Tells the core a peer could not be reached so it stops pipelining to it. */
  reportUnreachable(id: NodeId): void {
    if (this.state !== 'running') return;
    this.withCore((core) => core.reportUnreachable(id));
  }

  status(): RaftStatus {
    const core = this.core;
    return {
      id: this.id,
      role: core?.role ?? 'follower',
      term: core?.term ?? 0,
      leaderId: core?.leaderId ?? null,
      commitIndex: core?.log.committed ?? 0,
      appliedIndex: this.appliedIndex,
      lastIndex: core?.log.lastIndex() ?? 0,
      snapshotIndex: this.snapshotIndex,
      snapshotsReceived: this.snapshotsReceived,
    };
  }

  /** Subscribes to leader changes; returns the unsubscribe function. */
  onLeaderChange(listener: (change: LeaderChange) => void): () => void {
    this.leaderListeners.add(listener);
    return () => this.leaderListeners.delete(listener);
  }

  // ---- internals ----------------------------------------------------------------------------

  private requireRunning(): RaftCore {
    if (this.state !== 'running' || this.core === null) throw new RaftError('RAFT_STOPPED', 'raft node is not running');
    return this.core;
  }

  private onTick(): void {
    this.withCore((core) => core.tick());
  }

  private withCore(action: (core: RaftCore) => void): void {
    if (this.state !== 'running' || this.core === null) return;
    try {
      action(this.core);
    } catch (error) {
      this.fatal(error as Error);
      return;
    }
    this.schedule();
  }

  private flushProposals(): void {
    const batch = this.proposalBatch;
    this.proposalBatch = [];
    if (batch.length === 0) return;
    if (this.state !== 'running' || this.core === null) {
      for (const p of batch) p.waiter.reject(new RaftError('RAFT_STOPPED', 'raft node stopped'));
      return;
    }
    const result = this.core.propose(batch.map((p) => p.data));
    if (!result.ok) {
      const error =
        result.reason === 'notLeader'
          ? new NotLeaderError(this.core.leaderId, false)
          : new RaftError('RAFT_BUSY', 'too many uncommitted bytes: retry later');
      for (const p of batch) p.waiter.reject(error);
      return;
    }
    batch.forEach((p, i) => this.proposals.set(result.firstIndex + i, { term: result.term, startedMs: p.startedMs, ...p.waiter }));
    this.options.observer?.proposed?.(batch.length);
    this.schedule();
  }

  private flushReads(): void {
    if (this.unconfirmedReads.size > 0) return; // the round out now starts this batch when it ends
    const waiters = this.readBatch;
    this.readBatch = [];
    if (waiters.length === 0 || this.state !== 'running' || this.core === null) {
      for (const w of waiters) w.reject(new RaftError('RAFT_STOPPED', 'raft node stopped'));
      return;
    }
    const context = `${this.id}:${++this.readSeq}`;
    const result = this.core.readIndex(context);
    if (result !== 'ok') {
      const error =
        result === 'notLeader' ? new NotLeaderError(this.core.leaderId, false) : new RaftError('RAFT_BUSY', 'too many pending reads');
      for (const w of waiters) w.reject(error);
      return;
    }
    this.unconfirmedReads.set(context, waiters);
    this.readRoundTerm = this.core.term;
    this.schedule();
  }

  /** Runs the Ready loop unless it is already running; one loop at a time keeps fsyncs ordered. */
  private schedule(): void {
    if (this.processing !== null) {
      this.rerun = true;
      return;
    }
    this.processing = this.runReadyLoop().finally(() => {
      this.processing = null;
      if (this.rerun && this.state === 'running') {
        this.rerun = false;
        this.schedule();
      }
    });
  }

  private async runReadyLoop(): Promise<void> {
    await Promise.resolve();
    try {
      while (this.state === 'running' && this.core !== null && this.core.hasReady()) {
        this.rerun = false;
        await this.handleReady(this.core, this.core.ready());
      }
    } catch (error) {
      this.fatal(error as Error);
    }
  }

  private async handleReady(core: RaftCore, ready: Ready): Promise<void> {
    const lone = this.leaderWaitsOnlyForThis(core, ready);
    // Only a leader has other work while its entries sync: its followers' replies, new proposals.
    // A leader whose only work is this Ready's entries (one call at a time) syncs them on its
    // thread too, once their appends have left (leaderWaitsOnlyForThis).
    const batch = { hardState: ready.hardState, entries: ready.entries, snapshot: ready.snapshot, mayBlock: core.role !== 'leader' || lone };
    const mustPersist = ready.hardState !== null || ready.entries.length > 0 || ready.snapshot !== null;
    // A commit-only Ready (the one that answers clients) applies first and writes afterwards.
    const persistLast = onlyMovesCommit(ready, this.storage.initialState());
    // Otherwise a leader's write starts first: its fsync runs in the thread pool while the socket
    // writes to the followers take this thread.
    const persisting = mustPersist && !persistLast && ready.sendBeforePersist && !lone ? this.storage.persist(batch) : undefined;
    persisting?.catch(() => undefined); // awaited below; this only keeps a throwing send from orphaning it
    if (ready.sendBeforePersist && ready.messages.length > 0) this.options.transport.send(ready.messages);
    if (mustPersist && !persistLast) await (persisting ?? this.storage.persist(batch));
    // Otherwise only now may messages that depend on the persisted vote, term or entries leave.
    if (!ready.sendBeforePersist && ready.messages.length > 0) this.options.transport.send(ready.messages);
    if (ready.snapshot !== null) {
      this.stateMachine.restore(ready.snapshot.data);
      this.appliedIndex = ready.snapshot.meta.index;
      this.appliedTerm = ready.snapshot.meta.term;
      this.snapshotIndex = Math.max(this.snapshotIndex, ready.snapshot.meta.index);
      this.bytesSinceSnapshot = 0;
      this.snapshotsReceived++;
      this.failProposalsUpTo(ready.snapshot.meta.index);
    }
    if (ready.snapshot?.meta.conf !== undefined) this.confCommitted(ready.snapshot.meta.conf, ready.snapshot.meta.index);
    for (const entry of ready.committedEntries) {
      const conf = decodeConfEntry(entry.data);
      if (conf !== null) this.confCommitted(conf, entry.index, entry.term, core);
      const result = entry.data.byteLength === 0 || conf !== null ? undefined : this.stateMachine.apply(entry.data, entry.index);
      this.bytesSinceSnapshot += entry.data.byteLength;
      this.appliedIndex = entry.index;
      this.appliedTerm = entry.term;
      const pending = this.proposals.get(entry.index);
      if (pending !== undefined) {
        this.proposals.delete(entry.index);
        // Another leader's entry at our index means ours was overwritten: it never committed.
        if (pending.term === entry.term) {
          pending.resolve(result);
          if (pending.startedMs !== undefined) this.options.observer?.committed?.((performance.now() - pending.startedMs) / 1000);
        } else pending.reject(new NotLeaderError(core.leaderId, false));
      }
    }
    for (const readState of ready.readStates) {
      const waiters = this.unconfirmedReads.get(readState.context);
      this.unconfirmedReads.delete(readState.context);
      if (waiters !== undefined) this.confirmedReads.push({ index: readState.index, waiters });
    }
    this.nextReadRound();
    this.releaseConfirmedReads();
    if (persistLast) await this.storage.persist(batch);
    core.advance(ready);
    if (ready.softState !== null) this.onSoftState(core);
    this.dropStaleReadRound(core);
    this.settleTransfers(core);
    await this.maybeSnapshot();
  }

  /**
   * Whether this leader's Ready carries new entries and the leader waits for nothing but them: no
   * other proposal uncommitted or queued, no read round out or waiting. This loop awaits the sync
   * before it applies what its followers' answers commit either way (as etcd's leader does), so
   * with nothing else to do the sync may block this thread: measured on the 2-core machine, one
   * create at a time took 3-4 % less time than with the thread pool's sync and its two wake-ups
   * (the leader's sync 310-320 µs against 490-500 µs). A request that arrives meanwhile waits
   * for that sync; with any in flight, the leader syncs in the pool as before. A slow disk stalls
   * this loop for each such sync, as it already stalls a follower's: one stalled for an election
   * timeout stops the heartbeats, and the group moves to a leader that can write.
   */
  private leaderWaitsOnlyForThis(core: RaftCore, ready: Ready): boolean {
    return core.role === 'leader' && ready.sendBeforePersist && ready.entries.length > 0 && this.proposals.size <= ready.entries.length
      && this.proposalBatch.length === 0 && this.unconfirmedReads.size === 0 && this.readBatch.length === 0 && this.confirmedReads.length === 0;
  }

  /**
   * A round started in an earlier term is never answered: the core drops its pending reads when
   * its term moves on, and it may step down and win again between two Readys (a disk stall of an
   * election timeout), so its role alone does not tell. Its reads are refused (the client asks
   * again) and the next round starts, or every later read would wait behind it.
   */
  private dropStaleReadRound(core: RaftCore): void {
    if (this.unconfirmedReads.size === 0 || (core.role === 'leader' && core.term === this.readRoundTerm)) return;
    for (const waiters of this.unconfirmedReads.values()) for (const w of waiters) w.reject(new NotLeaderError(core.leaderId, false));
    this.unconfirmedReads.clear();
    this.nextReadRound();
  }

  private onSoftState(core: RaftCore): void {
    if (core.role !== 'leader') {
      // Entries still pending may yet commit under the next leader: the outcome is unknown.
      const error = new NotLeaderError(core.leaderId, true);
      for (const p of this.proposals.values()) p.reject(error);
      this.proposals.clear();
      for (const p of this.confChanges.values()) p.reject(error);
      this.confChanges.clear();
      // A deposed leader never answers a read it could not confirm: dropStaleReadRound, next.
    }
    if (core.leaderId !== this.lastLeader.leaderId || core.term !== this.lastLeader.term) {
      this.lastLeader = { leaderId: core.leaderId, term: core.term };
      const change: LeaderChange = { leaderId: core.leaderId, term: core.term, isLeader: core.role === 'leader' };
      for (const listener of this.leaderListeners) listener(change);
    }
  }

  private confCommitted(conf: ConfState, index: number, term?: number, core?: RaftCore): void {
    const pending = this.confChanges.get(index);
    if (pending !== undefined && term !== undefined) {
      this.confChanges.delete(index);
      if (pending.term === term) pending.resolve(conf);
      else pending.reject(new NotLeaderError(core?.leaderId ?? null, false));
    }
    this.options.onConfCommitted?.(conf, index);
    if (isMember(conf, this.id)) this.wasMember = true;
    else if (this.wasMember && !this.removed) {
      this.removed = true;
      // After this Ready's messages left: the leader's last appends tell the others the commit.
      queueMicrotask(() => this.options.onRemoved?.());
    }
  }

  private settleTransfers(core: RaftCore): void {
    if (this.transfers.length === 0) return;
    if (core.role === 'leader' && core.leadTransferee !== null) return;
    const waiters = this.transfers;
    this.transfers = [];
    if (core.role !== 'leader') for (const w of waiters) w.resolve();
    else for (const w of waiters) w.reject(new RaftError('RAFT_TRANSFER_FAILED', 'leadership transfer did not finish within an election timeout'));
  }

  /** Starts the round of the reads that waited for the last one, once none is out. */
  private nextReadRound(): void {
    if (this.unconfirmedReads.size === 0 && this.readBatch.length > 0) queueMicrotask(() => this.flushReads());
  }

  private releaseConfirmedReads(): void {
    const still: { index: number; waiters: Waiter<void>[] }[] = [];
    for (const read of this.confirmedReads) {
      if (read.index <= this.appliedIndex) for (const w of read.waiters) w.resolve();
      else still.push(read);
    }
    this.confirmedReads = still;
  }

  private failProposalsUpTo(index: number): void {
    for (const [at, pending] of this.proposals) {
      if (at <= index) {
        pending.reject(new NotLeaderError(this.core?.leaderId ?? null, true));
        this.proposals.delete(at);
      }
    }
  }

  private async maybeSnapshot(): Promise<void> {
    if (this.snapshotting !== null) return;
    const every = this.options.snapshotEveryEntries ?? NODE_DEFAULTS.snapshotEveryEntries;
    const since = this.appliedIndex - this.snapshotIndex;
    if (since < every) return;
    const conf = this.core!.confAt(this.appliedIndex);
    const interval = snapshotInterval(every, this.storage.snapshot().data.byteLength, this.id, [...conf.voters, ...conf.learners]);
    if (since < interval && this.bytesSinceSnapshot < (this.options.maxLogBytesBetweenSnapshots ?? MAX_LOG_BYTES_BETWEEN_SNAPSHOTS)) return;
    this.bytesSinceSnapshot = 0;
    const keep = this.options.compactKeepEntries ?? NODE_DEFAULTS.compactKeepEntries;
    const meta = { index: this.appliedIndex, term: this.appliedTerm, conf };
    const compactIndex = Math.max(0, meta.index - keep);
    const taken = this.stateMachine.snapshot();
    if (this.storage.saveSnapshotStream === undefined) {
      // A storage that cannot stream (in memory: tests, the simulator) takes it whole, in the loop.
      const data = taken instanceof Uint8Array ? taken : new ChunkedSnapshotData([...iterate(capturePieces(taken).pieces)]);
      await this.storage.saveSnapshot({ meta, data }, compactIndex);
      this.snapshotIndex = meta.index;
      return;
    }
    // Two phases, as hashicorp/raft: the capture above was quick; its pieces are written in the
    // background while this loop goes on applying, and a capture keeps the state it saw.
    const capture = capturePieces(taken);
    const pieces: Iterator<Uint8Array> = { next: () => (this.state === 'stopped' ? stoppedWriting() : capture.pieces.next()) };
    this.snapshotting = this.storage.saveSnapshotStream(meta, pieces, compactIndex)
      .then(() => void (this.snapshotIndex = Math.max(this.snapshotIndex, meta.index)))
      .catch((error: Error) => this.fatal(error))
      .finally(() => {
        capture.release();
        this.snapshotting = null;
      });
  }

  private fatal(error: Error): void {
    if (this.state === 'stopped') return;
    this.state = 'stopped';
    this.stopTicker?.();
    this.stopTicker = null;
    this.failAll(new RaftError('RAFT_STOPPED', `raft node stopped after a fatal error: ${error.message}`));
    this.options.onFatal?.(error);
  }

  private failAll(error: Error): void {
    for (const p of this.proposals.values()) p.reject(error);
    this.proposals.clear();
    for (const p of this.confChanges.values()) p.reject(error);
    this.confChanges.clear();
    for (const w of this.transfers) w.reject(error);
    this.transfers = [];
    for (const waiters of this.unconfirmedReads.values()) for (const w of waiters) w.reject(error);
    this.unconfirmedReads.clear();
    for (const read of this.confirmedReads) for (const w of read.waiters) w.reject(error);
    this.confirmedReads = [];
    for (const p of this.proposalBatch) p.waiter.reject(error);
    this.proposalBatch = [];
    for (const w of this.readBatch) w.reject(error);
    this.readBatch = [];
  }
}

/**
 * Snapshot bytes that one more entry between snapshots is allowed for: a node whose last snapshot
 * took B bytes waits for at least B / SNAPSHOT_BYTES_PER_ENTRY entries. Writing a snapshot costs
 * time in proportion to the state (the master: about 0.7 µs of CPU and 35-55 bytes of snapshot
 * per namespace entry), so a fixed interval would make each entry cost more as the state grows:
 * at a million files (55 MB of snapshot, about a second to write), a snapshot every 10,000 entries
 * would spend 0.1 ms of every entry on snapshots, as much as the entry itself. Waiting in
 * proportion (54,000 entries there) keeps that near 15-20 µs, while the log held in memory and
 * replayed at a restart stays at one entry per KiB of snapshot (some 20 MB of log at a million
 * files, 20 bytes a file). etcd snapshots every 10,000 entries (v3.6), but its snapshot is cheap
 * (its state is on disk in bbolt); HDFS checkpoints every million transactions.
 */
export const SNAPSHOT_BYTES_PER_ENTRY = 1024;

/**
 * Whatever the interval, a node snapshots (after --snapshot-every entries) once the entries
 * applied since its last snapshot hold this many bytes: the interval grows with the state's
 * snapshot, but the log held in memory, written to the WAL and replayed at a restart grows with
 * the entries' bytes (4 KiB inline files make 5.6 KB entries: 350,000 of them would be 2 GB).
 */
export const MAX_LOG_BYTES_BETWEEN_SNAPSHOTS = 64 * 1024 * 1024;

/**
 * Applied entries a node waits for before its next snapshot: `every`, or more for a big state
 * (SNAPSHOT_BYTES_PER_ENTRY), stretched by up to half by the node's place among `members` (the
 * group's ids, this one's rank in their sorted order over their number; an id not among them, by
 * a hash). Every member applies the same entries, so equal intervals would have all of them
 * serialise their state at the same moment, stalling the commits that need two of them;
 * staggered, a follower's snapshot slows only itself while the other follower acknowledges.
 */
export function snapshotInterval(every: number, lastSnapshotBytes: number, id: NodeId, members: readonly NodeId[]): number {
  const base = Math.max(every, Math.ceil(lastSnapshotBytes / SNAPSHOT_BYTES_PER_ENTRY));
  const sorted = [...new Set(members)].sort();
  const rank = sorted.indexOf(id);
  const share = rank >= 0 ? rank / sorted.length : idShare(id);
  return base + Math.floor((base * share) / 2);
}

/** A number in [0, 1) from the id: FNV-1a, then murmur3's finaliser (FNV alone gives m1, m2, m3 nearly the same value). */
function idShare(id: NodeId): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < id.length; i++) h = Math.imul(h ^ id.charCodeAt(i), 0x01000193) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return ((h ^ (h >>> 16)) >>> 0) / 2 ** 32;
}

function confRefusal(reason: ConfChangeRefusal, message: string, leaderId: NodeId | null): Error {
  if (reason === 'notLeader' || reason === 'transferring') return new NotLeaderError(leaderId, false);
  return new RaftError('RAFT_CONF_CHANGE_REFUSED', message);
}

function* iterate<T>(it: Iterator<T>): Generator<T> {
  for (let next = it.next(); next.done !== true; next = it.next()) yield next.value;
}

function stoppedWriting(): never {
  throw new RaftError('RAFT_STOPPED', 'raft node stopped while writing a snapshot');
}
