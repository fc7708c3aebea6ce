import { join } from 'node:path';
import type { ConnectionOptions } from 'node:tls';
import { DfsError } from '../common/errors.js';
import type { Logger } from '../common/log.js';
import type { Command, CommandResult } from './commands.js';
import {
  encodeCommand, encodeRaw, encodeRegister, FileStorage, NotLeaderError, RaftError, RaftNode,
  SessionStateMachine, StreamTransport, unwrapSessionResult, type SnapshotCapture, type SnapshotData, type StateMachine,
} from './raft/index.js';
import { guardedSink, raftStreamSigner } from './peer-guard.js';
import type { ConfChange } from './raft/conf-change.js';
import type { ConfState } from './raft/types.js';
import type { MessageSink } from './raft/index.js';
import type { RaftHooks } from './metrics.js';
import type { Replicator, ReplicatorStatus, SessionRef } from './replicator.js';
import { MasterState } from './state/index.js';

export interface RaftReplicatorOptions {
  id: string;
  /** Every master of the group, this one included: id → host:port. */
  peers: Record<string, string>;
  /** Sent when this master opens a Raft stream, so a master of another cluster refuses it. */
  clusterId: string;
  dataDir: string;
  /** Signs each Raft stream opening (master/peer-guard.ts). */
  secret: Buffer;
  /** Dial the other masters over mutual TLS; absent: plain TCP. */
  tls?: ConnectionOptions;
  /** One Raft tick; the election timeout is 10–20 ticks. */
  tickIntervalMs: number;
  snapshotEveryEntries: number;
  /** Raft log entries kept behind a snapshot (RaftNodeOptions.compactKeepEntries). */
  compactKeepEntries?: number;
  /** Metrics hooks (master/metrics.ts); none in tests that do not look. */
  hooks?: RaftHooks;
  /** A master that joined a running group: the voters then (it is a learner until promoted). */
  joinedVoters?: string[];
  /** A configuration committed: the group's addresses now (to record in membership.json). */
  onMembers?: (members: Record<string, string>) => void;
  /** A committed configuration no longer names this master: it should stop. */
  onRemoved?: () => void;
}

/** How often the leader tries to promote a learner (refused until it is close to the leader's log). */
const PROMOTE_EVERY_MS = 500;

export interface MastersReply {
  leader: string | null;
  term: number;
  lastIndex: number;
  /** Log index of the configuration in effect (0: the group the masters were started with). */
  confIndex: number;
  members: { id: string; addr: string | null; role: 'voter' | 'learner'; match: number | null }[];
}

/** `GET /v1/raft/group`: one master's view of the group's configuration (the cluster id is added by the route). */
export interface GroupReply {
  id: string;
  term: number;
  leader: string | null;
  leaderAddr: string | null;
  confIndex: number;
  committed: boolean;
  voters: string[];
  learners: string[];
  addresses: Record<string, string>;
}

/** The master's state behind Raft's StateMachine seam: commands are JSON, snapshots are MasterState's. */
class MasterStateMachine implements StateMachine {
  constructor(public state: MasterState) {}

  apply(data: Uint8Array): CommandResult {
    return this.state.apply(JSON.parse(Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('utf8')) as Command);
  }

  /** A capture now; its pieces are written in the background (master/state/snapshot.ts). */
  snapshot(): SnapshotCapture {
    const capture = this.state.capture();
    return { pieces: () => capture.pieces(), release: () => capture.release() };
  }

  restore(data: SnapshotData): void {
    this.state = MasterState.restore(data);
  }
}

/** Maps the Raft module's errors onto the master's stable error codes. */
function toDfs(err: unknown, leaderAddr: (id: string | null) => string | undefined, masters: Record<string, string>): DfsError {
  if (err instanceof NotLeaderError) {
    const leader = leaderAddr(err.leaderId);
    const message = err.outcomeUnknown
      ? 'leadership changed while the operation was being committed; it may or may not have been applied'
      : leader ? `not the leader; the leader is ${leader}` : 'not the leader, and no leader is known yet; retry shortly';
    // The whole group, so a client that knew one master learns them all (as from the service's own NOT_LEADER).
    return new DfsError('NOT_LEADER', message, { leader: leader ?? null, masters });
  }
  if (err instanceof RaftError) {
    switch (err.code) {
      case 'RAFT_BUSY':
      case 'RAFT_STOPPED':
        return new DfsError('UNAVAILABLE', err.message);
      case 'RAFT_PROPOSAL_TOO_LARGE':
        return new DfsError('BODY_TOO_LARGE', err.message);
      case 'RAFT_SESSION_EXPIRED':
        return new DfsError('SESSION_EXPIRED', 'the client session expired; the outcome of its last operation is unknown (run the command again)');
      case 'RAFT_STALE_SEQUENCE':
        return new DfsError('INVALID_ARGUMENT', 'request sequence number is older than one already applied for this session');
      default:
        return new DfsError('INTERNAL', err.message);
    }
  }
  return err instanceof DfsError ? err : new DfsError('INTERNAL', String(err));
}

/**
 * The master group's Replicator: every command goes through the Raft log (fsynced on a majority
 * before it is applied), reads wait for a ReadIndex barrier. A single master is a group of one.
 */
export class RaftReplicator implements Replicator {
  private readonly node: RaftNode;
  private readonly machine: MasterStateMachine;
  private readonly transport: StreamTransport;
  private readonly peers: Record<string, string>;
  private readonly storage: FileStorage;
  /** Where the Raft streams deliver: the node, behind the guard against impossible leader messages. */
  readonly inbound: MessageSink;

  private constructor(parts: { node: RaftNode; machine: MasterStateMachine; transport: StreamTransport; peers: Record<string, string>; storage: FileStorage; log: Logger }) {
    this.inbound = guardedSink(parts.node, parts.log);
    this.node = parts.node;
    this.machine = parts.machine;
    this.transport = parts.transport;
    this.peers = parts.peers;
    this.storage = parts.storage;
  }

  static async open(opts: RaftReplicatorOptions, log: Logger): Promise<RaftReplicator> {
    const hooks = opts.hooks;
    const storage = await FileStorage.open({ dir: join(opts.dataDir, 'raft'), observer: hooks?.storage });
    const machine = new MasterStateMachine(new MasterState());
    let node: RaftNode | undefined;
    let self: RaftReplicator | undefined;
    const transport = new StreamTransport({
      peers: opts.peers,
      headers: raftStreamSigner(opts.secret, opts.id, opts.clusterId),
      tls: opts.tls,
      onUnreachable: (peer) => node?.reportUnreachable(peer),
      onSent: hooks?.onSent,
      onDropped: hooks?.onDropped,
    });
    node = new RaftNode({
      id: opts.id,
      peers: opts.joinedVoters ?? Object.keys(opts.peers),
      learners: opts.joinedVoters ? [opts.id] : [],
      onConfCommitted: (conf) => self?.confCommitted(conf, opts.onMembers),
      onRemoved: () => {
        log.warn({ id: opts.id }, 'this master was removed from the group; stopping');
        opts.onRemoved?.();
      },
      storage,
      transport,
      stateMachine: new SessionStateMachine(machine),
      tickIntervalMs: opts.tickIntervalMs,
      snapshotEveryEntries: opts.snapshotEveryEntries,
      compactKeepEntries: opts.compactKeepEntries,
      observer: hooks?.node,
      onFatal: (err) => {
        // A failed fsync leaves the log in an unknown state: stop rather than answer wrongly.
        log.fatal({ err }, 'raft storage failed; stopping');
        process.exit(70);
      },
    });
    node.start();
    self = new RaftReplicator({ node, machine, transport, peers: opts.peers, storage, log });
    return self;
  }

  /** Keeps the group's addresses (shared with the peer guard and the service) in step with the log. */
  private confCommitted(conf: ConfState, onMembers: ((members: Record<string, string>) => void) | undefined): void {
    if (conf.addresses === undefined) return;
    const members = [...conf.voters, ...conf.learners];
    for (const [id, addr] of Object.entries(conf.addresses)) {
      this.peers[id] = addr;
      if (id !== this.node.id) this.transport.addPeer(id, addr);
    }
    for (const id of Object.keys(this.peers)) if (!members.includes(id) && id !== this.node.id) delete this.peers[id];
    onMembers?.({ ...this.peers });
  }

  /**
   * Adds a master as a learner (its address goes into the configuration entry). It is promoted
   * to voter by the leader once it is close to the leader's log (promoteLearners).
   */
  async addMaster(id: string, addr: string): Promise<ConfState> {
    const known = this.peers[id];
    if (known !== undefined) throw new DfsError('MEMBERSHIP_CHANGE_REFUSED', `${id} is already a member (at ${known})`);
    // The leader must reach it, and accept its stream, from the moment the entry is appended.
    this.peers[id] = addr;
    this.transport.addPeer(id, addr);
    try {
      return await this.changeConf({ type: 'addLearner', node: id, addresses: { ...this.peers } });
    } catch (err) {
      if (!this.node.membership().conf.learners.includes(id)) delete this.peers[id];
      throw err;
    }
  }

  /** Removes a master (a voter or a learner); a removed leader steps down once that commits. */
  removeMaster(id: string): Promise<ConfState> {
    const addresses = { ...this.peers };
    delete addresses[id];
    return this.changeConf({ type: 'remove', node: id, addresses });
  }

  /** On the leader: promotes a learner once the core says it is close enough (one at a time). */
  promoteLearners(log: Logger): () => void {
    const timer = setInterval(() => {
      if (!this.isLeader()) return;
      const learner = this.node.membership().conf.learners[0];
      if (learner === undefined) return;
      this.node.proposeConfChange({ type: 'promote', node: learner })
        .then(() => log.info({ id: learner }, 'promoted a learner to voter'), () => undefined);
    }, PROMOTE_EVERY_MS);
    timer.unref();
    return () => clearInterval(timer);
  }

  private async changeConf(change: ConfChange): Promise<ConfState> {
    try {
      return await this.node.proposeConfChange(change);
    } catch (err) {
      if (err instanceof RaftError && err.code === 'RAFT_CONF_CHANGE_REFUSED') throw new DfsError('MEMBERSHIP_CHANGE_REFUSED', err.message);
      throw toDfs(err, this.leaderAddrOf, this.peers);
    }
  }

  get raftNode(): RaftNode {
    return this.node;
  }

  /** Size of the latest Raft snapshot's data (0 before the first). */
  get snapshotBytes(): number {
    return this.storage.snapshot().data.byteLength;
  }

  get state(): MasterState {
    return this.machine.state;
  }

  private leaderAddrOf = (id: string | null): string | undefined => (id === null ? undefined : this.peers[id]);

  async propose(cmd: Command, session?: SessionRef): Promise<CommandResult> {
    const payload = Buffer.from(JSON.stringify(cmd), 'utf8');
    const data = session ? encodeCommand(session.clientId, session.seq, payload) : encodeRaw(payload);
    try {
      const result = await this.node.propose(data);
      // A raw command's answer is the state machine's own; only a session command's is wrapped.
      return (session ? unwrapSessionResult(result) : result) as CommandResult;
    } catch (err) {
      throw toDfs(err, this.leaderAddrOf, this.peers);
    }
  }

  async registerSession(): Promise<string> {
    try {
      return unwrapSessionResult(await this.node.propose(encodeRegister())) as string;
    } catch (err) {
      throw toDfs(err, this.leaderAddrOf, this.peers);
    }
  }

  async readBarrier(): Promise<void> {
    try {
      await this.node.linearizableRead();
    } catch (err) {
      throw toDfs(err, this.leaderAddrOf, this.peers);
    }
  }

  /** The master group as this master sees it (on the leader, with how far each member's log matches). */
  masters(): MastersReply {
    const s = this.node.status();
    const { conf, confIndex, progress } = this.node.membership();
    const member = (id: string, role: 'voter' | 'learner') => ({ id, addr: this.peers[id] ?? null, role, match: progress[id]?.match ?? null });
    return {
      leader: s.leaderId, term: s.term, lastIndex: s.lastIndex, confIndex,
      members: [...conf.voters.map((id) => member(id, 'voter')), ...conf.learners.map((id) => member(id, 'learner'))],
    };
  }

  /**
   * The configuration this master holds (`GET /v1/raft/group`): what a new master joins with
   * (`--join <addr>`), and what tells a master removed while it was down that it was removed.
   * `committed`: the configuration's entry is committed here, so the group really made it.
   */
  group(): GroupReply {
    const s = this.node.status();
    const { conf, confIndex } = this.node.membership();
    const addresses: Record<string, string> = {};
    for (const id of [...conf.voters, ...conf.learners]) if (this.peers[id] !== undefined) addresses[id] = this.peers[id]!;
    return {
      id: this.node.id, term: s.term, leader: s.leaderId, leaderAddr: s.leaderId === null ? null : this.peers[s.leaderId] ?? null,
      confIndex, committed: confIndex <= s.commitIndex, voters: [...conf.voters], learners: [...conf.learners], addresses,
    };
  }

  /**
   * Hands leadership to `to` (or the most caught-up voter) and waits until this master stops
   * leading: the group elects the new leader at once, without an election timeout (thesis §3.10).
   */
  async transferLeadership(to?: string): Promise<{ from: string; to: string; term: number }> {
    const from = this.node.id;
    let target: string;
    try {
      target = await this.node.transferLeadership(to);
    } catch (err) {
      if (err instanceof RaftError && err.code === 'RAFT_CONF_CHANGE_REFUSED') throw new DfsError('MEMBERSHIP_CHANGE_REFUSED', err.message);
      if (err instanceof RaftError && err.code === 'RAFT_TRANSFER_FAILED') throw new DfsError('UNAVAILABLE', `${err.message}; retry`);
      throw toDfs(err, this.leaderAddrOf, this.peers);
    }
    // The term this master saw last; the new leader's is one more unless it lost the campaign.
    return { from, to: target, term: this.node.status().term };
  }

  /** Before a clean stop: a leader hands over so the others skip an election timeout. Never throws. */
  async handOver(log: Logger): Promise<void> {
    if (!this.isLeader()) return;
    const before = this.node.status().term;
    try {
      const moved = await this.transferLeadership();
      log.info({ from: moved.from, to: moved.to, termBefore: before, term: moved.term }, 'handed leadership over before stopping');
    } catch (err) {
      log.warn({ err: (err as Error).message }, 'could not hand leadership over before stopping; the others will elect a leader');
    }
  }

  isLeader(): boolean {
    return this.node.status().role === 'leader';
  }

  leaderAddr(): string | undefined {
    const s = this.node.status();
    return s.leaderId === null || s.leaderId === this.node.id ? undefined : this.peers[s.leaderId];
  }

  onLeaderChange(fn: (isLeader: boolean) => void): void {
    this.node.onLeaderChange((c) => fn(c.isLeader));
  }

  status(): ReplicatorStatus {
    const s = this.node.status();
    const role = s.role === 'leader' || s.role === 'candidate' ? s.role : 'follower';
    return { role, term: s.term, commitIndex: s.commitIndex, appliedIndex: s.appliedIndex, leaderId: s.leaderId, snapshotIndex: s.snapshotIndex, snapshotsReceived: s.snapshotsReceived };
  }

  async close(): Promise<void> {
    await this.node.stop();
    await this.transport.close();
  }
}
