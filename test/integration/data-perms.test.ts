// A server's data is its user's alone (issue 15, found by the fuzz: chunk files were 0644 in 0755
// folders and the Raft log world-readable): whatever the umask, a master and a chunkserver create
// files without group or other bits, and a data folder found open at start is closed.
import { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { secureDataDir } from '../../common/data-dir.js';
import { randomBytesSeeded, TestCluster } from '../helpers/cluster.js';

function openEntries(dir: string): string[] {
  const found: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    const mode = statSync(p).mode & 0o777;
    if (mode & 0o077) found.push(`${p} ${mode.toString(8)}`);
    if (e.isDirectory()) found.push(...openEntries(p));
  }
  return found;
}

t.test('secureDataDir closes an open folder and sets the umask', async (t) => {
  const before = process.umask();
  t.teardown(() => void process.umask(before));
  const parent = mkdtempSync(join(tmpdir(), 'dfs-perm-'));
  t.teardown(() => rmSync(parent, { recursive: true, force: true }));
  const dir = join(parent, 'data');
  mkdirSync(dir, { mode: 0o755 });
  const warned: unknown[] = [];
  t.equal(secureDataDir(dir, { warn: (o: unknown) => void warned.push(o) }), true, 'an open folder is reported');
  t.equal(statSync(dir).mode & 0o777, 0o700);
  t.equal(warned.length, 1, 'and said once in the log');
  t.equal(process.umask(), 0o077, 'what the process creates next is its user\'s alone');
  t.equal(secureDataDir(dir), false, 'a closed folder is left as it is');
  const fresh = join(dir, 'new');
  secureDataDir(fresh);
  t.equal(statSync(fresh).mode & 0o777, 0o700, 'a new folder is 0700');
});

t.test('a master and a chunkserver, started with an open umask, create nothing others can read', async (t) => {
  const c = await TestCluster.start({ masters: 1, chunkservers: 1, replication: 1, chunkSizeBytes: 256 * 1024 });
  t.teardown(() => c.stop());
  const put = await c.dfs(['put', '-', '/secret.bin'], { input: randomBytesSeeded(600 * 1024, 3) });
  t.equal(put.code, 0, put.stderr.toString());
  for (const id of ['m1', 'cs1']) {
    const dir = join(c.dir, id);
    t.equal(statSync(dir).mode & 0o777, 0o700, `${id}'s data folder is 0700`);
    t.same(openEntries(dir), [], `nothing in ${id}'s data folder is open to group or others`);
  }
});
