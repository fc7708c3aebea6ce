// `dfs cluster` (what `npm start` runs), driven as a user drives it: a port already taken by a
// process left over from an earlier run, a chunkserver that dies while the cluster starts, and
// one killed with kill -9 after it is ready. Real processes throughout; every process a test
// starts (the launcher, a port holder) is stopped by its pid.
import t from 'tap';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DFS, runDfs, waitFor } from '../helpers/cluster.js';

// No NODE_OPTIONS: the launcher passes its environment on to the cluster's processes, which
// start as a user's do (test/helpers/untracked-children.mjs keeps tap's tracker out).
const QUICK = { ...process.env, NODE_OPTIONS: '' };

interface Entry { role: string; id: string; pid: number; log: string; argv?: string[]; command?: string; exited?: { code: number | null; signal: string | null; at: string } }
interface ClusterFile { processes: Entry[] }

function portIsFree(port: number): Promise<boolean> {
  return new Promise((r) => {
    const srv = createServer();
    srv.once('error', () => r(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => r(true)));
  });
}

/** A base port whose layout (1 master, 2 chunkservers) is free: below the ephemeral range, far from 9400. */
async function freeBase(): Promise<number> {
  for (let i = 0; i < 50; i++) {
    const base = 21_000 + Math.floor(Math.random() * 11_000);
    if ((await Promise.all([base, base + 100, base + 101, base + 200].map(portIsFree))).every(Boolean)) return base;
  }
  throw new Error('no free ports');
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Pids of the processes whose command line names `dir` (what a launcher started there). */
function processesUsing(dir: string): number[] {
  const pids: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
    try {
      if (readFileSync(`/proc/${name}/cmdline`, 'utf8').includes(dir)) pids.push(Number(name));
    } catch {
      /* gone */
    }
  }
  return pids;
}

interface Launcher { child: ChildProcess; out: () => string; err: () => string; exit: Promise<{ code: number | null; signal: string | null }> }

function launch(dataDir: string, base: number): Launcher {
  const child = spawn(process.execPath, [DFS, 'cluster', '--data', dataDir, '--base-port', String(base), '--masters', '1', '--chunkservers', '2', '--chunk-size', '1MiB'], {
    stdio: ['ignore', 'pipe', 'pipe'], env: QUICK,
  });
  let out = '';
  let err = '';
  child.stdout!.on('data', (b: Buffer) => (out += b.toString()));
  child.stderr!.on('data', (b: Buffer) => (err += b.toString()));
  const exit = new Promise<{ code: number | null; signal: string | null }>((r) => child.once('exit', (code, signal) => r({ code, signal })));
  return { child, out: () => out, err: () => err, exit };
}

/** Ctrl-C to the launcher, by its pid; kill -9 to whatever it leaves behind. */
async function stopLauncher(l: Launcher, dataDir: string): Promise<void> {
  if (l.child.exitCode === null && l.child.signalCode === null) {
    process.kill(l.child.pid!, 'SIGINT');
    await Promise.race([l.exit, new Promise((r) => setTimeout(r, 10_000))]);
  }
  for (const pid of processesUsing(dataDir)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
}

const readClusterFile = (dataDir: string) => JSON.parse(readFileSync(join(dataDir, 'cluster.json'), 'utf8')) as ClusterFile;

const root = mkdtempSync(join(tmpdir(), 'dfs-launcher-'));
t.teardown(() => rmSync(root, { recursive: true, force: true }));

t.test('a port already in use: the launcher names its holder and starts nothing', async (t) => {
  const base = await freeBase();
  const dataDir = join(root, 'held');
  // A process left over from an earlier run, holding the second chunkserver's port.
  const holder = spawn(process.execPath, ['-e', `require('node:net').createServer().listen(${base + 101}, '127.0.0.1', () => console.log('listening'))`, 'left-over-marker'], {
    stdio: ['ignore', 'pipe', 'inherit'], env: QUICK,
  });
  t.teardown(() => holder.kill('SIGKILL'));
  await new Promise<void>((r) => holder.stdout!.once('data', () => r()));

  const l = launch(dataDir, base);
  t.teardown(() => stopLauncher(l, dataDir));
  const started = Date.now();
  const exit = await Promise.race([l.exit, new Promise<undefined>((r) => setTimeout(r, 15_000))]);
  t.ok(exit, `exits by itself: ${l.out()} ${l.err()}`);
  t.ok(typeof exit?.code === 'number' && exit.code !== 0, 'with a non-zero code');
  t.ok(Date.now() - started < 15_000, 'quickly');
  t.match(l.err(), new RegExp(`127\\.0\\.0\\.1:${base + 101}.*cs2.*pid ${holder.pid}\\b.*left-over-marker`), 'names the port, what it was for, the pid holding it and its command line');
  t.notMatch(l.err(), new RegExp(`:${base}\\b|:${base + 100}\\b`), 'says nothing of the free ports');
  t.match(l.err(), /^dfs: .*--base-port/m, 'and says what to do');
  t.notMatch(l.err(), /^\s+at /m, 'no stack trace');
  t.notMatch(l.out(), /ready/, 'never says ready');
  t.notOk(existsSync(join(dataDir, 'cluster.json')), 'writes no cluster.json');
  t.same(processesUsing(dataDir), [], 'starts no process');
  t.ok(await portIsFree(base), 'the master\'s port is still free');
});

t.test('a chunkserver that dies during start-up: no ready, the others stopped, exit non-zero', async (t) => {
  const base = await freeBase();
  const dataDir = join(root, 'dies');
  // cs2's folder belongs to another chunkserver: cs2 refuses it and exits at once.
  mkdirSync(join(dataDir, 'cs2'), { recursive: true });
  writeFileSync(join(dataDir, 'cs2', 'id'), 'cs9\n');
  const l = launch(dataDir, base);
  t.teardown(() => stopLauncher(l, dataDir));
  const exit = await Promise.race([l.exit, new Promise<undefined>((r) => setTimeout(r, 40_000))]);
  t.ok(exit, `exits by itself: ${l.out()} ${l.err()}`);
  t.ok(typeof exit?.code === 'number' && exit.code !== 0, 'with a non-zero code');
  t.notMatch(l.out(), /ready/, 'never says ready');
  t.match(l.err(), new RegExp(`chunkserver cs2 \\(pid \\d+\\) exited.*${join(dataDir, 'cs2', 'chunkserver.log').replace(/[.]/g, '\\.')}`), 'says what died and where its log is');
  const file = readClusterFile(dataDir);
  t.ok(file.processes.find((p) => p.id === 'cs2')?.exited, 'cluster.json marks cs2 exited');
  for (const p of file.processes) t.notOk(pidAlive(p.pid), `${p.id} (pid ${p.pid}) is not left running`);
});

t.test('ready means running; a process that exits later is reported and marked', async (t) => {
  const base = await freeBase();
  const dataDir = join(root, 'normal');
  const l = launch(dataDir, base);
  t.teardown(() => stopLauncher(l, dataDir));
  await waitFor(() => /dfs cluster: ready/.test(l.out()) || l.child.exitCode !== null, 40_000, 'the launcher to say ready');
  t.match(l.out(), /dfs cluster: ready — 2 chunkservers/, `ready: ${l.err()}`);
  // The dashboard's address is printed, and it serves the page.
  await waitFor(() => /dfs cluster: dashboard at /.test(l.out()), 5000, 'the dashboard address');
  const ui = /dfs cluster: dashboard at (http:\/\/\S+\/ui\/)/.exec(l.out())?.[1];
  t.ok(ui, `it prints the dashboard's address (${ui})`);
  const page = await fetch(ui!);
  t.equal(page.status, 200, 'the printed address serves the dashboard');
  t.match(await page.text(), /<title>dfs dashboard<\/title>/);

  // The S3 gateway: printed with its key, and a real aws CLI lists the buckets with that key.
  const s3 = /AWS_ACCESS_KEY_ID=(\S+) AWS_SECRET_ACCESS_KEY=(\S+) aws --endpoint-url (http:\/\/\S+) s3 ls/.exec(l.out());
  t.ok(s3, 'the S3 gateway is printed with its key');
  t.equal(s3?.[3], `http://127.0.0.1:${base + 200}`, 'on base port + 200');
  const awsConfig = join(root, 'aws-config');
  writeFileSync(awsConfig, '[default]\nregion = us-east-1\n');
  const ls = spawnSync('aws', ['--endpoint-url', s3![3]!, 's3', 'mb', 's3://launched'], {
    encoding: 'utf8', env: { ...process.env, AWS_ACCESS_KEY_ID: s3![1]!, AWS_SECRET_ACCESS_KEY: s3![2]!, AWS_CONFIG_FILE: awsConfig, AWS_SHARED_CREDENTIALS_FILE: '/dev/null' },
  });
  t.equal(ls.status, 0, `aws s3 mb through the launched gateway (install: apt-get install awscli): ${ls.stderr}`);

  const file = readClusterFile(dataDir);
  t.equal(file.processes.length, 4, 'cluster.json lists 4 processes (a master, 2 chunkservers, the S3 gateway)');
  const gateway = file.processes.find((p) => p.role === 's3');
  t.match(gateway?.argv?.join(' '), / s3 --listen 127\.0\.0\.1:\d+ --masters \S+ --credentials \S+s3-credentials\.json --token-file \S+admin-token$/, 'the gateway\'s command line');

  // The admin token beside cluster.json: only its owner may read it, the CLI uses it, and without it the cluster refuses.
  const tokenFile = join(dataDir, 'admin-token');
  t.equal(statSync(tokenFile).mode & 0o777, 0o600, 'admin-token is mode 0600');
  t.match(l.out(), new RegExp(`export DFS_MASTERS=\\S+ DFS_TOKEN_FILE=${tokenFile.replace(/[.]/g, '\\.')}`), 'the launcher says how to use it');
  const emptyHome = join(root, 'home');
  mkdirSync(emptyHome, { recursive: true });
  const cliEnv = { DFS_MASTERS: `127.0.0.1:${base}`, DFS_TOKEN: '', XDG_CONFIG_HOME: emptyHome };
  const withToken = await runDfs(['token', 'whoami'], { env: { ...cliEnv, DFS_TOKEN_FILE: tokenFile } });
  t.match(withToken.stdout.toString(), /\(admin\): admin, signed with k0/, `dfs with DFS_TOKEN_FILE is the admin: ${withToken.stderr}`);
  const anonymous = await runDfs(['ls', '/'], { env: cliEnv });
  t.equal(anonymous.code, 1, 'without a token dfs ls is refused');
  t.match(anonymous.stderr, /needs a credential/);
  for (const p of file.processes) {
    if (p.role === 's3') continue;
    t.ok(pidAlive(p.pid), `${p.id} is alive`);
    t.ok(Array.isArray(p.argv), `${p.id} has its argv`);
    t.equal(p.argv?.[0], process.execPath, `${p.id}: argv starts with node`);
    t.match(p.argv?.join(' '), new RegExp(`${DFS.replace(/[.]/g, '\\.')} ${p.role} --id ${p.id} --listen 127\\.0\\.0\\.1:\\d+ --data ${join(dataDir, p.id).replace(/[.]/g, '\\.')}`), `${p.id}: its role, id, address and data folder`);
    t.equal(typeof p.command, 'string', `${p.id} has a command to copy`);
    t.notOk(p.exited, `${p.id} is not marked exited`);
  }

  const cs2 = file.processes.find((p) => p.id === 'cs2')!;
  process.kill(cs2.pid, 'SIGKILL');
  await waitFor(() => /cs2/.test(l.err()), 10_000, 'the launcher to report cs2');
  t.match(l.err(), new RegExp(`chunkserver cs2 \\(pid ${cs2.pid}\\) exited \\(SIGKILL\\)`), 'reported on stderr');
  await waitFor(() => readClusterFile(dataDir).processes.find((p) => p.id === 'cs2')?.exited !== undefined, 5000, 'cluster.json to mark cs2');
  const after = readClusterFile(dataDir);
  t.match(after.processes.find((p) => p.id === 'cs2')?.exited, { code: null, signal: 'SIGKILL', at: String }, 'cluster.json marks cs2 exited, with the signal and when');
  t.notOk(after.processes.find((p) => p.id === 'm1')?.exited, 'the master is not marked');
  t.equal(l.child.exitCode, null, 'the launcher carries on');

  // A copied command restarts the process by hand: cs2 comes back with the same folder and port.
  const again = spawn('sh', ['-c', `exec ${cs2.command}`], { stdio: 'ignore', env: QUICK });
  t.teardown(() => again.kill('SIGKILL'));
  await waitFor(async () => !(await portIsFree(base + 101)), 20_000, 'cs2 restarted from its command to listen');
  t.equal(again.exitCode, null, 'the restarted cs2 runs');
  again.kill('SIGKILL');

  process.kill(l.child.pid!, 'SIGINT');
  const exit = await Promise.race([l.exit, new Promise<undefined>((r) => setTimeout(r, 10_000))]);
  t.same(exit, { code: 0, signal: null }, 'Ctrl-C stops it, exit 0');
  for (const p of file.processes) t.notOk(pidAlive(p.pid), `${p.id} stopped`);
});
