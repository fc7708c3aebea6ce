// The trash's and quotas' routes (docs/API.md), mounted by master/routes.ts.
import type { Express } from 'express';
import { parseInput, route } from '../common/server.js';
import { QuotaSetRequest, TrashRequest, TrashRestoreRequest } from '../common/trash-quota-protocol.js';
import { queryPath, session } from './routes.js';
import type { TrashQuotaService } from './trash-quota-service.js';

export function mountTrashQuotaRoutes(app: Express, svc: TrashQuotaService, count: (op: string) => void): void {
  app.post('/v1/fs/trash', route(async (req, res) => {
    count('trash');
    res.json(await svc.trash(parseInput(TrashRequest, req.body), session(req)));
  }));
  app.post('/v1/fs/trash/restore', route(async (req, res) => {
    count('trash-restore');
    res.json(await svc.restore(parseInput(TrashRestoreRequest, req.body), session(req)));
  }));
  app.post('/v1/fs/quota', route(async (req, res) => {
    count('quota-set');
    res.json(await svc.setQuota(parseInput(QuotaSetRequest, req.body), session(req)));
  }));
  app.get('/v1/fs/quota', route(async (req, res) => {
    count('quota');
    res.json(await svc.showQuota(queryPath(req)));
  }));
}
