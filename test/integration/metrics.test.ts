// /metrics on every node, parsed strictly (test/helpers/prom.ts) and checked to move when the
// cluster works: a put, mkdirs, a chunkserver killed and healed, a leader killed.
import t from 'tap';
import { randomBytesSeeded, TestCluster, waitFor, type Proc } from '../helpers/cluster.js';
import { parsePrometheusText, scrape, sum, type Family } from '../helpers/prom.js';

const CHUNK = 64 * 1024;

t.test('the parser holds text to the format', async (t) => {
  const ok = parsePrometheusText('# HELP a_total things\n# TYPE a_total counter\na_total{x="1\\"\\n"} 3\n# TYPE h histogram\nh_bucket{le="+Inf"} 2\nh_sum 0.5\nh_count 2\n');
  t.same(ok.get('a_total')?.samples[0], { name: 'a_total', labels: { x: '1"\n' }, value: 3 });
  t.equal(sum(ok, 'h_count'), 2);
  const bad: [string, string][] = [
    ['# TYPE a counter\n# TYPE a counter\na 1\n', 'TYPE twice'],
    ['# TYPE a counter\na 1\n# TYPE b gauge\nb 1\na 2\n', 'samples apart'],
    ['a{x="\\q"} 1\n', 'bad escape'],
    ['a{x="1"} 1\na{x="1"} 2\n', 'series twice'],
    ['a{1x="1"} 1\n', 'bad label name'],
    ['a one\n', 'bad value'],
    ['# TYPE h histogram\nh_bucket 1\n', 'bucket without le'],
    ['# TYPE h histogram\nh 1\n', 'bare histogram sample'],
    ['a 1\n# HELP a late\n', 'HELP after samples'],
  ];
  for (const [text, why] of bad) t.throws(() => parsePrometheusText(text), why);
});

async function scrapeAll(procs: Proc[]): Promise<Map<string, Family>[]> {
  return Promise.all(procs.map((p) => scrape(p.addr)));
}

const total = (all: Map<string, Family>[], name: string, labels: Record<string, string> = {}) => all.reduce((n, f) => n + sum(f, name, labels), 0);

t.test('metrics move as the cluster works', async (t) => {
  const c = await TestCluster.start({ masters: 3, chunkservers: 4, chunkSizeBytes: CHUNK, deadTimeoutMs: 2000, heartbeatMs: 200, snapshotEvery: 10,
    // Slow copies keep the under-replicated gauge up for a few scans, so a poll sees it.
    chunkserverArgs: ['--copy-rate', '0.1'],
  });
  t.teardown(() => c.stop());
  t.teardown(() => {
    if (t.passing()) return;
    for (const line of c.problems().slice(-40)) t.comment(line);
  });
  const servers = () => c.chunkservers.filter((p): p is Proc => p !== undefined && p.child.exitCode === null && p.child.signalCode === null);
  let leader = (await c.leader()).proc;

  // Every node's text parses, and carries the event-loop lag and the request histogram.
  for (const [i, m] of (await scrapeAll([...c.masterProcs, ...servers()])).entries()) {
    t.ok(m.get('nodejs_eventloop_lag_p99_seconds')?.type === 'gauge', `node ${i} exports event-loop lag`);
    t.equal(m.get('dfs_http_request_duration_seconds')?.type, 'histogram', `node ${i} exports the request histogram`);
  }
  const masters0 = await scrapeAll(c.masterProcs);
  t.equal(total(masters0, 'dfs_master_raft_is_leader'), 1, 'exactly one master says it leads');
  t.equal(sum(await scrape(leader.addr), 'dfs_master_raft_is_leader'), 1, 'and it is the leader');

  // A put: bytes written on the chunkservers (3 replicas), PUT requests by route pattern, fsyncs, hops.
  const before = await scrapeAll(servers());
  const data = randomBytesSeeded(8 * CHUNK, 18);
  t.equal((await c.dfs(['put', '-', '/m.bin'], { input: data })).code, 0, 'put');
  const after = await scrapeAll(servers());
  const delta = (name: string, labels: Record<string, string> = {}) => total(after, name, labels) - total(before, name, labels);
  t.equal(delta('dfs_chunkserver_write_bytes_total'), 3 * data.length, 'bytes written rose by three replicas of the file');
  t.equal(delta('dfs_http_request_duration_seconds_count', { method: 'PUT', route: '/v1/chunks/:handle', status: '200' }), 24, 'each of 8 chunks was PUT to 3 servers, counted under the route pattern');
  t.equal(delta('dfs_chunkserver_pipeline_hop_seconds_count', { outcome: 'ok' }), 24, 'every hop of every pipeline is timed');
  t.equal(delta('dfs_chunkserver_pipeline_hop_seconds_count', { forwarded: 'no' }), 8, 'the last hop of each of 8 pipelines forwarded nothing');
  t.equal(delta('dfs_chunkserver_fsync_seconds_count', { kind: 'file' }), 24, 'each replica\'s file was fsynced, timed');
  t.ok(delta('dfs_chunkserver_fsync_seconds_count', { kind: 'dir' }) >= 1, 'folder fsyncs are timed');
  const routes = new Set(after.flatMap((m) => m.get('dfs_http_request_duration_seconds')!.samples.map((s) => s.labels.route)));
  t.notOk([...routes].some((r) => /\/\d+(\/|$)/.test(r ?? '')), `route labels are patterns, not URLs: ${[...routes].join(' ')}`);
  for (const m of after) {
    const free = sum(m, 'dfs_chunkserver_disk_free_bytes');
    t.ok(free > 0 && free <= sum(m, 'dfs_chunkserver_disk_capacity_bytes'), 'free space is known and within capacity');
  }

  // mkdirs: proposals, the leader's WAL fsyncs and the proposal-to-commit histogram all grow.
  const l0 = await scrape(leader.addr);
  for (let i = 0; i < 4; i++) t.equal((await c.dfs(['mkdir', `/d${i}`])).code, 0, `mkdir /d${i}`);
  const l1 = await scrape(leader.addr);
  const grew = (name: string) => sum(l1, name) - sum(l0, name);
  t.ok(grew('dfs_master_raft_wal_fsync_seconds_count') >= 4, `WAL fsyncs grew by ${grew('dfs_master_raft_wal_fsync_seconds_count')}`);
  t.ok(grew('dfs_master_raft_proposals_total') >= 4, 'proposals counted');
  t.ok(grew('dfs_master_raft_proposal_commit_seconds_count') >= 4, 'proposal-to-commit latency observed');
  t.ok(sum(l1, 'dfs_master_raft_commit_index') > sum(l0, 'dfs_master_raft_commit_index'), 'the commit index moved');
  t.ok(sum(l1, 'dfs_master_raft_messages_sent_total') > sum(l0, 'dfs_master_raft_messages_sent_total'), 'messages to peers counted');
  t.equal(l1.get('dfs_master_raft_messages_sent_total')!.samples.length, 2, 'one series per peer');
  t.ok(sum(l1, 'dfs_master_raft_snapshots_total') >= 1 && sum(l1, 'dfs_master_raft_snapshot_bytes') > 0, 'snapshots (every 10 entries here) are counted and sized');
  t.equal(sum(l1, 'dfs_master_requests_total', { op: 'mkdir' }) - sum(l0, 'dfs_master_requests_total', { op: 'mkdir' }), 4);

  // kill -9 a chunkserver: past the dead timeout, a scan counts the chunks short of a replica; repair brings it back to 0.
  const victim = servers()[0]!;
  await c.kill(victim);
  let peak = 0;
  await waitFor(async () => {
    const m = await scrape(leader.addr);
    peak = Math.max(peak, sum(m, 'dfs_master_under_replicated_chunks'));
    return sum(m, 'dfs_master_chunkservers', { state: 'dead' }) === 1 && peak > 0;
  }, 20_000, 'the leader to count under-replicated chunks');
  t.ok(peak > 0, `the under-replicated gauge rose to ${peak}`);
  await waitFor(async () => {
    const m = await scrape(leader.addr);
    return sum(m, 'dfs_master_under_replicated_chunks') === 0 && sum(m, 'dfs_master_repair_copies_done_total') >= peak;
  }, 30_000, 'repair to bring the gauge back to 0');
  const healed = await scrape(leader.addr);
  const nans = [...healed.values()].flatMap((f) => f.samples.filter((s) => s.name.startsWith('dfs_') && Number.isNaN(s.value)).map((s) => s.name));
  t.same(nans, [], 'no dfs metric is NaN');
  t.equal(sum(healed, 'dfs_master_missing_chunks'), 0, 'nothing missing');
  t.ok(sum(healed, 'dfs_master_repair_copied_bytes_total') >= peak * CHUNK, 'copied bytes counted');
  t.equal(sum(healed, 'dfs_master_chunkservers', { state: 'live' }), 3);

  // kill -9 the leader: a new one, in a higher term, that saw the change.
  const oldTerm = sum(healed, 'dfs_master_raft_term');
  const others = c.masterProcs.filter((p) => p !== leader);
  const changesBefore = await Promise.all(others.map(async (p) => sum(await scrape(p.addr), 'dfs_master_raft_leader_changes_total')));
  await c.kill(leader);
  let next: { proc: Proc; m: Map<string, Family>; i: number } | undefined;
  await waitFor(async () => {
    for (const [i, p] of others.entries()) {
      const m = await scrape(p.addr).catch(() => undefined);
      // The role flips before the node announces the change to the counter: wait for both.
      if (m && sum(m, 'dfs_master_raft_is_leader') === 1 && sum(m, 'dfs_master_raft_leader_changes_total') > changesBefore[i]!) next = { proc: p, m, i };
    }
    return next !== undefined;
  }, 20_000, 'a new leader that counted the change');
  t.ok(sum(next!.m, 'dfs_master_raft_term') > oldTerm, 'the new leader\'s term is higher');
  t.ok(sum(next!.m, 'dfs_master_raft_leader_changes_total') > changesBefore[next!.i]!, 'the new leader counted a leader change');
  leader = next!.proc;
});
