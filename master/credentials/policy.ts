// Who may call which master route (docs/SECURITY.md has the same table for people). One rule per
// route, looked up by method and path; a route not named here needs an admin token, so a route
// added without a rule is closed, not open. A rule sees the caller, the request's validated
// input and the replicated state (to find a write's path), and throws FORBIDDEN when the token's
// scope does not cover the call.
import type { Request } from 'express';
import type { z } from 'zod';
import { leadsToScope, requireAdmin, requireInScope, requireWritable, type Principal } from '../../common/credentials.js';
import { DfsError } from '../../common/errors.js';
import { normalizePath } from '../../common/paths.js';
import {
  AbandonRequest, AllocateRequest, AppendRequest, CompleteRequest, SnapshotRequest, ConcatRequest, CreateRequest, DeleteRequest, MkdirRequest, RenameRequest, RenewRequest, SetReplicationRequest,
} from '../../common/protocol.js';
import { parseInput } from '../../common/server.js';
import { TrashRequest, TrashRestoreRequest } from '../../common/trash-quota-protocol.js';
import type { MasterState } from '../state/index.js';

export type Rule =
  /** Anyone: liveness, the Raft view, metrics, chunkserver calls (peer-authenticated instead), the dashboard's files. */
  | { kind: 'public' }
  /** A token if one is sent (checked like any), else anonymous: the route itself limits what an anonymous caller gets. */
  | { kind: 'optional'; check?: Check }
  | { kind: 'token'; check: Check };
type Check = (p: Principal, req: Request, state: MasterState) => void;

const anyToken: Check = () => undefined;
const admin: Check = (p) => requireAdmin(p);

/** A mutation of paths named in its body: a writable token whose prefix covers every one. */
function writes<S extends z.ZodType>(schema: S, paths: (body: z.infer<S>) => string[]): Check {
  return (p, req) => {
    requireWritable(p);
    for (const path of paths(parseInput(schema, req.body))) requireInScope(p, normalizePath(path));
  };
}

/** A mutation of open writes (by write id): a writable token whose prefix covers each write's path. */
function writesTo<S extends z.ZodType>(schema: S, ids: (body: z.infer<S>) => string[]): Check {
  return (p, req, state) => {
    requireWritable(p);
    // An unknown write id is left to the command, which refuses it (WRITE_NOT_FOUND).
    for (const id of ids(parseInput(schema, req.body))) {
      const w = state.writes.get(id);
      if (w) requireInScope(p, w.path);
    }
  };
}

function queryPath(req: Request, name = 'path'): string {
  const raw = req.query[name];
  if (typeof raw !== 'string') throw new DfsError('INVALID_ARGUMENT', `query parameter ${name} is required`);
  return normalizePath(raw);
}

/**
 * A read of one path: within the prefix, or (for stat and list, without chunks) a directory on
 * the way to it, so a prefix token can walk down to its own folder. A listing is then filtered
 * (scopeListing).
 */
function reads(opts: { ancestors: boolean }): Check {
  return (p, req, state) => {
    const path = queryPath(req);
    if (opts.ancestors && req.query.chunks === undefined && leadsToScope(p, path) && state.lookup(path)?.type !== 'file') return;
    requireInScope(p, path);
  };
}

/** The dashboard's state: the cluster view for anyone; its namespace browser for a token whose scope covers what it browses. */
const dashboard: Check = (p, req, state) => {
  if (req.query.dir !== undefined && req.query.dir !== '') reads({ ancestors: true })(p, { query: { path: req.query.dir } } as unknown as Request, state);
  if (req.query.file !== undefined && req.query.file !== '') requireInScope(p, queryPath(req, 'file'));
};

const RULES: Record<string, Rule> = {
  'GET /v1/health': { kind: 'public' },
  'GET /v1/raft/status': { kind: 'public' },
  // Signed by a master with the cluster secret instead (master/peer-guard.ts groupRouteGuard).
  'GET /v1/raft/group': { kind: 'public' },
  'GET /metrics': { kind: 'public' },
  'POST /v1/session': { kind: 'token', check: anyToken },
  'POST /v1/fs/mkdir': { kind: 'token', check: writes(MkdirRequest, (b) => [b.path]) },
  'POST /v1/fs/create': { kind: 'token', check: writes(CreateRequest, (b) => [b.path]) },
  'POST /v1/fs/append': { kind: 'token', check: writes(AppendRequest, (b) => [b.path]) },
  'POST /v1/fs/snapshot': { kind: 'token', check: writes(SnapshotRequest, (b) => [b.src, b.dst]) },
  'POST /v1/fs/delete': { kind: 'token', check: writes(DeleteRequest, (b) => [b.path]) },
  'POST /v1/fs/rename': { kind: 'token', check: writes(RenameRequest, (b) => [b.src, b.dst]) },
  'POST /v1/fs/setrep': { kind: 'token', check: writes(SetReplicationRequest, (b) => [b.path]) },
  'POST /v1/fs/concat': { kind: 'token', check: writes(ConcatRequest, (b) => [...b.sources, b.target]) },
  'POST /v1/fs/allocate': { kind: 'token', check: writesTo(AllocateRequest, (b) => [b.writeId]) },
  'POST /v1/fs/complete': { kind: 'token', check: writesTo(CompleteRequest, (b) => [b.writeId]) },
  'POST /v1/fs/abandon': { kind: 'token', check: writesTo(AbandonRequest, (b) => [b.writeId]) },
  'POST /v1/fs/renew': { kind: 'token', check: writesTo(RenewRequest, (b) => b.writeIds) },
  'GET /v1/fs/stat': { kind: 'token', check: reads({ ancestors: true }) },
  'GET /v1/fs/list': { kind: 'token', check: reads({ ancestors: true }) },
  'GET /v1/fs/fsck': { kind: 'token', check: reads({ ancestors: false }) },
  'GET /v1/fs/du': { kind: 'token', check: reads({ ancestors: false }) },
  // The trash (a move into /.trash/<user>/): a writable token whose prefix holds what is removed;
  // restoring names a path in /.trash, so only a token whose prefix is / may (admins, or read-write tokens without a prefix).
  'POST /v1/fs/trash': { kind: 'token', check: writes(TrashRequest, (b) => [b.path]) },
  'POST /v1/fs/trash/restore': { kind: 'token', check: writes(TrashRestoreRequest, (b) => [b.src, ...(b.dst !== undefined ? [b.dst] : [])]) },
  // Quotas are set by admins (as hdfs dfsadmin -setQuota) and read by anyone whose prefix holds the directory.
  'POST /v1/fs/quota': { kind: 'token', check: admin },
  'GET /v1/fs/quota': { kind: 'token', check: reads({ ancestors: false }) },
  'GET /v1/cluster/status': { kind: 'token', check: anyToken },
  'POST /v1/cluster/decommission': { kind: 'token', check: admin },
  // The master group (master/membership-routes.ts): seeing and changing it is for admins.
  'GET /v1/admin/masters': { kind: 'token', check: admin },
  'POST /v1/admin/masters/transfer-leadership': { kind: 'token', check: admin },
  'POST /v1/admin/masters/add': { kind: 'token', check: admin },
  'POST /v1/admin/masters/remove': { kind: 'token', check: admin },
  // A client's report of a chunkserver it could not reach: only a hint (the leader probes it itself; never dead on a report).
  'POST /v1/cluster/unreachable': { kind: 'token', check: anyToken },
  'GET /v1/auth/whoami': { kind: 'token', check: anyToken },
  'GET /v1/ui/state': { kind: 'optional', check: dashboard },
};

/** The rule for a request: chunkserver calls and the dashboard's files are public; an unnamed route needs an admin token. */
export function ruleFor(method: string, path: string): Rule {
  // A CORS preflight carries no credential (the dashboard's, when the page polls another master).
  if (path.startsWith('/v1/cs/') || (method === 'GET' && path.startsWith('/ui')) || method === 'OPTIONS') return { kind: 'public' };
  return RULES[`${method === 'HEAD' ? 'GET' : method} ${path}`] ?? { kind: 'token', check: admin };
}

/** A listing as a prefix token may see it: only entries within its prefix or on the way to it. */
export function scopeListing<T extends { entries: { path: string }[] }>(p: Principal | undefined, reply: T): T {
  if (!p || p.prefix === '/') return reply;
  return { ...reply, entries: reply.entries.filter((e) => leadsToScope(p, e.path)) };
}
