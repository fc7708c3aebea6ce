// The trash's and quotas' routes (common/contract/namespace.ts, docs/API.md), mounted by master/routes.ts.
import type { Express } from 'express';
import { FS } from '../common/contract/index.js';
import { serve } from '../common/serve.js';
import { session } from './routes.js';
import type { TrashQuotaService } from './trash-quota-service.js';

export function mountTrashQuotaRoutes(app: Express, svc: TrashQuotaService, count: (op: string) => void): void {
  serve(app, FS.trash, (b, req) => svc.trash(b, session(req)), () => count('trash'));
  serve(app, FS.trashRestore, (b, req) => svc.restore(b, session(req)), () => count('trash-restore'));
  serve(app, FS.quotaSet, (b, req) => svc.setQuota(b, session(req)), () => count('quota-set'));
  serve(app, FS.quota, (q) => svc.showQuota(q.path), () => count('quota'));
}
