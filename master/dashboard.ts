// The web dashboard: static files from master/ui/ at /ui/, and the one JSON reply the page polls
// (GET /v1/ui/state). The page is served by any master (a follower redirects to the leader);
// the state comes from the leader only, like every other read.
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Express, Request, Response } from 'express';
import type { ChunkMatrix, FailureTolerance, UiDirectory, UiError, UiFile, UiState } from '../common/dashboard.js';
import { DfsError } from '../common/errors.js';
import type { ClusterStatus, ClusterTolerance, MasterStatus } from '../common/protocol.js';
import { CLUSTER } from '../common/contract/index.js';
import { serveRaw } from '../common/serve.js';
import { route } from '../common/server.js';
import type { MasterService } from './service/index.js';
import { scheme } from '../common/tls.js';
import type { Principal } from '../common/credentials.js';
import { scopeListing } from './credentials/policy.js';
import { principalOf } from './credentials/routes.js';

/** Entries of one directory in a reply: the page says how many more there are and points at `dfs ls`. */
const MAX_UI_ENTRIES = 500;
/** Chunks of one file in a reply (a 64 MiB chunk each: 12.5 GiB shown). */
const MAX_UI_CHUNKS = 200;
/**
 * The cluster part of the reply (two walks of the namespace, and a call to each master) is made
 * at most once per this long, however many pages poll: viewers cost the leader no more than one.
 * The walks are not sliced (as `dfs status`'s is not): when they grow slow, the reply is reused
 * for 4 times as long as they took, so the dashboard takes at most a quarter of the leader's time.
 */
const STATE_CACHE_MS = 900;

/** The files the page is made of, and their types; nothing else under /ui/ is served. */
const ASSETS: Record<string, string> = {
  'index.html': 'text/html; charset=utf-8',
  'dashboard.css': 'text/css; charset=utf-8',
  'dashboard.js': 'text/javascript; charset=utf-8',
};

/**
 * The folder of the page's files: tsc does not copy them, so the built master reads them from the
 * sources' master/ui/, which the package ships: two folders above this module (dist/master/) and
 * above the bundled binary it runs in (dist/cli/main.js, scripts/bundle.mjs) alike.
 */
function uiFolder(): string {
  const candidates = [new URL('./ui/', import.meta.url), new URL('../../master/ui/', import.meta.url)].map((u) => fileURLToPath(u));
  const found = candidates.find((dir) => existsSync(`${dir}index.html`));
  if (!found) throw new DfsError('INTERNAL', `the dashboard's files are missing (looked in ${candidates.join(' and ')})`);
  return found;
}

let assets: Map<string, Buffer> | undefined;
function loadAssets(): Map<string, Buffer> {
  if (!assets) {
    const dir = uiFolder();
    assets = new Map(Object.keys(ASSETS).map((name) => [name, readFileSync(`${dir}${name}`)]));
  }
  return assets;
}

function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}

/** Whether a whole rack can be lost now, in words, from the leader's rack view (master/racks.ts). */
export function rackTolerance(t: ClusterTolerance | undefined): string {
  if (!t || t.servers === null) return 'racks: no data stored yet';
  const all = t.racksSafe.length + t.racksAtRisk.length;
  if (all <= 1) return `one rack${all === 1 ? ` (${[...t.racksSafe, ...t.racksAtRisk.map((r) => r.rack)][0]})` : ''} holds every live replica: losing it loses data`;
  if (t.racksAtRisk.length === 0) return `a whole rack can be lost: any one of ${all} racks (${t.racksSafe.join(', ')})`;
  const risk = t.racksAtRisk.map((r) => `rack ${r.rack} holds every live replica of ${plural(r.chunks, 'chunk')}`).join('; ');
  return t.racksSafe.length > 0 ? `only rack ${t.racksSafe.join(', ')} can be lost whole (${risk})` : `no whole rack can be lost (${risk})`;
}

/** How many failures the cluster survives right now: from the chunk matrix, the masters' reachability and the racks. */
export function failureTolerance(matrix: ChunkMatrix, masters: MasterStatus[], racks?: ClusterTolerance): FailureTolerance {
  const n = masters.length;
  const quorum = Math.floor(n / 2) + 1;
  const up = masters.filter((m) => m.reachable).length;
  const mastersLosable = Math.max(0, up - quorum);
  const mastersText = mastersLosable > 0
    ? `${quorum} of ${n} masters needed, ${up} up: can lose any ${plural(mastersLosable, 'master')}`
    : `${quorum} of ${n} masters needed, ${up} up: losing ${n === 1 ? 'it' : 'one more'} stops the cluster until ${n === 1 ? 'it is' : 'a majority is'} back`;

  const lost = matrix.missing + matrix.corrupt;
  let losable: number | null = null;
  let csText: string;
  if (lost > 0) {
    csText = `${plural(lost, 'chunk')} ${lost === 1 ? 'has' : 'have'} no good replica: that data is unreadable until a server holding it returns`;
  } else if (matrix.chunks === 0) {
    csText = 'no data stored yet';
  } else {
    const minLive = Math.min(...matrix.cells.map((c) => c.live));
    losable = minLive - 1;
    const single = matrix.cells.filter((c) => c.live === 1).reduce((sum, c) => sum + c.chunks, 0);
    csText = losable === 0
      ? `cannot lose any chunkserver without losing data: ${plural(single, 'chunk')} ${single === 1 ? 'has' : 'have'} a single replica`
      : `can lose any ${plural(losable, 'chunkserver')} at once without losing data`;
    if (matrix.underReplicated > 0) csText += `; ${plural(matrix.underReplicated, 'chunk')} waiting for copies`;
  }
  return { chunkserversLosable: losable, chunkservers: csText, mastersLosable, masters: mastersText, racks: rackTolerance(racks) };
}

function asUiError(err: unknown): UiError {
  if (err instanceof DfsError) return { error: { code: err.code, message: err.message } };
  return { error: { code: 'INTERNAL', message: 'internal error; see the server log' } };
}

/** What the namespace browser says to a page that sent no token: the cluster view is open, the namespace is not (docs/SECURITY.md). */
const NEEDS_TOKEN: UiError = { error: { code: 'UNAUTHORIZED', message: 'the namespace browser needs a token: open this page as /ui/#token=<token> (dfs token create --read-only makes one)' } };

async function browseDir(svc: MasterService, path: string, principal: Principal): Promise<UiDirectory | UiError> {
  try {
    const list = scopeListing(principal, await svc.namespace.list(path, false));
    return { path: list.path, entries: list.entries.slice(0, MAX_UI_ENTRIES), total: list.entries.length, truncated: list.entries.length > MAX_UI_ENTRIES };
  } catch (err) {
    return asUiError(err);
  }
}

async function browseFile(svc: MasterService, path: string): Promise<UiFile | UiError> {
  try {
    const st = await svc.namespace.stat(path, true);
    if (st.type !== 'file') throw new DfsError('IS_A_DIRECTORY', `${st.path} is a directory`);
    const chunks = st.chunks ?? [];
    return {
      path: st.path, size: st.size, replication: st.replication, state: st.state, chunkSizeBytes: st.chunkSizeBytes,
      // Without read tokens: the page is open to anyone who reaches the master, and links nowhere a token would open.
      chunks: chunks.slice(0, MAX_UI_CHUNKS).map(({ token: _token, ...chunk }) => chunk), totalChunks: chunks.length, truncated: chunks.length > MAX_UI_CHUNKS,
    };
  } catch (err) {
    return asUiError(err);
  }
}

/** The cluster half of the reply, shared by every poll within STATE_CACHE_MS. */
class ClusterView {
  private last?: { atMs: number; value: Promise<{ status: ClusterStatus; matrix: ChunkMatrix }> };
  private lastWalkMs = 0;

  constructor(private readonly svc: MasterService) {}

  get(): Promise<{ status: ClusterStatus; matrix: ChunkMatrix }> {
    // A master that stopped leading answers NOT_LEADER at once, not from what it knew as leader.
    const fresh = this.last && Date.now() - this.last.atMs < Math.max(STATE_CACHE_MS, 4 * this.lastWalkMs);
    if (fresh && this.svc.replicator.isLeader()) return this.last!.value;
    const started = Date.now();
    const value = Promise.all([this.svc.reports.clusterStatus(), this.svc.reports.chunkMatrix().then((m) => {
      this.lastWalkMs = Date.now() - started;
      return m;
    })]).then(([status, matrix]) => ({ status, matrix }));
    const entry = { atMs: Date.now(), value };
    this.last = entry;
    value.catch(() => {
      if (this.last === entry) this.last = undefined;
    });
    return value;
  }
}

function queryPath(req: Request, name: string): string | undefined {
  const v = req.query[name];
  if (v === undefined || v === '') return undefined;
  if (typeof v !== 'string') throw new DfsError('INVALID_ARGUMENT', `query parameter ${name} must be given once`);
  return v;
}

/**
 * The page polls whichever master leads, so a page served by one master reads another's state:
 * those (and only those: the reply lists the namespace) may read it from a page of theirs.
 */
function allowMasterOrigins(req: Request, res: Response, svc: MasterService): void {
  const origin = req.get('origin');
  if (origin === undefined) return;
  res.vary('Origin');
  if (Object.values(svc.config.peers).some((addr) => origin === `${scheme()}://${addr}`)) res.set('Access-Control-Allow-Origin', origin);
}

function sendAsset(res: Response, name: string): void {
  const body = loadAssets().get(name);
  if (!body) throw new DfsError('NOT_FOUND', 'no such route');
  // Revalidated on every load, so an upgraded master serves its own page.
  res.set({ 'Content-Type': ASSETS[name], 'Cache-Control': 'no-cache', 'X-Content-Type-Options': 'nosniff' });
  res.send(body);
}

/** Mounts the dashboard's routes (docs/API.md, "Dashboard"). */
export function mountDashboard(app: Express, svc: MasterService): void {
  const view = new ClusterView(svc);
  // A page on one master polling another sends its token in a header: the browser asks first.
  app.use(CLUSTER.uiState.path, (req, res, next) => {
    if (req.method !== 'OPTIONS') return next();
    allowMasterOrigins(req, res, svc);
    res.set({ 'Access-Control-Allow-Headers': 'authorization', 'Access-Control-Allow-Methods': 'GET', 'Access-Control-Max-Age': '600' }).status(204).end();
  });

  // Relative links in the page need the trailing slash; routes match exactly (common/server.ts), so the bare folder is sent there.
  const bare = CLUSTER.uiPage.path.replace(/\/$/, '');
  app.use((req, res, next) => (req.path === bare && (req.method === 'GET' || req.method === 'HEAD') ? res.redirect(302, CLUSTER.uiPage.path) : next()));
  serveRaw(app, CLUSTER.uiPage, (req, res) => {
    const leader = svc.replicator.isLeader() ? undefined : svc.replicator.leaderAddr();
    if (leader) return res.redirect(302, `${scheme()}://${leader}${CLUSTER.uiPage.path}`);
    // The leader, or no leader known yet: the page itself looks for one.
    const peers = Object.values(svc.config.peers).map((a) => `${scheme()}://${a}`).join(' ');
    res.set('Content-Security-Policy', `default-src 'self'; connect-src 'self' ${peers}; img-src 'self' data:; base-uri 'none'; form-action 'none'`);
    sendAsset(res, 'index.html');
  });
  serveRaw(app, CLUSTER.uiAsset, (req, res) => {
    const name = String(req.params.asset);
    if (name === 'index.html' || !Object.hasOwn(ASSETS, name)) throw new DfsError('NOT_FOUND', 'no such route');
    sendAsset(res, name);
  });

  serveRaw(app, CLUSTER.uiState, route(async (req, res) => {
    allowMasterOrigins(req, res, svc);
    const dir = queryPath(req, 'dir');
    const file = queryPath(req, 'file');
    const { status, matrix } = await view.get();
    const reply: UiState = {
      generatedAtMs: Date.now(), deadTimeoutMs: svc.config.deadTimeoutMs, status, matrix, tolerance: failureTolerance(matrix, status.masters, status.tolerance),
      copies: Object.fromEntries(svc.repair.copiesByServer()), repairQueued: svc.repair.queuedCount,
    };
    const principal = principalOf(res);
    if (dir !== undefined) reply.dir = principal ? await browseDir(svc, dir, principal) : NEEDS_TOKEN;
    if (file !== undefined) reply.file = principal ? await browseFile(svc, file) : NEEDS_TOKEN;
    res.set('Cache-Control', 'no-store');
    res.json(reply);
  }));
}
