// docs/API.md and docs/METRICS.md against the code, both ways (fastify checks its error docs so):
// every route of the wire contract (which the servers mount, no more and no fewer), every error
// code and every dfs metric is documented, and
// everything the pages document exists. A route, code or metric added without its docs, or
// removed with its docs left behind, fails here.
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import express from 'express';
import { Registry } from 'prom-client';
import t from 'tap';
import { mountChunkRoutes } from '../chunkserver/routes/index.js';
import { CLUSTER, ROUTES, routeKey } from '../common/contract/index.js';
import { ErrorCodes } from '../common/errors.js';
import { createApp } from '../common/server.js';
import { mountMembershipRoutes } from '../master/membership-routes.js';
import { mountMasterRoutes } from '../master/routes.js';

const ROOT = resolve(import.meta.dirname, '..');
const API = readFileSync(join(ROOT, 'docs', 'API.md'), 'utf8');
const METRICS = readFileSync(join(ROOT, 'docs', 'METRICS.md'), 'utf8');

/** Any object at all: mounting a route only stores its handler, which these tests never call. */
const anything = new Proxy({}, { get: () => () => undefined }) as never;

function routesOf(app: express.Express): string[] {
  const stack = (app as unknown as { router: { stack: { route?: { path: string; methods: Record<string, boolean> } }[] } }).router.stack;
  return stack.flatMap((layer) => (layer.route ? Object.keys(layer.route.methods).map((m) => `${m.toUpperCase()} ${layer.route!.path}`) : []));
}

function mountedRoutes(mount: (app: express.Express) => void): string[] {
  const app = express();
  mount(app);
  return routesOf(app);
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) return sourceFiles(p);
    return p.endsWith('.ts') ? [p] : [];
  });
}

t.test('the servers mount exactly the routes of the contract, and docs/API.md documents exactly those', async (t) => {
  const mounted = new Set([
    ...mountedRoutes((app) => mountMasterRoutes(app, anything, new Registry())),
    ...mountedRoutes((app) => mountMembershipRoutes(app, anything, 'cluster')),
    ...mountedRoutes((app) => mountChunkRoutes(app, anything, anything, anything, anything, anything, new Registry())),
    ...routesOf(createApp(anything, new Registry())), // /metrics, on every server
  ]);
  const contract = new Set(ROUTES.map(routeKey));
  t.equal(contract.size, ROUTES.length, 'no route is in the contract twice');
  t.ok(contract.size >= 40, `the contract has ${contract.size} routes`);
  // The Raft stream is an HTTP upgrade (master/raft/stream-transport.ts), not an express route.
  const upgrades = new Set([routeKey(CLUSTER.raftStream)]);
  for (const route of mounted) t.ok(contract.has(route), `${route} (mounted) is in the contract (common/contract/)`);
  for (const route of contract) if (!upgrades.has(route)) t.ok(mounted.has(route), `${route} (in the contract) is mounted`);
  // A documented route is written `METHOD /path` in backquotes; its query string is not part of the path.
  const documented = new Set([...API.matchAll(/`(GET|POST|PUT|DELETE) (\/[^`?\s]*)/g)].map((m) => `${m[1]} ${m[2]}`));
  for (const route of contract) t.ok(documented.has(route), `${route} is documented`);
  for (const route of documented) t.ok(contract.has(route), `${route} (documented) is in the contract`);
});

t.test('every error code is in the error table of docs/API.md with its HTTP status, and the table has no others', async (t) => {
  const rows = new Map([...API.matchAll(/^\| `([A-Z_]+)` \| (\d{3}) \|/gm)].map((m) => [m[1]!, Number(m[2])]));
  for (const [code, status] of Object.entries(ErrorCodes)) t.equal(rows.get(code), status, `${code} is documented as ${status}`);
  for (const code of rows.keys()) t.ok(code in ErrorCodes, `${code} (documented) exists in common/errors.ts`);
});

t.test('every dfs metric the code registers is in docs/METRICS.md, and every one it documents exists', async (t) => {
  const inCode = new Set<string>();
  for (const dir of ['master', 'chunkserver', 'common', 'cli']) {
    for (const file of sourceFiles(join(ROOT, dir))) {
      for (const m of readFileSync(file, 'utf8').matchAll(/name: '(dfs_[a-z0-9_]+)'/g)) inCode.add(m[1]!);
    }
  }
  t.ok(inCode.size >= 10, `the code registers ${inCode.size} dfs metrics`);
  const inTables = new Set([...METRICS.matchAll(/^\| `(dfs_[a-z0-9_]+)`/gm)].map((m) => m[1]!));
  for (const name of inCode) t.ok(inTables.has(name), `${name} is in a table of docs/METRICS.md`);
  // Every name the page uses, alert expressions included; a histogram's series name its family.
  const family = (name: string) => (inCode.has(name) ? name : name.replace(/_(bucket|sum|count)$/, ''));
  const named = new Set([...METRICS.matchAll(/\b(dfs_[a-z0-9_]+)/g)].map((m) => family(m[1]!)));
  for (const name of named) t.ok(inCode.has(name), `${name} (in docs/METRICS.md) is registered`);
});
