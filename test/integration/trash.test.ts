// The trash through the real `dfs` CLI on a real cluster: rm moves into /.trash/<user>/..., the
// chunks stay on the chunkservers' disks (while a --skip-trash rm's leave), restore brings back the
// same bytes, the leader expunges an expired checkpoint and its chunks leave the disks.
import t from 'tap';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { failedWithOneLine } from '../helpers/cli-checks.js';
import { randomBytesSeeded, TestCluster, waitFor } from '../helpers/cluster.js';

const CHUNK = 128 * 1024;
const ALICE = { DFS_USER: 'alice' };

/** Chunk files on a chunkserver's disk, by handle. */
function onDisk(c: TestCluster, id: string): Set<number> {
  const dir = join(c.dir, id, 'chunks');
  return new Set(existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.chunk')).map((f) => Number(f.split('.')[0])) : []);
}

async function handlesOf(c: TestCluster, path: string): Promise<number[]> {
  const r = await c.dfs(['stat', '--json', path]);
  return (JSON.parse(r.stdout.toString()) as { chunks: { handle: number }[] }).chunks.map((ch) => ch.handle);
}

const SERVERS = ['cs1', 'cs2', 'cs3'];
const onEveryDisk = (c: TestCluster, hs: number[]) => SERVERS.every((id) => hs.every((h) => onDisk(c, id).has(h)));
const onNoDisk = (c: TestCluster, hs: number[]) => SERVERS.every((id) => hs.every((h) => !onDisk(c, id).has(h)));

t.test('rm moves to the trash, the chunks stay, restore gives the same bytes back; rm --skip-trash and rm in the trash delete', async (t) => {
  const c = await TestCluster.start({ chunkservers: 3, chunkSizeBytes: CHUNK, gcGraceMs: 1000 });
  t.teardown(() => c.stop());
  const dfs = (args: string[], input?: Buffer) => c.dfs(args, { env: ALICE, ...(input ? { input } : {}) });
  const data = randomBytesSeeded(3 * CHUNK + 77, 191);
  t.equal((await dfs(['put', '-', '/docs/report.bin'], data)).code, 0, 'put');
  t.equal((await dfs(['put', '-', '/scratch.bin'], randomBytesSeeded(CHUNK, 192))).code, 0, 'put another');
  const kept = await handlesOf(c, '/docs/report.bin');
  const scratch = await handlesOf(c, '/scratch.bin');

  const rm = await dfs(['rm', '/docs/report.bin']);
  t.equal(rm.code, 0, rm.stderr);
  const m = /^moved \/docs\/report\.bin to the trash: (\/\.trash\/alice\/\d{8}-\d{6}\/docs\/report\.bin)\n$/.exec(rm.stdout.toString());
  t.ok(m, `rm says where it went: ${rm.stdout.toString().trim()}`);
  const inTrash = m![1]!;
  t.equal((await dfs(['ls', '/docs'])).stdout.toString(), '', 'the file left /docs');
  const list = JSON.parse((await dfs(['trash', 'list', '--json'])).stdout.toString()) as { trashPath: string; original: string; size: number }[];
  t.same(list.map((i) => [i.trashPath, i.original, i.size]), [[inTrash, '/docs/report.bin', data.length]], 'trash list: where it is, where it was, its size');
  t.match((await dfs(['trash', 'list'])).stdout.toString(), new RegExp(`^\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d +${data.length}  /docs/report\\.bin  ${inTrash.replace(/\./g, '\\.')}\n$`), 'trash list as text');

  const status = JSON.parse((await dfs(['status', '--json'])).stdout.toString()) as { trash: { files: number; bytes: number; rawBytes: number } };
  t.same(status.trash, { files: 1, bytes: data.length, rawBytes: 3 * data.length, intervalMs: 24 * 3600_000 }, 'status --json: what the trash holds');
  t.match((await dfs(['status'])).stdout.toString(), /^trash: 1 file, [\d.]+ KiB \([\d.]+ \w+ with replicas\), each kept 24 h after rm \(dfs trash\)$/m, 'dfs status shows the trash');

  // A deleted file's chunks leaving every disk shows that garbage collection ran past its grace period.
  const skip = await dfs(['rm', '--skip-trash', '/scratch.bin']);
  t.equal(skip.code, 0, skip.stderr);
  t.equal(skip.stdout.toString(), '', 'rm --skip-trash deletes quietly');
  await waitFor(() => onNoDisk(c, scratch), 60_000, 'the --skip-trash file\'s chunks to leave the disks');
  t.ok(onEveryDisk(c, kept), 'the trashed file\'s chunks are still on every chunkserver');

  const restore = await dfs(['trash', 'restore', inTrash]);
  t.equal(restore.code, 0, restore.stderr);
  t.equal(restore.stdout.toString(), `restored ${inTrash} to /docs/report.bin\n`, 'restore says where');
  t.ok((await dfs(['cat', '/docs/report.bin'])).stdout.equals(data), 'the restored file reads back byte-identical');
  t.same(await handlesOf(c, '/docs/report.bin'), kept, 'with the same chunks');
  t.same(JSON.parse((await dfs(['trash', 'list', '--json'])).stdout.toString()), [], 'the trash is empty again');

  failedWithOneLine(t, await dfs(['rm', '/docs']), /^dfs: \/docs is a directory that is not empty \(use -r\)( \(request [\w.:-]+\))?$/m, 'rm of a full directory without -r');
  const rmDir = await dfs(['rm', '-r', '/docs']);
  t.equal(rmDir.code, 0, rmDir.stderr);
  const [, dirInTrash] = /to the trash: (\S+)/.exec(rmDir.stdout.toString())!;
  failedWithOneLine(t, await dfs(['trash', 'restore', dirInTrash!, '/']), /^dfs: cannot restore into \/( \(request [\w.:-]+\))?$/m, 'restore onto /');
  const twice = await dfs(['rm', '-r', dirInTrash!]);
  t.equal(twice.code, 0, twice.stderr);
  t.equal(twice.stdout.toString(), '', 'rm inside the trash deletes at once, without a word');
  await waitFor(() => onNoDisk(c, kept), 60_000, 'the chunks of what was deleted in the trash to leave the disks');
  t.pass('deleted inside the trash: its chunks left every disk');

  t.equal((await dfs(['put', '-', '/x.bin'], randomBytesSeeded(10, 193))).code, 0);
  t.equal((await dfs(['rm', '/x.bin'])).code, 0);
  const empty = await dfs(['trash', 'empty']);
  t.equal(empty.stdout.toString(), 'emptied the trash of alice: 1 file deleted\n', 'trash empty says how much');
  t.same(JSON.parse((await dfs(['trash', 'list', '--json'])).stdout.toString()), [], 'and the trash is empty');
  const bob = await c.dfs(['trash', 'list'], { env: { DFS_USER: '-bob' } });
  t.equal(bob.code, 2, 'a malformed DFS_USER is a usage error');
});

t.test('the leader expunges a checkpoint older than the trash interval, and its chunks leave the disks', async (t) => {
  const c = await TestCluster.start({ chunkservers: 3, chunkSizeBytes: CHUNK, gcGraceMs: 1000, trashIntervalMs: 2000 });
  t.teardown(() => c.stop());
  t.equal((await c.dfs(['put', '-', '/old.bin'], { input: randomBytesSeeded(2 * CHUNK + 5, 194), env: ALICE })).code, 0);
  const handles = await handlesOf(c, '/old.bin');
  t.equal((await c.dfs(['rm', '/old.bin'], { env: ALICE })).code, 0);
  await waitFor(async () => (await c.dfs(['ls', '/.trash/alice'])).stdout.toString() === '', 60_000, 'the checkpoint to be expunged');
  t.pass('the checkpoint is gone from /.trash/alice');
  await waitFor(() => onNoDisk(c, handles), 60_000, 'the expunged chunks to leave every disk');
  t.pass('its chunks left every chunkserver');
});

