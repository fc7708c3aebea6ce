// Three masters replicated by Raft, as real processes: kill -9 the leader under load, restart the
// whole group, and wipe a follower so it must catch up from a snapshot.
import t from 'tap';
import { spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { join } from 'node:path';
import { request } from 'undici';
import { ADMIN_TOKEN, DFS, randomBytesSeeded, TestCluster, waitFor } from '../helpers/cluster.js';
import { DfsClient } from '../../dist/cli/client.js';
import { RAFT_STREAM_PATH, RAFT_STREAM_PROTOCOL } from '../../dist/master/raft/stream-transport.js';

const CHUNK = 128 * 1024;

interface RaftStatus { id: string; role: string; term: number; leader: string | null; commitIndex: number; appliedIndex: number }

/** A master's own view of the group; a master that is down answers role 'down'. */
async function raftStatus(addr: string): Promise<RaftStatus> {
  try {
    const res = await request(`http://${addr}/v1/raft/status`);
    return (await res.body.json()) as RaftStatus;
  } catch (err) {
    return { id: '?', role: `down (${(err as Error).message})`, term: 0, leader: null, commitIndex: -1, appliedIndex: -2 };
  }
}

t.test('kill -9 the leader during a stream of metadata operations: nothing acknowledged is lost', async (t) => {
  const c = await TestCluster.start({ masters: 3, chunkservers: 3, chunkSizeBytes: CHUNK });
  t.teardown(() => c.stop());
  const client = new DfsClient(c.masters.split(','));
  const first = await c.leader();
  const acked: string[] = [];
  const failed: string[] = [];
  let killed = false;
  for (let i = 0; i < 60; i++) {
    if (i === 20) {
      await c.kill(first.proc);
      killed = true;
    }
    const path = `/stream/d${i}`;
    try {
      await client.mkdir(path, true);
      acked.push(path);
    } catch (err) {
      failed.push(`${path}: ${(err as Error).message}`);
    }
  }
  t.ok(killed);
  t.same(failed, [], 'every operation succeeded: the client waited for the new leader');
  const second = await c.leader();
  t.not(second.index, first.index, 'another master leads');
  const listed = (await client.list('/stream')).entries.map((e) => e.path).sort();
  t.same(listed, [...acked].sort(), 'every acknowledged directory exists on the new leader');

  // The old leader comes back as a follower and catches up.
  await c.startMaster(first.index);
  await waitFor(async () => {
    const [a, b] = await Promise.all([raftStatus(c.masterProcs[first.index]!.addr), raftStatus(second.proc.addr)]);
    return a.role === 'follower' && a.appliedIndex === b.commitIndex;
  }, 15_000, 'the old leader to rejoin as a caught-up follower');
  t.pass('the restarted master rejoined as a follower with the whole log');
});

t.test('a retried mutation is applied once (client sessions)', async (t) => {
  const c = await TestCluster.start({ masters: 3, chunkservers: 3, chunkSizeBytes: CHUNK });
  t.teardown(() => c.stop());
  const { proc } = await c.leader();
  const auth = { authorization: `Bearer ${ADMIN_TOKEN}` };
  const open = await request(`http://${proc.addr}/v1/session`, { method: 'POST', headers: { 'content-type': 'application/json', ...auth }, body: '{}' });
  const { sessionId } = (await open.body.json()) as { sessionId: string };
  const mkdir = async (seq: number) => {
    const res = await request(`http://${proc.addr}/v1/fs/mkdir`, {
      method: 'POST', headers: { 'content-type': 'application/json', 'x-dfs-session': `${sessionId}:${seq}`, ...auth }, body: JSON.stringify({ path: '/once' }),
    });
    return { status: res.statusCode, body: (await res.body.json()) as { error?: { code: string } } };
  };
  const a = await mkdir(1);
  t.equal(a.status, 200, 'first mkdir succeeds');
  const retry = await mkdir(1);
  t.equal(retry.status, 200, 'the same request again gets the first answer, not EXISTS');
  const next = await mkdir(2);
  t.equal(next.status, 409, 'a new request for the same path is applied, and fails');
  t.equal(next.body.error?.code, 'EXISTS');
  const bad = await request(`http://${proc.addr}/v1/fs/mkdir`, {
    method: 'POST', headers: { 'content-type': 'application/json', 'x-dfs-session': 'nonsense', ...auth }, body: JSON.stringify({ path: '/x' }),
  });
  t.equal(bad.statusCode, 400, 'a malformed session header is refused');
  await bad.body.dump();

  // Only cluster members may talk to the masters as chunkservers or Raft peers.
  const res = await request(`http://${proc.addr}/v1/cs/register`, {
    method: 'POST', headers: { 'content-type': 'application/json', 'x-dfs-peer-auth': 'guess' }, body: JSON.stringify({ id: 'intruder', addr: '127.0.0.1:9' }),
  });
  t.equal(res.statusCode, 401, '/v1/cs/register without the cluster secret is refused');
  t.equal(((await res.body.json()) as { error?: { code: string } }).error?.code, 'PEER_AUTH_INVALID');
  const [host, port] = proc.addr.split(':') as [string, string];
  const raft = await new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = httpRequest({ host, port: Number(port), path: RAFT_STREAM_PATH, agent: false, headers: { connection: 'Upgrade', upgrade: RAFT_STREAM_PROTOCOL, 'x-dfs-peer-auth': 'guess' } });
    req.on('upgrade', (_res, socket) => {
      socket.destroy();
      reject(new Error('a raft stream opened without the cluster secret'));
    });
    req.on('response', (r) => {
      let body = '';
      r.on('data', (b: Buffer) => (body += b));
      r.on('end', () => resolve({ status: r.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
  t.equal(raft.status, 401, 'a raft stream without the cluster secret is refused');
  t.match(JSON.parse(raft.body), { error: { code: 'PEER_AUTH_INVALID' } });
});

t.test('kill -9 the leader during a put: the put completes with the right bytes', async (t) => {
  const c = await TestCluster.start({ masters: 3, chunkservers: 3, chunkSizeBytes: CHUNK });
  t.teardown(() => c.stop());
  const data = randomBytesSeeded(30 * CHUNK + 99, 5);
  const child = spawn(process.execPath, [DFS, 'put', '-', '/during-failover.bin'], { env: { ...process.env, DFS_MASTERS: c.masters }, stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (b) => (stderr += b));
  child.stdin.on('error', () => undefined);
  const exited = new Promise<number>((r) => child.on('close', (code) => r(code ?? -1)));
  await new Promise((r) => child.stdin.write(data.subarray(0, 10 * CHUNK), r));
  const { proc } = await c.leader();
  await c.kill(proc);
  child.stdin.end(data.subarray(10 * CHUNK));
  t.equal(await exited, 0, `the put carries on with the new leader: ${stderr}`);
  const cat = await c.dfs(['cat', '/during-failover.bin']);
  t.equal(cat.code, 0, cat.stderr);
  t.ok(cat.stdout.equals(data), 'the file has exactly the bytes sent');
});

t.test('restart all three masters: state intact; a wiped follower catches up by snapshot', async (t) => {
  const c = await TestCluster.start({ masters: 3, chunkservers: 3, chunkSizeBytes: CHUNK, snapshotEvery: 20 });
  t.teardown(() => c.stop());
  const a = randomBytesSeeded(3 * CHUNK + 1, 8);
  t.equal((await c.dfs(['put', '-', '/keep/a.bin'], { input: a })).code, 0);
  const client = new DfsClient(c.masters.split(','));
  for (let i = 0; i < 60; i++) await client.mkdir(`/many/d${i}`, true); // several snapshots' worth of log
  const before = (await c.dfs(['ls', '-R', '/'])).stdout.toString();

  for (let i = 0; i < 3; i++) await c.kill(c.masterProcs[i]!);
  await Promise.all([0, 1, 2].map((i) => c.startMaster(i)));
  t.equal((await c.dfs(['ls', '-R', '/'])).stdout.toString(), before, 'the namespace survived a restart of every master');
  await waitFor(async () => (await c.dfs(['cat', '/keep/a.bin'])).stdout.equals(a), 15_000, 'the file to be readable again (chunk reports)');
  t.pass('file bytes readable after the restart');

  // Wipe a follower's data folder: it must rebuild from the leader's snapshot, not a log it lost.
  const { index: leaderIndex } = await c.leader();
  const victim = (leaderIndex + 1) % 3;
  await c.kill(c.masterProcs[victim]!);
  rmSync(join(c.dir, `m${victim + 1}`), { recursive: true, force: true });
  for (let i = 0; i < 30; i++) await client.mkdir(`/more/d${i}`, true);
  await c.startMaster(victim);
  const leaderAddr = c.masterProcs[leaderIndex]!.addr;
  let seen = '';
  await waitFor(async () => {
    const [l, v] = await Promise.all([raftStatus(leaderAddr), raftStatus(c.masterProcs[victim]!.addr)]);
    seen = JSON.stringify({ leader: l, victim: v });
    return v.appliedIndex > 0 && v.appliedIndex === l.commitIndex;
  }, 15_000, 'the wiped follower to catch up').catch((err: Error) => {
    throw new Error(`${err.message}: ${seen}\n${c.problems().join('\n')}`);
  });
  t.pass('the wiped follower caught up with the leader');

  // Prove it holds the whole state: make it the only way to a majority with the leader gone.
  const other = 3 - leaderIndex - victim;
  await c.kill(c.masterProcs[leaderIndex]!);
  const after = await c.dfs(['ls', '-R', '/'], { timeoutMs: 60_000 });
  t.equal(after.code, 0, after.stderr);
  const expected = (before + '').split('\n').filter(Boolean).length + 31; // /more and its 30 entries
  t.equal(after.stdout.toString().split('\n').filter(Boolean).length, expected, 'the remaining two masters serve the whole namespace');
  t.ok([victim, other].includes((await c.leader()).index));
});
