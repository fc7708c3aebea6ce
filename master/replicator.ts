import type { Command, CommandResult } from './commands.js';

/**
 * The seam between the master's services and how its state is made durable and agreed on.
 * LocalLog (one master, an fsynced log) and the Raft group both implement it.
 */
export interface Replicator {
  /** Makes `cmd` durable (and agreed), applies it, and answers apply()'s result. */
  propose(cmd: Command): Promise<CommandResult>;
  /** Resolves when a read of the state now would be linearizable. */
  readBarrier(): Promise<void>;
  isLeader(): boolean;
  /** host:port of the leader, when known and not this master. */
  leaderAddr(): string | undefined;
  /** Subscribes to becoming leader / losing leadership. */
  onLeaderChange(fn: (isLeader: boolean) => void): void;
  status(): { role: 'leader' | 'follower' | 'candidate'; term: number; commitIndex: number; appliedIndex: number };
  close(): Promise<void>;
}
