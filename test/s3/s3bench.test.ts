// The S3 gateway's speed benchmark (scripts/s3bench.ts), run as a user would with a tiny file:
// it finishes, checks the bytes both ways itself, and prints each run's rates and ratios and, for
// each transfer, the CPU seconds of the client, the gateway, the masters and the chunkservers, and
// the listing's rates (keys put through the gateway, listed by the SDK and aws s3 ls). The
// figures are not judged (no timing assertions): only that each is a real figure and that each
// process is counted where it did the work.
import t from 'tap';
import { readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from '../helpers/cluster.js';
import { runScript } from '../helpers/run-script.js';
import { requireProgram } from './gateway.js';

requireProgram('aws', ['--version'], 'awscli');

const S3BENCH = join(ROOT, 'dist', 'scripts', 's3bench.js');

const ownFolders = () => new Set(readdirSync(tmpdir()).filter((n) => n.startsWith('dfs-s3bench-')));

t.test('a tiny run: rates, ratios and every transfer\'s CPU by process', async (t) => {
  const before = ownFolders();
  // 24 MiB: aws goes multipart (8 MiB parts) both ways, as it does at full size.
  const r = await runScript(S3BENCH, ['--size', '24MiB', '--runs', '1', '--replication', '2', '--list', '1500'], 240_000);
  t.equal(r.code, 0, `exit 0:\n${r.stderr}${r.stdout}`);
  t.match(r.stdout, /^s3bench: 24 MiB, replication 2, 1 run\(s\); gateway http:\/\/127\.0\.0\.1:\d+$/m);
  const summary = /^run 1: dfs put ([\d.]+) MiB\/s, aws s3 cp up ([\d.]+) MiB\/s \(([\d.]+)×\); dfs get ([\d.]+) MiB\/s, aws s3 cp down ([\d.]+) MiB\/s \(([\d.]+)×\)$/m.exec(r.stdout);
  t.ok(summary, `the run's line is there:\n${r.stdout}`);
  for (const v of summary?.slice(1) ?? []) t.ok(Number(v) > 0 && Number.isFinite(Number(v)), `${v} is a real figure`);

  const line = /^ {2}(dfs put|dfs get|aws s3 cp up|aws s3 cp down): ([\d.]+) s; CPU s: client ([\d.]+), gateway ([\d.]+), masters ([\d.]+), chunkservers ([\d.]+); ([\d.]+) in all, ([\d.]+) of (\d+) cores busy$/gm;
  const cpu = new Map<string, number[]>();
  for (const m of r.stdout.matchAll(line)) cpu.set(m[1]!, m.slice(2).map(Number));
  t.same([...cpu.keys()].sort(), ['aws s3 cp down', 'aws s3 cp up', 'dfs get', 'dfs put'], `a CPU line for each transfer:\n${r.stdout}`);
  for (const [what, [seconds, client, gateway, masters, chunkservers, all, busy, cores]] of cpu) {
    t.ok(seconds! > 0, `${what}: it took time`);
    t.ok(client! > 0, `${what}: the client's own CPU is counted (bash's times)`);
    t.ok(chunkservers! > 0 && masters! >= 0, `${what}: the cluster's CPU is counted (/proc)`);
    t.ok(Math.abs(client! + gateway! + masters! + chunkservers! - all!) < 0.03, `${what}: "in all" is the sum`);
    t.ok(Math.abs(all! / seconds! - busy!) < 0.1 && cores! >= 1, `${what}: cores busy is CPU over time`);
  }
  // The gateway carries the aws transfers' bytes and none of dfs's own.
  t.ok(cpu.get('aws s3 cp up')![2]! > cpu.get('dfs put')![2]!, 'the gateway works for the aws upload, not for dfs put');
  t.ok(cpu.get('aws s3 cp down')![2]! > cpu.get('dfs get')![2]!, 'and for the aws download, not for dfs get');
  // The listing: 1,500 keys, so ListObjectsV2 takes two pages of at most 1,000 (the script checks every key came back, in order).
  t.match(r.stdout, /^listing: 1500 keys in 100 folders, put through the gateway in [\d.]+ s \(\d+\/s\)$/m, 'the keys were put');
  t.match(r.stdout, /^ {2}SDK ListObjectsV2 \(2 pages\): [\d.]+ s; CPU s: client [\d.]+, gateway [\d.]+, masters [\d.]+, chunkservers [\d.]+$/m, 'the SDK paged through them');
  const listed = /^listing 1500 keys, pages of 1000: master (\d+) keys\/s, SDK ListObjectsV2 (\d+) keys\/s \(([\d.]+)×\), aws s3 ls (\d+) keys\/s \(([\d.]+)×\)$/m.exec(r.stdout);
  t.ok(listed, `the listing's line is there:\n${r.stdout}`);
  for (const v of listed?.slice(1) ?? []) t.ok(Number(v) > 0 && Number.isFinite(Number(v)), `${v} is a real figure`);
  t.notMatch(r.stderr, /NodeVersionSupportWarning/, 'no SDK warning in the output');
  t.same([...ownFolders()].filter((n) => !before.has(n)), [], 'its temporary folder is gone');
});
