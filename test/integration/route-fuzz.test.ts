// Issue 15's "Done when": an independent fuzz of every route of the wire contract, with and
// without credentials, finds no request that reads or changes data without the right credential,
// no 5xx and no crash (test/helpers/fuzz/route-fuzz.ts says what it sends and checks).
// Bounded for CI: 1 master and 3 chunkservers, 1,200 requests. A longer run:
//   DFS_FUZZ_REQUESTS=6000 DFS_FUZZ_MASTERS=3 DFS_FUZZ_SEED=7 npx tap test/integration/route-fuzz.test.ts
// A failure prints its seed; the same seed and count send the same requests again.
import t from 'tap';
import { CLASS_NAMES, type ChunkTokens, type Credential } from '../helpers/fuzz/credentials.js';
import { changes, type Fingerprint } from '../helpers/fuzz/fingerprint.js';
import { judge } from '../helpers/fuzz/judge.js';
import type { Built, Kind } from '../helpers/fuzz/requests.js';
import { describe, fuzzRoutes } from '../helpers/fuzz/route-fuzz.js';
import type { RawResult } from '../helpers/fuzz/wire.js';
import { closeHttpAgent } from '../../common/http.js';
import { CHUNKS, CLUSTER, CS, FS, ROUTES } from '../../common/contract/index.js';
import type { Route } from '../../common/contract/route.js';
import { ADMIN_TOKEN, TestCluster } from '../helpers/cluster.js';

const MAX_REQUESTS = 100_000;
const requests = Math.min(MAX_REQUESTS, Number(process.env.DFS_FUZZ_REQUESTS ?? 1200));
const seed = Number(process.env.DFS_FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 31));
const masters = Number(process.env.DFS_FUZZ_MASTERS ?? 1);
const CHUNK = 64 * 1024;

t.teardown(() => closeHttpAgent());
t.setTimeout(Math.max(600_000, requests * 400));

t.test('the fuzz\'s checks bite (each on a planted answer)', async (t) => {
  const none: Credential = { name: 'none', headers: () => ({}) };
  const readOnly: Credential = { name: 'read-only', scope: { admin: false, readOnly: true, prefix: '/' }, headers: () => ({}) };
  const chunk: ChunkTokens = { read: new Map(), ownHandles: new Set([9]), write: { handle: 1, version: 1, token: 'x', addrs: [] } };
  const secretBytes = Buffer.from('0123456789abcdef0123456789abcdef');
  const forbidden = { strings: ['s-tag1'], contents: [secretBytes] };
  const built = (method: string, path: string): Built => ({ req: { method, path, headers: {} }, summary: `${method} ${path}` });
  const answer = (status: number, body: string | Buffer): RawResult => ({ kind: 'answer', res: { status, headers: {}, body: Buffer.from(body), cut: false } });
  const kinds = (route: Route, cls: Credential, kind: Kind, b: Built, r: RawResult, hidden = forbidden) => judge(route, cls, kind, b, r, hidden, chunk).map((f) => f.kind);
  t.same(kinds(FS.delete, none, 'valid', built('POST', FS.delete.path), answer(200, '{"files":1}')), ['unauthorized-success'], 'an anonymous delete that succeeds');
  t.same(kinds(FS.mkdir, readOnly, 'valid', built('POST', FS.mkdir.path), answer(200, '{}')), ['unauthorized-success'], 'a read-only token that makes a directory');
  t.same(kinds(CS.register, readOnly, 'valid', built('POST', CS.register.path), answer(200, '{}')), ['unauthorized-success'], 'a client token on a peer route');
  t.same(kinds(CHUNKS.read, readOnly, 'valid', built('GET', '/v1/chunks/9'), answer(200, secretBytes), { strings: [], contents: [] }), [], 'a read-only token with a read token reads a chunk (it may read every file)');
  t.same(kinds(CHUNKS.read, none, 'valid', { ...built('GET', '/v1/chunks/9'), handle: 9 }, answer(200, secretBytes.subarray(3, 30))), ['unauthorized-success', 'leak'], 'a chunk\'s bytes without a token');
  t.same(kinds(CLUSTER.uiState, none, 'valid', built('GET', CLUSTER.uiState.path), answer(200, '{"dir":{"entries":["s-tag1"]}}')), ['leak'], 'a file name to an anonymous caller');
  t.same(kinds(FS.stat, readOnly, 'valid', built('GET', `${FS.stat.path}?path=/s-tag1`), answer(404, '{"error":{"code":"NOT_FOUND","message":"/s-tag1"}}')), [], 'a name the caller sent, echoed back, is no leak');
  t.same(kinds(FS.stat, none, 'valid', built('GET', FS.stat.path), answer(500, '{"error":{"code":"INTERNAL","message":"x"}}')), ['server-error'], 'a 500');
  t.same(kinds(FS.allocate, readOnly, 'valid', built('POST', FS.allocate.path), answer(503, '{"error":{"code":"NO_CHUNKSERVERS","message":"x"}}')), [], 'a 503 that says the cluster cannot now');
  t.same(kinds(FS.stat, none, 'valid', built('GET', FS.stat.path), answer(400, 'Bad Request')), ['no-error-code'], 'a 4xx without a JSON error');
  t.same(kinds(FS.stat, none, 'valid', built('GET', FS.stat.path), answer(401, '{"error":{"code":"FORBIDDEN","message":"x"}}')), ['no-error-code'], 'a code whose status is another');
  t.same(kinds(CLUSTER.health, none, 'wrong-method', built('DELETE', CLUSTER.health.path), answer(200, '{"ok":true}')), ['wrong-route-success'], 'a 200 for a wrong method');
  t.same(kinds(CLUSTER.health, none, 'valid', built('GET', CLUSTER.health.path), { kind: 'timeout' }), ['no-answer'], 'no answer');

  const fp = (over: Partial<Fingerprint> = {}): Fingerprint => ({
    entries: new Map([['/a', 'f1'], ['/p/x', 'f2']]), chunks: new Map([['/a', '[[5]]']]), owners: new Map([[5, '/a']]), settled: new Set(['/a']),
    tokens: 't1', keys: 'k0', quotas: new Map([['/', 'none']]), servers: 'cs1', disk: new Map([['cs1/5', '10:aa']]), ...over,
  });
  const mayWriteP = { path: (p: string) => p.startsWith('/p/'), tokens: false, newChunks: false };
  t.same(changes(fp(), fp(), mayWriteP), [], 'nothing changed');
  t.same(changes(fp(), fp({ entries: new Map([['/a', 'f1'], ['/p/x', 'changed']]) }), mayWriteP), [], 'a change where the class may write');
  t.equal(changes(fp(), fp({ entries: new Map([['/p/x', 'f2']]) }), mayWriteP).length, 1, 'a file deleted where it may not write');
  t.equal(changes(fp(), fp({ tokens: 't2' }), mayWriteP).length, 1, 'a token revoked');
  t.equal(changes(fp(), fp({ disk: new Map([['cs1/5', '10:bb']]) }), mayWriteP).length, 1, 'a chunk file overwritten');
  t.equal(changes(fp(), fp({ disk: new Map([['cs1/5', '10:aa'], ['cs2/77', '3:cc']]) }), mayWriteP).length, 1, 'a chunk file no server held appears');
});

t.test(`every route × every credential class, seed ${seed}, ${requests} requests, ${masters} master(s)`, async (t) => {
  t.ok(requests >= ROUTES.length * CLASS_NAMES.length, `${requests} requests cover the ${ROUTES.length} routes × ${CLASS_NAMES.length} classes at least once`);
  // Replication 3 on 3 chunkservers: every chunkserver holds every chunk, so any one may be asked
  // for it. A long dead timeout: a chunkserver starved of CPU for a few seconds is not declared
  // dead, which would change replica lists the fingerprint compares.
  const c = await TestCluster.start({ masters, chunkservers: 3, replication: 3, chunkSizeBytes: CHUNK, deadTimeoutMs: 30_000 });
  t.teardown(() => c.stop());
  const report = await fuzzRoutes(c, { seed, requests, chunkSizeBytes: CHUNK }).catch((err: Error) => {
    t.comment(`seed ${seed}: ${err.message}`);
    throw err;
  });
  t.comment(describe(report));
  t.equal(report.sent, requests, 'every planned request was sent');
  t.same(report.uncovered, [], 'every route of the contract was called with every credential class');
  t.same(report.findings.map((f) => `${f.kind} ${f.route} (${f.cls}): ${f.detail.slice(0, 200)} <- ${f.request.slice(0, 200)}`), [], `no findings (seed ${seed})`);
  for (const p of [...c.masterProcs, ...c.chunkservers]) t.equal(p!.child.exitCode ?? p!.child.signalCode, null, `${p!.id} is still running`);

  // Found by the fuzz: routes matched case-insensitively and with a trailing '/', while the peer
  // guards compare the path as written, so an admin client token registered a chunkserver.
  const leader = (await c.leader()).proc.addr;
  const register = JSON.stringify({ id: 'cs-impostor', addr: '127.0.0.1:9', capacityBytes: 1, freeBytes: 1, usedBytes: 0, activeWrites: 0, activeReads: 0, report: { id: '0123456789abcdef', page: 0, final: true }, chunks: [] });
  for (const [method, path] of [['POST', CS.register.path.toUpperCase()], ['POST', `${CS.register.path}/`], ['GET', CLUSTER.raftGroup.path.toUpperCase()], ['GET', `${CLUSTER.raftGroup.path}/`]] as const) {
    const res = await fetch(`http://${leader}${path}`, { method, headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' }, body: method === 'POST' ? register : undefined });
    t.ok(res.status === 404 || res.status === 401, `${method} ${path} with an admin token and no peer signature: refused, ${res.status} ${(await res.text()).slice(0, 100)}`);
  }
  t.notOk((await c.status()).chunkservers.some((s) => s.id === 'cs-impostor'), 'no impostor chunkserver was registered');
});
