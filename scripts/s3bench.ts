// S3 gateway speed against the dfs CLI on the same cluster in the same run (issue 17's goal:
// `aws s3 cp` at least 0.7× of `dfs put`/`dfs get`): one file up and down with `dfs put`/`dfs
// get`, then with `aws s3 cp` through a `dfs s3` gateway, each run timed, and the ratios printed.
//
//   npm run build && node dist/scripts/s3bench.js [--size 256MiB] [--runs 1] [--replication 2] [--list 10000] [--cpu-prof DIR]
//
// Then the issue's listing: --list keys (default 10,000; 0: none) put through the gateway in 100
// folders, listed in pages of 1,000 by the AWS SDK (ListObjectsV2) and by `aws s3 ls --recursive`,
// against the master's own paged listing of the same folders (what the gateway walks), each
// checked for every key and timed.
//
// It starts a fresh local cluster (1 master, 3 chunkservers) and one gateway in a temporary
// folder, removes them afterwards, stops only what it started (by pid), and talks to 127.0.0.1
// only. `--cpu-prof DIR` runs the gateway under node's --cpu-prof and leaves the profile in DIR.
//
// Each transfer also prints the CPU seconds it cost each process (the client from bash's `times`,
// the gateway, masters and chunkservers from /proc), and how many of the machine's cores that
// kept busy: on a machine whose client shares the cores with the cluster, the ratio is bounded by
// what each path costs in CPU as much as by its waits.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { initChecksums } from '../common/checksum.js';
import { parseSize } from '../common/config.js';
import { cleanUpOnSignals, killChild, onCleanup, runCleanup, spawnTracked } from './bench/cleanup.js';
import { DfsClient } from '../cli/client.js';
import { DFS, LocalCluster } from './bench/local-cluster.js';
import { writeSourceFile } from './bench/source.js';

const ACCESS_KEY = 'S3BENCHKEY000001';
const SECRET_KEY = 's3bench-secret-0123456789abcdef';
const MiB = 1024 * 1024;
/** The listing's keys are spread over this many folders; pages are S3's largest. */
const LIST_FOLDERS = 100;
const LIST_PAGE_KEYS = 1000;
const LIST_PUTS_IN_FLIGHT = 32;
/** The longest one transfer may take before the run is given up. */
const STEP_TIMEOUT_MS = 20 * 60_000;

interface Options { sizeBytes: number; runs: number; replication: number; list: number; cpuProf?: string }

function parseArgs(argv: string[]): Options {
  const o: Options = { sizeBytes: 256 * MiB, runs: 1, replication: 2, list: 10_000 };
  for (let i = 0; i < argv.length; i += 2) {
    const [flag, value] = [argv[i], argv[i + 1]];
    if (value === undefined) throw new Error(`${flag} needs a value`);
    if (flag === '--size') o.sizeBytes = parseSize(value);
    else if (flag === '--runs') o.runs = Number(value);
    else if (flag === '--replication') o.replication = Number(value);
    else if (flag === '--list') o.list = Number(value);
    else if (flag === '--cpu-prof') o.cpuProf = value;
    else throw new Error(`unknown flag ${flag} (--size, --runs, --replication, --list, --cpu-prof)`);
  }
  if (!Number.isInteger(o.runs) || o.runs < 1 || o.runs > 20) throw new Error('--runs must be 1 to 20');
  // aws s3 ls prints about 50 bytes a key, read whole (timed's maxBuffer, 16 MiB): 100,000 keys stay far inside it.
  if (!Number.isInteger(o.list) || o.list < 0 || o.list > 100_000) throw new Error('--list must be 0 to 100,000 keys');
  return o;
}

/** Processes whose CPU time each transfer reports, by role (their pids). */
const watched = new Map<string, number[]>();

/** CPU seconds a process has used so far (user + system), from /proc; 0 where there is none. */
function cpuSeconds(pid: number): number {
  try {
    // Fields 14 and 15 (utime, stime), counted after the command name's closing parenthesis; clock ticks of 1/100 s.
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(f[11]) + Number(f[12])) / 100;
  } catch {
    return 0;
  }
}

function watchedCpu(): Map<string, number> {
  return new Map([...watched].map(([role, pids]) => [role, pids.reduce((sum, pid) => sum + cpuSeconds(pid), 0)]));
}

interface Timed { seconds: number; cpu: string; stdout?: string }

/**
 * Runs a command to its end: its duration in seconds and a line of the CPU seconds it cost (the
 * command itself, as bash's `times` reports its children, and each watched role), or an error
 * with its output.
 */
function timed(cmd: string, args: string[], env: Record<string, string>): Timed {
  const before = watchedCpu();
  const t0 = process.hrtime.bigint();
  const r = spawnSync('bash', ['-c', '"$@"; rc=$?; times >&2; exit $rc', 'timed', cmd, ...args], { env: { ...process.env, ...env }, encoding: 'utf8', timeout: STEP_TIMEOUT_MS, maxBuffer: 16 * MiB });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status ?? r.signal}):\n${r.stderr}${r.stdout}`);
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  // `times` prints the shell's own times, then its children's: "0m1.170s 0m0.120s".
  const children = /(\d+)m([\d.]+)s (\d+)m([\d.]+)s\s*$/.exec(r.stderr.trim());
  const client = children ? Number(children[1]) * 60 + Number(children[2]) + Number(children[3]) * 60 + Number(children[4]) : NaN;
  const after = watchedCpu();
  const roles = [...after].map(([role, cpu]) => [role, cpu - (before.get(role) ?? 0)] as const);
  const total = client + roles.reduce((sum, [, cpu]) => sum + cpu, 0);
  const cpu = `CPU s: client ${client.toFixed(2)}, ${roles.map(([role, cpu]) => `${role} ${cpu.toFixed(2)}`).join(', ')}; ${total.toFixed(2)} in all, ${(total / seconds).toFixed(2)} of ${availableParallelism()} cores busy`;
  return { seconds, cpu, stdout: r.stdout };
}

async function md5File(path: string): Promise<string> {
  const h = createHash('md5');
  for await (const b of createReadStream(path)) h.update(b as Buffer);
  return h.digest('hex');
}

/** Starts `dfs s3` on a free port; resolves with its endpoint once it says it started. */
async function startGateway(masters: string[], dir: string, cpuProf: string | undefined): Promise<string> {
  const creds = join(dir, 's3-credentials.json');
  writeFileSync(creds, JSON.stringify([{ accessKeyId: ACCESS_KEY, secretAccessKey: SECRET_KEY }]));
  const node = cpuProf ? ['--cpu-prof', '--cpu-prof-dir', cpuProf] : [];
  const child = spawnTracked(process.execPath, [...node, DFS, 's3', '--listen', '127.0.0.1:0', '--masters', masters.join(','), '--credentials', creds], { stdio: ['ignore', 'pipe', 'inherit'] });
  if (child.pid !== undefined) watched.set('gateway', [child.pid]);
  // SIGINT, not SIGKILL: a profile is written only by a process that exits.
  onCleanup(async () => {
    const gone = new Promise((r) => child.once('exit', r));
    child.kill('SIGINT');
    await Promise.race([gone, new Promise((r) => setTimeout(r, 10_000))]);
    await killChild(child);
  });
  return new Promise((resolve, reject) => {
    createInterface({ input: child.stdout! }).on('line', (line) => {
      try {
        const rec = JSON.parse(line) as { msg?: string; addr?: string };
        if (rec.msg === 's3 gateway started' && rec.addr) resolve(`http://${rec.addr}`);
      } catch { /* not a log line */ }
    });
    child.once('exit', (code) => reject(new Error(`the gateway exited (${code})`)));
  });
}

const rate = (bytes: number, s: number) => `${(bytes / MiB / s).toFixed(1)} MiB/s`;

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2));
  cleanUpOnSignals('s3bench');
  await initChecksums();
  const work = mkdtempSync(join(tmpdir(), 'dfs-s3bench-'));
  onCleanup(() => rmSync(work, { recursive: true, force: true }));
  const cluster = await LocalCluster.start({ dataDir: join(work, 'cluster'), masters: 1, chunkservers: 3, replication: o.replication });
  const endpoint = await startGateway(cluster.masters, work, o.cpuProf);
  for (const p of cluster.processes) watched.set(`${p.role}s`, [...(watched.get(`${p.role}s`) ?? []), p.pid]);
  const src = join(work, 'source.bin');
  const source = await writeSourceFile(src, o.sizeBytes, 1);
  const want = await md5File(src);
  const dfsEnv = { DFS_MASTERS: cluster.masters.join(',') };
  writeFileSync(join(work, 'aws-config'), '[default]\nregion = us-east-1\n');
  const awsEnv = {
    AWS_ACCESS_KEY_ID: ACCESS_KEY, AWS_SECRET_ACCESS_KEY: SECRET_KEY, AWS_DEFAULT_REGION: 'us-east-1', AWS_CONFIG_FILE: join(work, 'aws-config'),
    AWS_SHARED_CREDENTIALS_FILE: join(work, 'no-credentials'), AWS_EC2_METADATA_DISABLED: 'true',
  };
  timed('aws', ['--endpoint-url', endpoint, 's3', 'mb', 's3://bench'], awsEnv);
  console.log(`s3bench: ${(source.sizeBytes / MiB).toFixed(0)} MiB, replication ${o.replication}, ${o.runs} run(s); gateway ${endpoint}`);
  const rows: string[] = [];
  for (let run = 1; run <= o.runs; run++) {
    const down = join(work, 'down.bin');
    const put = timed(process.execPath, [DFS, 'put', '-q', src, `/bench/dfs-${run}.bin`], dfsEnv);
    const get = timed(process.execPath, [DFS, 'get', '-q', `/bench/dfs-${run}.bin`, down], dfsEnv);
    if ((await md5File(down)) !== want) throw new Error('dfs get returned other bytes');
    const up = timed('aws', ['--endpoint-url', endpoint, 's3', 'cp', src, `s3://bench/aws-${run}.bin`], awsEnv);
    rmSync(down);
    const dl = timed('aws', ['--endpoint-url', endpoint, 's3', 'cp', `s3://bench/aws-${run}.bin`, down], awsEnv);
    if ((await md5File(down)) !== want) throw new Error('aws s3 cp returned other bytes');
    rmSync(down);
    const b = source.sizeBytes;
    for (const [what, t] of [['dfs put', put], ['dfs get', get], ['aws s3 cp up', up], ['aws s3 cp down', dl]] as const) console.log(`  ${what}: ${t.seconds.toFixed(2)} s; ${t.cpu}`);
    rows.push(`run ${run}: dfs put ${rate(b, put.seconds)}, aws s3 cp up ${rate(b, up.seconds)} (${(put.seconds / up.seconds).toFixed(2)}×); dfs get ${rate(b, get.seconds)}, aws s3 cp down ${rate(b, dl.seconds)} (${(get.seconds / dl.seconds).toFixed(2)}×)`);
    console.log(rows.at(-1));
  }
  if (o.list > 0) await listing(o.list, endpoint, cluster.masters, awsEnv);
}

/** In-process work timed, with its CPU: this process's and the watched ones'. */
async function timedHere<T>(work: () => Promise<T>): Promise<Timed & { value: T }> {
  const before = watchedCpu();
  const own = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  const value = await work();
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const used = process.cpuUsage(own);
  const roles = [...watchedCpu()].map(([role, cpu]) => `${role} ${(cpu - (before.get(role) ?? 0)).toFixed(2)}`);
  return { seconds, value, cpu: `CPU s: client ${((used.user + used.system) / 1e6).toFixed(2)}, ${roles.join(', ')}` };
}

/** Listing `count` keys in pages of 1,000: the master's paged listing, the SDK's ListObjectsV2, and `aws s3 ls`. */
async function listing(count: number, endpoint: string, masters: string[], awsEnv: Record<string, string>): Promise<void> {
  // The SDK warns once that its releases from 2027 need node 22; this benchmark runs on what dfs runs on.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const { S3Client, PutObjectCommand, ListObjectsV2Command } = await import('@aws-sdk/client-s3');
  const s3 = new S3Client({ endpoint, forcePathStyle: true, region: 'us-east-1', credentials: { accessKeyId: ACCESS_KEY, secretAccessKey: SECRET_KEY }, maxAttempts: 1 });
  const folders = Math.min(LIST_FOLDERS, count);
  const keys = Array.from({ length: count }, (_, i) => `list/f${String(i % folders).padStart(3, '0')}/k${String(i).padStart(7, '0')}`).sort();
  let next = 0;
  const made = await timedHere(() => Promise.all(Array.from({ length: LIST_PUTS_IN_FLIGHT }, async () => {
    while (next < count) await s3.send(new PutObjectCommand({ Bucket: 'bench', Key: keys[next++]!, Body: 'x' }));
  })));
  console.log(`listing: ${count} keys in ${folders} folders, put through the gateway in ${made.seconds.toFixed(1)} s (${(count / made.seconds).toFixed(0)}/s)`);
  const check = (what: string, got: string[]) => {
    if (got.length !== count || got.some((k, i) => k !== keys[i])) throw new Error(`${what} listed ${got.length} keys, not the ${count} put (or not in order)`);
  };
  // The master's own listing of those folders, a page of 1,000 at a time: what the gateway walks.
  const client = new DfsClient(masters);
  const native = await timedHere(async () => {
    const got: string[] = [];
    for (let dirAfter: string | undefined; ;) {
      const dirs = await client.listPage('/bench/list', dirAfter, LIST_PAGE_KEYS);
      for (const d of dirs.entries) {
        for (let after: string | undefined; ;) {
          const page = await client.listPage(d.path, after, LIST_PAGE_KEYS);
          for (const e of page.entries) got.push(e.path.slice('/bench/'.length));
          if (page.next === undefined) break;
          after = page.next;
        }
      }
      if (dirs.next === undefined) return got;
      dirAfter = dirs.next;
    }
  });
  check('the master', native.value);
  const sdk = await timedHere(async () => {
    const got: string[] = [];
    let pages = 0;
    for (let token: string | undefined; ;) {
      const page = await s3.send(new ListObjectsV2Command({ Bucket: 'bench', Prefix: 'list/', MaxKeys: LIST_PAGE_KEYS, ContinuationToken: token }));
      pages++;
      for (const o of page.Contents ?? []) {
        if (!o.ETag) throw new Error(`ListObjectsV2 gave ${o.Key} no ETag`);
        got.push(o.Key!);
      }
      if (!page.IsTruncated) return { got, pages };
      token = page.NextContinuationToken;
    }
  });
  check('ListObjectsV2', sdk.value.got);
  const ls = timed('aws', ['--endpoint-url', endpoint, 's3', 'ls', '--recursive', '--page-size', String(LIST_PAGE_KEYS), 's3://bench/list/'], awsEnv);
  check('aws s3 ls', (ls.stdout ?? '').split('\n').filter((l) => l.trim()).map((l) => l.trim().split(/\s+/).slice(3).join(' ')).sort());
  const rateOf = (t: Timed) => `${(count / t.seconds).toFixed(0)} keys/s`;
  console.log(`  master's paged listing: ${native.seconds.toFixed(2)} s; ${native.cpu}`);
  console.log(`  SDK ListObjectsV2 (${sdk.value.pages} page${sdk.value.pages === 1 ? '' : 's'}): ${sdk.seconds.toFixed(2)} s; ${sdk.cpu}`);
  console.log(`  aws s3 ls --recursive: ${ls.seconds.toFixed(2)} s; ${ls.cpu}`);
  console.log(`listing ${count} keys, pages of ${LIST_PAGE_KEYS}: master ${rateOf(native)}, SDK ListObjectsV2 ${rateOf(sdk)} (${(native.seconds / sdk.seconds).toFixed(2)}×), aws s3 ls ${rateOf(ls)} (${(native.seconds / ls.seconds).toFixed(2)}×)`);
  s3.destroy();
}

main().then(runCleanup, async (err: unknown) => {
  console.error(`s3bench: ${err instanceof Error ? err.message : String(err)}`);
  await runCleanup();
  process.exitCode = 1;
});
