// The master group's admin routes (docs/API.md, "Master group"): list the masters, add one (as a
// learner, promoted by the leader once caught up), remove one, hand leadership to another one. Admin only (master/credentials/policy.ts). Changes go to the leader;
// a follower answers NOT_LEADER with the leader's address, as for every mutation.
import type { Express } from 'express';
import { z } from 'zod';
import { DfsError } from '../common/errors.js';
import { parseInput, route } from '../common/server.js';
import type { RaftReplicator } from './raft-replicator.js';

const TransferRequest = z.strictObject({ to: z.string().min(1).max(128).optional() });
const MASTER_ID = /^[A-Za-z0-9_-]{1,64}$/;
const AddRequest = z.strictObject({ id: z.string().regex(MASTER_ID, 'id: letters, digits, - and _'), addr: z.string().regex(/^[A-Za-z0-9.-]{1,253}:\d{1,5}$/, 'addr: host:port') });
const RemoveRequest = z.strictObject({ id: z.string().regex(MASTER_ID, 'id: letters, digits, - and _') });

function requireLeader(replicator: RaftReplicator): void {
  if (replicator.isLeader()) return;
  const leader = replicator.leaderAddr();
  throw new DfsError('NOT_LEADER', leader ? `not the leader; the leader is ${leader}` : 'not the leader, and no leader is known yet; retry shortly', { leader: leader ?? null });
}

export function mountMembershipRoutes(app: Express, replicator: RaftReplicator, clusterId: string): void {
  app.get('/v1/admin/masters', (_req, res) => {
    res.json(replicator.masters());
  });

  // For masters only (signed with the cluster secret, master/peer-guard.ts): the group a new
  // master joins (`dfs master --join <addr>`), and how a master removed while down learns it.
  app.get('/v1/raft/group', (_req, res) => {
    res.json({ clusterId, ...replicator.group() });
  });

  app.post('/v1/admin/masters/transfer-leadership', route(async (req, res) => {
    const { to } = parseInput(TransferRequest, req.body);
    requireLeader(replicator);
    res.json(await replicator.transferLeadership(to));
  }));

  // Answers once the learner's entry committed; the new master is then started with --join.
  app.post('/v1/admin/masters/add', route(async (req, res) => {
    const { id, addr } = parseInput(AddRequest, req.body);
    requireLeader(replicator);
    const conf = await replicator.addMaster(id, addr);
    res.json({ clusterId, voters: conf.voters, learners: conf.learners, addresses: conf.addresses ?? {} });
  }));

  app.post('/v1/admin/masters/remove', route(async (req, res) => {
    const { id } = parseInput(RemoveRequest, req.body);
    requireLeader(replicator);
    const conf = await replicator.removeMaster(id);
    res.json({ voters: conf.voters, learners: conf.learners, addresses: conf.addresses ?? {} });
  }));
}
