// The credential check in front of every master route, and the /v1/auth routes (docs/API.md,
// "Credentials"). Mounted first, so no route runs for a caller the policy refuses.
import type { Express, NextFunction, Request, Response } from 'express';
import { AUTH } from '../../common/contract/index.js';
import type { Principal } from '../../common/credentials.js';
import { DfsError } from '../../common/errors.js';
import { SESSION_HEADER } from '../../common/leader.js';
import { normalizePath } from '../../common/paths.js';
import { serve } from '../../common/serve.js';
import type { SessionRef } from '../replicator.js';
import type { MasterService } from '../service/index.js';
import { ruleFor } from './policy.js';
import { CredentialService } from './service.js';

/** The caller the check found (undefined: anonymous, on a route that allows it). */
export function principalOf(res: Response): Principal | undefined {
  return res.locals.principal as Principal | undefined;
}

function sessionOf(req: Request): SessionRef | undefined {
  const m = /^([A-Za-z0-9_-]{1,64}):(\d{1,15})$/.exec(req.get(SESSION_HEADER) ?? '');
  return m ? { clientId: m[1]!, seq: Number(m[2]) } : undefined;
}

/**
 * The check: a route's rule (master/credentials/policy.ts) says who may call it. Only the leader
 * judges tokens (it holds the applied revocations and keys); a follower answers NOT_LEADER to any
 * route that needs one, so a client follows it to the leader as before.
 */
function guard(svc: MasterService, creds: CredentialService) {
  return (req: Request, res: Response, next: NextFunction): void => {
    const rule = ruleFor(req.method, req.path);
    if (rule.kind === 'public') return next();
    // An optional route on a follower answers NOT_LEADER itself (the dashboard's, with the CORS
    // headers a page on another master needs to read the hint); it runs as anonymous there.
    if (rule.kind === 'optional' && !svc.replicator.isLeader()) return next();
    Promise.resolve().then(async () => {
      svc.leadership.requireLeader();
      const p = await creds.authenticate(req);
      if (!p) {
        if (rule.kind === 'optional') return;
        throw new DfsError('UNAUTHORIZED', 'this cluster needs a credential: give a token (DFS_TOKEN, --token-file, ~/.config/dfs/token; dfs token create makes one)', { reason: 'anonymous' });
      }
      creds.unbindSessionHeader(req, p);
      rule.check?.(p, req, svc.leadership.state);
      res.locals.principal = p;
    }).then(() => next(), next);
  };
}

/** Mounts the check and the credential routes; answers the service, for the routes that bind sessions and filter listings. */
export function mountCredentials(app: Express, svc: MasterService): CredentialService {
  const creds = new CredentialService(svc);
  app.use(guard(svc, creds));
  serve(app, AUTH.whoami, (_in, _req, res) => principalOf(res)!);
  serve(app, AUTH.createToken, (body, req) => creds.createToken({ ...body, ...(body.prefix !== undefined ? { prefix: normalizePath(body.prefix) } : {}) }, sessionOf(req)));
  serve(app, AUTH.listTokens, () => ({ tokens: creds.listTokens() }));
  serve(app, AUTH.revokeToken, (body, req) => creds.revoke(body.id, sessionOf(req)));
  serve(app, AUTH.keys, () => ({ keys: creds.keys() }));
  serve(app, AUTH.rotateKeys, async (_in, req) => ({ keys: await creds.rotateKeys(sessionOf(req)) }));
  serve(app, AUTH.dropOldKeys, async (_in, req) => ({ keys: await creds.dropOldKeys(sessionOf(req)) }));
  return creds;
}
