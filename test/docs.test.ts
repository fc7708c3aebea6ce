// docs/API.md and docs/METRICS.md against the code, both ways (fastify checks its error docs so):
// every route the servers mount, every error code and every dfs metric is documented, and
// everything the pages document exists. A route, code or metric added without its docs, or
// removed with its docs left behind, fails here.
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import express from 'express';
import { Registry } from 'prom-client';
import t from 'tap';
import { mountChunkRoutes } from '../chunkserver/routes/index.js';
import { ErrorCodes } from '../common/errors.js';
import { mountMembershipRoutes } from '../master/membership-routes.js';
import { mountMasterRoutes } from '../master/routes.js';

const ROOT = resolve(import.meta.dirname, '..');
const API = readFileSync(join(ROOT, 'docs', 'API.md'), 'utf8');
const METRICS = readFileSync(join(ROOT, 'docs', 'METRICS.md'), 'utf8');

/** Any object at all: mounting a route only stores its handler, which these tests never call. */
const anything = new Proxy({}, { get: () => () => undefined }) as never;

function mountedRoutes(mount: (app: express.Express) => void): string[] {
  const app = express();
  mount(app);
  const stack = (app as unknown as { router: { stack: { route?: { path: string; methods: Record<string, boolean> } }[] } }).router.stack;
  return stack.flatMap((layer) => (layer.route ? Object.keys(layer.route.methods).map((m) => `${m.toUpperCase()} ${layer.route!.path}`) : []));
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) return sourceFiles(p);
    return p.endsWith('.ts') ? [p] : [];
  });
}

t.test('every route a server mounts is in docs/API.md, and every documented route is mounted', async (t) => {
  const code = new Set([
    ...mountedRoutes((app) => mountMasterRoutes(app, anything, new Registry())),
    ...mountedRoutes((app) => mountMembershipRoutes(app, anything, 'cluster')),
    ...mountedRoutes((app) => mountChunkRoutes(app, anything, anything, anything, anything, anything, new Registry())),
    'GET /metrics', // common/server.ts, on every server
  ]);
  t.ok(code.size >= 20, `the servers mount ${code.size} routes`);
  // A documented route is written `METHOD /path` in backquotes; its query string is not part of the path.
  const documented = new Set([...API.matchAll(/`(GET|POST|PUT|DELETE) (\/[^`?\s]*)/g)].map((m) => `${m[1]} ${m[2]}`));
  documented.delete('GET /v1/raft/stream'); // the upgrade to a Raft stream: an HTTP upgrade handler, not an express route
  for (const route of code) t.ok(documented.has(route), `${route} is documented`);
  for (const route of documented) t.ok(code.has(route), `${route} (documented) is mounted`);
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
