// Self-healing beyond plain re-replication, with real processes and small chunks: repair order
// after a double failure, space coming back after rm, balancing onto an empty server,
// decommissioning, setrep up and down, and fsck's verdicts. The master's own view (stat with
// replicas) is polled over HTTP, often, to check that no chunk ever drops below its replication.
import t from 'tap';
import { existsSync, readdirSync, openSync, writeSync, closeSync } from 'node:fs';
import { join } from 'node:path';
import { ADMIN_TOKEN, randomBytesSeeded, TestCluster, waitFor } from '../helpers/cluster.js';

const CHUNK = 128 * 1024;

interface ChunkView { handle: number; replicas: { id: string; addr: string }[] }
interface StatView { replication: number; chunks: ChunkView[] }

/** The master's view of a file's chunks and their live replicas, straight from its HTTP API. */
async function chunksOf(c: TestCluster, path: string): Promise<ChunkView[]> {
  const { proc } = await c.leader();
  const res = await fetch(`http://${proc.addr}/v1/fs/stat?path=${encodeURIComponent(path)}&chunks=1`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
  if (res.status !== 200) throw new Error(`stat ${path}: ${res.status} ${await res.text()}`);
  return ((await res.json()) as StatView).chunks;
}

/** Chunk files on a chunkserver's disk, by handle. */
function onDisk(c: TestCluster, id: string): Set<number> {
  const dir = join(c.dir, id, 'chunks');
  return new Set(existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.chunk')).map((f) => Number(f.split('.')[0])) : []);
}

const ids = (ch: ChunkView) => ch.replicas.map((r) => r.id).sort();

t.test('kill -9 two of five chunkservers at once: chunks left with one replica are repaired first', async (t) => {
  const c = await TestCluster.start({ chunkservers: 5, chunkSizeBytes: CHUNK, deadTimeoutMs: 2000 });
  t.teardown(() => c.stop());
  const data = randomBytesSeeded(40 * CHUNK, 71);
  t.equal((await c.dfs(['put', '-', '/two.bin'], { input: data })).code, 0);
  const before = await chunksOf(c, '/two.bin');
  // The pair of servers whose loss leaves the most chunks with a single replica.
  const pairs: [string, string][] = [];
  for (let i = 1; i <= 5; i++) for (let j = i + 1; j <= 5; j++) pairs.push([`cs${i}`, `cs${j}`]);
  const lonely = (p: [string, string]) => before.filter((ch) => p.every((id) => ids(ch).includes(id))).length;
  const dead = pairs.sort((a, b) => lonely(b) - lonely(a))[0]!;
  const one = new Set(before.filter((ch) => dead.every((id) => ids(ch).includes(id))).map((ch) => ch.handle));
  const two = new Set(before.filter((ch) => ids(ch).filter((id) => dead.includes(id)).length === 1).map((ch) => ch.handle));
  t.ok(one.size > 0 && two.size > 0, `killing ${dead.join(' and ')} leaves ${one.size} chunks with one replica and ${two.size} with two`);

  for (const id of dead) await c.kill(c.chunkservers[Number(id.slice(2)) - 1]!);
  // When each chunk first gained a replica on a live server, in poll order (the master's view).
  const firstCopy = new Map<number, number>();
  let poll = 0;
  await waitFor(async () => {
    poll++;
    const now = await chunksOf(c, '/two.bin');
    for (const ch of now) {
      const fresh = ids(ch).filter((id) => !dead.includes(id) && !before.find((b) => b.handle === ch.handle)!.replicas.some((r) => r.id === id));
      if (fresh.length > 0 && !firstCopy.has(ch.handle)) firstCopy.set(ch.handle, poll);
    }
    return now.every((ch) => ids(ch).filter((id) => !dead.includes(id)).length === 3);
  }, 90_000, 'every chunk to have 3 replicas on live servers');
  t.pass('every chunk is back at 3 replicas on the three live servers');

  const mean = (hs: Set<number>) => [...hs].reduce((a, h) => a + firstCopy.get(h)!, 0) / hs.size;
  t.ok(mean(one) < mean(two), `one-replica chunks got their first new replica earlier on average (poll ${mean(one).toFixed(1)} vs ${mean(two).toFixed(1)})`);
  const lastOne = Math.max(...[...one].map((h) => firstCopy.get(h)!));
  const lastTwo = Math.max(...[...two].map((h) => firstCopy.get(h)!));
  t.ok(lastOne <= lastTwo, `the last one-replica chunk got a second replica (poll ${lastOne}) no later than the last two-replica chunk got its third (poll ${lastTwo})`);
  t.ok((await c.dfs(['cat', '/two.bin'])).stdout.equals(data), 'the file reads back byte-identical');
});

t.test('rm: the chunk files leave every chunkserver\'s disk after the grace period', async (t) => {
  const c = await TestCluster.start({ chunkservers: 3, chunkSizeBytes: CHUNK, gcGraceMs: 1500 });
  t.teardown(() => c.stop());
  t.equal((await c.dfs(['put', '-', '/gone.bin'], { input: randomBytesSeeded(3 * CHUNK + 9, 72) })).code, 0);
  t.equal((await c.dfs(['put', '-', '/kept.bin'], { input: randomBytesSeeded(2 * CHUNK, 73) })).code, 0);
  const gone = (await chunksOf(c, '/gone.bin')).map((ch) => ch.handle);
  const kept = (await chunksOf(c, '/kept.bin')).map((ch) => ch.handle);
  for (const id of ['cs1', 'cs2', 'cs3']) t.ok(gone.every((h) => onDisk(c, id).has(h)), `${id} holds the file's chunks`);
  const rm = await c.dfs(['rm', '--skip-trash', '/gone.bin']);
  t.equal(rm.code, 0, rm.stderr);
  await waitFor(() => ['cs1', 'cs2', 'cs3'].every((id) => gone.every((h) => !onDisk(c, id).has(h))), 30_000, 'the deleted chunks to leave every disk');
  t.pass('no chunk file of the deleted file is left on any chunkserver');
  for (const id of ['cs1', 'cs2', 'cs3']) t.ok(kept.every((h) => onDisk(c, id).has(h)), `${id} keeps the other file's chunks`);
  const du = JSON.parse((await c.dfs(['du', '-s', '--json', '/'])).stdout.toString()) as { bytes: number };
  t.equal(du.bytes, 2 * CHUNK, 'du counts only the remaining file');
});

t.test('an empty chunkserver joins: replicas move onto it and no chunk ever has fewer than 3', async (t) => {
  const c = await TestCluster.start({ chunkservers: 3, chunkSizeBytes: CHUNK, balanceThreshold: 0.1 });
  t.teardown(() => c.stop());
  const data = randomBytesSeeded(24 * CHUNK, 74);
  t.equal((await c.dfs(['put', '-', '/bal.bin'], { input: data })).code, 0);
  t.equal(onDisk(c, 'cs4').size, 0, 'cs4 does not exist yet');
  await c.startChunkserver(3);

  let lowest = Infinity;
  let settledPolls = 0;
  await waitFor(async () => {
    const now = await chunksOf(c, '/bal.bin');
    lowest = Math.min(lowest, ...now.map((ch) => ch.replicas.length));
    const s = (await c.status()) as unknown as { repair: { movesInFlight: number } };
    const onNew = now.filter((ch) => ids(ch).includes('cs4')).length;
    // Done once cs4 holds a fair share and nothing has moved for a few polls.
    settledPolls = onNew >= 5 && s.repair.movesInFlight === 0 && now.every((ch) => ch.replicas.length === 3) ? settledPolls + 1 : 0;
    return settledPolls >= 3;
  }, 90_000, 'replicas to move onto the new server');
  t.equal(lowest, 3, 'no chunk had fewer than 3 live replicas at any poll');
  const after = await chunksOf(c, '/bal.bin');
  const per = new Map<string, number>();
  for (const ch of after) for (const id of ids(ch)) per.set(id, (per.get(id) ?? 0) + 1);
  const counts = ['cs1', 'cs2', 'cs3', 'cs4'].map((id) => per.get(id) ?? 0);
  t.ok(Math.max(...counts) - Math.min(...counts) <= 3, `replicas per server are even within a few chunks: ${counts.join(', ')}`);
  await waitFor(() => after.every((ch) => ['cs1', 'cs2', 'cs3', 'cs4'].every((id) => onDisk(c, id).has(ch.handle) === ids(ch).includes(id))), 15_000,
    'every disk to hold exactly the replicas the master counts');
  t.pass('moved replicas were deleted from their old servers');
  t.ok((await c.dfs(['cat', '/bal.bin'])).stdout.equals(data), 'the file reads back byte-identical');
});

t.test('decommission: the server drains, then holds nothing that lacks 3 replicas elsewhere', async (t) => {
  const c = await TestCluster.start({ chunkservers: 4, chunkSizeBytes: CHUNK });
  t.teardown(() => c.stop());
  const data = randomBytesSeeded(12 * CHUNK + 1, 75);
  t.equal((await c.dfs(['put', '-', '/d.bin'], { input: data })).code, 0);
  const victim = (await chunksOf(c, '/d.bin'))[0]!.replicas[0]!;
  t.equal((await c.dfs(['decommission', 'cs9'])).stderr.replace(/ \(request [0-9a-f]{16}\)\n$/, '\n'), 'dfs: no chunkserver cs9 is known to the master (dfs status lists them by id and address)\n', 'an unknown server is refused');

  const r = await c.dfs(['decommission', '-w', victim.addr], { timeoutMs: 90_000 });
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout.toString(), new RegExp(`decommissioning ${victim.id}: .*\\n${victim.id} is decommissioned: `), 'named by address, reported by id');
  const s = JSON.parse((await c.dfs(['status', '--json'])).stdout.toString()) as { chunkservers: { id: string; state: string; decommissionRemaining?: number }[] };
  t.match(s.chunkservers.find((cs) => cs.id === victim.id), { state: 'decommissioned', decommissionRemaining: 0 });
  t.match((await c.dfs(['status'])).stdout.toString(), new RegExp(`${victim.id} .* DECOMMISSIONED \\(safe to remove\\)`));
  for (const ch of await chunksOf(c, '/d.bin')) {
    t.ok(ids(ch).filter((id) => id !== victim.id).length >= 3, `chunk ${ch.handle} has 3 replicas besides ${victim.id}`);
  }
  // New data goes elsewhere while it is decommissioned.
  t.equal((await c.dfs(['put', '-', '/new.bin'], { input: randomBytesSeeded(3 * CHUNK, 76) })).code, 0);
  t.ok((await chunksOf(c, '/new.bin')).every((ch) => !ids(ch).includes(victim.id)), 'no new chunk is placed on it');

  await c.kill(c.chunkservers[Number(victim.id.slice(2)) - 1]!);
  t.ok((await c.dfs(['cat', '/d.bin'])).stdout.equals(data), 'with it stopped, the file reads back byte-identical');
  const fsck = await c.dfs(['fsck']);
  t.equal(fsck.code, 0, fsck.stdout.toString());
  t.match(fsck.stdout.toString(), /is HEALTHY\n$/);
  const cancel = await c.dfs(['decommission', '--cancel', victim.id]);
  t.equal(cancel.code, 0, cancel.stderr);
  t.equal(cancel.stdout.toString(), `${victim.id} is back in service\n`);
});

t.test('setrep 3 -> 2 -> 4 converges, on the master and on disk', async (t) => {
  const c = await TestCluster.start({ chunkservers: 4, chunkSizeBytes: CHUNK });
  t.teardown(() => c.stop());
  const data = randomBytesSeeded(6 * CHUNK + 5, 77);
  t.equal((await c.dfs(['put', '-', '/s/f.bin'], { input: data })).code, 0);
  const diskCount = (h: number) => ['cs1', 'cs2', 'cs3', 'cs4'].filter((id) => onDisk(c, id).has(h)).length;

  const bad = await c.dfs(['setrep', '2', '/s']);
  t.equal(bad.code, 1);
  t.equal(bad.stderr.replace(/ \(request [0-9a-f]{16}\)\n$/, '\n'), 'dfs: /s is a directory; use -R to change every file below it\n');
  t.equal((await c.dfs(['setrep', '0', '/s/f.bin'])).code, 2, 'replication 0 is a usage error');

  const down = await c.dfs(['setrep', '-w', '2', '/s/f.bin'], { timeoutMs: 90_000 });
  t.equal(down.code, 0, down.stderr);
  t.match(down.stdout.toString(), /^replication of 1 file under \/s\/f\.bin set to 2\nconverged: 7 chunks with 2 replicas each\n$/);
  t.ok((await chunksOf(c, '/s/f.bin')).every((ch) => ch.replicas.length === 2), 'the master counts 2 replicas per chunk');
  await waitFor(async () => (await chunksOf(c, '/s/f.bin')).every((ch) => diskCount(ch.handle) === 2), 15_000, 'surplus chunk files to be deleted');
  t.pass('2 chunk files per chunk on disk');
  t.equal(JSON.parse((await c.dfs(['stat', '--json', '/s/f.bin'])).stdout.toString()).replication, 2, 'stat shows the new replication');

  const up = await c.dfs(['setrep', '-R', '-w', '4', '/s'], { timeoutMs: 90_000 });
  t.equal(up.code, 0, up.stderr);
  t.ok((await chunksOf(c, '/s/f.bin')).every((ch) => ch.replicas.length === 4), 'the master counts 4 replicas per chunk');
  t.ok((await chunksOf(c, '/s/f.bin')).every((ch) => diskCount(ch.handle) === 4), 'every chunkserver holds every chunk');
  t.ok((await c.dfs(['cat', '/s/f.bin'])).stdout.equals(data), 'the file reads back byte-identical');
});

t.test('fsck: a file whose only replica failed its checksum is CORRUPT, exit 1', async (t) => {
  const c = await TestCluster.start({ chunkservers: 2, replication: 1, chunkSizeBytes: CHUNK });
  t.teardown(() => c.stop());
  t.equal((await c.dfs(['put', '-', '/one.bin'], { input: randomBytesSeeded(2 * CHUNK, 78) })).code, 0);
  t.equal((await c.dfs(['put', '-', '/fine.bin'], { input: randomBytesSeeded(CHUNK, 79) })).code, 0);
  const healthy = await c.dfs(['fsck', '--files']);
  t.equal(healthy.code, 0);
  t.match(healthy.stdout.toString(), /^\/fine\.bin: HEALTHY\n\/one\.bin: HEALTHY\nfiles: 2 .*: 2 healthy, 0 under-replicated, 0 missing, 0 corrupt\n/);

  const ch = (await chunksOf(c, '/one.bin'))[1]!;
  const fd = openSync(join(c.dir, ch.replicas[0]!.id, 'chunks', `${ch.handle}.chunk`), 'r+');
  writeSync(fd, Buffer.from([0x55, 0xaa]), 0, 2, 10);
  closeSync(fd);
  const get = await c.dfs(['cat', '/one.bin']);
  t.equal(get.code, 1, 'the read fails: no good replica');
  // The replica's removal (heartbeat) and the corrupt report are separate calls: in between, the
  // chunk is MISSING. Wait for the report.
  await waitFor(async () => (await c.dfs(['fsck'])).stdout.toString().includes('CORRUPT ('), 15_000, 'fsck to see the corrupt chunk');
  const r = await c.dfs(['fsck']);
  t.match(r.stdout.toString(), /^\/one\.bin: CORRUPT \(1 of 2 chunks\)\n {2}chunk #1 \(handle \d+\) CORRUPT\nfiles: 2 .*: 1 healthy, 0 under-replicated, 0 missing, 1 corrupt\nchunks: 3: 0 under-replicated, 0 missing, 1 corrupt, 0 over-replicated\nThe filesystem under path '\/' is CORRUPT\n$/);
  t.equal((await c.dfs(['fsck', '/fine.bin'])).code, 0, 'a healthy subtree passes');
});
