// Who may call which master route (docs/SECURITY.md has the same table for people). A route's
// class (public, token, admin, optional) is its caller in the wire contract (common/contract/);
// a token route's scope check is here; a route without one needs an admin token, so a route
// added without a rule is closed, not open. A rule sees the caller, the request's validated
// input and the replicated state (to find a write's path), and throws FORBIDDEN when the token's
// scope does not cover the call.
import type { Request } from 'express';
import type { z } from 'zod';
import { BatchRequest } from '../../common/batch.js';
import { AUTH, CHUNKSERVER_PREFIX, CLUSTER, FS, routeFor, wireQuery, type Route } from '../../common/contract/index.js';
import { leadsToScope, requireAdmin, requireInScope, requireWritable, type Principal } from '../../common/credentials.js';
import { DfsError } from '../../common/errors.js';
import { normalizePath } from '../../common/paths.js';
import {
  AbandonRequest, AllocateRequest, AppendRequest, CompleteRequest, SnapshotRequest, ConcatRequest, CreateRequest, DeleteRequest, MkdirRequest, RenameRequest, RenewRequest, SetReplicationRequest, StatManyRequest,
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

/**
 * A batch (POST /v1/fs/batch, common/batch.ts): each call judged as its own route's check judges
 * it, so a batch can do nothing its calls one by one could not; one refused call refuses the
 * whole batch, before any runs. A stat's input is its query, as JSON values.
 */
const batch: Check = (p, req, state) => {
  parseInput(BatchRequest, req.body).calls.forEach((c, i) => {
    const route = FS[c.op];
    const check = SCOPE_CHECKS.get(route) ?? admin;
    try {
      const input = route.method === 'GET' ? { query: wireQuery(parseInput(route.request, c.input) as Record<string, unknown>) } : { body: c.input, query: {} };
      check(p, input as unknown as Request, state);
    } catch (err) {
      // Which call was refused, as master/batch.ts names a call whose session or input it refuses.
      if (err instanceof DfsError) throw new DfsError(err.code, `call ${i} (${c.op}): ${err.message}`, err.details);
      throw err;
    }
  });
};

/**
 * What a token's scope must cover, for each route the contract opens to any token ('token') or
 * to anyone ('optional'). The class comes from the contract (common/contract/); a 'token' route
 * without a check here needs an admin token, so a route added without one is closed, not open
 * (test/master/credentials/policy.test.ts holds the two together).
 */
export const SCOPE_CHECKS = new Map<Route, Check>([
  [FS.session, anyToken],
  [FS.mkdir, writes(MkdirRequest, (b) => [b.path])],
  [FS.create, writes(CreateRequest, (b) => [b.path])],
  [FS.append, writes(AppendRequest, (b) => [b.path])],
  [FS.snapshot, writes(SnapshotRequest, (b) => [b.src, b.dst])],
  [FS.delete, writes(DeleteRequest, (b) => [b.path])],
  [FS.rename, writes(RenameRequest, (b) => [b.src, b.dst])],
  [FS.setrep, writes(SetReplicationRequest, (b) => [b.path])],
  [FS.concat, writes(ConcatRequest, (b) => [...b.sources, b.target])],
  [FS.allocate, writesTo(AllocateRequest, (b) => [b.writeId])],
  [FS.complete, writesTo(CompleteRequest, (b) => [b.writeId])],
  [FS.abandon, writesTo(AbandonRequest, (b) => [b.writeId])],
  [FS.renew, writesTo(RenewRequest, (b) => b.writeIds)],
  [FS.stat, reads({ ancestors: true })],
  [FS.list, reads({ ancestors: true })],
  // Every path within the prefix (no walking down from above it: that is what stat and list are for).
  [FS.statMany, (p, req) => {
    for (const path of parseInput(StatManyRequest, req.body).paths) requireInScope(p, normalizePath(path));
  }],
  // A batch: each call by its own route's rule above.
  [FS.batch, batch],
  [FS.fsck, reads({ ancestors: false })],
  [FS.du, reads({ ancestors: false })],
  // The trash (a move into /.trash/<user>/): a writable token whose prefix holds what is removed;
  // restoring names a path in /.trash, so only a token whose prefix is / may (admins, or read-write tokens without a prefix).
  [FS.trash, writes(TrashRequest, (b) => [b.path])],
  [FS.trashRestore, writes(TrashRestoreRequest, (b) => [b.src, ...(b.dst !== undefined ? [b.dst] : [])])],
  // Quotas are set by admins (as hdfs dfsadmin -setQuota: the contract says so) and read by anyone whose prefix holds the directory.
  [FS.quota, reads({ ancestors: false })],
  [CLUSTER.status, anyToken],
  // A client's report of a chunkserver it could not reach: only a hint (the leader probes it itself; never dead on a report).
  [CLUSTER.unreachable, anyToken],
  [AUTH.whoami, anyToken],
  [CLUSTER.uiState, dashboard],
]);

const PUBLIC: Rule = { kind: 'public' };
const ADMIN: Rule = { kind: 'token', check: admin };

/**
 * The rule for a request, from its route's caller in the contract: chunkserver calls (signed
 * instead: master/peer-guard.ts) and the dashboard's files are public; a route the contract does
 * not name needs an admin token.
 */
export function ruleFor(method: string, path: string): Rule {
  // A CORS preflight carries no credential (the dashboard's, when the page polls another master).
  if (path.startsWith(`${CHUNKSERVER_PREFIX}/`) || (method === 'GET' && path.startsWith('/ui')) || method === 'OPTIONS') return PUBLIC;
  const r = routeFor(method, path);
  if (r === undefined) return ADMIN;
  switch (r.caller) {
    case 'public': case 'member': case 'chunkserver': return PUBLIC;
    case 'token': {
      const check = SCOPE_CHECKS.get(r);
      return check ? { kind: 'token', check } : ADMIN;
    }
    case 'optional': return { kind: 'optional', check: SCOPE_CHECKS.get(r) };
    default: return ADMIN;
  }
}

/** A listing as a prefix token may see it: only entries within its prefix or on the way to it. */
export function scopeListing<T extends { entries: { path: string }[] }>(p: Principal | undefined, reply: T): T {
  if (!p || p.prefix === '/') return reply;
  return { ...reply, entries: reply.entries.filter((e) => leadsToScope(p, e.path)) };
}
