// Following a request through the logs (docs/ARCHITECTURE.md, "Following a request through the
// logs"), as a person would: `dfs --verbose put` prints the request id of its calls; that id is in
// the master's log and in the logs of every chunkserver of the pipeline. A repair after a kill -9
// leaves "copy ordered" and "copy done" lines on the leader and the copy's lines on its target,
// all with one id. A malformed id a caller sends is replaced and never logged.
import t from 'tap';
import { request } from 'undici';
import { ADMIN_TOKEN, randomBytesSeeded, TestCluster, waitFor, type Proc } from '../helpers/cluster.js';

const CHUNK = 128 * 1024;

/** The log lines of `p` whose reqId is `id`, parsed. */
function linesWith(p: Proc | undefined, id: string): { msg: string; [k: string]: unknown }[] {
  return (p?.output ?? []).filter((l) => l.includes(`"reqId":"${id}"`)).map((l) => JSON.parse(l) as { msg: string });
}

t.test('a put followed by its request id, a repair by its copy id', async (t) => {
  const c = await TestCluster.start({ chunkservers: 4, chunkSizeBytes: CHUNK, deadTimeoutMs: 2000 });
  t.teardown(() => c.stop());

  const put = await c.dfs(['--verbose', 'put', '-', '/follow/a.bin'], { input: randomBytesSeeded(CHUNK, 7) });
  t.equal(put.code, 0, `put: ${put.stderr}`);
  const calls = put.stderr.split('\n').filter((l) => l.startsWith('dfs: '));
  const ids = new Set(calls.map((l) => /request=([A-Za-z0-9._:-]+)$/.exec(l)?.[1]));
  t.ok(calls.some((l) => / 127\.0\.0\.1:\d+\/v1\/fs\/create 200 /.test(l)), `--verbose prints the create call: ${calls.join(' | ')}`);
  t.equal(ids.size, 1, 'one id for the whole operation (its metadata calls and chunk writes)');
  const id = [...ids][0]!;
  t.match(id, /^[0-9a-f]{16}$/);

  // The pipeline: the PUT's first hop, and the hops it names in `next`.
  const chunkPut = calls.find((l) => / PUT /.test(l));
  const m = /PUT (127\.0\.0\.1:\d+)\/v1\/chunks\/\d+\?version=\d+&next=([^ ]+) 200 /.exec(chunkPut ?? '');
  t.ok(m, `the chunk PUT is printed with its pipeline: ${chunkPut}`);
  const pipeline = [m![1]!, ...decodeURIComponent(m![2]!).split(',')];
  t.equal(pipeline.length, 3, 'three hops');

  // A request's line is logged when its reply is sent and written within LOG_FLUSH_MS (common/log.ts): wait for the last one.
  await waitFor(() => linesWith(c.master, id).some((l) => l.url === '/v1/fs/complete') && pipeline.every((a) => linesWith(c.chunkservers.find((p) => p?.addr === a), id).length > 0), 10_000, 'the id in every log');
  const masterLines = linesWith(c.master, id);
  t.ok(masterLines.some((l) => l.url === '/v1/fs/create' && l.status === 200), 'the master logged the create with the id');
  t.ok(masterLines.some((l) => l.url === '/v1/fs/complete'), 'and the complete');
  for (const addr of pipeline) {
    const cs = c.chunkservers.find((p) => p?.addr === addr)!;
    t.ok(linesWith(cs, id).some((l) => l.method === 'PUT' && l.status === 200), `${cs.id} (${addr}) logged its hop with the id`);
  }
  const outside = c.chunkservers.find((p) => p && !pipeline.includes(p.addr))!;
  t.same(linesWith(outside, id), [], `${outside.id}, outside the pipeline, has no line of it`);

  // kill -9 a server of the pipeline: the leader orders a copy to the one outside it.
  const victim = c.chunkservers.find((p) => p?.addr === pipeline[1])!;
  await c.kill(victim);
  const copyDone = () => c.master.output.map((l) => JSON.parse(l) as { msg: string; reqId?: string; target?: string }).find((l) => l.msg === 'copy done');
  await waitFor(() => copyDone() !== undefined, 30_000, 'a copy done line on the leader');
  const done = copyDone()!;
  t.match(done.reqId, /^copy-t\d+-\d+$/, `the copy has a decision id: ${done.reqId}`);
  t.equal(done.target, outside.id, 'copied to the server outside the pipeline');
  t.ok(linesWith(c.master, done.reqId!).some((l) => l.msg === 'copy ordered' && l.target === outside.id), 'the leader logged the order with the same id');
  t.ok(c.master.output.some((l) => l.includes('"msg":"chunkserver dead') && l.includes(`"server":"${victim.id}"`)), 'and the death that caused it');
  await waitFor(() => linesWith(outside, done.reqId!).some((l) => l.msg === 'replica copied'), 10_000, 'the target\'s copy line');
  t.pass(`${outside.id} logged the copy with ${done.reqId}`);
});

t.test('an error names its request id; a malformed id is replaced, never logged', async (t) => {
  const c = await TestCluster.start({ chunkservers: 1, replication: 1 });
  t.teardown(() => c.stop());

  const stat = await c.dfs(['stat', '/nope']);
  t.equal(stat.code, 1);
  const id = /\(request ([0-9a-f]{16})\)\n$/.exec(stat.stderr)?.[1];
  t.ok(id, `the one error line names the request: ${stat.stderr.trim()}`);
  await waitFor(() => linesWith(c.master, id!).length > 0, 10_000, 'the failed call in the master\'s log');
  t.match(linesWith(c.master, id!)[0], { url: '/v1/fs/stat?path=%2Fnope', status: 404 });

  for (const bad of ['x'.repeat(65), 'a b', 'semi;colon"quote']) {
    const res = await request(`http://${c.master.addr}/v1/fs/stat?path=/nope`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'x-dfs-request-id': bad } });
    await res.body.dump();
    const given = String(res.headers['x-dfs-request-id']);
    t.match(given, /^[0-9a-f]{16}$/, `${JSON.stringify(bad).slice(0, 20)}: replaced by a fresh id in the reply`);
    await waitFor(() => linesWith(c.master, given).length > 0, 10_000, 'the call in the log');
    t.match(linesWith(c.master, given)[0], { requestIdReplaced: true });
    t.notOk(c.master.output.some((l) => l.includes(bad)), 'the malformed id is in no log line');
  }
  const good = await request(`http://${c.master.addr}/v1/fs/stat?path=/nope`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'x-dfs-request-id': 'my-trace:42' } });
  await good.body.dump();
  t.equal(good.headers['x-dfs-request-id'], 'my-trace:42', 'a well-formed id is kept and echoed');
});
