// Racks with real processes (issue 16 item 2): chunkservers started with --rack, files put with
// the CLI, the master's own view read over HTTP. A whole rack killed with kill -9 loses nothing;
// chunks left in one rack when a second rack appears are reported misplaced by fsck and moved by
// repair, copy first, never below their replication; status groups servers by rack and says what
// can be lost.
import t from 'tap';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ADMIN_TOKEN, DFS, randomBytesSeeded, runDfs, TestCluster, waitFor } from '../helpers/cluster.js';
import type { ClusterStatus, FsckReply } from '../../common/protocol.js';

const CHUNK = 128 * 1024;

interface ChunkView { handle: number; replicas: { id: string; addr: string }[] }

async function chunksOf(c: TestCluster, path: string): Promise<ChunkView[]> {
  const { proc } = await c.leader();
  const res = await fetch(`http://${proc.addr}/v1/fs/stat?path=${encodeURIComponent(path)}&chunks=1`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
  if (res.status !== 200) throw new Error(`stat ${path}: ${res.status} ${await res.text()}`);
  return ((await res.json()) as { chunks: ChunkView[] }).chunks;
}

async function json<T>(c: TestCluster, args: string[]): Promise<T> {
  const r = await c.dfs([...args, '--json']);
  if (r.code !== 0) throw new Error(`dfs ${args.join(' ')}: ${r.stderr}`);
  return JSON.parse(r.stdout.toString()) as T;
}

/** Replicas per rack of each chunk, with `rackOf` naming each server's rack. */
const perRack = (ch: ChunkView, rackOf: (id: string) => string): Map<string, number> => {
  const m = new Map<string, number>();
  for (const r of ch.replicas) m.set(rackOf(r.id), (m.get(rackOf(r.id)) ?? 0) + 1);
  return m;
};

t.test('two racks: every chunk in both, a whole rack killed with kill -9 loses nothing, and the spread comes back', async (t) => {
  const racks = ['r1', 'r1', 'r1', 'r2', 'r2', 'r2'];
  const c = await TestCluster.start({ chunkservers: 6, chunkSizeBytes: CHUNK, deadTimeoutMs: 2000, racks });
  t.teardown(() => c.stop());
  const rackOf = (id: string) => racks[Number(id.slice(2)) - 1]!;
  const data = randomBytesSeeded(30 * CHUNK + 77, 161);
  const put = await c.dfs(['put', '-', '/spread.bin'], { input: data });
  t.equal(put.code, 0, put.stderr);
  const chunks = await chunksOf(c, '/spread.bin');
  t.equal(chunks.length, 31);
  t.ok(chunks.every((ch) => ch.replicas.length === 3), 'three replicas each');
  t.ok(chunks.every((ch) => perRack(ch, rackOf).size === 2), 'every chunk has replicas in both racks');
  t.ok(chunks.every((ch) => Math.max(...perRack(ch, rackOf).values()) <= 2), 'at most 2 of 3 in one rack (floor(2/2)+1)');

  // A writer in rack r2 with replication 1: its one replica (the pipeline's head) is in r2.
  const local = await c.dfs(['put', '-r', '1', '-', '/local.bin'], { input: randomBytesSeeded(5 * CHUNK, 162), env: { DFS_RACK: 'r2' } });
  t.equal(local.code, 0, local.stderr);
  t.ok((await chunksOf(c, '/local.bin')).every((ch) => ch.replicas.length === 1 && rackOf(ch.replicas[0]!.id) === 'r2'), 'DFS_RACK=r2: each chunk\'s first replica in r2');
  const bad = await c.dfs(['put', '-', '/bad.bin'], { input: 'x', env: { DFS_RACK: 'rack 2' } });
  t.not(bad.code, 0, 'a rack name with a space is refused');
  t.match(bad.stderr, /DFS_RACK must be a rack name/);
  t.equal(bad.stderr.trim().split('\n').length, 1, 'in one line');
  t.equal((await c.dfs(['rm', '--skip-trash', '/local.bin'])).code, 0, 'the replication-1 file is not part of what follows (deleted, not kept in the trash)');

  const status = await json<ClusterStatus>(c, ['status']);
  t.same(status.chunkservers.map((s) => s.rack), racks, 'each server with its rack');
  t.same(status.tolerance, { servers: 2, racksSafe: ['r1', 'r2'], racksAtRisk: [] }, 'any 2 servers, and either rack, can be lost');
  const text = (await c.dfs(['status'])).stdout.toString();
  t.match(text, /rack r1: 3 live of 3\n {4}cs1 .*\n {4}cs2 .*\n {4}cs3 .*\n {2}rack r2: 3 live of 3\n {4}cs4/, 'servers grouped by rack');
  t.match(text, /failure tolerance: any 2 servers can be lost without losing data; any one rack of 2 can be lost \(r1, r2\)/);

  // Rack r2 goes: kill -9 of its three chunkservers, by pid.
  for (let i = 3; i < 6; i++) await c.kill(c.chunkservers[i]!);
  const cat = await c.dfs(['cat', '/spread.bin'], { timeoutMs: 120_000 });
  t.equal(cat.code, 0, cat.stderr);
  t.ok(cat.stdout.equals(data), 'the file reads back whole at once, from rack r1 alone');
  // In r1 alone: r2's servers are suspect, and their replicas still listed, until they are declared
  // dead (a fast cat can finish before that; CI once read the tolerance in between).
  await waitFor(async () => (await chunksOf(c, '/spread.bin')).every((ch) => ch.replicas.length === 3 && ch.replicas.every((r) => rackOf(r.id) === 'r1')), 90_000, 'every chunk back to 3 replicas in rack r1');
  const alone = await json<ClusterStatus>(c, ['status']);
  t.same(alone.tolerance, { servers: 2, racksSafe: [], racksAtRisk: [{ rack: 'r1', chunks: 31 }] }, 'one rack left: it holds every replica');
  t.match((await c.dfs(['status'])).stdout.toString(), /any 2 servers can be lost without losing data; one live rack \(r1\): losing it loses everything/);
  const fsck = await json<FsckReply>(c, ['fsck', '/']);
  t.equal(fsck.misplaced, 0, 'one live rack: nothing to spread over, so not misplaced');
  t.equal(fsck.status, 'HEALTHY');

  // Rack r2 comes back with its old replicas: the surplus is trimmed from the rack holding most.
  for (let i = 3; i < 6; i++) await c.startChunkserver(i);
  await c.waitForLive(6);
  await waitFor(async () => {
    const now = await chunksOf(c, '/spread.bin');
    return now.every((ch) => ch.replicas.length === 3 && perRack(ch, rackOf).size === 2);
  }, 90_000, 'every chunk at 3 replicas over both racks again');
  t.pass('trimmed back to 3, each chunk over both racks');
  const back = await json<ClusterStatus>(c, ['status']);
  t.same(back.tolerance, { servers: 2, racksSafe: ['r1', 'r2'], racksAtRisk: [] });
  t.ok((await c.dfs(['cat', '/spread.bin'])).stdout.equals(data), 'and reads back whole');
});

t.test('a second rack appears: fsck reports the misplaced chunks, repair moves one replica of each, copy first', async (t) => {
  const racks = ['a', 'a', 'a', 'b', 'b'];
  // Copies are capped at 0.1 MiB/s a server (the least --copy-rate), so a move takes seconds and
  // the misplaced chunks are still there for fsck to see (a 512 KiB chunk: 5 s alone, longer sharing the cap).
  const big = 4 * CHUNK;
  const c = await TestCluster.start({ chunkservers: 3, chunkSizeBytes: big, racks, chunkserverArgs: ['--copy-rate', '0.1'] });
  t.teardown(() => c.stop());
  const rackOf = (id: string) => racks[Number(id.slice(2)) - 1]!;
  const data = randomBytesSeeded(4 * big + 5, 163);
  t.equal((await c.dfs(['put', '-', '/old.bin'], { input: data })).code, 0);
  const one = await json<FsckReply>(c, ['fsck', '/']);
  t.equal(one.misplaced, 0, 'one rack: every chunk in it is where it can be');

  for (let i = 3; i < 5; i++) await c.startChunkserver(i);
  await c.waitForLive(5);
  let seen = '';
  let fewest = 3;
  await waitFor(async () => {
    const text = (await c.dfs(['fsck', '/'])).stdout.toString();
    if (/MISPLACED/.test(text) && !seen) seen = text;
    const now = await chunksOf(c, '/old.bin');
    fewest = Math.min(fewest, ...now.map((ch) => ch.replicas.length));
    return /MISPLACED/.test(text) === false && now.every((ch) => ch.replicas.length === 3 && perRack(ch, rackOf).size === 2);
  }, 150_000, 'every chunk moved into both racks');
  t.match(seen, /\/old\.bin: chunk #\d+ \(handle \d+\) MISPLACED: replicas in racks a, a, a\n/, 'fsck named the misplaced chunks once rack b appeared');
  t.match(seen, /racks: [1-5] misplaced chunks? \(too many replicas in one rack; repair moves them\)/, 'and counted them');
  t.equal(fewest, 3, 'no chunk ever had fewer than 3 live replicas while they moved');
  const end = await json<FsckReply>(c, ['fsck', '/']);
  t.same([end.misplaced, end.underReplicated, end.status], [0, 0, 'HEALTHY']);
  t.ok((await c.dfs(['cat', '/old.bin'])).stdout.equals(data), 'the file reads back whole');
});

function portIsFree(port: number): Promise<boolean> {
  return new Promise((r) => {
    const srv = createServer();
    srv.once('error', () => r(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => r(true)));
  });
}

t.test('dfs cluster --racks 2 deals the chunkservers over rack1 and rack2; more racks than chunkservers is refused', async (t) => {
  const bad = await runDfs(['cluster', '--racks', '3', '--chunkservers', '2', '--data', join(tmpdir(), 'dfs-never-made')]);
  t.not(bad.code, 0, 'refused');
  t.match(bad.stderr, /--racks 3 is more than the 2 chunkservers/);
  t.equal(bad.stderr.trim().split('\n').length, 1, 'in one line');

  let base = 0;
  for (let i = 0; i < 50 && base === 0; i++) {
    const b = 21_000 + Math.floor(Math.random() * 11_000);
    if ((await Promise.all([b, b + 100, b + 101].map(portIsFree))).every(Boolean)) base = b;
  }
  t.ok(base > 0, 'free ports found');
  const dataDir = mkdtempSync(join(tmpdir(), 'dfs-racks-launcher-'));
  const child = spawn(process.execPath, [DFS, 'cluster', '--data', dataDir, '--base-port', String(base), '--masters', '1', '--chunkservers', '2', '--racks', '2', '--s3-port', '0', '--chunk-size', '1MiB'], {
    stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NODE_OPTIONS: '' },
  });
  let out = '';
  child.stdout!.on('data', (b: Buffer) => (out += b.toString()));
  const exited = new Promise((r) => child.once('exit', r));
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      process.kill(child.pid!, 'SIGINT');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
    }
    // Whatever it left behind, by the pids cluster.json names.
    try {
      for (const p of (JSON.parse(readFileSync(join(dataDir, 'cluster.json'), 'utf8')) as { processes: { pid: number }[] }).processes) {
        try { process.kill(p.pid, 'SIGKILL'); } catch { /* gone */ }
      }
    } catch { /* no cluster.json */ }
    rmSync(dataDir, { recursive: true, force: true });
  });
  await waitFor(() => /ready/.test(out), 90_000, 'the local cluster to be ready');
  const status = await runDfs(['status', '--json'], { env: { DFS_MASTERS: `127.0.0.1:${base}`, DFS_TOKEN: '', DFS_TOKEN_FILE: join(dataDir, 'admin-token') } });
  t.equal(status.code, 0, status.stderr);
  const s = JSON.parse(status.stdout.toString()) as ClusterStatus;
  t.same(s.chunkservers.map((c) => [c.id, c.rack]), [['cs1', 'rack1'], ['cs2', 'rack2']], 'cs1 in rack1, cs2 in rack2');
  const cluster = JSON.parse(readFileSync(join(dataDir, 'cluster.json'), 'utf8')) as { processes: { id: string; command: string }[] };
  t.match(cluster.processes.find((p) => p.id === 'cs2')?.command ?? '', /--rack rack2/, 'the restart command in cluster.json keeps the rack');
});
