// The cluster's routes: liveness, metrics and the Raft view on every master; the cluster's status,
// decommission and unreachable reports; the master group's admin routes; the dashboard's state.
// Served by master/routes.ts, master/membership-routes.ts, master/dashboard.ts (and /metrics and
// /v1/health by every server: common/server.ts, chunkserver/routes/mount.ts).
import { z } from 'zod';
import { DecommissionRequest, UnreachableReport } from '../protocol.js';
import { ClusterStatus, RaftStatusReply, UnreachableReply } from '../replies.js';
import { get, post, query } from './route.js';

const master = 'master' as const;
const MASTER_ID = /^[A-Za-z0-9_-]{1,64}$/;

export const TransferLeadershipRequest = z.strictObject({ to: z.string().min(1).max(128).optional() });
export const AddMasterRequest = z.strictObject({
  id: z.string().regex(MASTER_ID, 'id: letters, digits, - and _'),
  addr: z.string().regex(/^[A-Za-z0-9.-]{1,253}:\d{1,5}$/, 'addr: host:port'),
});
export const RemoveMasterRequest = z.strictObject({ id: z.string().regex(MASTER_ID, 'id: letters, digits, - and _') });

export const MastersReply = z.object({
  leader: z.string().nullable(),
  term: z.number().int(),
  lastIndex: z.number().int(),
  /** Log index of the configuration in effect (0: the group the masters were started with). */
  confIndex: z.number().int(),
  members: z.array(z.object({ id: z.string(), addr: z.string().nullable(), role: z.enum(['voter', 'learner']), match: z.number().int().nullable() })),
});
/** The group after a change: `clusterId` when a master was added (its --join needs it). */
export const ConfReply = z.object({
  clusterId: z.string().optional(), voters: z.array(z.string()).readonly(), learners: z.array(z.string()).readonly(), addresses: z.record(z.string(), z.string()).readonly(),
});
/** GET /v1/raft/group: the cluster id, this master's view of the term and leader, and the committed or pending configuration. */
export const RaftGroupReply = z.object({
  clusterId: z.string(), id: z.string(), term: z.number().int(), leader: z.string().nullable(), leaderAddr: z.string().nullable(),
  confIndex: z.number().int(), committed: z.boolean(), voters: z.array(z.string()), learners: z.array(z.string()), addresses: z.record(z.string(), z.string()),
});
export const TransferReply = z.object({ from: z.string(), to: z.string(), term: z.number().int() });
/** Liveness: a master says whether it leads, a chunkserver names itself. */
export const HealthReply = z.object({ ok: z.literal(true), leader: z.boolean().optional(), id: z.string().optional() });
/** What a decommission started or cancelled: the server, and every server now draining. */
export const DecommissionReply = z.object({ server: z.string(), decommissioning: z.array(z.string()) });

export type MastersReply = z.infer<typeof MastersReply>;
export type ConfReply = z.infer<typeof ConfReply>;
export type TransferReply = z.infer<typeof TransferReply>;

export const CLUSTER = {
  health: get({ server: 'every server', path: '/v1/health', reply: HealthReply, caller: 'public' }),
  /** Prometheus's text format (docs/METRICS.md). */
  metrics: get({ server: 'every server', path: '/metrics', reply: 'text', caller: 'public' }),
  raftStatus: get({ server: master, path: '/v1/raft/status', reply: RaftStatusReply, caller: 'public' }),
  /** An HTTP upgrade to `dfs-raft/2` (or `dfs-raft/1`): a master's Raft messages to another (master/raft/stream-transport.ts), not an express route. */
  raftStream: get({ server: master, path: '/v1/raft/stream', reply: 'stream', caller: 'member' }),
  /** The group as a master sees it, for masters only (signed with the cluster secret: master/peer-guard.ts): `dfs master --join <addr>` reads it, and a master removed while down learns it so. */
  raftGroup: get({ server: master, path: '/v1/raft/group', reply: RaftGroupReply, caller: 'member' }),
  status: get({ server: master, path: '/v1/cluster/status', reply: ClusterStatus, caller: 'token' }),
  decommission: post({ server: master, path: '/v1/cluster/decommission', request: DecommissionRequest, reply: DecommissionReply, caller: 'admin' }),
  /** A client's report of a chunkserver it could not reach: only a hint (the leader probes it itself). */
  unreachable: post({ server: master, path: '/v1/cluster/unreachable', request: UnreachableReport, reply: UnreachableReply, caller: 'token' }),
  masters: get({ server: master, path: '/v1/admin/masters', reply: MastersReply, caller: 'admin' }),
  transferLeadership: post({ server: master, path: '/v1/admin/masters/transfer-leadership', request: TransferLeadershipRequest, reply: TransferReply, caller: 'admin' }),
  addMaster: post({ server: master, path: '/v1/admin/masters/add', request: AddMasterRequest, reply: ConfReply, caller: 'admin' }),
  removeMaster: post({ server: master, path: '/v1/admin/masters/remove', request: RemoveMasterRequest, reply: ConfReply, caller: 'admin' }),
  /** The dashboard's page (a follower redirects to the leader's) and its files. */
  uiPage: get({ server: master, path: '/ui/', reply: 'page', caller: 'public' }),
  uiAsset: get({ server: master, path: '/ui/:asset', reply: 'page', caller: 'public' }),
  /** The dashboard's state (common/dashboard.ts types it), read by the page in the browser (master/ui/dashboard.js). */
  uiState: get({
    server: master, path: '/v1/ui/state', request: query({ dir: z.string().optional(), file: z.string().optional() }),
    reply: z.object({ generatedAtMs: z.number(), status: ClusterStatus }), caller: 'optional',
  }),
};
