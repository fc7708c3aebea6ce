// Starts a real TestCluster and a real `dfs s3` gateway process against it, and runs the real
// aws CLI and python3 + boto3 against the gateway, as a person would. When either client is
// missing the test fails (CI installs them), it never skips.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { createInterface } from 'node:readline';
import { DFS, randomBytesSeeded, TestCluster, type ClusterOptions } from '../helpers/cluster.js';

export const ACCESS_KEY = 'DFSTESTKEY0001';
export const SECRET_KEY = 'test-secret-key-0123456789';

export interface Gateway { cluster: TestCluster; endpoint: string; child: ChildProcess; env: Record<string, string>; output: string[]; stop(): Promise<void> }

/** The aws CLI and boto3, or an error that says how to install them. */
export function requireClients(): void {
  const aws = spawnSync('aws', ['--version'], { encoding: 'utf8' });
  if (aws.status !== 0) throw new Error('the aws CLI is needed for these tests (pip install awscli, or apt-get install awscli)');
  const boto = spawnSync('python3', ['-c', 'import boto3'], { encoding: 'utf8' });
  if (boto.status !== 0) throw new Error('python3 with boto3 is needed for these tests (pip install boto3)');
}

/** A program the tests drive (rclone, s3cmd), or an error that says how to install it. */
export function requireProgram(cmd: string, args: string[], pkg: string): void {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} is needed for these tests (apt-get install ${pkg}; .ci/run installs it)`);
}

export async function startGateway(opts: ClusterOptions = {}, extraArgs: string[] = []): Promise<Gateway> {
  const cluster = await TestCluster.start({ chunkservers: 3, replication: 2, chunkSizeBytes: 4 * 1024 * 1024, ...opts });
  try {
    return await attachGateway(cluster, extraArgs);
  } catch (err) {
    await cluster.stop();
    throw err;
  }
}

async function attachGateway(cluster: TestCluster, extraArgs: string[]): Promise<Gateway> {
  const creds = join(cluster.dir, 's3-credentials.json');
  writeFileSync(creds, JSON.stringify([{ accessKeyId: ACCESS_KEY, secretAccessKey: SECRET_KEY }]));
  const child = spawn(process.execPath, [DFS, 's3', '--listen', '127.0.0.1:0', '--masters', cluster.masters, '--credentials', creds, ...extraArgs], { stdio: ['ignore', 'pipe', 'pipe'] });
  const output: string[] = [];
  const addr = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`gateway did not start:\n${output.join('\n')}`)), 20_000);
    const onLine = (line: string) => {
      if (output.length < 2000) output.push(line);
      try {
        const rec = JSON.parse(line) as { msg?: string; addr?: string };
        if (rec.msg === 's3 gateway started' && rec.addr) {
          clearTimeout(timer);
          resolve(rec.addr);
        }
      } catch { /* not a log line */ }
    };
    createInterface({ input: child.stdout! }).on('line', onLine);
    createInterface({ input: child.stderr! }).on('line', onLine);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`gateway exited (${code}):\n${output.join('\n')}`));
    });
  });
  const config = join(cluster.dir, 'aws-config');
  writeFileSync(config, '[default]\nregion = us-east-1\n');
  const env = {
    AWS_ACCESS_KEY_ID: ACCESS_KEY, AWS_SECRET_ACCESS_KEY: SECRET_KEY, AWS_DEFAULT_REGION: 'us-east-1', AWS_CONFIG_FILE: config,
    AWS_SHARED_CREDENTIALS_FILE: join(cluster.dir, 'no-credentials'), AWS_EC2_METADATA_DISABLED: 'true', PYTHONIOENCODING: 'utf-8',
  };
  const endpoint = `http://${addr}`;
  return {
    cluster, endpoint, child, env, output,
    async stop() {
      if (child.exitCode === null) {
        const gone = new Promise((r) => child.once('exit', r));
        child.kill('SIGKILL');
        await gone;
      }
      await cluster.stop();
    },
  };
}

export interface Run { code: number; stdout: string; stderr: string; stdoutBytes: Buffer }

export function run(cmd: string, args: string[], env: Record<string, string>, input?: string, timeoutMs = 120_000): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${cmd} ${args.join(' ')} did not finish in ${timeoutMs} ms`));
    }, timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      const stdoutBytes = Buffer.concat(out);
      resolve({ code: code ?? -1, stdout: stdoutBytes.toString(), stderr, stdoutBytes });
    });
    child.stdin.end(input ?? '');
  });
}

/** `aws --endpoint-url <gateway> <args>`. */
export function aws(gw: Gateway, args: string[]): Promise<Run> {
  return run('aws', ['--endpoint-url', gw.endpoint, ...args], gw.env);
}

/** Runs a python3 script with boto3; the script gets ENDPOINT, and `s3`, a client for it. */
export function boto(gw: Gateway, script: string): Promise<Run> {
  const prelude = [
    'import boto3, botocore, json, os, sys, hashlib',
    'from botocore.config import Config',
    'from botocore.exceptions import ClientError',
    `ENDPOINT = ${JSON.stringify(gw.endpoint)}`,
    "s3 = boto3.client('s3', endpoint_url=ENDPOINT, config=Config(signature_version='s3v4', s3={'addressing_style': 'path'}, retries={'max_attempts': 1}))",
    'def code(fn, *a, **k):',
    '    try:',
    '        fn(*a, **k)',
    "        return 'OK'",
    '    except ClientError as e:',
    "        return e.response['Error']['Code']",
    '',
  ].join('\n');
  return run('python3', ['-c', prelude + script], gw.env);
}

/** Every file below `dir` by its path relative to `dir`, with its MD5. */
export function tree(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else out.set(relative(dir, p), createHash('md5').update(readFileSync(p)).digest('hex'));
    }
  };
  walk(dir);
  return out;
}

/** A tree as the client tests send it: empty, 1-byte and just-over-5-MiB files, keys with spaces, '+', '&', '%' and unicode; each test adds its own big file. */
export const TREE_FILES: Record<string, number> = {
  'empty.bin': 0,
  'one.bin': 1,
  'five plus one.bin': 5 * 1024 * 1024 + 1,
  'odd/a+b&c%d.txt': 1000,
  'odd/ünïcødé 日本.txt': 777,
  'odd/deep/er/file.txt': 10,
};

/** Writes files of these sizes (seeded random bytes) below `dir`. */
export function writeTree(dir: string, files: Record<string, number>, seed: number): void {
  for (const [name, size] of Object.entries(files)) {
    mkdirSync(join(dir, name, '..'), { recursive: true });
    writeFileSync(join(dir, name), randomBytesSeeded(size, seed++));
  }
}

/**
 * Empty directories the client tests add below a synced tree: one a client made with a folder key
 * (`hollow/`), one a dfs user made (`dfs mkdir -p`). Listings show each as its folder object
 * (`d/`, 0 bytes); a client that syncs down may make an empty directory of it or skip it, but
 * must make no file of that name.
 */
export const EMPTY_DIRS = ['hollow', 'odd/made-by-dfs'];

/** Makes EMPTY_DIRS below `s3://bucket/prefix` (a prefix ending in "/"). */
export async function makeEmptyDirs(gw: Gateway, bucket: string, prefix: string): Promise<void> {
  const put = await aws(gw, ['s3api', 'put-object', '--bucket', bucket, '--key', `${prefix}${EMPTY_DIRS[0]}/`]);
  if (put.code !== 0) throw new Error(`put-object of a folder key failed: ${put.stderr}`);
  const mkdir = await gw.cluster.dfs(['mkdir', '-p', `/${bucket}/${prefix}${EMPTY_DIRS[1]}`]);
  if (mkdir.code !== 0) throw new Error(`dfs mkdir -p failed: ${mkdir.stderr}`);
}

/** What each of EMPTY_DIRS is below a local folder a client synced into: 'dir', 'absent', or 'file' (which it must not be). */
export function emptyDirsAt(dir: string): Record<string, 'dir' | 'absent' | 'file'> {
  return Object.fromEntries(EMPTY_DIRS.map((d) => {
    const p = join(dir, d);
    return [d, !existsSync(p) ? 'absent' : statSync(p).isDirectory() ? 'dir' : 'file'];
  }));
}

/** A gateway on a fresh cluster and a local work folder, both gone when the test ends. */
export async function gatewayWithWorkdir(t: { teardown(fn: () => unknown): void }, name: string): Promise<{ gw: Gateway; work: string }> {
  const gw = await startGateway();
  const work = mkdtempSync(join(tmpdir(), `dfs-s3-${name}-`));
  t.teardown(async () => {
    await gw.stop();
    rmSync(work, { recursive: true, force: true });
  });
  return { gw, work };
}
