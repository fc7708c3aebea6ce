// The master group's admin routes (docs/API.md, "Master group"): list the masters, add one (as a
// learner, promoted by the leader once caught up), remove one, hand leadership to another one. Admin only (master/credentials/policy.ts). Changes go to the leader;
// a follower answers NOT_LEADER with the leader's address, as for every mutation.
import type { Express } from 'express';
import { CLUSTER } from '../common/contract/index.js';
import { DfsError } from '../common/errors.js';
import { serve } from '../common/serve.js';
import type { RaftReplicator } from './raft-replicator.js';

function requireLeader(replicator: RaftReplicator): void {
  if (replicator.isLeader()) return;
  const leader = replicator.leaderAddr();
  throw new DfsError('NOT_LEADER', leader ? `not the leader; the leader is ${leader}` : 'not the leader, and no leader is known yet; retry shortly', { leader: leader ?? null });
}

export function mountMembershipRoutes(app: Express, replicator: RaftReplicator, clusterId: string): void {
  serve(app, CLUSTER.masters, () => replicator.masters());

  serve(app, CLUSTER.transferLeadership, ({ to }) => {
    requireLeader(replicator);
    return replicator.transferLeadership(to);
  });

  // For masters only (signed with the cluster secret, master/peer-guard.ts): the group a new
  // master joins (`dfs master --join <addr>`), and how a master removed while down learns it.
  serve(app, CLUSTER.raftGroup, () => ({ clusterId, ...replicator.group() }));

  // Answers once the learner's entry committed; the new master is then started with --join.
  serve(app, CLUSTER.addMaster, async ({ id, addr }) => {
    requireLeader(replicator);
    const conf = await replicator.addMaster(id, addr);
    return { clusterId, voters: conf.voters, learners: conf.learners, addresses: conf.addresses ?? {} };
  });

  serve(app, CLUSTER.removeMaster, async ({ id }) => {
    requireLeader(replicator);
    const conf = await replicator.removeMaster(id);
    return { voters: conf.voters, learners: conf.learners, addresses: conf.addresses ?? {} };
  });
}
