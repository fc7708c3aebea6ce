// The cost of TLS (issue 15): two local clusters side by side, one plain and one with
// `dfs cluster --tls`, and the same file put and got through each with the dfs CLI, the two
// alternating round by round so both see the same machine. Prints MiB/s per round and the
// medians. Bounded: a few rounds of one file, every process stopped at the end.
//
//   npm run build && node dist/scripts/tls-cost.js [--mib 128] [--rounds 3] [--base-port 26400]
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';

const MAIN = resolve(import.meta.dirname, '..', 'cli', 'main.js');
const READY_TIMEOUT_MS = 180_000;
const CALL_TIMEOUT_MS = 600_000;

function flag(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  const v = i >= 0 ? Number(process.argv[i + 1]) : fallback;
  if (!Number.isInteger(v) || v <= 0) throw new Error(`--${name} must be a positive whole number`);
  return v;
}

interface Cluster { name: string; child: ChildProcess; env: Record<string, string> }

function startCluster(name: string, dir: string, basePort: number, tls: boolean): Promise<Cluster> {
  const args = [MAIN, 'cluster', '--data', dir, '--base-port', String(basePort), '--masters', '1', '--chunkservers', '3', '--s3-port', '0', ...(tls ? ['--tls'] : [])];
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  return new Promise((ok, fail) => {
    const timer = setTimeout(() => fail(new Error(`${name} cluster did not start: ${out}`)), READY_TIMEOUT_MS);
    const onData = (b: Buffer): void => {
      out += b.toString();
      if (!out.includes('dfs cluster: ready')) return;
      clearTimeout(timer);
      const file = JSON.parse(readFileSync(join(dir, 'cluster.json'), 'utf8')) as { masters: string[]; tlsCa?: string };
      ok({ name, child, env: { DFS_MASTERS: file.masters.join(','), DFS_TLS_CA: file.tlsCa ?? '' } });
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.once('exit', () => fail(new Error(`${name} cluster exited: ${out}`)));
  });
}

/** Runs the dfs CLI; answers the seconds it took. */
function timed(args: string[], env: Record<string, string>): Promise<number> {
  const start = process.hrtime.bigint();
  const child = spawn(process.execPath, [MAIN, ...args], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, ...env } });
  let err = '';
  child.stderr.on('data', (b: Buffer) => (err += b));
  return new Promise((ok, fail) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), CALL_TIMEOUT_MS);
    child.once('exit', (code) => {
      clearTimeout(timer);
      if (code === 0) ok(Number(process.hrtime.bigint() - start) / 1e9);
      else fail(new Error(`dfs ${args.join(' ')} failed: ${err.trim()}`));
    });
  });
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function main(): Promise<void> {
  const mib = flag('mib', 128);
  const rounds = flag('rounds', 3);
  const base = flag('base-port', 26400);
  const dir = mkdtempSync(join(tmpdir(), 'dfs-tls-cost-'));
  const file = join(dir, 'in.bin');
  writeFileSync(file, randomBytes(mib * 1024 * 1024));
  const clusters: Cluster[] = [];
  // Ctrl-C stops the clusters too (each launcher stops its own processes on SIGTERM).
  const stop = (): void => {
    for (const c of clusters) c.child.kill('SIGTERM');
    process.exit(130);
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  try {
    clusters.push(await startCluster('plain', join(dir, 'plain'), base, false));
    clusters.push(await startCluster('tls', join(dir, 'tls'), base + 1000, true));
    const rates: Record<string, { put: number[]; get: number[] }> = { plain: { put: [], get: [] }, tls: { put: [], get: [] } };
    console.log(`${mib} MiB, ${rounds} rounds, 1 master + 3 chunkservers each, replication 3; MiB/s:`);
    for (let r = 0; r < rounds; r++) {
      for (const c of r % 2 === 0 ? clusters : [...clusters].reverse()) {
        const put = mib / (await timed(['put', file, `/f${r}`], c.env));
        const get = mib / (await timed(['get', `/f${r}`, join(dir, `out-${c.name}-${r}`)], c.env));
        rates[c.name]!.put.push(put);
        rates[c.name]!.get.push(get);
        console.log(`  round ${r + 1} ${c.name.padEnd(5)} put ${put.toFixed(1).padStart(7)}  get ${get.toFixed(1).padStart(7)}`);
      }
    }
    const p = rates.plain!;
    const t = rates.tls!;
    console.log(`median   plain put ${median(p.put).toFixed(1)}  get ${median(p.get).toFixed(1)}`);
    console.log(`median   tls   put ${median(t.put).toFixed(1)}  get ${median(t.get).toFixed(1)}`);
    console.log(`tls/plain      put ${(median(t.put) / median(p.put)).toFixed(2)}  get ${(median(t.get) / median(p.get)).toFixed(2)}`);
  } finally {
    await Promise.all(clusters.map((c) => new Promise<void>((r) => {
      c.child.once('exit', () => r());
      c.child.kill('SIGTERM');
    })));
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(`tls-cost: ${(err as Error).message}`);
  process.exit(1);
});
