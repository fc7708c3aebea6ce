// The chunk PUT stream (common/chunk-put.ts) that the client's upload and a chunkserver's forward
// to its next hop share: what reaches the first hop, and whom a failure blames. A plain HTTP
// server on 127.0.0.1 stands in for the first hop.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import t, { type Test } from 'tap';
import { CHUNK_TOKEN_HEADER } from '../../common/auth.js';
import { ChunkPut } from '../../common/chunk-put.js';
import { DfsError } from '../../common/errors.js';
import { closeHttpAgent } from '../../common/http.js';

t.teardown(closeHttpAgent);

/** A first hop that reads the whole body, then answers with `reply(req, body)`. */
async function firstHop(t: Test, reply: (req: IncomingMessage, body: Buffer, res: ServerResponse) => void): Promise<string> {
  const server = createServer((req, res) => {
    const pieces: Buffer[] = [];
    req.on('data', (p: Buffer) => pieces.push(p));
    req.on('end', () => reply(req, Buffer.concat(pieces), res));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => server.close(() => r())));
  return `127.0.0.1:${(server.address() as AddressInfo).port}`;
}

const json = (res: ServerResponse, status: number, body: unknown) => res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));

async function failureOf(p: Promise<unknown>): Promise<DfsError> {
  try {
    await p;
  } catch (err) {
    return err as DfsError;
  }
  throw new Error('expected a failure');
}

t.test('bytes, the rest of the pipeline, version and token reach the first hop; its answer is the result', async (t) => {
  let seen: { url?: string; token?: string; body?: Buffer } = {};
  const addr = await firstHop(t, (req, body, res) => {
    seen = { url: req.url, token: req.headers[CHUNK_TOKEN_HEADER] as string, body };
    json(res, 200, { handle: 7, version: 3, length: body.length, checksum: 'c', replicas: [{ id: 'a', addr: 'x' }] });
  });
  const put = new ChunkPut({ pipeline: [addr, '127.0.0.1:2', '127.0.0.1:3'], handle: 7, version: 3, token: 'tok', timeoutMs: 10_000 });
  for (const piece of [Buffer.from('hello '), Buffer.from('chunk')]) await put.write(piece);
  put.end();
  const reply = await put.result;
  t.equal(reply.length, 11);
  t.equal(seen.body?.toString(), 'hello chunk', 'every byte, in order');
  t.equal(seen.token, 'tok');
  const url = new URL(`http://h${seen.url}`);
  t.equal(url.pathname, '/v1/chunks/7');
  t.equal(url.searchParams.get('version'), '3');
  t.equal(url.searchParams.get('next'), '127.0.0.1:2,127.0.0.1:3', 'the first hop forwards to the rest');
});

t.test('a failure further on keeps its blame; any other failure blames the first hop', async (t) => {
  const further = await firstHop(t, (_req, _body, res) => json(res, 502, { error: { code: 'PIPELINE_FAILED', message: 'replica 127.0.0.1:9 failed: disk', failed: '127.0.0.1:9' } }));
  const p1 = new ChunkPut({ pipeline: [further, '127.0.0.1:9'], handle: 1, version: 1, token: 't', timeoutMs: 10_000 });
  p1.end();
  const e1 = await failureOf(p1.result);
  t.equal(e1.code, 'PIPELINE_FAILED');
  t.equal(e1.details.failed, '127.0.0.1:9', 'the node the first hop named');
  t.equal(e1.message, 'replica 127.0.0.1:9 failed: disk', 'passed on as it is');

  const busy = await firstHop(t, (_req, _body, res) => json(res, 503, { error: { code: 'UNAVAILABLE', message: 'busy' } }));
  const p2 = new ChunkPut({ pipeline: [busy], handle: 1, version: 1, token: 't', timeoutMs: 10_000 });
  p2.end();
  const e2 = await failureOf(p2.result);
  t.equal(e2.code, 'PIPELINE_FAILED');
  t.equal(e2.details.failed, busy);
  t.equal(e2.details.cause, 'UNAVAILABLE', 'the first hop\'s own code is kept as the cause');

  // Nothing listens on a port just freed: the connection is refused.
  const gone = await firstHop(t, () => undefined);
  const closed = createServer();
  await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
  const deadAddr = `127.0.0.1:${(closed.address() as AddressInfo).port}`;
  await new Promise<void>((r) => closed.close(() => r()));
  t.not(deadAddr, gone);
  const p3 = new ChunkPut({ pipeline: [deadAddr], handle: 1, version: 1, token: 't', timeoutMs: 10_000 });
  const e3 = await failureOf(p3.result);
  t.equal(e3.code, 'PIPELINE_FAILED');
  t.equal(e3.details.failed, deadAddr, 'an unreachable first hop is blamed');
  await t.rejects(p3.write(Buffer.from('x')), { code: 'PIPELINE_FAILED' }, 'a write after the failure throws it');
});

t.test('an outside signal stops the put', async (t) => {
  const addr = await firstHop(t, (_req, _body, res) => json(res, 200, {}));
  const stop = new AbortController();
  const put = new ChunkPut({ pipeline: [addr], handle: 1, version: 1, token: 't', timeoutMs: 10_000, signal: stop.signal });
  await put.write(Buffer.from('partial'));
  stop.abort(new Error('stopped'));
  const e = await failureOf(put.result);
  t.equal(e.code, 'PIPELINE_FAILED', 'the put fails instead of waiting for the body to end');
});
