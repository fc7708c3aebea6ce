import type { Express, Request } from 'express';
import type { z } from 'zod';
import { Counter, type Registry as MetricsRegistry } from 'prom-client';
import { DfsError } from '../common/errors.js';
import {
  AbandonRequest, AllocateRequest, AppendRequest, CompleteRequest, SnapshotRequest, ConcatRequest, CorruptReport, CreateRequest, DeleteRequest, HeartbeatRequest,
  DecommissionRequest, MkdirRequest, RegisterRequest, RenameRequest, RenewRequest, SetReplicationRequest, UnreachableReport,
} from '../common/protocol.js';
import { SESSION_HEADER } from '../common/leader.js';
import { parseInput, route } from '../common/server.js';
import { mountDashboard } from './dashboard.js';
import { listPaging } from './service/namespace.js';
import { scopeListing } from './credentials/policy.js'; // credentials hook
import { mountCredentials, principalOf } from './credentials/routes.js'; // credentials hook
import type { SessionRef } from './replicator.js';
import type { ChunkserverCalls, MasterService, NamespaceCalls, Reports } from './service/index.js';
import { mountTrashQuotaRoutes } from './trash-quota-routes.js'; // trash-quota


export function session(req: Request): SessionRef | undefined {
  const raw = req.get(SESSION_HEADER);
  if (raw === undefined) return undefined;
  const m = /^([A-Za-z0-9_-]{1,64}):(\d{1,15})$/.exec(raw);
  if (!m || Number(m[2]) < 1) throw new DfsError('INVALID_ARGUMENT', `${SESSION_HEADER} must be <session id>:<sequence number from 1>`);
  return { clientId: m[1]!, seq: Number(m[2]) };
}

export function queryPath(req: Request): string {
  const p = req.query.path;
  if (typeof p !== 'string') throw new DfsError('INVALID_ARGUMENT', 'query parameter path is required');
  return p;
}

function queryFlag(req: Request, name: string): boolean {
  const v = req.query[name];
  if (v === undefined) return false;
  if (v === '1' || v === 'true') return true;
  if (v === '0' || v === 'false') return false;
  throw new DfsError('INVALID_ARGUMENT', `query parameter ${name} must be true or false`);
}

/** The master's HTTP API; docs/API.md describes every route. */
export function mountMasterRoutes(app: Express, svc: MasterService, metrics: MetricsRegistry): void {
  const ops = new Counter({ name: 'dfs_master_requests_total', help: 'master API requests by operation', labelNames: ['op'], registers: [metrics] });
  const count = (op: string) => ops.inc({ op });
  // Client credentials: the check in front of every route below, and /v1/auth (docs/SECURITY.md).
  const creds = mountCredentials(app, svc); // credentials hook

  app.get('/v1/health', (_req, res) => {
    res.json({ ok: true, leader: svc.replicator.isLeader() });
  });

  // A client session for exactly-once mutations: a retry with the same header is applied once.
  app.post('/v1/session', route(async (_req, res) => {
    count('session');
    res.json({ sessionId: creds.bindSession(await svc.namespace.registerSession(), principalOf(res)!) }); // credentials hook: bound to the token
  }));
  app.get('/v1/raft/status', (_req, res) => {
    res.json(svc.reports.raftStatus());
  });

  mountNamespaceRoutes(app, svc.namespace, count);
  mountReportRoutes(app, svc.reports, count);
  mountChunkserverRoutes(app, svc.chunkservers);
  mountTrashQuotaRoutes(app, svc.trashQuota, count); // trash-quota
  // A chunkserver's long-lived connection (liveness), and clients' reports of one they could not reach.
  app.get('/v1/cs/link', route((req, res) => svc.links.accept(req, res)));
  app.post('/v1/cluster/unreachable', route(async (req, res) => {
    count('unreachable');
    res.json(await svc.probes.report(parseInput(UnreachableReport, req.body).addr));
  }));

  // The web dashboard at /ui/ and the state it polls.
  mountDashboard(app, svc);
}

/** Clients' namespace calls: mutations (a validated JSON body, an optional session header, a JSON answer), stat and list. */
function mountNamespaceRoutes(app: Express, calls: NamespaceCalls, count: (op: string) => void): void {
  const mutation = <S extends z.ZodType>(op: string, schema: S, run: (body: z.infer<S>, s: SessionRef | undefined) => Promise<unknown>) => {
    app.post(`/v1/fs/${op}`, route(async (req, res) => {
      count(op);
      res.json(await run(parseInput(schema, req.body), session(req)));
    }));
  };
  mutation('mkdir', MkdirRequest, (b, s) => calls.mkdir(b, s));
  mutation('create', CreateRequest, (b, s) => calls.create(b, s));
  mutation('allocate', AllocateRequest, (b, s) => calls.allocate(b, s));
  mutation('complete', CompleteRequest, (b, s) => calls.complete(b, s));
  mutation('append', AppendRequest, (b, s) => calls.append(b, s));
  mutation('snapshot', SnapshotRequest, (b, s) => calls.snapshot(b, s));
  mutation('abandon', AbandonRequest, async (b, s) => {
    await calls.abandon(b.writeId, s);
    return { ok: true };
  });
  mutation('renew', RenewRequest, (b, s) => calls.renew(b, s));
  mutation('delete', DeleteRequest, (b, s) => calls.delete(b, s));
  mutation('rename', RenameRequest, (b, s) => calls.rename(b, s));
  mutation('setrep', SetReplicationRequest, (b, s) => calls.setReplication(b, s));
  mutation('concat', ConcatRequest, (b, s) => calls.concat(b, s));
  app.post('/v1/cluster/decommission', route(async (req, res) => {
    count('decommission');
    res.json(await calls.decommission(parseInput(DecommissionRequest, req.body), session(req)));
  }));
  app.get('/v1/fs/stat', route(async (req, res) => {
    count('stat');
    res.json(await calls.stat(queryPath(req), queryFlag(req, 'chunks')));
  }));
  app.get('/v1/fs/list', route(async (req, res) => {
    count('list');
    res.json(scopeListing(principalOf(res), await calls.list(queryPath(req), queryFlag(req, 'recursive'), listPaging(req.query)))); // credentials hook
  }));
}

/** fsck, du and the cluster's status. */
function mountReportRoutes(app: Express, reports: Reports, count: (op: string) => void): void {
  app.get('/v1/fs/fsck', route(async (req, res) => {
    count('fsck');
    res.json(await reports.fsck(queryPath(req), queryFlag(req, 'files')));
  }));
  app.get('/v1/fs/du', route(async (req, res) => {
    count('du');
    res.json(await reports.du(queryPath(req), queryFlag(req, 'summary'), queryFlag(req, 'perFile')));
  }));
  app.get('/v1/cluster/status', route(async (_req, res) => {
    res.json(await reports.clusterStatus());
  }));
}

/** The chunkserver protocol (its callers prove they hold the cluster secret: see main.ts). */
function mountChunkserverRoutes(app: Express, calls: ChunkserverCalls): void {
  app.post('/v1/cs/register', route(async (req, res) => {
    res.json(await calls.register(parseInput(RegisterRequest, req.body)));
  }));
  app.post('/v1/cs/heartbeat', route(async (req, res) => {
    res.json(await calls.heartbeat(parseInput(HeartbeatRequest, req.body)));
  }));
  app.post('/v1/cs/corrupt', route(async (req, res) => {
    calls.reportCorrupt(parseInput(CorruptReport, req.body));
    res.json({ ok: true });
  }));
}
