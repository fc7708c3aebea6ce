// The Raft consensus core: a deterministic state machine in the style of etcd-io/raft. Ticks,
// messages, proposals and read requests go in; a Ready (state to persist, messages to send after
// persisting, entries to apply) comes out. No clocks, sockets, disks or ambient randomness here:
// the driver (node.ts) or a simulator supplies all of them.
import { coalesceMessages } from './coalesce.js';
import { applyConfChange, decodeConfEntry, encodeConfEntry, isMember, sameConf, type ConfChange } from './conf-change.js';
import { resolveRaftConfig, type RaftConfig, type RaftConfigInput } from './config.js';
import { Progress, type ProgressState } from './progress.js';
import { RaftLog } from './raft-log.js';
import { ChunkedSnapshotData } from './snapshot-data.js';
import { ReadOnlyQueue } from './read-only.js';
import type { LogStorage } from './storage.js';
import {
  assert,
  entryBytes,
  type AppendRequest,
  type ConfState,
  type AppendResponse,
  type Entry,
  type HardState,
  type HeartbeatRequest,
  type HeartbeatResponse,
  type Message,
  type NodeId,
  type ReadState,
  type Ready,
  type Role,
  type Snapshot,
  type SnapshotChunk,
  type SnapshotMeta,
  type SnapshotResponse,
  type SoftState,
  type TimeoutNow,
  type VoteRequest,
  type VoteResponse,
} from './types.js';

export type ProposeResult =
  | { readonly ok: true; readonly firstIndex: number; readonly term: number }
  | { readonly ok: false; readonly reason: 'notLeader' | 'uncommittedFull' };

export type ReadIndexResult = 'ok' | 'notLeader' | 'tooManyReads';

export type ConfChangeRefusal =
  /** Not the leader: ask the leader. */
  | 'notLeader'
  /** A leadership transfer is under way; proposals wait for at most an election timeout. */
  | 'transferring'
  /** The previous configuration entry (or this leader's first entry) is not committed yet. */
  | 'changeInProgress'
  /** The change does not fit the configuration (already a member, not a learner, ...). */
  | 'invalid'
  /** The learner is too far behind to be promoted yet. */
  | 'learnerBehind'
  /** The voters left would not include a majority that the leader heard from recently. */
  | 'noQuorum';

export type ConfChangeResult =
  | { readonly ok: true; readonly index: number; readonly term: number; readonly conf: ConfState }
  | { readonly ok: false; readonly reason: ConfChangeRefusal; readonly message: string };

export type TransferResult = 'ok' | 'notLeader' | 'notVoter';

/** A configuration entry in the log (or the one a snapshot carries, at its index). */
interface ConfAt {
  readonly index: number;
  readonly term: number;
  readonly conf: ConfState;
}

type Campaign = 'preVote' | 'vote';

/** A snapshot being received from the leader, chunk by chunk. */
interface IncomingSnapshot {
  readonly from: NodeId;
  readonly term: number;
  readonly meta: SnapshotMeta;
  readonly totalBytes: number;
  readonly chunks: Uint8Array[];
  receivedBytes: number;
}

// Envelope-free message bodies, so `send` fills in from/to/term in one place.
type Outgoing<T extends Message> = Omit<T, 'from' | 'to' | 'term'> & { term?: number };

export class RaftCore {
  readonly id: NodeId;
  readonly config: RaftConfig;
  readonly log: RaftLog;
  /**
   * Configurations in the log, oldest first; the first is the one in effect at the log's start
   * (the snapshot's, or the bootstrap peers'). The last is in effect now (§4.1: when appended).
   */
  private confs: ConfAt[] = [];
  /** Set while a leadership transfer to this voter is under way (§3.10); proposals are refused. */
  leadTransferee: NodeId | null = null;

  term = 0;
  vote: NodeId | null = null;
  role: Role = 'follower';
  leaderId: NodeId | null = null;

  private readonly progress = new Map<NodeId, Progress>();
  private readonly votes = new Map<NodeId, boolean>();
  private msgs: Message[] = [];
  private readStates: ReadState[] = [];
  private readonly readOnly = new ReadOnlyQueue();
  /** Reads that arrived before this leader committed an entry of its term (thesis §6.4 step 1). */
  private deferredReads: string[] = [];
  /** Uncommitted proposals of this leader: [lastIndex, bytes] pairs, for the uncommitted bound. */
  private uncommitted: [number, number][] = [];
  private uncommittedBytes = 0;
  private incoming: IncomingSnapshot | null = null;

  private electionElapsed = 0;
  /** Ticks since the current leadership transfer began; it is abandoned at electionTick. */
  private transferElapsed = 0;
  private heartbeatElapsed = 0;
  private randomizedElectionTimeout = 0;

  private prevSoftState: SoftState;
  private prevHardState: HardState;

  constructor(configInput: RaftConfigInput, storage: LogStorage) {
    this.config = resolveRaftConfig(configInput);
    this.id = this.config.id;
    this.log = new RaftLog(storage, this.config.applied);
    this.loadConfs(storage);
    const hardState = storage.initialState();
    this.term = hardState.term;
    this.vote = hardState.vote;
    this.becomeFollower(this.term, null);
    this.prevHardState = this.hardState();
    this.prevSoftState = this.softState();
  }

  // ---- inputs -------------------------------------------------------------------------------

  /** Advances logical time by one tick. */
  tick(): void {
    if (this.role === 'leader') this.tickHeartbeat();
    else this.tickElection();
  }

  /** Appends commands to the log if this node is leader (§5.3). */
  propose(commands: readonly Uint8Array[]): ProposeResult {
    // During a transfer the new leader would have to drop what we append (§3.10): refuse, so
    // clients retry there. Bounded: a transfer is abandoned after an election timeout.
    if (this.role !== 'leader' || this.leadTransferee !== null) return { ok: false, reason: 'notLeader' };
    assert(commands.length > 0, 'empty proposal');
    const bytes = commands.reduce((sum, data) => sum + data.byteLength + 24, 0);
    // An empty backlog always admits one batch, so a single huge command cannot wedge the leader.
    if (this.uncommittedBytes > 0 && this.uncommittedBytes + bytes > this.config.maxUncommittedEntriesBytes) {
      return { ok: false, reason: 'uncommittedFull' };
    }
    const firstIndex = this.log.lastIndex() + 1;
    this.appendEntries(commands);
    this.uncommitted.push([this.log.lastIndex(), bytes]);
    this.uncommittedBytes += bytes;
    this.bcastAppend();
    return { ok: true, firstIndex, term: this.term };
  }

  /**
   * Starts a linearizable read (ReadIndex). A ReadState with the same context appears in a later
   * Ready once a majority confirmed this node is still leader; the read may be served after the
   * state machine applied ReadState.index.
   */
  readIndex(context: string): ReadIndexResult {
    if (this.role !== 'leader' || !this.isVoter()) return 'notLeader';
    if (this.readOnly.size() + this.deferredReads.length >= this.config.maxPendingReads) return 'tooManyReads';
    if (!this.committedInCurrentTerm()) {
      // The commit index of a fresh leader may lag the true one until its no-op commits.
      this.deferredReads.push(context);
      return 'ok';
    }
    this.startRead(context);
    return 'ok';
  }

  /** The transport could not reach `id`: stop pipelining to it and probe instead. */
  reportUnreachable(id: NodeId): void {
    const pr = this.progress.get(id);
    if (this.role === 'leader' && pr !== undefined && pr.state === 'replicate') pr.becomeProbe();
  }

  step(m: Message): void {
    // Messages from a node outside our configuration are still taken: our configuration may be
    // behind (a leader added after it), and terms and logs keep them safe; only votes are
    // counted by membership (poll) and only members are replicated to.
    if (m.from === this.id || m.to !== this.id) return;
    // A node outside the configuration asking for votes is most likely one that was removed
    // while down and never learned it (thesis §4.2.3): ignoring it is always safe, and keeps
    // its ever higher terms from deposing leaders.
    if ((m.type === 'preVote' || m.type === 'vote') && !isMember(this.conf(), m.from)) return;
    if (m.term > this.term) {
      if (m.type === 'preVote' || m.type === 'vote') {
        // With check-quorum, a node that heard from a live leader within the minimum election
        // timeout ignores elections: a partitioned node rejoining cannot depose that leader. A
        // campaign that leader asked for (TimeoutNow) is the exception (thesis §3.10).
        const inLease = this.config.checkQuorum && this.leaderId !== null && this.electionElapsed < this.config.electionTick;
        if (inLease && !(m.type === 'vote' && m.transfer === true)) return;
      }
      if (m.type === 'preVote') {
        // A pre-vote never changes our term: the candidate has not incremented its own yet.
      } else if (m.type === 'preVoteResp' && !m.reject) {
        // A granted pre-vote carries the term we will campaign in, not a newer leader's term.
      } else {
        const fromLeader = m.type === 'append' || m.type === 'heartbeat' || m.type === 'snapshot';
        this.becomeFollower(m.term, fromLeader ? m.from : null);
      }
    } else if (m.term < this.term) {
      this.stepStaleTerm(m);
      return;
    }

    if (m.type === 'preVote' || m.type === 'vote') {
      this.handleVoteRequest(m);
      return;
    }
    switch (this.role) {
      case 'leader':
        this.stepLeader(m);
        return;
      case 'candidate':
      case 'preCandidate':
        this.stepCandidate(m);
        return;
      case 'follower':
        this.stepFollower(m);
        return;
    }
  }

  /**
   * Appends a configuration entry that changes one server (thesis §4.1). Refused while another
   * change is not yet committed, before this leader committed an entry of its own term, during a
   * transfer, for a learner not yet close to the log's end, or when the voters left would not
   * hold a majority that this leader heard from recently.
   */
  proposeConfChange(change: ConfChange): ConfChangeResult {
    const refuse = (reason: ConfChangeRefusal, message: string): ConfChangeResult => ({ ok: false, reason, message });
    if (this.role !== 'leader') return refuse('notLeader', 'not the leader');
    if (this.leadTransferee !== null) return refuse('transferring', `leadership is moving to ${this.leadTransferee}`);
    const pending = this.changePending();
    if (pending !== null) return refuse('changeInProgress', pending);
    const next = applyConfChange(this.conf(), change);
    if (typeof next === 'string') return refuse('invalid', next);
    if (change.type === 'promote' && !this.learnerCaughtUp(change.node)) {
      return refuse('learnerBehind', `${change.node} is not close enough to the leader's log yet`);
    }
    if (change.type === 'remove' && this.voters.includes(change.node)) {
      const healthy = next.voters.filter((id) => id === this.id || this.recentlyActive(id)).length;
      if (healthy < Math.floor(next.voters.length / 2) + 1) {
        return refuse('noQuorum', `without ${change.node}, the voters that answer (${healthy} of ${next.voters.length}) would not be a majority`);
      }
    }
    this.appendEntries([encodeConfEntry(next)]);
    const index = this.log.lastIndex();
    this.confs.push({ index, term: this.term, conf: next });
    this.trimConfs();
    this.onConfChanged();
    this.bcastAppend();
    return { ok: true, index, term: this.term, conf: next };
  }

  /**
   * Leadership transfer (thesis §3.10): bring `to` up to date, then tell it to campaign at once
   * (TimeoutNow). Proposals are refused meanwhile; the transfer is abandoned after an election
   * timeout. Without `to`, the voter with the most of the log is chosen.
   */
  transferLeadership(to?: NodeId): TransferResult {
    if (this.role !== 'leader') return 'notLeader';
    const target = to ?? this.mostCaughtUpVoter();
    if (target === undefined || target === this.id || !this.voters.includes(target)) return 'notVoter';
    if (this.leadTransferee === target) return 'ok';
    this.leadTransferee = target;
    // Its own clock, not electionElapsed: repeated transfers must never hold off check-quorum.
    this.transferElapsed = 0;
    const pr = this.progress.get(target)!;
    if (pr.match === this.log.lastIndex()) this.sendTimeoutNow(target);
    else this.sendAppend(target, true);
    return 'ok';
  }

  /** Why no configuration change may start now, or null when one may. */
  private changePending(): string | null {
    if (this.confs.at(-1)!.index > this.log.committed) return 'the previous membership change is not committed yet';
    if (!this.committedInCurrentTerm()) return 'the new leader has not committed an entry of its term yet';
    return null;
  }

  /** The members whose copies make an entry committed: the voters, never a learner. */
  private quorumMembers(): readonly NodeId[] {
    return this.voters;
  }

  /** The configuration in effect now (the latest in the log). */
  conf(): ConfState {
    const latest = this.confs.at(-1);
    return latest !== undefined ? latest.conf : { voters: this.config.peers, learners: this.config.learners };
  }

  /** The configuration in effect at `index` (for a snapshot's metadata). */
  confAt(index: number): ConfState {
    let found = this.confs[0]!.conf;
    for (const c of this.confs) if (c.index <= index) found = c.conf;
    return found;
  }

  /** Index of the latest configuration entry (0 when the configuration is the bootstrap one). */
  confIndex(): number {
    return this.confs.at(-1)!.index;
  }

  isVoter(): boolean {
    return this.voters.includes(this.id);
  }

  private get voters(): readonly NodeId[] {
    return this.conf().voters;
  }

  private get quorum(): number {
    return Math.floor(this.voters.length / 2) + 1;
  }

  private recentlyActive(id: NodeId): boolean {
    const pr = this.progress.get(id);
    return pr !== undefined && (pr.recentActive || pr.lastRoundActive);
  }

  /** etcd's rule: a learner is promoted only when its lag is small and within a tenth of the log. */
  private learnerCaughtUp(id: NodeId): boolean {
    const pr = this.progress.get(id);
    if (pr === undefined || !this.recentlyActive(id)) return false;
    const lag = this.log.lastIndex() - pr.match;
    return lag <= Math.min(this.config.maxLearnerLagEntries, Math.floor(this.log.lastIndex() / 10));
  }

  private mostCaughtUpVoter(): NodeId | undefined {
    let best: NodeId | undefined;
    let bestMatch = -1;
    for (const id of this.voters) {
      const match = this.progress.get(id)?.match ?? 0;
      if (id !== this.id && match > bestMatch) {
        best = id;
        bestMatch = match;
      }
    }
    return best;
  }

  private sendTimeoutNow(to: NodeId): void {
    this.send<TimeoutNow>(to, { type: 'timeoutNow' });
  }

  /** Rebuilds the configurations from the snapshot and the log on start. */
  private loadConfs(storage: LogStorage): void {
    const snapshot = storage.snapshot();
    const base = snapshot.meta.conf ?? { voters: this.config.peers, learners: this.config.learners };
    this.confs = [{ index: snapshot.meta.index, term: snapshot.meta.term, conf: base }];
    const last = storage.lastIndex();
    for (let lo = Math.max(storage.firstIndex(), snapshot.meta.index + 1); lo <= last; ) {
      const entries = storage.entries(lo, last + 1, 4 * 1024 * 1024);
      for (const entry of entries) {
        const conf = decodeConfEntry(entry.data);
        if (conf !== null) this.confs.push({ index: entry.index, term: entry.term, conf });
      }
      lo = entries.at(-1)!.index + 1;
    }
  }

  /** After a follower appended: drop configurations whose entries were truncated, add new ones. */
  private syncConfs(entries: readonly Entry[]): void {
    const before = this.conf();
    const held = (c: ConfAt): boolean => c.index <= this.log.lastIndex() && (this.log.term(c.index) ?? c.term) === c.term;
    while (this.confs.length > 1 && !held(this.confs.at(-1)!)) this.confs.pop();
    for (const entry of entries) {
      if (entry.index <= this.confs.at(-1)!.index || this.log.term(entry.index) !== entry.term) continue;
      const conf = decodeConfEntry(entry.data);
      if (conf !== null) this.confs.push({ index: entry.index, term: entry.term, conf });
    }
    this.trimConfs();
    if (!sameConf(before, this.conf())) this.onConfChanged();
  }

  /**
   * Drops configurations nobody asks for again: confAt is only asked at or above the applied
   * index (a snapshot), so the newest one at or below it is the oldest one kept.
   */
  private trimConfs(): void {
    while (this.confs.length > 1 && this.confs[1]!.index <= this.log.applied) this.confs.shift();
  }

  /** Brings the leader's progress tracking in line with the configuration now in effect. */
  private onConfChanged(): void {
    const conf = this.conf();
    if (this.role !== 'leader') return;
    const next = this.log.lastIndex() + 1;
    for (const id of [...conf.voters, ...conf.learners]) {
      if (this.progress.has(id)) continue;
      const pr = new Progress(next, this.config.maxInflightMsgs, this.config.maxInflightBytes);
      // Assume a new member is alive, so a snapshot is sent to it at once (sendSnapshot).
      pr.recentActive = true;
      this.progress.set(id, pr);
    }
    // A removed member keeps being replicated to (never counted) until its removal commits, so
    // it learns that (sendPendingEntries tells it at once) and stops on its own; pruneRemoved
    // forgets it after that.
    if (this.leadTransferee !== null && !conf.voters.includes(this.leadTransferee)) this.leadTransferee = null;
    // The quorum changed: what a majority of the new voters hold may now be committed.
    if (this.maybeCommit()) this.sendPendingEntries();
  }

  /**
   * A leader that is no longer a voter steps down once the entry that removed it is committed
   * (thesis §4.2.2), first telling the most caught-up voter to campaign so nobody waits out an
   * election timeout.
   */
  private maybeStepDownRemoved(): void {
    if (this.role !== 'leader' || this.isVoter() || this.confIndex() > this.log.committed) return;
    this.bcastAppend();
    const successor = this.mostCaughtUpVoter();
    if (successor !== undefined && this.progress.get(successor)!.match === this.log.lastIndex()) this.sendTimeoutNow(successor);
    this.becomeFollower(this.term, null);
  }

  // ---- Ready / advance ----------------------------------------------------------------------

  hasReady(): boolean {
    return (
      this.msgs.length > 0 ||
      this.readStates.length > 0 ||
      this.log.unstableSnapshot() !== null ||
      this.log.unstableEntries().length > 0 ||
      this.log.hasNextCommittedEntries() ||
      !sameHardState(this.hardState(), this.prevHardState) ||
      !sameSoftState(this.softState(), this.prevSoftState)
    );
  }

  /** Hands out the pending work; call `advance(ready)` once it is persisted, sent and applied. */
  ready(): Ready {
    const hardState = this.hardState();
    const softState = this.softState();
    const snapshot = this.log.unstableSnapshot();
    const ready: Ready = {
      softState: sameSoftState(softState, this.prevSoftState) ? null : softState,
      hardState: sameHardState(hardState, this.prevHardState) ? null : hardState,
      snapshot,
      entries: this.log.unstableEntries(),
      committedEntries: this.log.nextCommittedEntries(this.config.maxCommittedBytesPerReady),
      messages: coalesceMessages(this.msgs, this.config),
      readStates: this.readStates,
      // Only the commit index may be unpersisted: it is not needed for safety (it is relearned).
      sendBeforePersist:
        this.role === 'leader' && snapshot === null && hardState.term === this.prevHardState.term && hardState.vote === this.prevHardState.vote,
    };
    this.msgs = [];
    this.readStates = [];
    this.prevHardState = hardState;
    this.prevSoftState = softState;
    const lastCommitted = ready.committedEntries.at(-1);
    if (lastCommitted !== undefined) this.log.acceptApplying(lastCommitted.index);
    return ready;
  }

  advance(ready: Ready): void {
    if (ready.snapshot !== null) {
      this.log.stableSnapTo(ready.snapshot.meta.index);
      this.log.appliedTo(ready.snapshot.meta.index);
    }
    const lastEntry = ready.entries.at(-1);
    if (lastEntry !== undefined) this.log.stableTo(lastEntry.index, lastEntry.term);
    const lastCommitted = ready.committedEntries.at(-1);
    if (lastCommitted !== undefined) this.log.appliedTo(lastCommitted.index);
    if (this.role === 'leader') {
      // The leader counts itself towards a quorum only for entries on its own disk.
      const self = this.progress.get(this.id)!;
      if (self.maybeUpdate(this.log.persistedLastIndex()) && this.maybeCommit()) this.sendPendingEntries();
    }
  }

  // ---- state --------------------------------------------------------------------------------

  hardState(): HardState {
    return { term: this.term, vote: this.vote, commit: this.log.committed };
  }

  softState(): SoftState {
    return { leaderId: this.leaderId, role: this.role, term: this.term };
  }

  progressOf(id: NodeId): { match: number; next: number; state: ProgressState; inflight: number } | undefined {
    const pr = this.progress.get(id);
    if (pr === undefined || this.role !== 'leader') return undefined;
    return { match: pr.match, next: pr.next, state: pr.state, inflight: pr.inflights.count() };
  }

  // ---- role transitions ---------------------------------------------------------------------

  private reset(term: number): void {
    if (term !== this.term) {
      assert(term > this.term, `term went back from ${this.term} to ${term}`);
      this.term = term;
      this.vote = null;
    }
    this.leaderId = null;
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    this.resetRandomizedElectionTimeout();
    this.votes.clear();
    this.readOnly.clear();
    this.deferredReads = [];
    this.uncommitted = [];
    this.uncommittedBytes = 0;
    this.leadTransferee = null;
    this.progress.clear();
    const next = this.log.lastIndex() + 1;
    for (const id of [...this.voters, ...this.conf().learners, this.id]) {
      if (!this.progress.has(id)) this.progress.set(id, new Progress(next, this.config.maxInflightMsgs, this.config.maxInflightBytes));
    }
  }

  private resetRandomizedElectionTimeout(): void {
    const spread = Math.floor(this.config.random() * this.config.electionTick);
    this.randomizedElectionTimeout = this.config.electionTick + Math.min(spread, this.config.electionTick - 1);
  }

  private becomeFollower(term: number, leaderId: NodeId | null): void {
    this.reset(term);
    this.role = 'follower';
    this.leaderId = leaderId;
  }

  private becomePreCandidate(): void {
    assert(this.role !== 'leader', 'a leader cannot become a pre-candidate');
    // Neither the term nor the vote changes: a pre-vote that fails leaves no trace.
    this.role = 'preCandidate';
    this.leaderId = null;
    this.votes.clear();
    this.resetRandomizedElectionTimeout();
  }

  private becomeCandidate(): void {
    assert(this.role !== 'leader', 'a leader cannot become a candidate');
    this.reset(this.term + 1);
    this.vote = this.id;
    this.role = 'candidate';
  }

  private becomeLeader(): void {
    assert(this.role === 'candidate', 'only a candidate becomes leader');
    this.reset(this.term);
    this.role = 'leader';
    this.leaderId = this.id;
    const self = this.progress.get(this.id)!;
    self.maybeUpdate(this.log.persistedLastIndex());
    self.becomeReplicate();
    // The no-op lets this leader commit entries of earlier terms (§5.4.2) and serve reads (§6.4).
    this.appendEntries([new Uint8Array(0)]);
  }

  private campaign(kind: Campaign, transfer = false): void {
    if (kind === 'preVote') this.becomePreCandidate();
    else this.becomeCandidate();
    const term = kind === 'preVote' ? this.term + 1 : this.term;
    if (this.poll(this.id, true) === 'won') {
      if (kind === 'preVote') this.campaign('vote');
      else this.becomeLeader();
      return;
    }
    const lastLogIndex = this.log.lastIndex();
    const lastLogTerm = this.log.lastTerm();
    for (const id of this.voters) {
      if (id === this.id) continue;
      this.send<VoteRequest>(id, transfer ? { type: kind, term, lastLogIndex, lastLogTerm, transfer } : { type: kind, term, lastLogIndex, lastLogTerm });
    }
  }

  private poll(from: NodeId, granted: boolean): 'won' | 'lost' | 'pending' {
    if (!this.votes.has(from)) this.votes.set(from, granted);
    let yes = 0;
    let no = 0;
    // Only the votes of voters in our configuration count (a learner's or a stranger's never).
    for (const [id, vote] of this.votes) {
      if (!this.voters.includes(id)) continue;
      if (vote) yes++;
      else no++;
    }
    if (yes >= this.quorum) return 'won';
    if (no > this.voters.length - this.quorum) return 'lost';
    return 'pending';
  }

  // ---- ticks --------------------------------------------------------------------------------

  private tickElection(): void {
    this.electionElapsed++;
    // A learner, or a node removed from the group, never campaigns.
    if (!this.isVoter()) return;
    if (this.electionElapsed >= this.randomizedElectionTimeout) {
      this.electionElapsed = 0;
      this.campaign(this.config.preVote ? 'preVote' : 'vote');
    }
  }

  private tickHeartbeat(): void {
    this.heartbeatElapsed++;
    this.electionElapsed++;
    if (this.electionElapsed >= this.config.electionTick) {
      this.electionElapsed = 0;
      // The activity round runs either way: a removal checks it leaves a live majority.
      const quorumActive = this.quorumActive();
      if (this.config.checkQuorum && !quorumActive) {
        this.becomeFollower(this.term, null);
        return;
      }
    }
    // A transfer that did not finish within an election timeout is abandoned (§3.10).
    if (this.leadTransferee !== null && ++this.transferElapsed >= this.config.electionTick) this.leadTransferee = null;
    if (this.heartbeatElapsed >= this.config.heartbeatTick) {
      this.heartbeatElapsed = 0;
      this.bcastHeartbeat(this.readOnly.lastContext());
      this.retryStalledSnapshots();
      this.pruneRemoved();
    }
  }

  /** Forgets removed members once their removal is committed and they hold it (or went quiet). */
  private pruneRemoved(): void {
    const conf = this.conf();
    if (this.confIndex() > this.log.committed) return;
    for (const [id, pr] of this.progress) {
      if (id === this.id || isMember(conf, id)) continue;
      if (pr.match >= this.confIndex() || !(pr.recentActive || pr.lastRoundActive)) this.progress.delete(id);
    }
  }

  /** Whether a majority was heard from since the last check; resets the marks for the next round. */
  private quorumActive(): boolean {
    let active = 0;
    for (const [id, pr] of this.progress) {
      if (this.voters.includes(id) && (id === this.id || pr.recentActive)) active++;
      pr.lastRoundActive = pr.recentActive;
      pr.recentActive = false;
    }
    return active >= this.quorum;
  }

  // ---- message handling ---------------------------------------------------------------------

  private stepStaleTerm(m: Message): void {
    if ((this.config.checkQuorum || this.config.preVote) && (m.type === 'append' || m.type === 'heartbeat' || m.type === 'snapshot')) {
      // A deposed leader cut off by a partition may never hear a higher term otherwise (its
      // followers ignore it and pre-vote keeps terms from rising): tell it ours so it steps down.
      this.send<AppendResponse>(m.from, { type: 'appendResp', index: 0, reject: true, rejectHintIndex: 0, rejectHintTerm: 0 });
    } else if (m.type === 'preVote') {
      this.send<VoteResponse>(m.from, { type: 'preVoteResp', reject: true });
    }
    // Anything else from a stale term is ignored (§5.1).
  }

  private handleVoteRequest(m: VoteRequest): void {
    const responseType = m.type === 'preVote' ? 'preVoteResp' : 'voteResp';
    const canVote =
      this.vote === m.from ||
      (this.vote === null && this.leaderId === null) ||
      (m.type === 'preVote' && m.term > this.term);
    if (canVote && this.log.isUpToDate(m.lastLogIndex, m.lastLogTerm)) {
      // A grant answers in the candidate's term so it counts it; §5.2, §5.4.1.
      this.send<VoteResponse>(m.from, { type: responseType, term: m.term, reject: false });
      if (m.type === 'vote') {
        this.electionElapsed = 0;
        this.vote = m.from;
      }
    } else {
      this.send<VoteResponse>(m.from, { type: responseType, reject: true });
    }
  }

  private stepFollower(m: Message): void {
    switch (m.type) {
      case 'append':
        this.electionElapsed = 0;
        this.leaderId = m.from;
        this.handleAppend(m);
        return;
      case 'heartbeat':
        this.electionElapsed = 0;
        this.leaderId = m.from;
        this.handleHeartbeat(m);
        return;
      case 'snapshot':
        this.electionElapsed = 0;
        this.leaderId = m.from;
        this.handleSnapshot(m);
        return;
      case 'timeoutNow':
        // §3.10: the leader brought us up to date and steps aside; campaign now, without pre-vote.
        if (this.isVoter()) this.campaign('vote', true);
        return;
      default:
        return; // stale responses from an earlier role
    }
  }

  private stepCandidate(m: Message): void {
    switch (m.type) {
      case 'append':
      case 'heartbeat':
      case 'snapshot':
        // §5.2: a candidate that hears from a leader of its term returns to follower.
        this.becomeFollower(m.term, m.from);
        this.stepFollower(m);
        return;
      case 'preVoteResp':
      case 'voteResp': {
        const expected = this.role === 'preCandidate' ? 'preVoteResp' : 'voteResp';
        if (m.type !== expected) return;
        const result = this.poll(m.from, !m.reject);
        if (result === 'won') {
          if (this.role === 'preCandidate') {
            this.campaign('vote');
          } else {
            this.becomeLeader();
            this.bcastAppend();
          }
        } else if (result === 'lost') {
          this.becomeFollower(this.term, null);
        }
        return;
      }
      default:
        return;
    }
  }

  private stepLeader(m: Message): void {
    // Responses from a node that is no longer a member (or not yet one) are ignored.
    if (!this.progress.has(m.from)) return;
    switch (m.type) {
      case 'append':
      case 'heartbeat':
      case 'snapshot':
        assert(false, `two leaders in term ${this.term}: ${this.id} and ${m.from}`);
        return;
      case 'appendResp':
        this.handleAppendResponse(m);
        return;
      case 'heartbeatResp':
        this.handleHeartbeatResponse(m);
        return;
      case 'snapshotResp':
        this.handleSnapshotResponse(m);
        return;
      default:
        return;
    }
  }

  /** §5.3 AppendEntries receiver. */
  private handleAppend(m: AppendRequest): void {
    const committed = this.log.committed;
    if (m.prevLogIndex < committed) {
      const skip = committed - m.prevLogIndex;
      if (m.entries.length <= skip) {
        // Already committed here: report our commit so the leader skips ahead.
        this.sendAppendResponse(m.from, committed);
        return;
      }
      // Entries up to our commit index are committed, so (Leader Completeness) the leader's are
      // the same: take only the rest. A merged append (coalesce.ts) may start below our commit
      // index and go on past it, and what goes past must count as it would have on its own.
      m = { ...m, prevLogIndex: committed, prevLogTerm: m.entries[skip - 1]!.term, entries: m.entries.slice(skip) };
    }
    const lastNewIndex = this.log.maybeAppend(m.prevLogIndex, m.prevLogTerm, m.commit, m.entries);
    if (lastNewIndex !== undefined) {
      this.syncConfs(m.entries);
      this.sendAppendResponse(m.from, lastNewIndex);
      return;
    }
    assert(m.prevLogIndex !== committed || committed === 0, `leader ${m.from} disagrees with ${this.id} at its commit index ${committed}`);
    const hint = this.log.findConflictByTerm(Math.min(m.prevLogIndex, this.log.lastIndex()), m.prevLogTerm);
    this.send<AppendResponse>(m.from, {
      type: 'appendResp',
      index: m.prevLogIndex,
      reject: true,
      rejectHintIndex: hint.index,
      rejectHintTerm: hint.term,
    });
  }

  private sendAppendResponse(to: NodeId, index: number): void {
    this.send<AppendResponse>(to, { type: 'appendResp', index, reject: false, rejectHintIndex: 0, rejectHintTerm: 0 });
  }

  private handleHeartbeat(m: HeartbeatRequest): void {
    // The leader sends min(match, commit), so commit ≤ our last index unless we lost our log
    // (a wiped disk). Then say where our log ends (hint term 0: "nothing you can match on"),
    // so the leader starts us again from there, by appends or a snapshot.
    if (m.commit <= this.log.lastIndex()) this.log.commitTo(m.commit);
    else this.send<AppendResponse>(m.from, { type: 'appendResp', index: m.commit, reject: true, rejectHintIndex: this.log.lastIndex(), rejectHintTerm: 0 });
    this.send<HeartbeatResponse>(m.from, { type: 'heartbeatResp', context: m.context });
  }

  private handleSnapshot(m: SnapshotChunk): void {
    if (m.meta.index <= this.log.committed) {
      // Everything the snapshot holds is committed here already; let the leader skip ahead.
      this.incoming = null;
      this.sendAppendResponse(m.from, this.log.committed);
      return;
    }
    let stream = this.incoming;
    const sameStream =
      stream !== null &&
      stream.from === m.from &&
      stream.term === m.term &&
      stream.meta.index === m.meta.index &&
      stream.meta.term === m.meta.term &&
      stream.totalBytes === m.totalBytes;
    if (!sameStream) {
      stream = null;
      if (m.offset !== 0 || m.totalBytes > this.config.maxSnapshotBytes) {
        this.incoming = null;
        this.send<SnapshotResponse>(m.from, { type: 'snapshotResp', snapshotIndex: m.meta.index, offset: 0 });
        return;
      }
      stream = { from: m.from, term: m.term, meta: m.meta, totalBytes: m.totalBytes, chunks: [], receivedBytes: 0 };
      this.incoming = stream;
    }
    assert(stream !== null, 'snapshot stream');
    if (m.offset !== stream.receivedBytes || m.offset + m.data.byteLength > stream.totalBytes) {
      // Out of order or duplicate: tell the leader where we are; it resends from there.
      this.send<SnapshotResponse>(m.from, { type: 'snapshotResp', snapshotIndex: m.meta.index, offset: stream.receivedBytes });
      return;
    }
    stream.chunks.push(m.data);
    stream.receivedBytes += m.data.byteLength;
    if (stream.receivedBytes < stream.totalBytes) {
      this.send<SnapshotResponse>(m.from, { type: 'snapshotResp', snapshotIndex: m.meta.index, offset: stream.receivedBytes });
      return;
    }
    this.incoming = null;
    const snapshot: Snapshot = { meta: stream.meta, data: new ChunkedSnapshotData(stream.chunks) };
    if (this.restore(snapshot)) this.sendAppendResponse(m.from, this.log.lastIndex());
    else this.sendAppendResponse(m.from, this.log.committed);
  }

  /** Installs a leader's snapshot unless our log already holds its last entry. */
  private restore(snapshot: Snapshot): boolean {
    if (snapshot.meta.index <= this.log.committed) return false;
    if (this.log.matchTerm(snapshot.meta.index, snapshot.meta.term)) {
      // Log matching: our prefix equals the snapshot's; keep the log and just commit.
      this.log.commitTo(snapshot.meta.index);
      return false;
    }
    this.log.restore(snapshot);
    this.confs = [{ index: snapshot.meta.index, term: snapshot.meta.term, conf: snapshot.meta.conf ?? this.conf() }];
    this.onConfChanged();
    return true;
  }

  private handleAppendResponse(m: AppendResponse): void {
    const pr = this.progress.get(m.from)!;
    pr.recentActive = true;
    if (m.reject && m.rejectHintTerm === 0 && m.rejectHintIndex < pr.match) {
      // Its whole log is shorter than what it had acknowledged: it lost its data (see resetAfterLoss).
      pr.resetAfterLoss(m.rejectHintIndex);
      this.sendAppend(m.from, true);
      return;
    }
    if (m.reject) {
      let nextProbe = m.rejectHintIndex;
      if (m.rejectHintTerm > 0) nextProbe = this.log.findConflictByTerm(m.rejectHintIndex, m.rejectHintTerm).index;
      if (pr.maybeDecrTo(m.index, nextProbe)) {
        if (pr.state === 'replicate') pr.becomeProbe();
        this.sendAppend(m.from, true);
      }
      return;
    }
    const wasPaused = pr.isPaused();
    const updated = pr.maybeUpdate(m.index);
    if (pr.state === 'snapshot') {
      const streamDone = m.index >= pr.stream!.snapshot.meta.index;
      if (pr.match + 1 >= this.log.firstIndex()) {
        // Whatever the follower installed, it can now catch up from the log.
        pr.becomeProbe();
        pr.becomeReplicate();
      } else if (streamDone) {
        // We compacted past this snapshot while it streamed: probe, which sends a newer one.
        pr.becomeProbe();
      } else if (!updated) {
        return;
      }
    } else if (!(updated || (pr.match === m.index && pr.state === 'probe'))) {
      return;
    } else if (pr.state === 'probe') {
      pr.becomeReplicate();
    } else {
      pr.inflights.freeLE(m.index);
    }
    if (this.maybeCommit()) this.sendPendingEntries();
    else if (wasPaused) this.sendAppend(m.from, true);
    if (this.role !== 'leader') return; // stepped down after committing its own removal
    // Fill the pipeline while the window has room.
    while (this.sendAppend(m.from, false)) {
      // each call sends one append
    }
    if (m.from === this.leadTransferee && pr.match === this.log.lastIndex()) this.sendTimeoutNow(m.from);
  }

  private handleHeartbeatResponse(m: HeartbeatResponse): void {
    const pr = this.progress.get(m.from)!;
    pr.recentActive = true;
    pr.probeSent = false;
    // A lost append would otherwise stall a full window forever: make room for one retry.
    if (pr.state === 'replicate' && pr.inflights.full()) pr.inflights.freeFirstOne();
    if (pr.match < this.log.lastIndex()) this.sendAppend(m.from, true);
    if (m.context !== '' && this.voters.includes(m.from) && this.readOnly.recordAck(m.context, m.from) >= this.quorum) {
      this.readStates.push(...this.readOnly.release(m.context));
    }
  }

  private handleSnapshotResponse(m: SnapshotResponse): void {
    const pr = this.progress.get(m.from)!;
    pr.recentActive = true;
    const stream = pr.stream;
    if (pr.state !== 'snapshot' || stream === null || m.snapshotIndex !== stream.snapshot.meta.index) return;
    if (m.offset > stream.ackedOffset) {
      stream.ackedOffset = m.offset;
      stream.progressed = true;
    } else if (m.offset < stream.ackedOffset || (m.offset === 0 && stream.sentOffset > 0)) {
      // The follower restarted or lost its stream: start again where it stands.
      stream.ackedOffset = m.offset;
      stream.sentOffset = m.offset;
    }
    stream.sentOffset = Math.max(stream.sentOffset, stream.ackedOffset);
    this.sendSnapshotChunks(m.from, pr, this.config.maxInflightSnapshotChunks);
  }

  // ---- replication --------------------------------------------------------------------------

  private appendEntries(commands: readonly Uint8Array[]): void {
    const first = this.log.lastIndex() + 1;
    const entries: Entry[] = commands.map((data, i) => ({ term: this.term, index: first + i, data }));
    this.log.append(entries);
  }

  /** Sends the next append to `to` if its progress allows; returns whether one was sent. */
  private sendAppend(to: NodeId, sendIfEmpty: boolean): boolean {
    const pr = this.progress.get(to)!;
    if (pr.isPaused()) return false;
    const prevLogIndex = pr.next - 1;
    const prevLogTerm = this.log.term(prevLogIndex);
    const hi = Math.min(this.log.lastIndex() + 1, pr.next + this.config.maxEntriesPerMsg);
    const entries = prevLogTerm === undefined ? undefined : this.log.slice(pr.next, hi, this.config.maxSizePerMsgBytes);
    if (prevLogTerm === undefined || entries === undefined) return this.sendSnapshot(to, pr);
    if (entries.length === 0 && !sendIfEmpty) return false;
    const bytes = entries.reduce((sum, e) => sum + entryBytes(e), 0);
    this.send<AppendRequest>(to, { type: 'append', prevLogIndex, prevLogTerm, entries, commit: this.log.committed });
    pr.sentEntries(entries.length, prevLogIndex + entries.length, bytes);
    return true;
  }

  private sendSnapshot(to: NodeId, pr: Progress): boolean {
    // A follower we have not heard from would only buffer a stream it cannot acknowledge.
    if (!pr.recentActive) return false;
    const snapshot = this.log.snapshot();
    assert(snapshot.meta.index > 0, `follower ${to} needs compacted entries but there is no snapshot`);
    pr.becomeSnapshot(snapshot);
    this.sendSnapshotChunks(to, pr, this.config.maxInflightSnapshotChunks);
    return true;
  }

  private sendSnapshotChunks(to: NodeId, pr: Progress, maxChunks: number): void {
    const stream = pr.stream!;
    const total = stream.snapshot.data.byteLength;
    if (total === 0) {
      // Nothing to stream: one empty chunk completes it.
      this.send<SnapshotChunk>(to, { type: 'snapshot', meta: stream.snapshot.meta, totalBytes: 0, offset: 0, data: new Uint8Array(0) });
      return;
    }
    const chunkBytes = this.config.snapshotChunkBytes;
    const windowEnd = Math.min(total, stream.ackedOffset + maxChunks * chunkBytes);
    while (stream.sentOffset < windowEnd) {
      const end = Math.min(stream.sentOffset + chunkBytes, total);
      this.send<SnapshotChunk>(to, {
        type: 'snapshot',
        meta: stream.snapshot.meta,
        totalBytes: total,
        offset: stream.sentOffset,
        data: stream.snapshot.data.subarray(stream.sentOffset, end),
      });
      stream.sentOffset = end;
    }
  }

  /** Resends from the last acknowledged byte, one chunk at a time, when a stream stopped moving. */
  private retryStalledSnapshots(): void {
    for (const [id, pr] of this.progress) {
      if (id === this.id || pr.state !== 'snapshot' || pr.stream === null) continue;
      if (!pr.stream.progressed) {
        pr.stream.sentOffset = pr.stream.ackedOffset;
        this.sendSnapshotChunks(id, pr, 1);
      }
      pr.stream.progressed = false;
    }
  }

  private bcastAppend(): void {
    if (this.role !== 'leader') return; // it stepped down on committing its own removal
    for (const id of this.progress.keys()) {
      if (id !== this.id) this.sendAppend(id, true);
    }
  }

  /**
   * After the commit index moved: appends go to followers with entries still to receive, and
   * they carry the new commit index; a follower with nothing to receive learns it from the next
   * append or heartbeat, as in the Raft paper (§5.3), not from an append of its own. An empty
   * append to every follower per commit would double the messages of a lone proposal (each is
   * answered), and on the leader those writes came before the reply to the client.
   */
  private sendPendingEntries(): void {
    if (this.role !== 'leader') return;
    const conf = this.conf();
    for (const id of this.progress.keys()) {
      // A removed member hears from no later leader: it learns its removal committed now.
      if (id !== this.id) this.sendAppend(id, !isMember(conf, id));
    }
  }

  private bcastHeartbeat(context: string): void {
    for (const [id, pr] of this.progress) {
      if (id === this.id) continue;
      // Never tell a follower to commit past what it is known to hold.
      const commit = Math.min(pr.match, this.log.committed);
      this.send<HeartbeatRequest>(id, { type: 'heartbeat', commit, context });
    }
  }

  /** Advances commit to the highest index a majority holds, if that entry is of this term. */
  private maybeCommit(): boolean {
    // Voters only: a learner's copy never makes an entry committed.
    const matches = this.quorumMembers().map((id) => this.progress.get(id)?.match ?? 0).sort((a, b) => b - a);
    const quorumIndex = matches[this.quorum - 1]!;
    if (!this.log.maybeCommit(quorumIndex, this.term)) return false;
    while (this.uncommitted.length > 0 && this.uncommitted[0]![0] <= this.log.committed) {
      this.uncommittedBytes -= this.uncommitted.shift()![1];
    }
    if (this.deferredReads.length > 0 && this.committedInCurrentTerm()) {
      const deferred = this.deferredReads;
      this.deferredReads = [];
      for (const context of deferred) this.startRead(context);
    }
    this.maybeStepDownRemoved();
    return true;
  }

  private committedInCurrentTerm(): boolean {
    return this.log.term(this.log.committed) === this.term;
  }

  private startRead(context: string): void {
    if (this.quorum === 1) {
      this.readStates.push({ index: this.log.committed, context });
      return;
    }
    this.readOnly.add(context, this.log.committed, this.id);
    this.bcastHeartbeat(context);
  }

  private send<T extends Message>(to: NodeId, body: Outgoing<T>): void {
    this.msgs.push({ term: this.term, ...body, from: this.id, to } as unknown as Message);
  }
}

function sameHardState(a: HardState, b: HardState): boolean {
  return a.term === b.term && a.vote === b.vote && a.commit === b.commit;
}

function sameSoftState(a: SoftState, b: SoftState): boolean {
  return a.leaderId === b.leaderId && a.role === b.role && a.term === b.term;
}
