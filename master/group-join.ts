// The two ends of a master's life in a group that the Raft log alone cannot tell it.
//
// Joining: `dfs admin masters add m4=host:port` puts m4 in the group as a learner; m4 then starts
// with an empty folder and `--join <address of any member>`, and asks that member for the group
// (GET /v1/raft/group, signed with the cluster secret): the cluster id and every member's
// address, which it needs before its first Raft message. A member that does not list it yet
// (a follower a moment behind) names the leader, which is asked next.
//
// Leaving while down: a master removed while it was stopped comes back to a group that no longer
// sends it anything and ignores its votes (§4.2.3), so its own log never says it was removed.
// While it knows no leader it asks the members it knows; a committed configuration, newer than
// its own, that names it neither voter nor learner means it was removed: it stops with a line
// that says so, instead of campaigning unheard for ever.
import { DfsError } from '../common/errors.js';
import { callJson } from '../common/http.js';
import type { Logger } from '../common/log.js';
import { groupCallSigner, GROUP_ROUTE } from './peer-guard.js';
import type { GroupReply, RaftReplicator } from './raft-replicator.js';

export type GroupView = GroupReply & { clusterId: string };

/** One member's answer; each call is bounded by the control timeout of common/http.ts unless given. */
async function askGroup(addr: string, secret: Buffer, id: string, clusterId: string, timeoutMs: number): Promise<GroupView> {
  return callJson<GroupView>(addr, GROUP_ROUTE, { timeoutMs, sign: groupCallSigner(secret, id, clusterId) });
}

/** `--join` given a member's address rather than a cluster id (16 hex digits). */
export function joinIsAddress(join: string | undefined): join is string {
  return join !== undefined && join.includes(':');
}

/** Times a joining master asks (the member given, then the leader it names), a second apart. */
const JOIN_TRIES = 5;
const JOIN_ASK_TIMEOUT_MS = 5000;

/**
 * What `--join <addr>` stands for: the cluster id and the group (this master included, at
 * `self`), from the member at `addr` or the leader it names. Throws a DfsError that says what to
 * do when this master was not added first, or is added at another address.
 */
export async function fetchJoin(addr: string, o: { id: string; self: string; secret: Buffer; log: Logger }): Promise<{ clusterId: string; peers: Record<string, string> }> {
  let target = addr;
  let last: DfsError | undefined;
  for (let i = 0; i < JOIN_TRIES; i++) {
    if (i > 0) await new Promise((r) => setTimeout(r, 1000));
    let g: GroupView;
    try {
      g = await askGroup(target, o.secret, o.id, '', JOIN_ASK_TIMEOUT_MS);
    } catch (err) {
      last = err instanceof DfsError ? err : new DfsError('UNAVAILABLE', String(err));
      // Wrong secret: asking again will not help.
      if (last.code.startsWith('PEER_AUTH')) throw new DfsError(last.code, `${target} refused to tell its group: ${last.message}`);
      target = addr;
      continue;
    }
    const mine = g.addresses[o.id];
    if (mine !== undefined && mine !== o.self) {
      throw new DfsError('MEMBERSHIP_MISMATCH', `the group has ${o.id} at ${mine}, but this master would be at ${o.self}; start it with --listen ${mine} (or remove it and add it again at the new address)`);
    }
    if (mine !== undefined && g.learners.concat(g.voters).includes(o.id)) {
      o.log.info({ from: target, clusterId: g.clusterId, members: g.addresses }, 'fetched the group to join');
      return { clusterId: g.clusterId, peers: g.addresses };
    }
    last = new DfsError('MEMBERSHIP_MISMATCH', `${target} does not list ${o.id} in the group (${Object.keys(g.addresses).sort().join(', ')}); add it first: dfs admin masters add ${o.id}=${o.self}`);
    // A follower may be a moment behind the leader that committed the add.
    target = g.leaderAddr ?? addr;
  }
  throw last!;
}

/** How often a master that knows no leader asks whether it is still a member. */
const REMOVAL_CHECK_EVERY_MS = 3000;
const REMOVAL_ASK_TIMEOUT_MS = 2000;

/**
 * Whether to ask the others if this master is still a member: when it knows no leader, or when
 * the latest configuration in its own log leaves it out. The second is a master removed while it
 * was down and restarted before the leader forgot it: the leader's append of the removal reached
 * it, and named the leader, but its answer did not reach the leader (which refuses a non-member's
 * stream), so the removal never commits here; it does not campaign (no voter), and would keep the
 * leader's name and wait for ever.
 */
export function mayBeRemoved(mine: GroupReply, id: string): boolean {
  return mine.leader === null || !(mine.voters.includes(id) || mine.learners.includes(id));
}

/**
 * Whether `g`, another member's answer, says this master was removed: a committed configuration
 * of the cluster without it, newer than this master's own, or the same one when that is not yet
 * committed here (then `g` confirms it).
 */
export function removedBy(mine: GroupReply, g: GroupView, id: string, clusterId: string): boolean {
  if (g.clusterId !== clusterId || !g.committed) return false;
  if (g.confIndex < mine.confIndex || (g.confIndex === mine.confIndex && mine.committed)) return false;
  return !(g.voters.includes(id) || g.learners.includes(id));
}

/**
 * Watches for this master's removal while it was down (see the top of this file); calls
 * `onRemoved` once, with the member that told. Answers a function that stops the watch.
 */
export function watchForRemoval(o: { replicator: RaftReplicator; id: string; secret: Buffer; clusterId: string; log: Logger; onRemoved: (by: string) => void }): () => void {
  let busy = false;
  let done = false;
  const check = async (): Promise<void> => {
    const mine = o.replicator.group();
    if (!mayBeRemoved(mine, o.id)) return;
    for (const [peer, addr] of Object.entries(mine.addresses)) {
      if (peer === o.id || done) continue;
      const g = await askGroup(addr, o.secret, o.id, o.clusterId, REMOVAL_ASK_TIMEOUT_MS).catch(() => undefined);
      if (g === undefined || !removedBy(mine, g, o.id, o.clusterId)) continue;
      done = true;
      o.log.error({ by: peer, confIndex: g.confIndex, voters: g.voters, learners: g.learners },
        `this master (${o.id}) was removed from the group while it was down (${peer} holds a committed configuration without it); stopping. Its data folder belongs to no group now: to bring it back, dfs admin masters add ${o.id}=<addr> and start it with an empty folder and --join`);
      o.onRemoved(peer);
      return;
    }
  };
  const timer = setInterval(() => {
    if (busy || done) return;
    busy = true;
    void check().finally(() => (busy = false));
  }, REMOVAL_CHECK_EVERY_MS);
  timer.unref();
  return () => clearInterval(timer);
}
