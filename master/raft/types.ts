// Wire and storage types of the Raft module. Everything here is plain data so that the core can be
// driven step by step by tests and a simulator, and so that the codec can validate it at the edge.

/** A member of the Raft group. Masters are named by a short stable id ("m1"), not by address. */
export type NodeId = string;

/**
 * One log entry. An entry with empty `data` is the no-op a new leader appends to commit entries
 * of earlier terms (§5.4.2); the driver never hands it to the state machine.
 */
export interface Entry {
  readonly term: number;
  readonly index: number;
  readonly data: Uint8Array;
}

/** What must be on disk before any message that depends on it leaves the node (Figure 2). */
export interface HardState {
  readonly term: number;
  /** The candidate voted for in `term`, or null. */
  readonly vote: NodeId | null;
  readonly commit: number;
}

/**
 * The members of the group as of some log index. Voters elect leaders and count towards every
 * quorum; learners only receive the log (a new master catching up before it is promoted).
 */
export interface ConfState {
  readonly voters: readonly NodeId[];
  readonly learners: readonly NodeId[];
  /** Where each member is reached (host:port), when the user of the module keeps it here (the master does). */
  readonly addresses?: Readonly<Record<NodeId, string>>;
}

export interface SnapshotMeta {
  /** Index and term of the last entry the snapshot covers. */
  readonly index: number;
  readonly term: number;
  /**
   * The configuration in effect at `index` (thesis §4.1: a snapshot carries the latest
   * configuration it covers, since the entry that made it is compacted away). Absent in snapshots
   * written before membership changes existed: then the configured peers are the group.
   */
  readonly conf?: ConfState;
}

/**
 * A snapshot's bytes, read a range at a time: a Uint8Array, a list of received pieces
 * (ChunkedSnapshotData) or a file (FileStorage), so no snapshot needs one buffer of its size.
 */
export interface SnapshotData {
  readonly byteLength: number;
  /** Bytes [start, end): a view or a copy, at most `end - start` bytes. */
  subarray(start: number, end: number): Uint8Array;
}

export interface Snapshot {
  readonly meta: SnapshotMeta;
  readonly data: SnapshotData;
}

export const EMPTY_SNAPSHOT: Snapshot = Object.freeze({
  meta: Object.freeze({ index: 0, term: 0 }),
  data: new Uint8Array(0),
});

export type Role = 'follower' | 'preCandidate' | 'candidate' | 'leader';

interface Envelope {
  readonly from: NodeId;
  readonly to: NodeId;
  /** The sender's term; for a pre-vote request, the term it would campaign in. */
  readonly term: number;
}

export interface VoteRequest extends Envelope {
  readonly type: 'preVote' | 'vote';
  readonly lastLogIndex: number;
  readonly lastLogTerm: number;
  /**
   * A campaign the leader asked for (TimeoutNow, thesis §3.10): voters grant it even while they
   * heard from that leader recently, which they would otherwise ignore (check-quorum lease).
   */
  readonly transfer?: boolean;
}

/** Leadership transfer (thesis §3.10): the leader tells an up-to-date voter to campaign at once. */
export interface TimeoutNow extends Envelope {
  readonly type: 'timeoutNow';
}

export interface VoteResponse extends Envelope {
  readonly type: 'preVoteResp' | 'voteResp';
  readonly reject: boolean;
}

export interface AppendRequest extends Envelope {
  readonly type: 'append';
  readonly prevLogIndex: number;
  readonly prevLogTerm: number;
  readonly entries: readonly Entry[];
  readonly commit: number;
}

export interface AppendResponse extends Envelope {
  readonly type: 'appendResp';
  /**
   * On success: the highest index now known to match the leader. On rejection: the
   * prevLogIndex that did not match.
   */
  readonly index: number;
  readonly reject: boolean;
  /**
   * Fast backtracking hint on rejection: the follower's largest index `rejectHintIndex` whose term
   * (`rejectHintTerm`) is ≤ the rejected prevLogTerm, so the leader skips a whole term per
   * round trip instead of one entry.
   */
  readonly rejectHintIndex: number;
  readonly rejectHintTerm: number;
}

export interface HeartbeatRequest extends Envelope {
  readonly type: 'heartbeat';
  /** min(follower's match, leader's commit): never points past what the follower holds. */
  readonly commit: number;
  /** ReadIndex context echoed back by the follower; "" when none. */
  readonly context: string;
}

export interface HeartbeatResponse extends Envelope {
  readonly type: 'heartbeatResp';
  readonly context: string;
}

/** One chunk of an InstallSnapshot stream; chunks are sent in order, bounded in size. */
export interface SnapshotChunk extends Envelope {
  readonly type: 'snapshot';
  readonly meta: SnapshotMeta;
  readonly totalBytes: number;
  readonly offset: number;
  readonly data: Uint8Array;
}

/** Acknowledges the bytes of a snapshot stream received so far (or asks to restart at `offset`). */
export interface SnapshotResponse extends Envelope {
  readonly type: 'snapshotResp';
  readonly snapshotIndex: number;
  /** The next byte offset the follower expects. */
  readonly offset: number;
}

export type Message =
  | VoteRequest
  | VoteResponse
  | AppendRequest
  | AppendResponse
  | HeartbeatRequest
  | HeartbeatResponse
  | SnapshotChunk
  | SnapshotResponse
  | TimeoutNow;

export type MessageType = Message['type'];

export const MESSAGE_TYPES: readonly MessageType[] = [
  'preVote',
  'preVoteResp',
  'vote',
  'voteResp',
  'append',
  'appendResp',
  'heartbeat',
  'heartbeatResp',
  'snapshot',
  'snapshotResp',
  'timeoutNow',
];

/** A linearizable read may be served once the state machine has applied `index`. */
export interface ReadState {
  readonly index: number;
  readonly context: string;
}

export interface SoftState {
  readonly leaderId: NodeId | null;
  readonly role: Role;
  readonly term: number;
}

/**
 * A batch of work for the driver. Order matters: persist `snapshot`, `entries` and `hardState`
 * (one fsync), then send `messages`, then apply `committedEntries`, then call `advance(ready)`.
 * The one exception is `sendBeforePersist`.
 */
export interface Ready {
  readonly softState: SoftState | null;
  readonly hardState: HardState | null;
  readonly snapshot: Snapshot | null;
  readonly entries: readonly Entry[];
  readonly committedEntries: readonly Entry[];
  readonly messages: readonly Message[];
  readonly readStates: readonly ReadState[];
  /**
   * True when `messages` may leave while this batch is still being persisted: a leader whose
   * term and vote are already on disk only sends appends (and heartbeats) of entries it holds,
   * and counts itself towards a quorum only after `advance` (§10.2.1 of Ongaro's thesis; etcd's
   * leader does the same). So the leader's fsync and its followers' run in parallel.
   */
  readonly sendBeforePersist: boolean;
}

/**
 * Whether a Ready only moves the commit index past what `persisted` holds: no entries, no
 * snapshot, the same term and vote. Nothing in it has to be on disk before its committed entries
 * are applied (they are on a majority's disks already, and a lost commit index is relearned from
 * the leader), so a driver may apply first and write the commit index afterwards.
 */
export function onlyMovesCommit(ready: Ready, persisted: HardState): boolean {
  return (
    ready.snapshot === null && ready.entries.length === 0 && ready.hardState !== null &&
    ready.hardState.term === persisted.term && ready.hardState.vote === persisted.vote
  );
}

export function entryBytes(entry: Entry): number {
  // The fixed part approximates term + index + framing; it keeps empty entries from being free.
  return entry.data.byteLength + 24;
}

export function assert(condition: unknown, message: string): asserts condition {
  if (!condition) throw new Error(`raft invariant violated: ${message}`);
}
