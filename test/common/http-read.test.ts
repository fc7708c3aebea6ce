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
  ['/error', (res) => res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { code: 'NOT_FOUND', message: 'no such file: /x' } }))],
]);
const server = http.createServer((req, res) => {
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
  const closed = http.createServer();
  await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
  const port = (closed.address() as AddressInfo).port;
  await new Promise((resolve) => closed.close(resolve));
  const err = await callJson(`127.0.0.1:${port}`, '/declared', { timeoutMs: 5_000 }).catch((e: unknown) => e);
  t.ok(err instanceof DfsError && err.code === 'UNAVAILABLE', `UNAVAILABLE, not ${String(err)}`);
  t.match((err as DfsError).message, /ECONNREFUSED/);
});
