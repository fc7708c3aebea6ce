// A `dfs put - <path>` whose stdin the test holds open: a producer that pauses, or a user who
// presses Ctrl-C (a signal) or whose client dies (SIGKILL) in the middle of an upload.
import { spawn, type ChildProcess } from 'node:child_process';
import { DFS, waitFor, type RunResult, type TestCluster } from './cluster.js';

// No NODE_OPTIONS: the CLI starts as a user's does, and signals reach dfs itself (tap's process
// tracker is kept out of every child by test/helpers/untracked-children.mjs).
export const QUICK = { NODE_OPTIONS: '' };

export interface HeldPut {
  child: ChildProcess;
  /** Writes bytes to the put's stdin. */
  write(data: string | Buffer): void;
  /** Closes its stdin: the end of the input. */
  end(): void;
  /** Settles when the process exits, with its exit code (128 + n when killed by signal n) and output. */
  done: Promise<RunResult & { signal: NodeJS.Signals | null }>;
}

export function heldPut(c: TestCluster, args: string[]): HeldPut {
  const child = spawn(process.execPath, [DFS, 'put', ...args], { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, ...QUICK, DFS_MASTERS: c.masters } });
  const out: Buffer[] = [];
  let stderr = '';
  child.stdout!.on('data', (b: Buffer) => out.push(b));
  child.stderr!.on('data', (b: Buffer) => (stderr += b));
  child.stdin!.on('error', () => undefined);
  const done = new Promise<RunResult & { signal: NodeJS.Signals | null }>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code: code ?? -1, signal, stdout: Buffer.concat(out), stderr }));
  });
  return { child, write: (d) => void child.stdin!.write(d), end: () => child.stdin!.end(), done };
}

/** Waits until `path` shows as a file being written (the put has created it and holds its lease). */
export async function waitUntilWriting(c: TestCluster, path: string, timeoutMs = 15_000): Promise<void> {
  await waitFor(async () => {
    const r = await c.dfs(['stat', '--json', path], { env: QUICK });
    return r.code === 0 && (JSON.parse(r.stdout.toString()) as { state: string }).state === 'writing';
  }, timeoutMs, `${path} to be in state writing`);
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
