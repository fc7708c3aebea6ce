// The limits every listener puts on callers (common/http-limits.ts, common/server.ts), driven
// through real sockets against an app built as the roles build theirs.
import { createServer, IncomingMessage, type Server, ServerResponse } from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';
import express from 'express';
import { Readable } from 'node:stream';
import t, { type Test } from 'tap';
import { request } from 'undici';
import { z } from 'zod';
import { DfsError } from '../../common/errors.js';
import { applyServerLimits, checkJsonShape, HTTP_SERVER_LIMITS, parseJsonBody, readBody } from '../../common/http-limits.js';
import { createLogger } from '../../common/log.js';
import { createApp, installErrorHandler, listen, newMetricsRegistry, parseInput, route } from '../../common/server.js';

const log = createLogger('test', 'limits');

async function app(t: Test): Promise<{ addr: string; server: Server; seen: unknown[] }> {
  const seen: unknown[] = [];
  const a = createApp(log, newMetricsRegistry('test'), { hostNames: () => new Set(['dfs.example', 'localhost']) });
  a.post('/v1/echo', route((req, res) => {
    seen.push(req.body);
    res.json({ body: req.body ?? null });
  }));
  a.get('/v1/thing', (_req, res) => res.json({ ok: true }));
  installErrorHandler(a, log);
  const server = await listen(a, '127.0.0.1', 0);
  t.teardown(() => new Promise<void>((r) => {
    server.closeAllConnections();
    server.close(() => r());
  }));
  return { addr: `127.0.0.1:${(server.address() as AddressInfo).port}`, server, seen };
}

/** Writes raw bytes on a fresh connection; answers what came back before the server closed it (or `waitMs` passed). */
function raw(addr: string, text: string, waitMs = 20_000): Promise<{ reply: string; closed: boolean }> {
  const [host, port] = addr.split(':') as [string, string];
  return new Promise((resolve) => {
    const s: Socket = connect(Number(port), host);
    let reply = '';
    const timer = setTimeout(() => {
      s.destroy();
      resolve({ reply, closed: false });
    }, waitMs);
    s.on('data', (b) => (reply += b.toString()));
    s.on('error', () => undefined);
    s.on('close', () => {
      clearTimeout(timer);
      resolve({ reply, closed: true });
    });
    s.write(text);
  });
}

const json = { 'content-type': 'application/json' };

t.test("a listener's requests and replies are born with the app's prototypes, and still are node's", async (t) => {
  const a = createApp(log, newMetricsRegistry('test'));
  a.post('/v1/shape', route((req, res) => void res.status(201).json({ got: req.get('x-probe') ?? null, body: req.body ?? null })));
  installErrorHandler(a, log);
  const server = await listen(a, '127.0.0.1', 0);
  t.teardown(() => new Promise<void>((r) => server.close(() => r())));
  // Seen before express's app.handle, which would set these prototypes itself.
  const born: boolean[] = [];
  server.prependListener('request', (req: IncomingMessage, res: ServerResponse) => {
    born.push(Object.getPrototypeOf(req) === a.request, Object.getPrototypeOf(res) === a.response, req instanceof IncomingMessage, res instanceof ServerResponse);
  });
  const r = await request(`http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/shape`, { method: 'POST', headers: { ...json, 'x-probe': 'p' }, body: '{"a":1}' });
  t.same([r.statusCode, await r.body.json()], [201, { got: 'p', body: { a: 1 } }], "express's request and reply methods work on them");
  t.same(born, [true, true, true, true], "the app's request and reply prototypes before express saw them, and still http objects");
});

t.test('a declared length over the limit is refused before the body is read', async (t) => {
  const { addr, seen } = await app(t);
  // Headers only: a server that waited for the 100 MB would never answer.
  const r = await raw(addr, `POST /v1/echo HTTP/1.1\r\nhost: ${addr}\r\ncontent-type: application/json\r\ncontent-length: 100000000\r\n\r\n`);
  t.match(r.reply, /^HTTP\/1.1 413 /, '413 at once');
  t.match(r.reply, /"code":"BODY_TOO_LARGE"/);
  t.ok(r.closed, 'and the connection is closed, the body never read');
  t.same(seen, [], 'the route never ran');
  const chunked = await request(`http://${addr}/v1/echo`, { method: 'POST', headers: json, body: Readable.from((async function* () {
    for (let i = 0; i < 10; i++) yield Buffer.alloc(1024 * 1024, 0x20);
  })()) }).catch((err: Error) => ({ statusCode: 0, err }));
  // Without a declared length the body is cut where it passes the limit (the client may see the reset first).
  t.ok(chunked.statusCode === 413 || chunked.statusCode === 0, `a chunked body over the limit is cut (${chunked.statusCode})`);
  t.same(seen, [], 'the route never ran');
});

t.test('JSON nested too deep or with too many keys is refused before parsing', async (t) => {
  const { addr, seen } = await app(t);
  const post = async (body: string) => {
    const res = await request(`http://${addr}/v1/echo`, { method: 'POST', headers: json, body });
    return { status: res.statusCode, body: (await res.body.json()) as { error?: { code: string; message: string }; body?: unknown } };
  };
  const deep = await post('['.repeat(4_000_000) + ']'.repeat(4_000_000));
  t.match(deep, { status: 400, body: { error: { code: 'JSON_TOO_COMPLEX', message: /deeper than 64/ } } }, '4 million levels');
  const keys = await post(JSON.stringify(Object.fromEntries(Array.from({ length: 1001 }, (_, i) => [`k${i}`, i]))));
  t.match(keys, { status: 400, body: { error: { code: 'JSON_TOO_COMPLEX', message: /more than 1000 keys/ } } }, '1001 keys in one object');
  const fine = { a: [{ b: 1 }, { b: 2 }], s: '[[[[{{{{"::::\\"' + '['.repeat(100), long: Array.from({ length: 5000 }, (_, i) => ({ i })) };
  const ok = await post(JSON.stringify(fine));
  t.match(ok, { status: 200, body: { body: fine } }, 'brackets and colons inside strings do not count; many small objects are fine');
  t.equal(seen.length, 1, 'only the good body reached the route');
  const bad = await post('{"a":');
  t.match(bad, { status: 400, body: { error: { code: 'INVALID_ARGUMENT', message: 'request body is not valid JSON' } } });
  const plain = await request(`http://${addr}/v1/echo`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: '{"x":1}' });
  t.same(await plain.body.json(), { body: null }, 'a body not sent as JSON is not parsed');
  const gz = await request(`http://${addr}/v1/echo`, { method: 'POST', headers: { ...json, 'content-encoding': 'gzip' }, body: 'xx' });
  t.equal(gz.statusCode, 400, 'a compressed body is refused');
  await gz.body.dump();
  t.throws(() => checkJsonShape(Buffer.from('{"a":{"b":1}}'), 1), { code: 'JSON_TOO_COMPLEX' }, 'the depth limit is exact');
  t.doesNotThrow(() => checkJsonShape(Buffer.from('{"a":{"b":1}}'), 2));
});

t.test('Host and Origin: DNS rebinding and cross-origin writes', async (t) => {
  const { addr } = await app(t);
  const call = async (method: 'GET' | 'POST', headers: Record<string, string>) => {
    const res = await request(`http://${addr}${method === 'GET' ? '/v1/thing' : '/v1/echo'}`, { method, headers: { ...json, ...headers }, body: method === 'POST' ? '{}' : undefined });
    const b = (await res.body.json()) as { error?: { code: string } };
    return `${res.statusCode} ${b.error?.code ?? ''}`.trim();
  };
  const port = addr.split(':')[1];
  t.equal(await call('GET', {}), '200', 'the address itself');
  t.equal(await call('GET', { host: `localhost:${port}` }), '200', 'localhost');
  t.equal(await call('GET', { host: `dfs.example:${port}` }), '200', 'a configured name');
  t.equal(await call('GET', { host: `[::1]:${port}` }), '200', 'an IPv6 literal');
  t.equal(await call('GET', { host: `evil.example:${port}` }), '403 HOST_NOT_ALLOWED', 'a rebinding name');
  t.equal(await call('POST', { host: `evil.example:${port}` }), '403 HOST_NOT_ALLOWED', 'a rebinding name, writing');
  t.equal(await call('POST', { origin: 'http://evil.example' }), '403 CROSS_ORIGIN', 'a write from another origin');
  t.equal(await call('POST', { origin: 'null' }), '403 CROSS_ORIGIN', 'a write from an opaque origin');
  t.equal(await call('POST', { origin: `http://127.0.0.1:${port}` }), '200', 'a write from this server\'s own page');
  t.equal(await call('GET', { origin: 'http://evil.example' }), '200', 'a read from another origin (the browser keeps the answer from the page)');
});

t.test('a known path with another method is 405, an unknown one 404', async (t) => {
  const { addr } = await app(t);
  const get = await request(`http://${addr}/v1/echo`);
  t.equal(get.statusCode, 405);
  t.equal(get.headers.allow, 'POST');
  t.match(await get.body.json(), { error: { code: 'METHOD_NOT_ALLOWED' } });
  const del = await request(`http://${addr}/v1/thing`, { method: 'DELETE' });
  t.equal(del.statusCode, 405);
  t.equal(del.headers.allow, 'GET, HEAD');
  await del.body.dump();
  const none = await request(`http://${addr}/v1/nothing`, { method: 'DELETE' });
  t.equal(none.statusCode, 404, 'no such path');
  await none.body.dump();
});

t.test('a route matches its path exactly: another case or a trailing slash is no route (found by the route fuzz)', async (t) => {
  const { addr } = await app(t);
  for (const path of ['/V1/THING', '/v1/Thing', '/v1/thing/']) {
    const res = await request(`http://${addr}${path}`);
    t.equal(res.statusCode, 404, `GET ${path}: 404`);
    t.match(await res.body.json(), { error: { code: 'NOT_FOUND' } });
  }
  const ok = await request(`http://${addr}/v1/thing`);
  t.equal(ok.statusCode, 200, 'the path as the route names it still answers');
  await ok.body.dump();
});

t.test('what the HTTP parser refuses is answered as JSON with a stable code, then closed (found by the route fuzz)', async (t) => {
  const { addr } = await app(t);
  const cases: [string, RegExp, string][] = [
    [`FOO /v1/thing HTTP/1.1\r\nhost: ${addr}\r\n\r\n`, /^HTTP\/1.1 405 /, 'METHOD_NOT_ALLOWED'],
    [`GET %2fv1%2fthing HTTP/1.1\r\nhost: ${addr}\r\n\r\n`, /^HTTP\/1.1 400 /, 'INVALID_ARGUMENT'],
    [`GET /v1/thing HTTP/1.1\r\nhost: ${addr}\r\nx-big: ${'y'.repeat(20_000)}\r\n\r\n`, /^HTTP\/1.1 431 /, 'HEADERS_TOO_LARGE'],
    [`CONNECT /v1/thing HTTP/1.1\r\nhost: ${addr}\r\n\r\n`, /^HTTP\/1.1 405 /, 'METHOD_NOT_ALLOWED'],
  ];
  for (const [text, status, code] of cases) {
    const r = await raw(addr, text, 10_000);
    t.match(r.reply, status, `${text.split(' ')[0]} ${code}: ${r.reply.split('\r\n')[0]}`);
    t.match(r.reply, new RegExp(`\\{"error":\\{"code":"${code}"`), 'with a JSON error body');
    t.ok(r.closed, 'and the connection is closed');
  }
});

t.test('slow headers and slow bodies are cut', async (t) => {
  const { addr } = await app(t);
  const slow = await raw(addr, `GET /v1/thing HTTP/1.1\r\nhost: ${addr}\r\n`, HTTP_SERVER_LIMITS.headersTimeoutMs + 15_000);
  t.ok(slow.closed, 'a request whose headers never end is closed');
  t.match(slow.reply, /^(HTTP\/1.1 408 |$)/, 'with a 408 or nothing');
  // The body bound, shortened for the test.
  const a = express();
  a.use(readBody(1024, 300));
  a.use(parseJsonBody());
  a.post('/x', (req, res) => res.json(req.body));
  installErrorHandler(a, log);
  const server = await listen(a, '127.0.0.1', 0);
  t.teardown(() => new Promise<void>((r) => {
    server.closeAllConnections();
    server.close(() => r());
  }));
  const small = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  const r = await raw(small, `POST /x HTTP/1.1\r\nhost: ${small}\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{"a":`);
  t.match(r.reply, /^HTTP\/1.1 408 /, 'a body that stalls gets 408');
  t.match(r.reply, /"code":"BODY_TIMEOUT"/);
  t.ok(r.closed, 'and the connection is closed');
});

t.test('connections from one client are capped', async (t) => {
  // The real cap is in the thousands: the same code with a cap of 2.
  const server = createServer((_req, res) => res.end('ok'));
  applyServerLimits(server, 60_000, { ...HTTP_SERVER_LIMITS, maxConnectionsPerClient: 2 });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  t.teardown(() => new Promise<void>((r) => {
    server.closeAllConnections();
    server.close(() => r());
  }));
  const addr = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  const req = `GET / HTTP/1.1\r\nhost: ${addr}\r\n\r\n`;
  const held = [raw(addr, req, 1500), raw(addr, req, 1500)];
  await new Promise((r) => setTimeout(r, 200));
  const third = await raw(addr, req, 1500);
  const [a, b] = await Promise.all(held);
  t.match(a!.reply, /^HTTP\/1.1 200 /, 'the first connection is served (and held open)');
  t.match(b!.reply, /^HTTP\/1.1 200 /, 'the second too');
  t.same(third, { reply: '', closed: true }, 'the third is closed without an answer');
  // Once the server has seen those close (a moment after the client did), a new one is served.
  let later = { reply: '', closed: true };
  for (let i = 0; i < 50 && later.reply === ''; i++) later = await raw(addr, req, 300);
  t.match(later.reply, /^HTTP\/1.1 200 /, 'once those closed, a new one is served');
});

t.test('error messages do not echo input at length', async (t) => {
  const schema = z.object({ a: z.number() }).strict();
  const input = Object.fromEntries(Array.from({ length: 100_000 }, (_, i) => [`unknown${i}`, i]));
  const err = (() => {
    try {
      parseInput(schema, { a: 1, ...input });
    } catch (e) {
      return e as DfsError;
    }
    return undefined;
  })();
  t.equal(err?.code, 'INVALID_ARGUMENT');
  t.ok((err?.message.length ?? 0) <= 301, `the message is cut (${err?.message.length})`);
});

t.test('checkJsonShape skips strings natively and judges exactly as a byte-by-byte scan', async (t) => {
  // The reference: the byte-at-a-time scan checkJsonShape replaced (strings skipped with indexOf).
  const reference = (text: Buffer, maxDepth: number, maxKeys: number): string | undefined => {
    const keys: number[] = [];
    let inString = false;
    for (let i = 0; i < text.length; i++) {
      const c = text[i];
      if (inString) {
        if (c === 0x5c) i++;
        else if (c === 0x22) inString = false;
        continue;
      }
      if (c === 0x22) inString = true;
      else if (c === 0x7b || c === 0x5b) {
        keys.push(c === 0x7b ? 0 : -1);
        if (keys.length > maxDepth) return 'depth';
      } else if (c === 0x7d || c === 0x5d) keys.pop();
      else if (c === 0x3a && keys.length > 0 && keys[keys.length - 1]! >= 0 && ++keys[keys.length - 1]! > maxKeys) return 'keys';
    }
    return undefined;
  };
  const judge = (text: Buffer, maxDepth: number, maxKeys: number): string | undefined => {
    try {
      checkJsonShape(text, maxDepth, maxKeys);
      return undefined;
    } catch (err) {
      return String((err as Error).message).includes('deeper') ? 'depth' : 'keys';
    }
  };
  // Seeded (xorshift), so a failure replays: bodies of quotes, backslashes, brackets and colons.
  let seed = 0x2545f491;
  const rand = (n: number) => {
    seed ^= seed << 13; seed ^= seed >>> 17; seed ^= seed << 5;
    return (seed >>> 0) % n;
  };
  const alphabet = ['"', '\\', '{', '}', '[', ']', ':', ',', 'a', '"', '\\\\', '\\"'];
  let refused = 0;
  for (let n = 0; n < 5000; n++) {
    const text = Buffer.from(Array.from({ length: 1 + rand(40) }, () => alphabet[rand(alphabet.length)]).join(''));
    const maxDepth = 1 + rand(4), maxKeys = 1 + rand(3);
    const want = reference(text, maxDepth, maxKeys);
    if (want !== undefined) refused++;
    if (judge(text, maxDepth, maxKeys) !== want) {
      t.fail(`${JSON.stringify(text.toString())} depth ${maxDepth} keys ${maxKeys}: expected ${String(want)}`);
      return;
    }
  }
  t.ok(refused > 500 && refused < 4500, `both verdicts were exercised (${refused} of 5,000 refused)`);
  t.throws(() => checkJsonShape(Buffer.from(`{"inline":"${'A'.repeat(6000)}\\\\","a":{"b":{"c":1}}}`), 2), { code: 'JSON_TOO_COMPLEX' }, 'a long string is skipped, and what follows it still counted');
});
