// Fast, safe failure detection with real processes: a chunkserver's link to the leader drops
// when it is killed, and the leader holds it suspect at once and dead after the connection grace
// (not the heartbeat timeout, set long here so only the link can decide); a restart within the
// grace costs no copies; a paused process (SIGSTOP) keeps its link and, within the dead timeout,
// costs nothing; a client's report of a live server changes nothing. A clean stop (SIGTERM) says
// so first: the leader holds the server restarting, past the connection grace and the dead
// timeout, and its restart costs no copies.
import t, { type Test } from 'tap';
import { callJson } from '../../common/http.js';
import type { ClusterStatus, UnreachableReply } from '../../common/protocol.js';
import { ADMIN_TOKEN, randomBytesSeeded, TestCluster, waitFor, type ClusterOptions } from '../helpers/cluster.js';

/** Calls in this process carry the test cluster's admin token, as the CLI's do. */
const auth = { authorization: `Bearer ${ADMIN_TOKEN}` };

const CHUNK = 64 * 1024;
/** Long enough for a process to start again on a loaded 2-core machine; the dead timeout is 30 s. */
const GRACE_MS = 10_000;

/**
 * A cluster of 4 chunkservers with `path` written (`bytes` of seeded data) and fully replicated,
 * no copies made yet; with its status, one server's entry and the count of copies ordered.
 */
async function replicatedFile(t: Test, opts: ClusterOptions, path: string, bytes: number) {
  const c = await TestCluster.start({ chunkservers: 4, chunkSizeBytes: CHUNK, ...opts });
  t.teardown(() => c.stop());
  const data = randomBytesSeeded(bytes, bytes);
  t.equal((await c.dfs(['put', '-', path], { input: data })).code, 0);
  const status = () => callJson<ClusterStatus>(c.master.addr, '/v1/cluster/status', { headers: auth });
  const server = async (id: string) => (await status()).chunkservers.find((s) => s.id === id)!;
  const copies = async () => {
    const r = (await status()).repair;
    return r.copiesDone + r.copiesInFlight + r.copiesFailed;
  };
  await waitFor(async () => (await status()).underReplicatedChunks === 0 && (await copies()) === 0, 30_000, 'the file to be fully replicated');
  return { c, data, status, server, copies };
}

t.test('link drops: suspect at once, dead after the grace, copies; a quick restart and a pause cost none', async (t) => {
  const { c, data, status, server, copies } = await replicatedFile(t, { deadTimeoutMs: 30_000, masterArgs: ['--connection-grace-ms', String(GRACE_MS)] }, '/f/a.bin', 6 * CHUNK + 3);

  // 1. kill -9, restarted within the grace: suspect, never dead, no copies.
  const cs1 = c.chunkservers[0]!;
  await c.kill(cs1);
  const killedAt = Date.now();
  await waitFor(async () => (await server(cs1.id)).suspect === true, 5_000, `${cs1.id} to be suspect`);
  t.match(await server(cs1.id), { alive: true, suspect: true }, 'killed: suspect at once, still alive (its replicas still count)');
  await c.startChunkserver(0);
  t.comment(`restarted ${Date.now() - killedAt} ms after the kill`);
  await waitFor(async () => (await server(cs1.id)).suspect === false, 20_000, `${cs1.id} to connect again`);
  t.match(await server(cs1.id), { alive: true, suspect: false }, 'restarted within the grace: back in service');
  t.equal(await copies(), 0, 'a restart within the grace ordered no copies');

  // 2. SIGSTOP for a while (within the dead timeout), then SIGCONT: the link stays open.
  const cs2 = c.chunkservers[1]!;
  process.kill(cs2.pid, 'SIGSTOP');
  let sawSuspect = false;
  const pausedUntil = Date.now() + 5000;
  while (Date.now() < pausedUntil) {
    sawSuspect ||= (await server(cs2.id)).suspect === true;
    await new Promise((r) => setTimeout(r, 250));
  }
  process.kill(cs2.pid, 'SIGCONT');
  t.notOk(sawSuspect, 'a paused process keeps its link: never suspect');
  await waitFor(async () => (await server(cs2.id)).lastHeartbeatAgoMs < 2000, 10_000, `${cs2.id} to beat again`);
  t.equal(await copies(), 0, 'a pause within the dead timeout ordered no copies');

  // 3. A client's report of a live server: the leader probes it, and nothing changes.
  const cs3 = c.chunkservers[2]!;
  const live = await callJson<UnreachableReply>(c.master.addr, '/v1/cluster/unreachable', { headers: auth, body: { addr: cs3.addr } });
  t.same(live, { server: cs3.id, verdict: 'reachable' }, 'the leader reached the reported server itself');
  const again = await callJson<UnreachableReply>(c.master.addr, '/v1/cluster/unreachable', { headers: auth, body: { addr: cs3.addr } });
  t.equal(again.verdict, 'checked-recently', 'reports of one server are probed once a second at most');
  t.same(await callJson<UnreachableReply>(c.master.addr, '/v1/cluster/unreachable', { headers: auth, body: { addr: '127.0.0.1:1' } }), { server: null, verdict: 'unknown' }, 'an address no server has: nothing to probe');
  t.match(await server(cs3.id), { alive: true, suspect: false }, 'a client\'s word marks no live server suspect or dead');

  // 4. kill -9 for good: dead after the grace (the dead timeout is 30 s), and copies restore 3 replicas.
  const cs4 = c.chunkservers[3]!;
  await c.kill(cs4);
  await waitFor(async () => (await server(cs4.id)).suspect === true, 5_000, `${cs4.id} to be suspect`);
  const probe = await callJson<UnreachableReply>(c.master.addr, '/v1/cluster/unreachable', { headers: auth, body: { addr: cs4.addr } });
  t.same(probe, { server: cs4.id, verdict: 'unreachable' }, 'a client\'s report of the killed server: the probe fails too');
  t.ok((await server(cs4.id)).alive, 'still alive within the grace');
  await waitFor(async () => (await server(cs4.id)).alive === false, 15_000, `${cs4.id} to be dead`);
  t.pass(`${cs4.id} dead after the ${GRACE_MS} ms grace, long before the 30 s dead timeout`);
  await waitFor(async () => (await status()).underReplicatedChunks === 0 && (await status()).repair.copiesInFlight === 0, 60_000, 'every chunk back to 3 live replicas');
  const fsck = await c.dfs(['fsck', '/f']);
  t.equal(fsck.code, 0, fsck.stderr);
  t.ok((await c.dfs(['cat', '/f/a.bin'])).stdout.equals(data), 'the file reads back byte-identical');
});

t.test('a clean stop (SIGTERM) is held as a restart: past the grace and the dead timeout, no copies, RESTARTING in dfs status', async (t) => {
  // The default connection grace; a dead timeout short enough that the hold must outlast it.
  const DEAD_MS = 3_000;
  const { c, data, status, server, copies } = await replicatedFile(t, { deadTimeoutMs: DEAD_MS }, '/g/b.bin', 5 * CHUNK + 11);

  const cs1 = c.chunkservers[0]!;
  await c.kill(cs1, 'SIGTERM');
  const stoppedAt = Date.now();
  const held = await server(cs1.id);
  t.match(held, { alive: true, suspect: true }, 'stopped cleanly: suspect, still alive (its replicas count)');
  t.ok(held.restartHeldMs !== undefined && held.restartHeldMs > 60_000, `held restarting, ${held.restartHeldMs} ms left (the default hold is 10 minutes)`);
  // Past the default connection grace (200 ms) and the dead timeout, with the server still down.
  await new Promise((r) => setTimeout(r, DEAD_MS + 1500));
  t.match(await server(cs1.id), { alive: true, suspect: true }, `still held ${Date.now() - stoppedAt} ms after the stop, past the grace and the ${DEAD_MS} ms dead timeout`);
  t.equal(await copies(), 0, 'no copies ordered while it is held');
  const shown = await c.dfs(['status']);
  t.match(shown.stdout, new RegExp(`${cs1.id} .*SUSPECT.*RESTARTING \\(no copies for \\d+m \\d+s more\\)`), 'dfs status says it is restarting, and for how long copies wait');
  const cat = await c.dfs(['cat', '/g/b.bin']);
  t.ok(cat.stdout.equals(data), 'the file reads from the other replicas meanwhile');

  await c.startChunkserver(0);
  await waitFor(async () => (await server(cs1.id)).suspect === false, 20_000, `${cs1.id} back from its restart`);
  const back = await server(cs1.id);
  t.match(back, { alive: true, suspect: false }, 'back in service');
  t.equal(back.restartHeldMs, undefined, 'no longer held');
  t.equal(await copies(), 0, 'the restart cost no copies');
  t.equal((await status()).underReplicatedChunks, 0, 'every chunk has its 3 replicas again, its own');
});
