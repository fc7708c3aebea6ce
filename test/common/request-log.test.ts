// Every app's first step (common/server.ts): the request id is taken or made, echoed, bound to
// the request's log lines and current in its routes; one line per request at a level that keeps
// periodic traffic out of the default log.
import t from 'tap';
import { Writable } from 'node:stream';
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import { request } from 'undici';
import { DfsError } from '../../common/errors.js';
import { currentRequestId, REQUEST_ID_HEADER } from '../../common/request-id.js';
import { createApp, installErrorHandler, listen, newMetricsRegistry, requestLog, route } from '../../common/server.js';

t.test('ids taken, made, echoed, bound and current in routes', async (t) => {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({ write(chunk: Buffer, _e, done) { lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>); done(); } });
  const log = pino({ level: 'debug' }, sink);
  const app = createApp(log, newMetricsRegistry('test'));
  app.post('/v1/thing', route((_req, res) => {
    requestLog(res, log).info('inside the route');
    res.json({ current: currentRequestId() });
  }));
  app.get('/v1/fail', route(() => {
    throw new DfsError('NOT_FOUND', 'no such thing');
  }));
  installErrorHandler(app, log);
  const server = await listen(app, '127.0.0.1', 0);
  t.teardown(() => new Promise((r) => server.close(r)));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const call = async (path: string, id?: string, method: 'GET' | 'POST' = 'GET') => {
    const res = await request(`${base}${path}`, { method, headers: id === undefined ? {} : { [REQUEST_ID_HEADER]: id }, ...(method === 'POST' ? { body: '{}', headers: { 'content-type': 'application/json', ...(id === undefined ? {} : { [REQUEST_ID_HEADER]: id }) } } : {}) });
    const body = await res.body.text();
    return { status: res.statusCode, id: String(res.headers[REQUEST_ID_HEADER]), body };
  };
  const settle = () => new Promise((r) => setTimeout(r, 50));

  const kept = await call('/v1/thing', 'op-7', 'POST');
  t.equal(kept.id, 'op-7', 'a well-formed id is echoed');
  t.same(JSON.parse(kept.body), { current: 'op-7' }, 'and is the current id in the route (calls to peers carry it)');
  await settle();
  const of = (id: string) => lines.filter((l) => l.reqId === id);
  t.same(of('op-7').map((l) => l.msg), ['inside the route', 'request'], 'the route\'s line and the request\'s line carry it');
  t.match(of('op-7')[1], { level: 30, method: 'POST', url: '/v1/thing', status: 200 }, 'a change is logged at info');

  const made = await call('/v1/thing', 'bad id\twith tab', 'POST');
  t.match(made.id, /^[0-9a-f]{16}$/, 'a malformed id is replaced');
  await settle();
  t.match(of(made.id).at(-1), { requestIdReplaced: true });
  t.notOk(lines.some((l) => JSON.stringify(l).includes('bad id')), 'and never logged');

  const failed = await call('/v1/fail', 'op-8');
  t.equal(failed.status, 404);
  t.equal(failed.id, 'op-8', 'an error reply carries the id too');
  const fresh = await call('/metrics');
  t.match(fresh.id, /^[0-9a-f]{16}$/, 'no id sent: one is made');
  await settle();
  t.match(of('op-8')[0], { level: 30, status: 404 }, 'a refusal is logged at info');
  t.match(of(fresh.id)[0], { level: 20 }, 'periodic traffic that went well at debug');
});

t.test('without the async request context (the master): no current id in routes, the request logger still carries it', async (t) => {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({ write(chunk: Buffer, _e, done) { lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>); done(); } });
  const log = pino({ level: 'debug' }, sink);
  const app = createApp(log, newMetricsRegistry('test'), { requestContext: false });
  app.post('/v1/thing', route(async (_req, res) => {
    await new Promise((r) => setImmediate(r));
    requestLog(res, log).warn('inside the route');
    res.json({ current: currentRequestId() ?? null });
  }));
  installErrorHandler(app, log);
  const server = await listen(app, '127.0.0.1', 0);
  t.teardown(() => new Promise((r) => server.close(r)));
  const res = await request(`http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/thing`, { method: 'POST', body: '{}', headers: { 'content-type': 'application/json', [REQUEST_ID_HEADER]: 'op-9' } });
  t.same(await res.body.json(), { current: null }, 'the route runs outside any request context');
  t.equal(res.headers[REQUEST_ID_HEADER], 'op-9', 'the id is echoed all the same');
  await new Promise((r) => setTimeout(r, 50));
  t.same(lines.filter((l) => l.reqId === 'op-9').map((l) => l.msg), ['inside the route', 'request'], 'and on the route\'s line and the request\'s line');
});
