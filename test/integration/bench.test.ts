// The throughput benchmark (scripts/bench.ts) and the record append one (scripts/recordbench.ts),
// run as a user would with tiny sizes: each finishes,
// prints its table, writes JSON with every section, and leaves no temporary folder behind. The
// numbers themselves are not checked (no timing assertions): only that each is a real figure.
import t from 'tap';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from '../helpers/cluster.js';
import { runScript, type ScriptRun } from '../helpers/run-script.js';

const BENCH = join(ROOT, 'dist', 'scripts', 'bench.js');

interface Figure { id: string; unit: string; median: number; min: number; max: number; runs: number[]; p50Ms?: number; p99Ms?: number; ratios: Record<string, number>; details?: Record<string, number | string | boolean> }
interface Results { version: number; machine: { cpus: number }; sections: Record<string, Figure[]> }

function runBench(args: string[], timeoutMs = 240_000, script = BENCH): Promise<ScriptRun> {
  return runScript(script, args, timeoutMs);
}

const positive = (v: unknown) => typeof v === 'number' && Number.isFinite(v) && v > 0;

t.test('a tiny run of every section, faults included', async (t) => {
  const out = mkdtempSync(join(tmpdir(), 'dfs-bench-test-'));
  t.teardown(() => rmSync(out, { recursive: true, force: true }));
  const json = join(out, 'results.json');
  // 20,000 files for the memory figures: at 2,000 the GC's noise (tens of kB) made one of them negative.
  const r = await runBench(['--size', '2MiB', '--chunk-size', '1MiB', '--runs', '1', '--files', '40', '--inflight', '8', '--records', '16', '--scale', '20000', '--faults', '--json', json]);
  t.equal(r.code, 0, `exit 0:\n${r.stderr}`);
  for (const section of ['[ceilings]', '[upload]', '[download]', '[metadata]', '[records]', '[faults]', '[scale]']) t.match(r.stdout, section, `the table has ${section}`);
  t.match(r.stdout, /measurement\s+median\s+min–max\s+unit/, 'the table has its header');
  t.match(r.stdout, `results written to ${json}`);

  const results = JSON.parse(readFileSync(json, 'utf8')) as Results;
  t.equal(results.version, 1);
  t.ok(results.machine.cpus >= 1, 'the machine is described');
  const s = results.sections;
  t.same(Object.keys(s).sort(), ['ceilings', 'download', 'faults', 'metadata', 'records', 'scale', 'upload']);
  for (const [name, figures] of Object.entries(s)) {
    t.ok(figures.length > 0, `${name} has figures`);
    for (const f of figures) {
      t.ok(positive(f.median) && f.min <= f.median && f.median <= f.max && f.runs.length >= 1, `${f.id}: ${f.median} ${f.unit} is a real figure`);
    }
  }
  t.same(s.upload!.map((f) => f.id), ['upload.1x2MiB', 'upload.4x512KiB']);
  t.same(s.download!.map((f) => f.id), ['download.1x2MiB', 'download.4x512KiB']);
  for (const f of s.upload!) t.ok(positive(f.ratios['ceiling.write3']) && positive(f.ratios['ceiling.write1']), `${f.id} is a ratio of the write ceilings`);
  for (const f of s.download!) t.ok(positive(f.ratios['ceiling.read']) && positive(f.ratios['ceiling.http-get']), `${f.id} is a ratio of the read and HTTP ceilings`);
  t.equal(s.metadata!.length, 24, 'create, stat, list, delete × empty, 4 KiB inline, 4 KiB in chunks × sequential, 8 in flight');
  for (const f of s.metadata!) {
    t.ok(positive(f.p50Ms) && positive(f.p99Ms), `${f.id} has latency percentiles`);
    t.ok(positive(Object.values(f.ratios)[0]), `${f.id} is a ratio of the round-trip ceiling`);
  }
  t.same(s.records!.map((f) => f.id), ['records.8clients.4KiB', 'records.8clients.64KiB', 'records.1client-64.4KiB', 'records.1client-64.64KiB', 'records.snapshot'], 'record append from 8 clients and from one with 64 out, and a snapshot');
  t.ok(s.records!.slice(0, 4).every((f) => f.details?.records === 16), 'each record phase appended its 16 records');
  t.ok(positive(s.records![4]!.details?.masterRssBeforeMiB), 'the leader\'s memory beside the snapshot');
  t.ok(s.faults!.some((f) => f.id === 'faults.leader-gap'), 'the leader kill was measured');
  t.ok(s.faults!.some((f) => f.id === 'faults.repair-total'), 'the chunkserver kill was measured');
  t.ok(s.scale!.some((f) => f.id === 'scale.state-heap' && f.unit === 'bytes/file'), 'master heap per file');

  const workDir = /writing .* of random bytes to (\S+)/.exec(r.stderr)?.[1];
  t.ok(workDir && !existsSync(workDir), `its temporary folder ${workDir} is gone`);
});

t.test('a wrong command line is a usage error', async (t) => {
  const zero = await runBench(['--clients', '0']);
  t.equal(zero.code, 2);
  t.match(zero.stderr, '--clients must be a whole number ≥ 1');
  const faults = await runBench(['--faults', '--masters', '127.0.0.1:1']);
  t.equal(faults.code, 2, 'faults never kill the processes of a cluster it did not start');
  t.match(faults.stderr, '--faults kills processes');
});

t.test('a failed run removes its folder, or with --keep leaves it and says where', async (t) => {
  // Nothing listens on 127.0.0.1:1, and the ceilings ask it for its chunk size: the run fails at once.
  const args = ['--masters', '127.0.0.1:1', '--only', 'ceilings', '--size', '1MiB', '--runs', '1', '--warm'];
  const gone = await runBench(args);
  t.equal(gone.code, 1, gone.stderr);
  t.match(gone.stderr, /bench: FAILED: /);
  const goneDir = /random bytes to (\S+)/.exec(gone.stderr)?.[1];
  t.ok(goneDir && !existsSync(goneDir), `without --keep its folder ${goneDir} is gone`);
  const kept = await runBench([...args, '--keep']);
  t.equal(kept.code, 1, kept.stderr);
  const dir = /bench: kept (\S+) /.exec(kept.stderr)?.[1];
  t.ok(dir && existsSync(dir), `--keep left ${dir}`);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

t.test('the record append and snapshot benchmark, tiny: every figure real, the master\'s memory read, no folder left', async (t) => {
  const out = mkdtempSync(join(tmpdir(), 'dfs-recordbench-test-'));
  t.teardown(() => rmSync(out, { recursive: true, force: true }));
  const json = join(out, 'r.json');
  const r = await runBench(['--records', '8', '--clients', '2', '--files', '30', '--json', json], 180_000, join(ROOT, 'dist', 'scripts', 'recordbench.js'));
  t.equal(r.code, 0, r.stderr);
  const res = JSON.parse(readFileSync(json, 'utf8')) as { recordAppend: { records: number; recordsPerSec: number }[]; snapshot: Record<string, number> };
  t.same(res.recordAppend.map((p) => p.records), [8, 8], 'both record sizes ran');
  t.ok(res.recordAppend.every((p) => positive(p.recordsPerSec)), 'records/s are real figures');
  for (const k of ['snapshotMs', 'mkdirP50Ms', 'masterRssBeforeMiB', 'masterRssAfterMiB']) t.ok(positive(res.snapshot[k]), `${k}: ${res.snapshot[k]}`);
  t.match(r.stdout, /master resident memory: \d+ MiB before the snapshot, \d+ MiB after/);
  const dataDir = /data in (\S+)/.exec(r.stdout)?.[1];
  t.ok(dataDir !== undefined && !existsSync(dataDir), 'its cluster\'s folder is removed');
});
