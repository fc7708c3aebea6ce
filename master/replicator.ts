import type { Command, CommandResult } from './commands.js';

/** A client session's place: a retried (clientId, seq) is applied once and answered the first result. */
export interface SessionRef {
  clientId: string;
  seq: number;
}

/** Where this master's replica of the state stands. */
export interface ReplicatorStatus {
  role: 'leader' | 'follower' | 'candidate';
  term: number;
  commitIndex: number;
  appliedIndex: number;
  leaderId: string | null;
  /** The latest snapshot's index here, 0 before the first. */
  snapshotIndex: number;
  /** Snapshots installed from the leader since this master started. */
  snapshotsReceived: number;
}

/**
 * The seam between the master's services and how its state is made durable and agreed on.
 * RaftReplicator implements it (a single master is a Raft group of one).
 */
export interface Replicator {
  /** Makes `cmd` durable (and agreed), applies it, and answers apply()'s result. */
  propose(cmd: Command, session?: SessionRef): Promise<CommandResult>;
  /** Opens a client session for exactly-once commands; answers its id. */
  registerSession(): Promise<string>;
  /** Resolves when a read of the state now would be linearizable. */
  readBarrier(): Promise<void>;
  isLeader(): boolean;
  /** host:port of the leader, when known and not this master. */
  leaderAddr(): string | undefined;
  /** Subscribes to becoming leader / losing leadership. */
  onLeaderChange(fn: (isLeader: boolean) => void): void;
  status(): ReplicatorStatus;
  close(): Promise<void>;
}
