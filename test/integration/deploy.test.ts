// The deployment kit (deploy/, docs/DEPLOY.md): the systemd templates pass systemd-analyze
// verify, and a cluster started the way DEPLOY.md says, every process from its own config file,
// works; a flag overrides its file; a bad file starts nothing.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import t from 'tap';
import { DFS, randomBytesSeeded, ROOT, runDfs, waitFor } from '../helpers/cluster.js';

t.test('the systemd unit templates pass systemd-analyze verify without a warning', async (t) => {
  const analyze = spawnSync('systemd-analyze', ['--version']);
  t.equal(analyze.status, 0, 'systemd-analyze is installed (Debian: apt-get install systemd)');
  const dir = mkdtempSync(join(tmpdir(), 'dfs-units-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  for (const [template, instance] of [['dfs-master@.service', 'dfs-master@m1.service'], ['dfs-chunkserver@.service', 'dfs-chunkserver@cs1.service']] as const) {
    const text = readFileSync(join(ROOT, 'deploy', template), 'utf8');
    t.match(text, /^ExecStart=\/usr\/local\/bin\/dfs (master|chunkserver) --config \/etc\/dfs\/(master|chunkserver)-%i\.json$/m, `${template} runs dfs with its instance's config file`);
    // verify checks that the program exists: point it at this machine's node with the built CLI.
    writeFileSync(join(dir, template), text.replace('/usr/local/bin/dfs', `${process.execPath} ${DFS}`));
    const r = spawnSync('systemd-analyze', ['verify', '--man=no', join(dir, instance)], { encoding: 'utf8' });
    t.equal(r.status, 0, `${instance} verifies`);
    t.equal(r.stderr.trim(), '', `${instance}: no warning (${r.stderr.trim()})`);
  }
  const broken = readFileSync(join(ROOT, 'deploy', 'dfs-master@.service'), 'utf8').replace('Restart=on-failure', 'Restart=sometimes').replace('/usr/local/bin/dfs', `${process.execPath} ${DFS}`);
  writeFileSync(join(dir, 'broken@.service'), broken);
  const r = spawnSync('systemd-analyze', ['verify', '--man=no', join(dir, 'broken@x.service')], { encoding: 'utf8' });
  t.match(r.stderr, /sometimes/, 'the check bites: a bad setting is reported');
});

async function freePorts(n: number): Promise<number[]> {
  const servers = await Promise.all(Array.from({ length: n }, () => new Promise<ReturnType<typeof createServer>>((res) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => res(s));
  })));
  const ports = servers.map((s) => (s.address() as AddressInfo).port);
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  return ports;
}

/** Starts `dfs <role> --config file [...flags]` and resolves with the address it logs once started. */
function startFromConfig(role: 'master' | 'chunkserver', config: string, flags: string[], started: string, procs: ChildProcess[]): Promise<string> {
  const child = spawn(process.execPath, [DFS, role, '--config', config, ...flags], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, DFS_MASTERS: '', DFS_CLUSTER_SECRET: '' } });
  procs.push(child);
  const lines: string[] = [];
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${role} ${config} did not start:\n${lines.join('\n')}`)), 20_000);
    const onLine = (line: string) => {
      lines.push(line);
      try {
        const rec = JSON.parse(line) as { msg?: string; addr?: string };
        if (rec.msg === started && rec.addr) {
          clearTimeout(timer);
          resolve(rec.addr);
        }
      } catch { /* not a log line */ }
    };
    createInterface({ input: child.stdout! }).on('line', onLine);
    createInterface({ input: child.stderr! }).on('line', onLine);
    child.once('exit', (code) => reject(new Error(`${role} ${config} exited ${code}:\n${lines.join('\n')}`)));
  });
}

t.test('three masters and two chunkservers started from config files, as docs/DEPLOY.md does it', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'dfs-deploy-'));
  const procs: ChildProcess[] = [];
  t.teardown(async () => {
    for (const p of procs) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });
  const secretFile = join(dir, 'secret');
  writeFileSync(secretFile, 'deploy-test-secret-0123456789abcdef\n', { mode: 0o600 });
  const ports = await freePorts(6);
  const peers = Object.fromEntries([0, 1, 2].map((i) => [`m${i + 1}`, `127.0.0.1:${ports[i]}`]));
  const masters = Object.values(peers);
  const configs = join(dir, 'etc');
  mkdirSync(configs);
  const write = (name: string, value: unknown) => {
    const p = join(configs, name);
    writeFileSync(p, JSON.stringify(value, null, 2));
    return p;
  };
  const started = await Promise.all([0, 1, 2].map((i) => startFromConfig('master', write(`master-m${i + 1}.json`, {
    role: 'master', id: `m${i + 1}`, listen: masters[i], data: join(dir, `m${i + 1}`), secretFile, peers, chunkSize: '1MiB', deadTimeoutMs: 3000,
  }), [], 'master started', procs)));
  t.same(started, masters, 'each master listens where its file says');
  // The file says one port, the flag another: the flag wins.
  const cs1File = write('chunkserver-cs1.json', { role: 'chunkserver', id: 'cs1', listen: '127.0.0.1:1', data: join(dir, 'cs1'), secretFile, masters, chunkSize: '1MiB', heartbeatMs: 300 });
  const cs1 = await startFromConfig('chunkserver', cs1File, ['--listen', `127.0.0.1:${ports[3]}`], 'chunkserver started', procs);
  t.equal(cs1, `127.0.0.1:${ports[3]}`, '--listen overrides the file');
  await startFromConfig('chunkserver', write('chunkserver-cs2.json', {
    role: 'chunkserver', id: 'cs2', listen: `127.0.0.1:${ports[4]}`, data: join(dir, 'cs2'), secretFile, masters, chunkSize: '1MiB', heartbeatMs: 300,
  }), [], 'chunkserver started', procs);

  // The first admin token, as DEPLOY.md makes it: offline, from the secret.
  const tokenFile = join(dir, 'token');
  const boot = await runDfs(['token', 'bootstrap', '--secret-file', secretFile, '--out', tokenFile]);
  t.equal(boot.code, 0, `dfs token bootstrap: ${boot.stderr}`);
  const env = { DFS_MASTERS: masters.join(','), DFS_TOKEN: '', DFS_TOKEN_FILE: tokenFile };
  await waitFor(async () => {
    const r = await runDfs(['status', '--json'], { env });
    return r.code === 0 && (JSON.parse(r.stdout.toString()) as { chunkservers: { alive: boolean }[] }).chunkservers.filter((c) => c.alive).length === 2;
  }, 20_000, 'both chunkservers to register');
  const data = randomBytesSeeded(3 * 1024 * 1024 + 7, 9);
  const put = await runDfs(['put', '--replication', '2', '-', '/deployed.bin'], { input: data, env });
  t.equal(put.code, 0, put.stderr);
  const get = await runDfs(['cat', '/deployed.bin'], { env });
  t.ok(get.stdout.equals(data), 'the bytes come back');

  // A bad file: exit 2, one line naming the file and key, and nothing made.
  const bad = write('master-bad.json', { role: 'master', id: 'm9', listen: `127.0.0.1:${ports[5]}`, data: join(dir, 'm9'), secretFile, replcation: 3 });
  const r = await runDfs(['master', '--config', bad]);
  t.equal(r.code, 2, 'exit code 2');
  t.equal(r.stderr, `dfs: config ${bad}: unknown key "replcation" (known keys: advertise, balanceThreshold, chunkSize, compactKeep, connectionGraceMs, copiesPerServer, data, deadTimeoutMs, gcGraceMs, id, inlineMaxBytes, leaseMs, listen, peers, replication, restartGraceMs, role, secretFile, snapshotEvery, tickMs, tlsCa, tlsCert, tlsKey, trashIntervalMs)\n`);
  t.notOk(existsSync(join(dir, 'm9')), 'no data folder was made');

  // A bad flag value is a usage error too: exit 2 (systemd's RestartPreventExitStatus), one line, nothing made.
  const flag = await runDfs(['master', '--id', 'm8', '--listen', `127.0.0.1:${ports[5]}`, '--data', join(dir, 'm8'), '--advertise', '198.18.200.200:9400']);
  t.equal(flag.code, 2, 'a bad --advertise: exit code 2');
  t.match(flag.stderr, /^dfs: --advertise: 198\.18\.200\.200 is not an address of this host[^\n]*\n$/);
  t.notOk(existsSync(join(dir, 'm8')), 'no data folder was made');
});
