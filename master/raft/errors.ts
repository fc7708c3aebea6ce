// Errors the Raft module surfaces to its user (the master), each with a stable code. The master
// maps them to its HTTP errors (RAFT_NOT_LEADER → NOT_LEADER 421 with the leader's address).
import type { NodeId } from './types.js';

export type RaftErrorCode =
  | 'RAFT_NOT_LEADER'
  | 'RAFT_BUSY'
  | 'RAFT_STOPPED'
  | 'RAFT_PROPOSAL_TOO_LARGE'
  | 'RAFT_SESSION_EXPIRED'
  | 'RAFT_STALE_SEQUENCE'
  | 'RAFT_RESULT_TOO_LARGE'
  | 'RAFT_BAD_MESSAGE'
  /** A command that starts like a configuration entry (conf-change.ts). */
  | 'RAFT_BAD_COMMAND'
  /** A membership change refused: another is pending, the learner is behind, no quorum would be left, ... */
  | 'RAFT_CONF_CHANGE_REFUSED'
  /** A leadership transfer abandoned after an election timeout. */
  | 'RAFT_TRANSFER_FAILED';

export class RaftError extends Error {
  readonly code: RaftErrorCode;

  constructor(code: RaftErrorCode, message: string) {
    super(message);
    this.name = 'RaftError';
    this.code = code;
  }
}

/**
 * This node is not (or stopped being) the leader. `leaderId` is the leader it knows of, if any.
 * `outcomeUnknown` is true when the command was already in the log: it may still commit, so
 * retry it with the same session sequence number (exactly-once), never with a new one.
 */
export class NotLeaderError extends RaftError {
  readonly leaderId: NodeId | null;
  readonly outcomeUnknown: boolean;

  constructor(leaderId: NodeId | null, outcomeUnknown: boolean) {
    const hint = leaderId === null ? 'no leader is known yet; retry shortly' : `retry on leader ${leaderId}`;
    super('RAFT_NOT_LEADER', `not the Raft leader: ${hint}`);
    this.name = 'NotLeaderError';
    this.leaderId = leaderId;
    this.outcomeUnknown = outcomeUnknown;
  }
}
