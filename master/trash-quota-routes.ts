// The trash's and quotas' routes (docs/API.md), mounted by master/routes.ts.
import type { Express } from 'express';
import { DfsError } from '../common/errors.js';
import { parseInput, route } from '../common/server.js';
import { QuotaSetRequest, TrashRequest, TrashRestoreRequest } from '../common/trash-quota-protocol.js';
import type { SessionRef } from './replicator.js';
import type { TrashQuotaService } from './trash-quota-service.js';

export function mountTrashQuotaRoutes(app: Express, svc: TrashQuotaService, opts: { count: (op: string) => void; session: (req: import('express').Request) => SessionRef | undefined; nowMs: () => number }): void {
  const { count, session, nowMs } = opts;
  app.post('/v1/fs/trash', route(async (req, res) => {
    count('trash');
    res.json(await svc.trash(parseInput(TrashRequest, req.body), nowMs(), session(req)));
  }));
  app.post('/v1/fs/trash/restore', route(async (req, res) => {
    count('trash-restore');
    res.json(await svc.restore(parseInput(TrashRestoreRequest, req.body), nowMs(), session(req)));
  }));
  app.post('/v1/fs/quota', route(async (req, res) => {
    count('quota-set');
    res.json(await svc.setQuota(parseInput(QuotaSetRequest, req.body), session(req)));
  }));
  app.get('/v1/fs/quota', route(async (req, res) => {
    count('quota');
    const p = req.query.path;
    if (typeof p !== 'string') throw new DfsError('INVALID_ARGUMENT', 'query parameter path is required');
    res.json(await svc.showQuota(p));
  }));
}
