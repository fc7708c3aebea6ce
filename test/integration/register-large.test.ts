// A chunkserver with 1,000,000 chunks registers with a real master: the real heartbeat loop
// (chunkserver/heartbeat.ts) over a fake store sends its report in pages, and the master counts
// every chunk. One body could not carry it: the master refuses a report that large in one page.
// None of these chunks is in the namespace, and their handles were never issued, so the master
// keeps them (another cluster's, as far as it knows) rather than deleting them as garbage.
import { request as httpRequest } from 'node:http';
import t from 'tap';
import { request } from 'undici';
import { Heartbeat } from '../../chunkserver/heartbeat.js';
import type { Copier } from '../../chunkserver/copier.js';
import type { Activity } from '../../chunkserver/routes/index.js';
import type { ChunkStore } from '../../chunkserver/store/index.js';
import { LeaderClient } from '../../common/leader.js';
import { MAX_REPORT_PAGE_CHUNKS } from '../../common/limits.js';
import { createLogger } from '../../common/log.js';
import { chunkserverSigner } from '../../common/peer-auth.js';
import type { ReportedChunk } from '../../common/protocol.js';
import { TestCluster } from '../helpers/cluster.js';

const CHUNKS = 1_000_000;
const SECRET = Buffer.from('test-secret-0123456789abcdef');
const sign = chunkserverSigner(SECRET, 'test-cs');
const stats = { capacityBytes: 1 << 40, freeBytes: 1 << 39, usedBytes: 1 << 39, activeWrites: 0, activeReads: 0 };

function chunks(n: number, first = 1_000_000_000): ReportedChunk[] {
  return Array.from({ length: n }, (_, i) => ({ handle: first + i, version: 1, length: 64 * 1024 * 1024 }));
}

async function post(addr: string, body: unknown): Promise<{ status: number; body: { error?: { code: string }; reregister?: boolean } }> {
  const bytes = Buffer.from(JSON.stringify(body));
  const res = await request(`http://${addr}/v1/cs/register`, { method: 'POST', headers: { 'content-type': 'application/json', ...sign('POST', '/v1/cs/register', bytes) }, body: bytes });
  return { status: res.statusCode, body: (await res.body.json()) as { error?: { code: string } } };
}

/** A register call that declares `length` bytes of body and sends none: the answer. */
function declareOnly(addr: string, length: number): Promise<{ status: number; body: { error?: { code: string } } }> {
  const [host, port] = addr.split(':') as [string, string];
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host, port: Number(port), method: 'POST', path: '/v1/cs/register', headers: { 'content-type': 'application/json', 'content-length': String(length) } });
    req.on('response', (res) => {
      let text = '';
      res.on('data', (b: Buffer) => (text += b));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) as { error?: { code: string } } }));
    });
    req.on('error', reject);
    req.flushHeaders();
  });
}

t.test('a chunkserver with a million chunks registers in pages', async (t) => {
  const cluster = await TestCluster.start({ chunkservers: 0, deadTimeoutMs: 60_000, gcGraceMs: 3_600_000 });
  t.teardown(() => cluster.stop());
  const addr = cluster.master.addr;

  // One body of a million chunks is refused (over the body limit): registering so could never work.
  // It is refused on its declared length, before a byte of it is read (the server then closes the
  // connection, so a client still sending may see a reset): only the headers are sent here.
  const whole = await declareOnly(addr, Buffer.byteLength(JSON.stringify({ id: 'whole', addr: '127.0.0.1:8', ...stats, chunks: chunks(CHUNKS) })));
  t.equal(whole.status, 413, 'a million chunks in one body are refused');
  t.equal(whole.body.error?.code, 'BODY_TOO_LARGE');
  const over = await post(addr, { id: 'whole', addr: '127.0.0.1:8', ...stats, chunks: chunks(MAX_REPORT_PAGE_CHUNKS + 1) });
  t.equal(over.body.error?.code, 'INVALID_ARGUMENT', 'a page over MAX_REPORT_PAGE_CHUNKS is refused');

  // A report whose final page never comes registers nothing.
  const first = await post(addr, { id: 'partial', addr: '127.0.0.1:7', ...stats, report: { id: '0123456789abcdef', page: 0, final: false }, chunks: chunks(10) });
  t.equal(first.status, 200);
  t.equal(first.body.reregister, false, 'page 0 is taken');
  const skipped = await post(addr, { id: 'partial', addr: '127.0.0.1:7', ...stats, report: { id: '0123456789abcdef', page: 2, final: true }, chunks: chunks(10) });
  t.equal(skipped.body.reregister, true, 'a page out of order asks for the report again');

  const all = chunks(CHUNKS);
  const store = {
    count: CHUNKS,
    list: () => all,
    clearChanges: () => undefined,
    changesOverflowed: false,
    pendingChanges: 0,
    takeChanges: () => ({ added: [], removed: [] }),
    restoreChanges: () => undefined,
    diskStats: async () => ({ capacityBytes: stats.capacityBytes, freeBytes: stats.freeBytes, fsId: 'fake:1' }),
    usedBytes: () => stats.usedBytes,
    remove: async () => undefined,
  } as unknown as ChunkStore;
  const copier = { rateBytesPerSec: 0, takeFailed: () => [], add: () => undefined } as unknown as Copier;
  const masters = new LeaderClient([addr], { maxWaitMs: 30_000, timeoutMs: 30_000, sign });
  const hb = new Heartbeat('big1', '127.0.0.1:9', masters, store, { writes: 0, reads: 0 } as Activity, copier, 60_000, createLogger('chunkserver', 'big1'));
  t.teardown(() => hb.stop());

  const started = Date.now();
  hb.start();
  let status: Awaited<ReturnType<TestCluster['status']>> | undefined;
  for (let i = 0; i < 600; i++) {
    status = await cluster.status();
    if (status.chunkservers.some((c) => c.id === 'big1')) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  const tookMs = Date.now() - started;
  const big = status?.chunkservers.find((c) => c.id === 'big1');
  t.ok(big, 'the server registered');
  t.equal(big?.chunkCount, CHUNKS, 'the master holds every one of its chunks');
  t.equal(big?.alive, true);
  t.notOk(status?.chunkservers.some((c) => c.id === 'partial' || c.id === 'whole'), 'neither the partial report nor the refused one registered a server');
  t.comment(`${CHUNKS} chunks registered in ${Math.ceil(CHUNKS / MAX_REPORT_PAGE_CHUNKS)} pages in ${tookMs} ms`);
});
