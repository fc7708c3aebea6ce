// Record append (issue 19, item 2) with real processes and small chunks: 8 clients (4 `dfs append
// --record --lines` processes and 4 DfsClients) append records to one file at once across chunk
// boundaries; the reader returns each record once, intact, at the offset its writer was told; a
// chunkserver killed during record appends loses no acknowledged record; a record too large is
// refused with RECORD_TOO_LARGE and changes nothing; concat refuses a file with an append open.
import t, { type Test } from 'tap';
import { join } from 'node:path';
import { recordOf } from '../../scripts/bench/append-load.js';
import { ADMIN_TOKEN, ROOT, TestCluster } from '../helpers/cluster.js';
import { scrape, sum } from '../helpers/prom.js';

const dfsPackage = (await import(join(ROOT, 'dist', 'cli', 'index.js'))) as typeof import('../../cli/index.js');
const { DfsClient } = dfsPackage;

const CHUNK = 64 * 1024;
// Writers take turns on one file, each a CLI process or a client: slow on a loaded machine.
t.setTimeout(900_000);
const cluster = await TestCluster.start({ chunkservers: 4, chunkSizeBytes: CHUNK, replication: 3 });
const clients = Array.from({ length: 4 }, () => new DfsClient(cluster.masters.split(','), { token: ADMIN_TOKEN }));
t.teardown(async () => {
  await cluster.stop();
});

interface Written { offset: number; id: string; data: string }


async function processWriter(w: string, n: number, path = '/rec/log'): Promise<Written[]> {
  const lines = Array.from({ length: n }, (_, i) => recordOf(w, i)).join('\n') + '\n';
  // Appends to one file take turns (320 records in all here): a process may wait its turn a long
  // while on a loaded machine (over 60 s at a load average of 16), so it gets 4 minutes.
  const r = await cluster.dfs(['append', '--record', '--lines', '--json', '-', path], { input: lines, timeoutMs: 240_000 });
  if (r.code !== 0) throw new Error(`dfs append --record: ${r.stderr}`);
  const out = r.stdout.toString().trim().split('\n').map((l) => JSON.parse(l) as { offset: number; id: string });
  return out.map((o, i) => ({ offset: o.offset, id: o.id, data: recordOf(w, i) }));
}

async function clientWriter(c: InstanceType<typeof DfsClient>, w: string, n: number): Promise<Written[]> {
  const out: Written[] = [];
  for (let i = 0; i < n; i++) {
    const data = recordOf(w, i);
    const r = await c.recordAppend('/rec/log', Buffer.from(data));
    out.push({ offset: r.offset, id: r.id, data });
  }
  return out;
}

/** Every acknowledged record read back once, intact, at its offset; nothing else but duplicates of them. */
async function checkAll(t: Test, written: Written[], path = '/rec/log'): Promise<void> {
  const skips = { paddingBytes: 0, corruptBytes: 0, corruptRecords: 0, duplicateRecords: 0 };
  const read = new Map<string, { offset: number; data: string }>();
  for await (const r of clients[0]!.readRecords(path, { skips })) read.set(r.id, { offset: r.offset, data: r.data.toString() });
  let missing = 0;
  let wrong = 0;
  for (const w of written) {
    const got = read.get(w.id);
    if (!got) missing++;
    else if (got.offset !== w.offset || got.data !== w.data) wrong++;
  }
  t.equal(missing, 0, `all ${written.length} acknowledged records are read back`);
  t.equal(wrong, 0, 'each at the offset its writer was told, byte for byte');
  t.equal(skips.corruptRecords, 0, 'no damaged record');
  t.ok(read.size >= written.length, `${read.size} distinct records, ${skips.duplicateRecords} duplicates skipped, ${skips.paddingBytes} bytes of padding`);
}

t.test('8 concurrent writers (4 processes, 4 clients) append records across chunk boundaries; every one reads back at its offset', async (t) => {
  t.equal((await cluster.dfs(['mkdir', '/rec'])).code, 0);
  t.equal((await cluster.dfs(['put', '-', '/rec/log'], { input: '' })).code, 0);
  const N = 40;
  const results = await Promise.all([
    ...['p1', 'p2', 'p3', 'p4'].map((w) => processWriter(w, N)),
    ...clients.map((c, i) => clientWriter(c, `c${i + 1}`, N)),
  ]);
  const written = results.flat();
  t.equal(written.length, 8 * N);
  const offsets = new Set(written.map((w) => w.offset));
  t.equal(offsets.size, written.length, 'no two records were given one offset');
  const st = await clients[0]!.stat('/rec/log', true);
  t.ok(st.chunks!.length >= 3, `the file spans ${st.chunks!.length} chunks`);
  t.ok(written.every((w) => Math.floor(w.offset / CHUNK) === Math.floor((w.offset + 36 + w.data.length - 1) / CHUNK)), 'no record straddles a chunk boundary');
  await checkAll(t, written);
  const cat = await cluster.dfs(['cat', '--records', '/rec/log']);
  t.equal(cat.code, 0, cat.stderr);
  const lines = cat.stdout.toString().trim().split('\n');
  t.same(new Set(lines), new Set(written.map((w) => w.data)), 'dfs cat --records prints every record');
});

t.test('group commit: the lines of one dfs append --record --lines, and one client\'s concurrent calls, share appends; each record at its own offset', async (t) => {
  const path = '/rec/batched';
  t.equal((await cluster.dfs(['put', '-', path], { input: '' })).code, 0);
  const N = 600;
  const c = clients[1]!;
  const proposals = async (): Promise<number> => sum(await scrape(cluster.master.addr), 'dfs_master_raft_proposals_total');
  const before = await proposals();
  const [fromLines, fromCalls] = await Promise.all([
    processWriter('b', N, path),
    Promise.all(Array.from({ length: N }, async (_, i) => {
      const data = recordOf('m', i);
      const r = await c.recordAppend(path, Buffer.from(data));
      return { offset: r.offset, id: r.id, data };
    })),
  ]);
  const written = [...fromLines, ...fromCalls];
  t.equal(new Set(written.map((w) => w.offset)).size, 2 * N, 'every record its own offset');
  for (const one of [fromLines, fromCalls]) t.ok(one.every((w, i) => i === 0 || w.offset > one[i - 1]!.offset), 'each writer\'s records in the order it asked');
  t.ok(written.every((w) => Math.floor(w.offset / CHUNK) === Math.floor((w.offset + 36 + w.data.length - 1) / CHUNK)), 'no record straddles a chunk boundary');
  await checkAll(t, written, path);
  // A record append alone is two commands (its open and its complete): fewer means shared appends.
  const commands = (await proposals()) - before;
  t.ok(commands < written.length / 2, `${written.length} records in ${commands} replicated commands (2 a record without batching)`);
});

t.test('a chunkserver killed during record appends: no acknowledged record is lost or damaged', async (t) => {
  const N = 30;
  const victim = cluster.chunkservers[1]!;
  const writers = clients.map((c, i) => clientWriter(c, `k${i + 1}`, N));
  await new Promise((r) => setTimeout(r, 300));
  await cluster.kill(victim);
  const written = (await Promise.all(writers)).flat();
  t.equal(written.length, 4 * N, 'every record append was acknowledged in the end');
  await checkAll(t, written);
});

t.test('bad input: a record over a quarter chunk is RECORD_TOO_LARGE and changes nothing; concat refuses a file being appended to', async (t) => {
  const before = await clients[0]!.stat('/rec/log');
  const big = 'y'.repeat(CHUNK / 4);
  const r = await cluster.dfs(['append', '--record', '-', '/rec/log'], { input: big });
  t.equal(r.code, 1);
  t.match(r.stderr.toString(), /the record is over \d+ bytes.*nothing was appended/);
  t.equal(r.stderr.toString().trim().split('\n').length, 1, 'one line');
  for (const bad of ['0', '65537', '1.5', 'many']) {
    const u = await cluster.dfs(['append', '--record', '--lines', '--batch-records', bad, '-', '/rec/log'], { input: 'a line\n' });
    t.equal(u.code, 2, `--batch-records ${bad}: a usage error`);
    t.match(u.stderr.toString(), /^dfs: --batch-records: a whole number from 1 to 65536/, 'saying what it takes');
  }
  await t.rejects(clients[0]!.recordAppend('/rec/log', Buffer.alloc(CHUNK / 4)), { code: 'RECORD_TOO_LARGE' }, 'the master refuses it too');
  t.equal((await clients[0]!.stat('/rec/log')).size, before.size, 'the file is unchanged');

  const { proc } = await cluster.leader();
  const call = async (route: string, body: unknown) => {
    const res = await fetch(`http://${proc.addr}${route}`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
    return { status: res.status, body: (await res.json()) as { error?: { code: string }; writeId?: string } };
  };
  t.equal((await cluster.dfs(['put', '-', '/rec/other'], { input: 'abc' })).code, 0);
  const opened = await call('/v1/fs/append', { path: '/rec/other' });
  t.equal(opened.status, 200);
  const c = await call('/v1/fs/concat', { sources: ['/rec/log', '/rec/other'], target: '/rec/joined', overwrite: false });
  t.equal(c.body.error?.code, 'FILE_BUSY', 'concat refuses a source with an append open');
  t.equal((await clients[0]!.stat('/rec/log')).size, before.size, 'the sources are as they were');
  await call('/v1/fs/abandon', { writeId: opened.body.writeId });
});
