// The wire contract (common/contract/): the table is whole and consistent, the master's policy
// takes each route's class from it, a client refuses a reply that does not fit (BAD_REPLY) and
// keeps the fields a newer server added, and a server reads a GET's query by its schema with the
// errors it always gave.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import t from 'tap';
import { call } from '../../common/contract/call.js';
import { CHUNKSERVER_PREFIX, CLUSTER, FS, pathOf, ROUTES, routeFor, routeKey, CHUNKS, type Route } from '../../common/contract/index.js';
import { DfsError } from '../../common/errors.js';
import { closeHttpAgent } from '../../common/http.js';
import { MAX_JSON_BODY_BYTES } from '../../common/limits.js';
import { serve } from '../../common/serve.js';
import { installErrorHandler } from '../../common/server.js';
import { ruleFor, SCOPE_CHECKS } from '../../master/credentials/policy.js';
import { RAFT_STREAM_PATH } from '../../master/raft/stream-transport.js';

t.teardown(() => closeHttpAgent());

/** A server on 127.0.0.1 that answers every request with `reply` (status 200, JSON). */
async function answering(reply: unknown): Promise<{ addr: string; server: Server }> {
  const server = createServer((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(reply)));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => server.close(() => r())));
  return { addr: `127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}

t.test('every route is in the table once, with a limit that fits its method', async (t) => {
  const keys = ROUTES.map(routeKey);
  t.equal(new Set(keys).size, keys.length, 'no METHOD /path twice');
  for (const r of ROUTES) {
    if (r.method === 'GET') t.equal(r.bodyLimit, 0, `${routeKey(r)} takes no body`);
    if (r.method === 'POST') t.ok(r.bodyLimit > 0 && r.bodyLimit <= MAX_JSON_BODY_BYTES, `${routeKey(r)}: a JSON body of at most ${MAX_JSON_BODY_BYTES}`);
    t.equal(routeFor(r.method, r.path), r, `${routeKey(r)} is found by method and path`);
    t.equal(r.caller === 'chunkserver', r.path.startsWith(`${CHUNKSERVER_PREFIX}/`), `${routeKey(r)}: chunkserver calls, and only they, are under ${CHUNKSERVER_PREFIX}`);
  }
  t.equal(routeFor('HEAD', FS.stat.path), FS.stat, 'a HEAD is its GET');
  t.equal(pathOf(CHUNKS.read, { handle: 42 }), '/v1/chunks/42');
  t.equal(RAFT_STREAM_PATH, CLUSTER.raftStream.path, 'master/raft spells the Raft stream\'s path as the contract does');
  t.throws(() => pathOf(CHUNKS.read), /parameter handle not given/);
});

t.test("the master's policy gives each route the class the contract names", async (t) => {
  for (const r of ROUTES.filter((x) => x.server !== 'chunkserver')) {
    const rule = ruleFor(r.method, r.path);
    const want = { public: 'public', member: 'public', chunkserver: 'public', admin: 'token', token: 'token', optional: 'optional', 'chunk-token': 'token' }[r.caller];
    t.equal(rule.kind, want, `${routeKey(r)} (${r.caller}) is ${want}`);
    if (r.caller === 'token' || r.caller === 'optional') t.ok(SCOPE_CHECKS.has(r), `${routeKey(r)} has a scope check`);
  }
  for (const r of SCOPE_CHECKS.keys()) t.ok(r.caller === 'token' || r.caller === 'optional', `${routeKey(r)}: a scope check only where a non-admin token may call`);
  t.equal(ruleFor('POST', '/v1/fs/no-such-route').kind, 'token', 'a route outside the contract needs a token (an admin one)');
  const unnamed = { ...FS.mkdir, path: '/v1/fs/mkdir2' } as Route;
  t.notOk(SCOPE_CHECKS.has(unnamed), 'and has no scope check');
});

t.test('a reply that does not fit is BAD_REPLY, naming the route, the server and the field', async (t) => {
  const { addr } = await answering({ path: '/a', entries: [{ name: 'x' }] });
  const err = await call(addr, FS.list, { path: '/a' }).then(() => undefined, (e: unknown) => e);
  t.ok(err instanceof DfsError, 'a DfsError');
  t.equal((err as DfsError).code, 'BAD_REPLY');
  t.equal((err as DfsError).status, 502);
  t.match((err as DfsError).message, new RegExp(`^GET /v1/fs/list to ${addr}: the reply does not fit the protocol \\(entries\\.0\\.path: `));
  const notJsonObject = await answering('just a string');
  await t.rejects(call(notJsonObject.addr, CLUSTER.health, {}), { code: 'BAD_REPLY' });
});

t.test('a reply with fields this client does not know passes, with them', async (t) => {
  const reply = { ok: true, leader: false, fromANewerServer: { nested: [1, 2] } };
  const { addr } = await answering(reply);
  t.same(await call(addr, CLUSTER.health, {}), reply);
});

t.test("a server reads a GET's query by its schema, with the errors it always gave", async (t) => {
  const app = express();
  serve(app, FS.du, (q) => ({ path: q.path, bytes: q.summary ? 1 : 0, files: q.perFile ? 1 : 0, dirs: 0, chunks: 0 }));
  installErrorHandler(app, { error: () => undefined } as never);
  const server = app.listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  t.teardown(() => new Promise<void>((r) => server.close(() => r())));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}${FS.du.path}`;
  const get = async (q: string) => {
    const res = await fetch(`${base}${q}`);
    return { status: res.status, body: (await res.json()) as { error?: { code: string; message: string }; bytes?: number; files?: number } };
  };
  t.match(await get('?path=/a&summary=1&perFile=false'), { status: 200, body: { bytes: 1, files: 0 } });
  t.match(await get('?path=/a&summary=true'), { status: 200, body: { bytes: 1, files: 0 } });
  t.match(await get(''), { status: 400, body: { error: { code: 'INVALID_ARGUMENT', message: 'query parameter path is required' } } });
  t.match(await get('?path=/a&path=/b'), { status: 400, body: { error: { message: 'query parameter path is required' } } });
  t.match(await get('?path=/a&summary=yes'), { status: 400, body: { error: { message: 'query parameter summary must be true or false' } } });
});
