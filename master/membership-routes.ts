// The master group's admin routes (docs/API.md, "Master group"): list the masters, hand
// leadership to another one. Admin only (master/credentials/policy.ts). Changes go to the leader;
// a follower answers NOT_LEADER with the leader's address, as for every mutation.
import type { Express } from 'express';
import { z } from 'zod';
import { DfsError } from '../common/errors.js';
import { parseInput, route } from '../common/server.js';
import type { RaftReplicator } from './raft-replicator.js';

const TransferRequest = z.strictObject({ to: z.string().min(1).max(128).optional() });

export function mountMembershipRoutes(app: Express, replicator: RaftReplicator): void {
  app.get('/v1/admin/masters', (_req, res) => {
    res.json(replicator.masters());
  });

  app.post('/v1/admin/masters/transfer-leadership', route(async (req, res) => {
    const { to } = parseInput(TransferRequest, req.body);
    if (!replicator.isLeader()) {
      const leader = replicator.leaderAddr();
      throw new DfsError('NOT_LEADER', leader ? `not the leader; the leader is ${leader}` : 'not the leader, and no leader is known yet; retry shortly', { leader: leader ?? null });
    }
    res.json(await replicator.transferLeadership(to));
  }));
}
