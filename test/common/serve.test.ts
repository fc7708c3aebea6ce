// The fast route table (common/serve.ts): JSON routes are found by method and exact path without
// express testing every layer, and a request still runs every middleware it ran before: a route
// mounted after a middleware stays on express's path, so the middleware runs for it.
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express, { type Request } from 'express';
import t from 'tap';
import { CLUSTER, FS } from '../../common/contract/index.js';
import { fastRoutes, serve } from '../../common/serve.js';
import { installErrorHandler } from '../../common/server.js';

async function listening(app: express.Express): Promise<string> {
  const server: Server = app.listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  t.teardown(() => new Promise<void>((r) => server.close(() => r())));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

t.test('routes mounted together are in the table; one mounted after a middleware is not, and the middleware runs for it', async (t) => {
  const app = express();
  app.set('strict routing', true);
  app.set('case sensitive routing', true);
  const seen: string[] = [];
  // What the metrics middleware reads when a request ends: the route pattern express would leave.
  app.use((req: Request, res, next) => {
    res.once('close', () => seen.push(`${req.method} ${(req.route as { path?: string } | undefined)?.path ?? 'unmatched'}`));
    next();
  });
  app.use(express.json());
  serve(app, CLUSTER.health, () => ({ ok: true as const }));
  serve(app, FS.mkdir, (b) => ({ path: b.path, type: 'dir' as const, size: 0, mtimeMs: 1, replication: 0 }) as never);
  // A guard mounted after those two: it must run for every route mounted after it.
  app.use((req, res, next) => (req.get('x-let-me') === 'in' ? next() : void res.status(403).json({ error: { code: 'FORBIDDEN', message: 'the later guard refused' } })));
  serve(app, FS.statMany, (b) => ({ entries: b.paths.map(() => null) }) as never);
  installErrorHandler(app, { error: () => undefined } as never);
  const base = await listening(app);

  t.same(fastRoutes(app).sort(), [`GET ${CLUSTER.health.path}`, `POST ${FS.mkdir.path}`], 'the routes before the later middleware, and only they');
  const health = await fetch(`${base}${CLUSTER.health.path}`);
  t.same([health.status, await health.json()], [200, { ok: true }]);
  const head = await fetch(`${base}${CLUSTER.health.path}`, { method: 'HEAD' });
  t.equal(head.status, 200, 'a HEAD is its GET');
  const mkdir = await fetch(`${base}${FS.mkdir.path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ path: '/a' }) });
  t.match([mkdir.status, await mkdir.json()], [200, { path: '/a' }]);
  const bad = await fetch(`${base}${FS.mkdir.path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ path: 7 }) });
  t.match([bad.status, await bad.json()], [400, { error: { code: 'INVALID_ARGUMENT' } }], 'its input is checked as before, its error answered by the error handler');
  const refused = await fetch(`${base}${FS.statMany.path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ paths: ['/a'] }) });
  t.equal(refused.status, 403, 'the guard mounted before it ran');
  const allowed = await fetch(`${base}${FS.statMany.path}`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-let-me': 'in' }, body: JSON.stringify({ paths: ['/a'] }) });
  t.equal(allowed.status, 200, 'and lets it through');
  const pass = { headers: { 'x-let-me': 'in' } };
  t.equal((await fetch(`${base}${CLUSTER.health.path}/`, pass)).status, 404, 'the exact path only: no trailing slash');
  t.equal((await fetch(`${base}${CLUSTER.health.path.toUpperCase()}`, pass)).status, 404, 'and no other case');
  await new Promise((r) => setTimeout(r, 50));
  t.ok(seen.includes(`GET ${CLUSTER.health.path}`) && seen.includes(`POST ${FS.mkdir.path}`) && seen.includes(`POST ${FS.statMany.path}`), 'every route answered is labelled with its pattern, as express labels it');
});
