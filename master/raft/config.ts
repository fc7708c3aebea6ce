// Configuration of the Raft core. Every field says what it trades; defaults suit a 3–5 master
// group on one LAN with a 100 ms tick (node.ts), i.e. 1 s to 2 s election timeouts.
import type { NodeId } from './types.js';

export interface RaftConfig {
  /** This node's id; must be one of `peers` or `learners`. */
  readonly id: NodeId;
  /**
   * The voters the group starts with (bootstrap). Once the log or a snapshot holds a
   * configuration (conf-change.ts), that configuration wins: membership changes at run time.
   */
  readonly peers: readonly NodeId[];
  /** Learners the group starts with: a master joining an existing group names itself here. */
  readonly learners: readonly NodeId[];
  /**
   * How far (in entries) a learner may be behind the leader's last index and still be promoted
   * to voter; the lag must also be within a tenth of the log (etcd's rule). Larger: a busy
   * cluster promotes sooner; smaller: a new voter that counts towards quorums right away, so a
   * promotion never makes commits wait for a voter still catching up.
   */
  readonly maxLearnerLagEntries: number;
  /**
   * Ticks a follower waits without hearing from a leader before campaigning; the actual timeout
   * is drawn uniformly from [electionTick, 2·electionTick) so split votes resolve quickly.
   * Larger: fewer spurious elections on a slow network or a paused process (GC, fsync stalls),
   * but a longer outage when a leader really dies. Must exceed heartbeatTick; we suggest
   * electionTick ≈ 10 × heartbeatTick so a few lost heartbeats never depose a healthy leader.
   */
  readonly electionTick: number;
  /**
   * Ticks between leader heartbeats. Smaller: commit indexes reach followers sooner, lost
   * appends are retried sooner and ReadIndex rounds confirm faster, at the price of more
   * messages per second per follower.
   */
  readonly heartbeatTick: number;
  /**
   * Upper bound on the entry bytes in one append. Larger: more throughput per round trip when
   * catching up; smaller: less head-of-line blocking and bounded request bodies on the wire.
   */
  readonly maxSizePerMsgBytes: number;
  /** Upper bound on the number of entries in one append, for the same trade as maxSizePerMsgBytes. */
  readonly maxEntriesPerMsg: number;
  /**
   * Appends in flight to one follower in replicate state (pipelining). Larger: higher throughput
   * over a high-latency link; smaller: less memory and less wasted work when the follower
   * rejects and the window is resent.
   */
  readonly maxInflightMsgs: number;
  /** Entry bytes in flight to one follower; bounds transport buffers like maxInflightMsgs does. */
  readonly maxInflightBytes: number;
  /**
   * Bytes of proposed but uncommitted entries a leader accepts before it refuses proposals.
   * Bounds leader memory and the unapplied backlog when followers are slow or partitioned,
   * at the price of back-pressure on clients.
   */
  readonly maxUncommittedEntriesBytes: number;
  /** Bytes of committed entries handed to the state machine per Ready: apply latency vs batching. */
  readonly maxCommittedBytesPerReady: number;
  /**
   * Bytes of snapshot data per InstallSnapshot chunk. Larger: fewer round trips for a big
   * snapshot; smaller: bounded request bodies and memory per message.
   */
  readonly snapshotChunkBytes: number;
  /** Snapshot chunks in flight to one follower: throughput of a snapshot transfer vs buffers. */
  readonly maxInflightSnapshotChunks: number;
  /** A follower refuses snapshot streams larger than this (it buffers one in memory). */
  readonly maxSnapshotBytes: number;
  /** Outstanding ReadIndex requests on the leader; beyond it reads are refused (back-pressure). */
  readonly maxPendingReads: number;
  /**
   * Pre-vote (thesis §9.6): a node first asks whether it could win before incrementing its term,
   * so a node rejoining after a partition does not depose a healthy leader. Costs one extra
   * round trip per election.
   */
  readonly preVote: boolean;
  /**
   * Check-quorum: a leader that has not heard from a majority within an election timeout steps
   * down, and followers that heard from a leader recently ignore vote requests. Stops a
   * partitioned leader from serving stale state to clients that can reach it; costs leader
   * availability when the network flaps for longer than an election timeout.
   */
  readonly checkQuorum: boolean;
  /** Source of randomness in [0, 1): seeded in tests so every run is reproducible. */
  readonly random: () => number;
  /** Index the state machine has already applied on start (its snapshot's index). */
  readonly applied: number;
}

export const RAFT_DEFAULTS = {
  electionTick: 10,
  heartbeatTick: 1,
  maxSizePerMsgBytes: 1024 * 1024,
  maxEntriesPerMsg: 1024,
  maxInflightMsgs: 64,
  maxInflightBytes: 16 * 1024 * 1024,
  maxUncommittedEntriesBytes: 64 * 1024 * 1024,
  maxCommittedBytesPerReady: 16 * 1024 * 1024,
  snapshotChunkBytes: 1024 * 1024,
  maxInflightSnapshotChunks: 4,
  maxSnapshotBytes: 2 * 1024 * 1024 * 1024 - 1,
  maxPendingReads: 4096,
  preVote: true,
  checkQuorum: true,
  applied: 0,
  learners: [] as readonly string[],
  maxLearnerLagEntries: 1000,
} as const;

export type RaftConfigInput = Pick<RaftConfig, 'id' | 'peers' | 'random'> & Partial<RaftConfig>;

export function resolveRaftConfig(input: RaftConfigInput): RaftConfig {
  const config: RaftConfig = { ...RAFT_DEFAULTS, ...stripUndefined(input) };
  validateRaftConfig(config);
  return config;
}

function stripUndefined<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T;
}

export function validateRaftConfig(config: RaftConfig): void {
  const positive: (keyof RaftConfig)[] = [
    'electionTick',
    'heartbeatTick',
    'maxSizePerMsgBytes',
    'maxEntriesPerMsg',
    'maxInflightMsgs',
    'maxInflightBytes',
    'maxUncommittedEntriesBytes',
    'maxCommittedBytesPerReady',
    'snapshotChunkBytes',
    'maxInflightSnapshotChunks',
    'maxSnapshotBytes',
    'maxPendingReads',
    'maxLearnerLagEntries',
  ];
  for (const key of positive) {
    const value = config[key];
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value <= 0) {
      throw new RangeError(`raft config ${key} must be a positive integer, got ${String(value)}`);
    }
  }
  if (config.electionTick <= config.heartbeatTick) {
    throw new RangeError('raft config electionTick must be greater than heartbeatTick');
  }
  if (!config.peers.includes(config.id) && !config.learners.includes(config.id)) {
    throw new RangeError(`raft config peers or learners must include id ${config.id}`);
  }
  const members = [...config.peers, ...config.learners];
  if (new Set(members).size !== members.length) throw new RangeError('raft config peers and learners have duplicates');
  if (config.peers.length === 0) throw new RangeError('raft config peers must name at least one voter');
  if (!Number.isSafeInteger(config.applied) || config.applied < 0) throw new RangeError('raft config applied must be ≥ 0');
}
