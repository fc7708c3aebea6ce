// A JSON reply as the one HTTP client reads it (common/http.ts readJson, callJson): with a declared
// length and without one (chunked), empty, not JSON, over the bound, and a refusal.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import t from 'tap';
import { request } from 'undici';
import { callJson, closeHttpAgent, HTTP_LIMITS, readJson } from '../../common/http.js';
import { DfsError } from '../../common/errors.js';

type Reply = (res: http.ServerResponse) => void;
const replies = new Map<string, Reply>([
  ['/declared', (res) => res.writeHead(200, { 'content-type': 'application/json', 'content-length': '17' }).end('{"a":1,"b":"xyz"}')],
  ['/chunked', (res) => { res.writeHead(200, { 'content-type': 'application/json' }); res.write('{"a":1,'); res.end('"b":"xyz"}'); }],
  ['/empty', (res) => res.writeHead(200, { 'content-length': '0' }).end()],
  ['/garbage', (res) => res.writeHead(200, { 'content-length': '5' }).end('{oops')],
  ['/garbage-chunked', (res) => { res.writeHead(200); res.write('{oo'); res.end('ps'); }],
  // Says more than the bound allows: refused before a byte of it is read.
  // More than the bound (lowered to 16 bytes below) and never ending: read up to the bound only.
  ['/huge', (res) => { res.writeHead(200, { 'content-type': 'application/json' }); res.write('{"a":"0123456789abcdef'); }],
  // Never answers: the call's timer ends it.
  ['/silent', () => undefined],
  // Answers its status, then the connection dies halfway through the body.
  ['/cut', (res) => { res.writeHead(200, { 'content-type': 'application/json', 'content-length': '100' }); res.write('{"a":'); setTimeout(() => res.socket?.destroy(), 20); }],
  // Answers after the others that share its connection would have waited.
  ['/slow', (res) => setTimeout(() => res.writeHead(200, { 'content-type': 'application/json', 'content-length': '2' }).end('{}'), 600)],
  ['/queued', (res) => res.writeHead(200, { 'content-length': '2' }).end('{}')],
  // 103 Early Hints first: informational, then the real reply.
  ['/hinted', (res) => { res.writeEarlyHints({ link: '</x>; rel=preload' }); res.writeHead(200, { 'content-type': 'application/json', 'content-length': '8' }).end('{"b":2}\n'); }],
  ['/error', (res) => res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { code: 'NOT_FOUND', message: 'no such file: /x' } }))],
]);
const seen = new Map<string, number>();
const server = http.createServer((req, res) => {
  seen.set(req.url ?? '', (seen.get(req.url ?? '') ?? 0) + 1);
  const reply = replies.get(req.url ?? '');
  if (reply) reply(res);
  else res.writeHead(500).end();
});
await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
const addr = `127.0.0.1:${(server.address() as AddressInfo).port}`;
t.teardown(async () => {
  await closeHttpAgent();
  server.closeAllConnections();
  server.close();
});

async function code(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'ok';
  } catch (err) {
    return err instanceof DfsError ? err.code : `not a DfsError: ${String(err)}`;
  }
}

t.test('a reply with its length and one without read the same', async (t) => {
  t.same(await callJson(addr, '/declared'), { a: 1, b: 'xyz' });
  t.same(await callJson(addr, '/chunked'), { a: 1, b: 'xyz' });
  t.equal(await callJson(addr, '/empty'), undefined, 'an empty body is no value');
});

t.test('a reply that is not JSON is INTERNAL, by either path', async (t) => {
  t.equal(await code(callJson(addr, '/garbage')), 'INTERNAL');
  t.equal(await code(callJson(addr, '/garbage-chunked')), 'INTERNAL');
});

t.test('a reply over the bound is refused once the bound is passed, not read to its end', async (t) => {
  const bound = HTTP_LIMITS.maxJsonReplyBytes;
  HTTP_LIMITS.maxJsonReplyBytes = 16;
  t.teardown(() => { HTTP_LIMITS.maxJsonReplyBytes = bound; });
  const res = await request(`http://${addr}/huge`);
  t.equal(await code(readJson(res.body)), 'BODY_TOO_LARGE');
  t.ok(res.body.destroyed, 'and its body is dropped');
});

t.test("a refusal carries the server's code", async (t) => {
  t.equal(await code(callJson(addr, '/error')), 'NOT_FOUND');
});

t.test('a reply over the bound is refused by callJson too', async (t) => {
  const bound = HTTP_LIMITS.maxJsonReplyBytes;
  HTTP_LIMITS.maxJsonReplyBytes = 16;
  t.teardown(() => { HTTP_LIMITS.maxJsonReplyBytes = bound; });
  t.equal(await code(callJson(addr, '/huge')), 'BODY_TOO_LARGE');
  t.same(await callJson(addr, '/declared', { timeoutMs: 5_000 }).catch((e: DfsError) => e.code), 'BODY_TOO_LARGE', 'a 17-byte reply is over a 16-byte bound');
});

t.test('a peer that never answers is a TIMEOUT after the call\'s time, and the next call still goes', async (t) => {
  const start = performance.now();
  const err = await callJson(addr, '/silent', { timeoutMs: 300 }).catch((e: unknown) => e);
  t.ok(err instanceof DfsError && err.code === 'TIMEOUT', `TIMEOUT, not ${String(err)}`);
  t.match((err as DfsError).message, /call to 127\.0\.0\.1:\d+ timed out/);
  t.ok(performance.now() - start >= 290, 'not before its time');
  t.same(await callJson(addr, '/declared'), { a: 1, b: 'xyz' });
});

t.test('a connection cut in the middle of the body is UNAVAILABLE, as a reply that failed', async (t) => {
  const err = await callJson(addr, '/cut', { timeoutMs: 5_000 }).catch((e: unknown) => e);
  t.ok(err instanceof DfsError && err.code === 'UNAVAILABLE', `UNAVAILABLE, not ${String(err)}`);
  t.match((err as DfsError).message, /^reply from 127\.0\.0\.1:\d+ failed/);
});

t.test('nothing listening is UNAVAILABLE at once', async (t) => {
  // Port 1: privileged, and nothing here listens on it (a port just released could be taken again).
  const err = await callJson('127.0.0.1:1', '/declared', { timeoutMs: 5_000 }).catch((e: unknown) => e);
  t.ok(err instanceof DfsError && err.code === 'UNAVAILABLE', `UNAVAILABLE, not ${String(err)}`);
  t.match((err as DfsError).message, /ECONNREFUSED/);
});

t.test('an informational 103 before the reply is skipped', async (t) => {
  t.same(await callJson(addr, '/hinted'), { b: 2 });
});

t.test('a call that times out while it waits for a connection is never sent', async (t) => {
  const connections = HTTP_LIMITS.connectionsPerOrigin;
  HTTP_LIMITS.connectionsPerOrigin = 1;
  await closeHttpAgent(); // the next call makes an agent with one connection per peer
  t.teardown(async () => {
    HTTP_LIMITS.connectionsPerOrigin = connections;
    await closeHttpAgent();
  });
  const slow = callJson(addr, '/slow', { timeoutMs: 5_000 });
  const start = performance.now();
  const err = await callJson(addr, '/queued', { timeoutMs: 150 }).catch((e: unknown) => e);
  t.ok(err instanceof DfsError && err.code === 'TIMEOUT', `TIMEOUT, not ${String(err)}`);
  t.ok(performance.now() - start < 550, 'at its own time, not when the connection came free');
  t.same(await slow, {}, 'the call ahead of it ends as it would have');
  await new Promise((resolve) => setTimeout(resolve, 100));
  t.equal(seen.get('/queued') ?? 0, 0, 'the server never saw the call that timed out');
  t.same(await callJson(addr, '/queued'), {}, 'and the next call goes');
});

t.test('every call clears its timer, whatever its end', async (t) => {
  const MARK = 7_777; // the calls below use this timeout, and nothing else here does
  const open = new Set<unknown>();
  const realSet = globalThis.setTimeout;
  const realClear = globalThis.clearTimeout;
  globalThis.setTimeout = ((fn: () => void, ms?: number, ...rest: unknown[]) => {
    const timer = realSet(fn, ms, ...rest);
    if (ms === MARK) open.add(timer);
    return timer;
  }) as typeof setTimeout;
  globalThis.clearTimeout = ((timer?: Parameters<typeof clearTimeout>[0]) => {
    open.delete(timer);
    realClear(timer);
  }) as typeof clearTimeout;
  t.teardown(() => {
    globalThis.setTimeout = realSet;
    globalThis.clearTimeout = realClear;
  });
  const bound = HTTP_LIMITS.maxJsonReplyBytes;
  const ends: string[] = [];
  for (const [target, path] of [[addr, '/declared'], [addr, '/error'], [addr, '/garbage'], [addr, '/cut'], ['127.0.0.1:1', '/declared']] as const) {
    ends.push(await code(callJson(target, path, { timeoutMs: MARK })));
  }
  HTTP_LIMITS.maxJsonReplyBytes = 16;
  ends.push(await code(callJson(addr, '/huge', { timeoutMs: MARK })));
  HTTP_LIMITS.maxJsonReplyBytes = bound;
  t.same(ends, ['ok', 'NOT_FOUND', 'INTERNAL', 'UNAVAILABLE', 'UNAVAILABLE', 'BODY_TOO_LARGE'], 'each call ended as it should');
  t.equal(open.size, 0, 'and no timer of theirs is left running');
});
