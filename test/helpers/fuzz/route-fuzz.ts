// A seeded, bounded fuzz of every route of the wire contract (common/contract/, ROUTES) against a
// real cluster (test/helpers/cluster.ts), with and without credentials (issue 15, "Done when").
// Every route is called with every credential class (credentials.ts), each request abused in one
// way (requests.ts); every answer is judged (judge.ts); every process must stay up; and around
// each batch of one class's requests the cluster's fingerprint (fingerprint.ts) may change only
// where that class may write. The routes come from the contract's table: a route added there is
// fuzzed without a change here, and the report names any (route, class) left out.
import { AUTH, CLUSTER, ROUTES } from '../../../common/contract/index.js';
import { call } from '../../../common/contract/call.js';
import { routeKey, type Route } from '../../../common/contract/route.js';
import { isWithin } from '../../../common/paths.js';
import { mulberry32 } from '../rng.js';
import type { TestCluster } from '../cluster.js';
import { CLASS_NAMES, FUZZ_PREFIX, makeCredentials, type ClassName, type Credential, type Credentials } from './credentials.js';
import { adminCaller, changes, fingerprint, type Allowed, type Fingerprint } from './fingerprint.js';
import { pick, type Rng } from './inputs.js';
import { judge, type Finding, type Forbidden } from './judge.js';
import { buildRequest, KINDS, type Env, type Kind } from './requests.js';
import { sendRaw } from './wire.js';
import { makeWorld, SANDBOX, type World } from './world.js';

export interface FuzzOptions {
  seed: number;
  /** Requests to send in all (the fingerprints and setup come on top). */
  requests: number;
  /** Requests per batch of one class between two fingerprints. */
  batchSize?: number;
  /** How long one request may take to be answered. */
  requestTimeoutMs?: number;
  /** Elections the whole run may see (a loaded machine can starve a leader of CPU; a request must not cause one). */
  termSlack?: number;
  chunkSizeBytes: number;
}

export interface FuzzReport {
  seed: number;
  sent: number;
  /** Requests per `METHOD /path × class`. */
  pairs: Map<string, number>;
  /** (route, class) pairs the contract has that got no request. */
  uncovered: string[];
  kinds: Map<Kind, number>;
  statuses: Map<number | string, number>;
  /** Answers below 400 per class: what each class was let do (a class never let do anything tests little of the checks on changes). */
  successes: Map<ClassName, number>;
  findings: Finding[];
  terms: { before: number; after: number };
}

/**
 * Routes whose valid call with the admin token would break the fuzz's own footing (drop the key
 * its tokens are signed with, move or remove a master, drain a chunkserver, revoke a class's
 * token): the admin sends them only what they must refuse. Every other class sends them all.
 */
const HARNESS_ROUTES = new Set([CLUSTER.decommission, CLUSTER.addMaster, CLUSTER.removeMaster, CLUSTER.transferLeadership, AUTH.dropOldKeys, AUTH.rotateKeys, AUTH.revokeToken].map(routeKey));
const REFUSED_ONLY: Kind[] = ['malformed-json', 'deep-json', 'many-keys', 'oversized', 'declared-huge', 'wrong-method', 'unknown-field'];

/** A kind of abuse: a quarter valid, a quarter mutated, the rest spread over the others. */
function drawKind(rng: Rng, route: Route, cls: ClassName): Kind {
  if (cls === 'admin' && HARNESS_ROUTES.has(routeKey(route))) return pick(rng, REFUSED_ONLY);
  const r = rng();
  return r < 0.25 ? 'valid' : r < 0.5 ? 'mutated' : pick(rng, KINDS.slice(2));
}

interface Item { route: Route; cls: ClassName; kind: Kind }

/** The plan: every (route, class) pair first, in a seeded order, then random pairs; grouped into batches of one class. */
function plan(rng: Rng, requests: number, batchSize: number): Item[][] {
  const pairs = ROUTES.flatMap((route) => CLASS_NAMES.map((cls) => ({ route, cls })));
  for (let i = pairs.length - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    [pairs[i], pairs[j]] = [pairs[j]!, pairs[i]!];
  }
  const items: Item[] = Array.from({ length: requests }, (_, i) => {
    const p = i < pairs.length ? pairs[i]! : pick(rng, pairs);
    return { ...p, kind: drawKind(rng, p.route, p.cls) };
  });
  const batches: Item[][] = [];
  for (const cls of CLASS_NAMES) {
    const mine = items.filter((it) => it.cls === cls);
    for (let i = 0; i < mine.length; i += batchSize) batches.push(mine.slice(i, i + batchSize));
  }
  for (let i = batches.length - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    [batches[i], batches[j]] = [batches[j]!, batches[i]!];
  }
  return batches;
}

/** What a class may change: the admin anything but the paths made in setup (it names only the sandbox), the prefix token its prefix (and its trash). */
function allowedFor(cls: Credential, world: World): Allowed {
  const inSandbox = (p: string) => isWithin(p, SANDBOX);
  if (cls.name === 'admin') return { path: (p) => !world.protectedPaths.has(p), tokens: true, newChunks: true };
  if (cls.name === 'prefix') return { path: (p) => inSandbox(p) || isWithin(p, FUZZ_PREFIX) || isWithin(p, '/.trash'), tokens: false, newChunks: false };
  return { path: inSandbox, tokens: false, newChunks: false };
}

/** What a class may not see: every fixture outside what it may read, and every secret. */
function forbiddenFor(cls: Credential, world: World, creds: Credentials): Forbidden {
  const hidden = world.fixtures.filter((f) => !cls.scope || !isWithin(f.path, cls.scope.prefix));
  return { strings: [...hidden.map((f) => f.tag), ...creds.secrets], contents: hidden.map((f) => f.bytes) };
}

function alive(c: TestCluster): string[] {
  return [...c.masterProcs, ...c.chunkservers].filter((p) => p && (p.child.exitCode !== null || p.child.signalCode !== null)).map((p) => `${p!.id} exited (${p!.child.signalCode ?? p!.child.exitCode}): ${p!.output.slice(-5).join(' | ')}`);
}

async function leaderOf(masters: string[]): Promise<{ addr: string; term: number; clusterId: string }> {
  for (let i = 0; i < 100; i++) {
    for (const m of masters) {
      const s = await call(m, CLUSTER.raftStatus, {}).catch(() => undefined);
      if (s?.role === 'leader') return { addr: m, term: s.term, clusterId: s.clusterId };
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error('no leader within 20 s');
}

/** Where a request goes: a master (the leader mostly, a follower sometimes) or a chunkserver. */
function targetOf(route: Route, rng: Rng, c: TestCluster, leader: string): string {
  const chunkservers = c.chunkservers.filter((p) => p !== undefined).map((p) => p!.addr);
  if (route.server === 'chunkserver') return pick(rng, chunkservers);
  if (route.server === 'every server') return pick(rng, [...c.masterAddresses, ...chunkservers]);
  return rng() < 0.75 ? leader : pick(rng, c.masterAddresses);
}

interface Run { c: TestCluster; world: World; creds: Credentials; env: Env; report: FuzzReport; rng: Rng; opts: Required<FuzzOptions>; leader: string }

async function runBatch(run: Run, batch: Item[], before: Fingerprint, chunksOf: (p: string) => boolean): Promise<Fingerprint> {
  const { c, world, creds, env, report, rng, opts } = run;
  const cls = creds.byName.get(batch[0]!.cls)!;
  const forbidden = forbiddenFor(cls, world, creds);
  for (const item of batch) {
    const built = buildRequest(item.route, cls, item.kind, rng, { ...env, pools: cls.name === 'admin' ? world.pools.admin : world.pools.others });
    const result = await sendRaw(targetOf(item.route, rng, c, run.leader), built.req, opts.requestTimeoutMs);
    report.sent++;
    const key = `${routeKey(item.route)} × ${item.cls}`;
    report.pairs.set(key, (report.pairs.get(key) ?? 0) + 1);
    report.kinds.set(item.kind, (report.kinds.get(item.kind) ?? 0) + 1);
    const status = result.kind === 'answer' ? result.res.status : result.kind;
    report.statuses.set(status, (report.statuses.get(status) ?? 0) + 1);
    if (typeof status === 'number' && status < 400) report.successes.set(item.cls, (report.successes.get(item.cls) ?? 0) + 1);
    for (const f of judge(item.route, cls, item.kind, built, result, forbidden, world.chunkTokens)) report.findings.push({ ...f, request: built.summary });
    const dead = alive(c);
    if (dead.length) {
      report.findings.push({ kind: 'crash', route: routeKey(item.route), cls: item.cls, detail: dead.join('; '), request: built.summary });
      throw new Error(`a server exited after ${built.summary}: ${dead.join('; ')}`);
    }
  }
  run.leader = (await leaderOf(c.masterAddresses)).addr;
  const after = await fingerprint(adminCaller(async () => run.leader), chunkserverDirs(c), chunksOf);
  for (const d of changes(before, after, allowedFor(cls, world))) {
    report.findings.push({ kind: 'changed', route: [...new Set(batch.map((i) => routeKey(i.route)))].join(' '), cls: cls.name, detail: d, request: `batch of ${batch.length} ${cls.name} requests` });
  }
  if (world.trap.connections() > 0) report.findings.push({ kind: 'ssrf', route: 'PUT chunks', cls: cls.name, detail: `${world.trap.connections()} connections to the fuzz's trap address`, request: `batch of ${cls.name}` });
  return after;
}

function chunkserverDirs(c: TestCluster): Map<string, string> {
  return new Map(c.chunkservers.filter((p) => p !== undefined).map((p) => [p!.id, p!.dataDir]));
}

/** Runs the fuzz on `c` (a fresh cluster whose chunk size is `opts.chunkSizeBytes`, every chunkserver holding every chunk). */
export async function fuzzRoutes(c: TestCluster, options: FuzzOptions): Promise<FuzzReport> {
  const opts: Required<FuzzOptions> = { batchSize: 20, requestTimeoutMs: 20_000, termSlack: 1, ...options };
  const rng = mulberry32(opts.seed);
  const first = await leaderOf(c.masterAddresses);
  const admin = adminCaller(async () => (await leaderOf(c.masterAddresses)).addr);
  const creds = await makeCredentials(first.addr, c.masterAddresses, first.clusterId);
  const world = await makeWorld(c, admin, first.addr, creds, opts.seed);
  const env: Env = { pools: world.pools.others, chunkTokens: world.chunkTokens, versions: world.versions, clusterId: first.clusterId, chunkSizeBytes: opts.chunkSizeBytes, creds, trapAddr: world.trap.addr };
  const report: FuzzReport = { seed: opts.seed, sent: 0, pairs: new Map(), uncovered: [], kinds: new Map(), statuses: new Map(), successes: new Map(), findings: [], terms: { before: 0, after: 0 } };
  const chunksOf = (p: string) => !isWithin(p, SANDBOX) && !isWithin(p, '/.trash');
  const run: Run = { c, world, creds, env, report, rng, opts, leader: first.addr };
  report.terms.before = (await leaderOf(c.masterAddresses)).term;
  try {
    let fp = await fingerprint(admin, chunkserverDirs(c), chunksOf);
    for (const batch of plan(rng, opts.requests, opts.batchSize)) fp = await runBatch(run, batch, fp, chunksOf);
  } finally {
    await world.trap.close();
  }
  report.terms.after = (await leaderOf(c.masterAddresses)).term;
  if (report.terms.after - report.terms.before > opts.termSlack) {
    report.findings.push({ kind: 'term', route: '-', cls: '-', detail: `the Raft term climbed from ${report.terms.before} to ${report.terms.after}`, request: '-' });
  }
  report.uncovered = ROUTES.flatMap((r) => CLASS_NAMES.map((cls) => `${routeKey(r)} × ${cls}`)).filter((k) => !report.pairs.has(k));
  return report;
}

/** The report in a few lines, with the seed to replay it and the first findings. */
export function describe(report: FuzzReport, maxFindings = 30): string {
  const byKind = new Map<string, number>();
  for (const f of report.findings) byKind.set(f.kind, (byKind.get(f.kind) ?? 0) + 1);
  const lines = [
    `route fuzz, seed ${report.seed} (replay: DFS_FUZZ_SEED=${report.seed} DFS_FUZZ_REQUESTS=${report.sent}): ${report.sent} requests, ${report.pairs.size} route × class pairs, term ${report.terms.before} → ${report.terms.after}`,
    `statuses: ${[...report.statuses].sort((a, b) => String(a[0]).localeCompare(String(b[0]))).map(([s, n]) => `${s}×${n}`).join(' ')}`,
    `answers below 400 by class: ${CLASS_NAMES.map((c) => `${c} ${report.successes.get(c) ?? 0}`).join(', ')}`,
    `findings: ${report.findings.length} ${JSON.stringify(Object.fromEntries(byKind))}`,
    ...report.findings.slice(0, maxFindings).map((f) => `- ${f.kind} ${f.route} (${f.cls}): ${f.detail.slice(0, 300)}\n    ${f.request.slice(0, 400)}`),
  ];
  return lines.join('\n');
}
