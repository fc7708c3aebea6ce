import type { Express, Request, Response } from 'express';
import type { Logger } from '../common/log.js';
import { Counter, type Registry as MetricsRegistry } from 'prom-client';
import { CLUSTER, CS, FS } from '../common/contract/index.js';
import { DfsError } from '../common/errors.js';
import { SESSION_HEADER } from '../common/leader.js';
import { serve, serveRaw } from '../common/serve.js';
import { requestLog, route } from '../common/server.js';
import { batchOps, parseSession, runBatch } from './batch.js';
import { mountDashboard } from './dashboard.js';
import { listPaging } from './service/namespace.js';
import { scopeListing } from './credentials/policy.js'; // credentials hook
import { mountCredentials, principalOf } from './credentials/routes.js'; // credentials hook
import type { CredentialService } from './credentials/service.js';
import type { SessionRef } from './replicator.js';
import { inlineMaxBytes, type ChunkserverCalls, type MasterService, type NamespaceCalls, type Reports } from './service/index.js';
import { mountTrashQuotaRoutes } from './trash-quota-routes.js'; // trash-quota


export function session(req: Request): SessionRef | undefined {
  try {
    return parseSession(req.get(SESSION_HEADER));
  } catch {
    throw new DfsError('INVALID_ARGUMENT', `${SESSION_HEADER} must be <session id>:<sequence number from 1>`);
  }
}

/**
 * The master's HTTP API: each route's path, schemas and caller are in common/contract/ (grep the
 * path there, then the entry here); docs/API.md describes every route.
 */
export function mountMasterRoutes(app: Express, svc: MasterService, metrics: MetricsRegistry): void {
  const ops = new Counter({ name: 'dfs_master_requests_total', help: 'master API requests by operation', labelNames: ['op'], registers: [metrics] });
  const count = (op: string) => ops.inc({ op });
  // Client credentials: the check in front of every route below, and /v1/auth (docs/SECURITY.md).
  const creds = mountCredentials(app, svc); // credentials hook

  serve(app, CLUSTER.health, () => ({ ok: true as const, leader: svc.replicator.isLeader() }));
  serve(app, CLUSTER.raftStatus, () => svc.reports.raftStatus());

  // A route's log lines carry its request id through the request's logger: the master's app runs
  // without the async request context (main.ts, requestContext).
  const log = (res: Response) => requestLog(res, svc.leadership.log);
  mountNamespaceRoutes(app, svc.namespace, { creds, inlineMax: () => inlineMaxBytes(svc.config) }, count, log);
  mountReportRoutes(app, svc.reports, count);
  mountChunkserverRoutes(app, svc.chunkservers, log);
  mountTrashQuotaRoutes(app, svc.trashQuota, count); // trash-quota
  // A chunkserver's long-lived connection (liveness), and clients' reports of one they could not reach.
  serveRaw(app, CS.link, route((req, res) => svc.links.accept(req, res)));
  serve(app, CLUSTER.unreachable, (b) => svc.probes.report(b.addr), () => count('unreachable'));

  // The web dashboard at /ui/ and the state it polls.
  mountDashboard(app, svc);
}

/** Clients' namespace calls: mutations (a validated JSON body, an optional session header, a JSON answer), stat and list. */
function mountNamespaceRoutes(app: Express, calls: NamespaceCalls, { creds, inlineMax }: { creds: CredentialService; inlineMax: () => number }, count: (op: string) => void, log: (res: Response) => Logger): void {
  const counted = (op: string) => () => count(op);
  // The calls a batch may carry run what their single routes run (master/batch.ts).
  const ops = batchOps(calls, inlineMax);
  // Bound to the caller's token (credentials hook).
  const caller = (res: Response) => ({ bindSession: (raw: string) => creds.bindSession(raw, principalOf(res)!) });
  // A client session for exactly-once mutations: a retry with the same header is applied once.
  serve(app, FS.session, (b, _req, res) => ops.session.run(b, undefined, caller(res)), counted('session'));
  serve(app, FS.mkdir, (b, req) => ops.mkdir.run(b, session(req)), counted('mkdir'));
  serve(app, FS.create, (b, req) => ops.create.run(b, session(req)), counted('create'));
  serve(app, FS.allocate, (b, req) => ops.allocate.run(b, session(req)), counted('allocate'));
  serve(app, FS.complete, (b, req) => ops.complete.run(b, session(req)), counted('complete'));
  serve(app, FS.batch, (b, _req, res) => runBatch(b, { ops, caller: caller(res), unbind: (raw) => raw === undefined ? undefined : creds.unbindSession(raw, principalOf(res)!), count, log: log(res) }), counted('batch'));
  serve(app, FS.append, (b, req, res) => calls.append(b, session(req), log(res)), counted('append'));
  serve(app, FS.snapshot, (b, req) => calls.snapshot(b, session(req)), counted('snapshot'));
  serve(app, FS.abandon, async (b, req) => {
    await calls.abandon(b.writeId, session(req));
    return { ok: true as const };
  }, counted('abandon'));
  serve(app, FS.renew, (b, req) => calls.renew(b, session(req)), counted('renew'));
  serve(app, FS.delete, (b, req) => ops.delete.run(b, session(req)), counted('delete'));
  serve(app, FS.rename, (b, req) => ops.rename.run(b, session(req)), counted('rename'));
  serve(app, FS.setrep, (b, req) => calls.setReplication(b, session(req)), counted('setrep'));
  serve(app, FS.concat, (b, req) => calls.concat(b, session(req)), counted('concat'));
  serve(app, CLUSTER.decommission, (b, req, res) => calls.decommission(b, session(req), log(res)), counted('decommission'));
  serve(app, FS.stat, (q) => ops.stat.run(q, undefined), counted('stat'));
  serve(app, FS.statMany, (b) => calls.statMany(b), counted('statMany'));
  serve(app, FS.list, async (q, _req, res) => {
    const paging = listPaging({ after: q.after, limit: q.limit === undefined ? undefined : String(q.limit) });
    return scopeListing(principalOf(res), await calls.list(q.path, q.recursive ?? false, paging)); // credentials hook
  }, counted('list'));
}

/** fsck, du and the cluster's status. */
function mountReportRoutes(app: Express, reports: Reports, count: (op: string) => void): void {
  serve(app, FS.fsck, (q) => reports.fsck(q.path, q.files ?? false), () => count('fsck'));
  serve(app, FS.du, (q) => reports.du(q.path, q.summary ?? false, q.perFile ?? false), () => count('du'));
  serve(app, CLUSTER.status, () => reports.clusterStatus());
}

/** The chunkserver protocol (its callers prove they hold the cluster secret: see main.ts). */
function mountChunkserverRoutes(app: Express, calls: ChunkserverCalls, log: (res: Response) => Logger): void {
  serve(app, CS.register, (b, _req, res) => calls.register(b, log(res)));
  serve(app, CS.heartbeat, (b, _req, res) => calls.heartbeat(b, log(res)));
  serve(app, CS.corrupt, (b) => {
    calls.reportCorrupt(b);
    return { ok: true as const };
  });
  serve(app, CS.stopping, (b) => calls.stopping(b));
}
