// MooseFS's side of the re-replication figure, measured by its own scripts in the workspace
// (../shared/peers/moosefs: setup.sh starts 1 mfsmaster and 4 mfschunkservers with goal 3 and
// 64 MiB chunks, bench.sh rerep kills -9 the chunkserver holding most of a file and times until
// every chunk has 3 valid copies again). Run only where that cluster is up (its mount exists);
// its numbers are read back from the rows bench.sh appends to /tmp/mfs/results/raw.tsv.
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const MFS_MOUNT = '/tmp/mfs/mnt';
const RAW = '/tmp/mfs/results/raw.tsv';
/** bench.sh waits out MooseFS's REPLICATIONS_DELAY_INIT (a minute after the master starts) and its own checks. */
const MFS_TIMEOUT_MS = 20 * 60_000;

export interface MooseFsRerep {
  /** kill -9 → the master no longer lists copies on the dead server. */
  noticedS: number | undefined;
  /** kill -9 → every chunk back at 3 valid copies. */
  allBackS: number | undefined;
  chunksAffected: string;
}

/** Why MooseFS cannot be measured here, or undefined when it can. */
export function mooseFsMissing(dir: string): string | undefined {
  if (!existsSync(join(dir, 'bench.sh'))) return `no ${join(dir, 'bench.sh')}`;
  const mounts = existsSync('/proc/mounts') ? readFileSync('/proc/mounts', 'utf8') : '';
  if (!mounts.split('\n').some((l) => l.split(' ')[1] === MFS_MOUNT)) return `MooseFS is not mounted at ${MFS_MOUNT} (run: bash ${join(dir, 'setup.sh')})`;
  return undefined;
}

/** Runs `bench.sh rerep` once on `sizeBytes`; its rows are told from earlier ones by their position in raw.tsv. */
export async function measureMooseFsRerep(dir: string, sizeBytes: number, log: (l: string) => void): Promise<MooseFsRerep> {
  const before = existsSync(RAW) ? readFileSync(RAW, 'utf8').split('\n').length - 1 : 0;
  await new Promise<void>((resolve, reject) => {
    const child = spawn('bash', [join(dir, 'bench.sh'), 'rerep'], {
      cwd: dir, stdio: ['ignore', 'ignore', 'pipe'],
      // One repetition, the same size as dfs's; wait at most 30 s for a quiet machine (others share it: the figure says so).
      env: { ...process.env, SIZE: String(sizeBytes), REPS: '1', QUIET_MAX: '30' },
    });
    child.stderr!.on('data', (b: Buffer) => {
      for (const line of b.toString().split('\n')) if (line.includes('rerep_')) log(`moosefs: ${line.trim()}`);
    });
    const timer = setTimeout(() => child.kill('SIGTERM'), MFS_TIMEOUT_MS);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve();
      else reject(new Error(`bash bench.sh rerep exited ${code}`));
    });
  });
  const rows = readFileSync(RAW, 'utf8').split('\n').slice(before).map((l) => l.split('\t')).filter((r) => r[0] === 'rerep_default');
  const value = (metric: string) => {
    const r = rows.find((x) => x[1] === metric);
    return r && r[3] !== 'NA' ? Number(r[3]) : undefined;
  };
  const note = rows.find((x) => x[1] === 'all_chunks_back_at_3_after')?.[5] ?? '';
  return { noticedS: value('master_noticed_dead_cs_after'), allBackS: value('all_chunks_back_at_3_after'), chunksAffected: note };
}
