// The credential check in front of every master route, and the /v1/auth routes (docs/API.md,
// "Credentials"). Mounted first, so no route runs for a caller the policy refuses.
import type { Express, NextFunction, Request, Response } from 'express';
import { z } from 'zod';
import { MAX_PREFIX_BYTES, MAX_TOKEN_TTL_MS, type Principal } from '../../common/credentials.js';
import { DfsError } from '../../common/errors.js';
import { SESSION_HEADER } from '../../common/leader.js';
import { normalizePath } from '../../common/paths.js';
import { parseInput, route } from '../../common/server.js';
import type { SessionRef } from '../replicator.js';
import type { MasterService } from '../service/index.js';
import { ruleFor } from './policy.js';
import { CredentialService } from './service.js';

export const CreateTokenRequest = z.strictObject({
  name: z.string().min(1).max(64).optional(),
  readOnly: z.boolean().default(false),
  prefix: z.string().min(1).max(MAX_PREFIX_BYTES).optional(),
  ttlMs: z.number().int().min(1000).max(MAX_TOKEN_TTL_MS).optional(),
  admin: z.boolean().default(false),
});
export const RevokeTokenRequest = z.strictObject({ id: z.string().min(1).max(64) });

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
  app.get('/v1/auth/whoami', route((_req, res) => {
    res.json(principalOf(res));
  }));
  app.post('/v1/auth/tokens', route(async (req, res) => {
    const body = parseInput(CreateTokenRequest, req.body);
    res.json(await creds.createToken({ ...body, ...(body.prefix !== undefined ? { prefix: normalizePath(body.prefix) } : {}) }, sessionOf(req)));
  }));
  app.get('/v1/auth/tokens', route((_req, res) => {
    res.json({ tokens: creds.listTokens() });
  }));
  app.post('/v1/auth/tokens/revoke', route(async (req, res) => {
    res.json(await creds.revoke(parseInput(RevokeTokenRequest, req.body).id, sessionOf(req)));
  }));
  app.get('/v1/auth/keys', route((_req, res) => {
    res.json({ keys: creds.keys() });
  }));
  app.post('/v1/auth/keys/rotate', route(async (req, res) => {
    res.json({ keys: await creds.rotateKeys(sessionOf(req)) });
  }));
  app.post('/v1/auth/keys/drop-old', route(async (req, res) => {
    res.json({ keys: await creds.dropOldKeys(sessionOf(req)) });
  }));
  return creds;
}
