// The metadata benchmark beside etcd and MooseFS (scripts/peers.ts), run as a user would with tiny
// counts and without the peers (CI has neither): it finishes, prints its table with a dfs figure
// in every row and the peers' columns empty, says why they are, writes its JSON, and leaves no
// temporary folder behind. The figures are not judged (no timing assertions): only that each is a
// real figure.
import t from 'tap';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from '../helpers/cluster.js';
import { runScript } from '../helpers/run-script.js';

const PEERS = join(ROOT, 'dist', 'scripts', 'peers.js');

interface Rate { opsPerSec: number; p50Ms?: number; p99Ms?: number }
interface Row { what: string; dfs?: Rate; etcd?: Rate; moosefs?: Rate }

const ownFolders = () => new Set(readdirSync(tmpdir()).filter((n) => n.startsWith('dfs-peers-')));
const positive = (v: unknown) => typeof v === 'number' && Number.isFinite(v) && v > 0;

t.test('a tiny run without the peers: every row has a dfs figure, the peers say why they are missing', async (t) => {
  const before = ownFolders();
  const out = mkdtempSync(join(tmpdir(), 'dfs-pbench-out-'));
  t.teardown(() => rmSync(out, { recursive: true, force: true }));
  const json = join(out, 'peers.json');
  const r = await runScript(PEERS, ['--ops', '300', '--inflight', '4,8', '--seq-rounds', '1', '--no-etcd', '--no-moosefs', '--json', json], 300_000);
  t.equal(r.code, 0, `exit 0:\n${r.stderr}`);
  t.match(r.stdout, '| | dfs | etcd | dfs/etcd | MooseFS | dfs/MooseFS |', 'the table has its header');
  t.match(r.stdout, 'etcd not measured: not asked for (--no-etcd)');
  t.match(r.stdout, 'MooseFS not measured: not asked for (--no-moosefs)');

  const { rows } = JSON.parse(readFileSync(json, 'utf8')) as { rows: Row[] };
  t.same(rows.map((row) => row.what), [
    'write, sequential (dfs: create an empty file; etcd: put; the median of 1 rounds)',
    'write, 4 in flight (dfs: mkdir; etcd: put)',
    'write, 8 in flight (dfs: mkdir; etcd: put)',
    'linearizable read, 4 in flight (dfs: stat; etcd: get)',
    'linearizable read, 8 in flight (dfs: stat; etcd: get)',
    'empty files, 4 in flight (MooseFS: create, 4 processes)',
    '4 KiB files, 4 in flight',
  ], 'the rows, sequential first');
  for (const row of rows) {
    t.ok(positive(row.dfs?.opsPerSec), `${row.what}: a rate`);
    t.ok(positive(row.dfs?.p50Ms) && row.dfs!.p99Ms! >= row.dfs!.p50Ms!, `${row.what}: p50 and p99`);
    t.equal(row.etcd, undefined, `${row.what}: no etcd figure`);
    t.equal(row.moosefs, undefined, `${row.what}: no MooseFS figure`);
    t.match(r.stdout, `| ${row.what} | ${row.dfs!.opsPerSec.toFixed(0)}/s p50 `, `${row.what}: in the table`);
  }
  t.same([...ownFolders()].filter((n) => !before.has(n)), [], 'its cluster folder is gone');
});
