// Deliberate bugs the simulator must catch, planted into one node's real core or real driver (by
// patching that instance only), so that a passing simulator is known to be able to fail.
import type { RaftCore } from '../../../master/raft/core.js';
import type { RaftNode, Transport } from '../../../master/raft/node.js';
import type { Ready } from '../../../master/raft/types.js';

export type PlantedBug =
  /** §5.4.2 ignored: a leader commits an entry of an earlier term once a majority holds it. */
  | 'commitByCounting'
  /** The driver sends a Ready's messages before its fsync completes (acknowledges unwritten entries). */
  | 'sendBeforeFsync'
  /** A pre-vote campaign raises the term, as a real campaign does (defeats pre-vote, §9.6 of the thesis). */
  | 'preVoteRaisesTerm'
  /** A leader never checks that it still hears from a majority (check-quorum off while configured on). */
  | 'noCheckQuorum'
  /** The storage loses the persisted term and vote on a crash (as if never fsynced). */
  | 'loseHardState'
  /** A leader starts a membership change while the previous one is not committed (two in flight). */
  | 'twoConfChanges'
  /** A leader counts learners' copies towards the commit quorum. */
  | 'learnerInQuorum';

interface CoreInternals {
  term: number;
  vote: string | null;
  becomePreCandidate(): void;
  quorumActive(): boolean;
  changePending(): string | null;
  quorumMembers(): readonly string[];
}

export function plantInCore(bug: PlantedBug | null, core: RaftCore): void {
  const internals = core as unknown as CoreInternals;
  if (bug === 'commitByCounting') {
    const log = core.log;
    log.maybeCommit = (index: number) => {
      if (index <= log.committed) return false;
      log.commitTo(index);
      return true;
    };
  } else if (bug === 'preVoteRaisesTerm') {
    const becomePreCandidate = internals.becomePreCandidate.bind(core);
    internals.becomePreCandidate = () => {
      becomePreCandidate();
      internals.term += 1;
      internals.vote = null;
    };
  } else if (bug === 'noCheckQuorum') {
    internals.quorumActive = () => true;
  } else if (bug === 'twoConfChanges') {
    internals.changePending = () => null;
  } else if (bug === 'learnerInQuorum') {
    internals.quorumMembers = () => [...core.conf().voters, ...core.conf().learners];
  }
}

interface DriverInternals {
  readonly options: { readonly transport: Transport };
  handleReady(core: RaftCore, ready: Ready): Promise<void>;
}

export function plantInDriver(bug: PlantedBug | null, node: RaftNode): void {
  if (bug !== 'sendBeforeFsync') return;
  const internals = node as unknown as DriverInternals;
  const handleReady = internals.handleReady.bind(node);
  internals.handleReady = (core, ready) => {
    if (ready.messages.length > 0) internals.options.transport.send(ready.messages);
    return handleReady(core, { ...ready, messages: [] });
  };
}
