// Issue 13, item 10: chunkservers on one disk are counted once in capacity totals; the wait line
// of `setrep -w` does not run into the line printed after it; times say their zone.
import t from 'tap';
import { spawn } from 'node:child_process';
import { formatBytes } from '../../common/config.js';
import { DFS, randomBytesSeeded, TestCluster } from '../helpers/cluster.js';

const CHUNK = 64 * 1024;
// The CLI runs with no NODE_OPTIONS (test/helpers/untracked-children.mjs keeps tap's tracker out too).
const QUICK = { NODE_OPTIONS: '' };

// Every chunkserver's data folder is under one temporary folder: one file system.
// Repair starts a dead timeout after the leader does, and setrep -w waits for it: a short one,
// yet long enough that the servers may stay paused until a loaded machine has started the CLI
// (CI once took over 2 s to, with a 3 s timeout and a 2 s pause).
const DEAD_TIMEOUT_MS = 8000;
const c = await TestCluster.start({ chunkservers: 3, replication: 3, chunkSizeBytes: CHUNK, deadTimeoutMs: DEAD_TIMEOUT_MS });
t.teardown(() => c.stop());
const dfs = (args: string[], opts: { input?: Buffer; env?: Record<string, string> } = {}) => c.dfs(args, { input: opts.input, env: { ...QUICK, ...opts.env } });

interface CsJson { id: string; capacityBytes: number; fsId?: string }

t.test('servers sharing a disk count its capacity once', async (t) => {
  const s = JSON.parse((await dfs(['status', '--json'])).stdout.toString()) as { chunkservers: CsJson[] };
  t.equal(s.chunkservers.length, 3);
  const ids = new Set(s.chunkservers.map((cs) => cs.fsId));
  t.equal(ids.size, 1, 'every chunkserver reports the same file system');
  t.match([...ids][0], /^.+:\d+$/, 'host and device number');
  const capacity = s.chunkservers[0]!.capacityBytes;

  const lines = (await dfs(['status'])).stdout.toString().split('\n');
  const header = lines.find((l) => l.startsWith('chunkservers:'));
  t.match(header, new RegExp(`^chunkservers: 3 live of 3: ${formatBytes(capacity).replace('.', '\\.')} raw, [\\d.]+ \\w+ free \\(3 chunkservers on 1 file system, each counted once\\)$`),
    'the total is one disk, not three');
});

/** What a terminal shows for `raw` output: '\r' goes back to the line's start, ESC[K and ESC[2K erase. */
function render(raw: string): string[] {
  const lines: string[] = [];
  let line: string[] = [];
  let col = 0;
  for (let i = 0; i < raw.length; i++) {
    const ch = raw[i]!;
    if (ch === '\r') col = 0;
    else if (ch === '\n') {
      lines.push(line.join(''));
      line = [];
      col = 0;
    } else if (raw.startsWith('\x1b[2K', i)) {
      line = [];
      i += 3;
    } else if (raw.startsWith('\x1b[K', i)) {
      line.length = Math.min(line.length, col);
      i += 2;
    } else {
      while (line.length < col) line.push(' ');
      line[col++] = ch;
    }
  }
  if (line.length > 0) lines.push(line.join(''));
  return lines;
}

/**
 * Runs `dfs` on a terminal (util-linux script gives it a pty); answers what the terminal received.
 * `onOutput` sees everything received so far, each time more arrives.
 */
function onTerminal(args: string[], onOutput: (soFar: string) => void = () => undefined): Promise<{ code: number; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('script', ['-qec', [process.execPath, DFS, ...args].join(' '), '/dev/null'], {
      stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...QUICK, DFS_MASTERS: c.masters, COLUMNS: '200' },
    });
    const out: Buffer[] = [];
    const take = (b: Buffer): void => {
      out.push(b);
      onOutput(Buffer.concat(out).toString());
    };
    child.stdout.on('data', take);
    child.stderr.on('data', take);
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, output: Buffer.concat(out).toString() }));
  });
}

t.test('setrep -w: the wait line is erased before the outcome is printed', async (t) => {
  // Lowering it: surplus replicas go with the servers' next heartbeats, copies would take longer.
  // Until then the chunks count as over-replicated. The servers are paused (SIGSTOP, well within
  // the dead timeout) until the wait line is on the terminal: without that, a heartbeat between
  // the setrep and the first check can converge it before any wait line (CI saw this once).
  t.equal((await dfs(['put', '-', '/w.bin'], { input: randomBytesSeeded(4 * CHUNK, 7) })).code, 0);
  const servers = c.chunkservers.filter((p) => p !== undefined);
  let paused = true;
  const resume = (): void => {
    if (!paused) return;
    paused = false;
    for (const p of servers) process.kill(p.pid, 'SIGCONT');
  };
  for (const p of servers) process.kill(p.pid, 'SIGSTOP');
  t.teardown(resume);
  // Paused for less than the dead timeout whatever happens, so no server is declared dead.
  const cap = setTimeout(resume, DEAD_TIMEOUT_MS - 2000);
  const r = await onTerminal(['setrep', '-w', '2', '/w.bin'], (soFar) => {
    if (/waiting for replication to converge: /.test(soFar)) resume();
  });
  clearTimeout(cap);
  resume();
  t.equal(r.code, 0, r.output);
  t.match(r.output, /waiting for replication to converge: /, 'a wait line was drawn');
  const shown = render(r.output).filter((l) => l.trim() !== '');
  t.same(shown, ['replication of 1 file under /w.bin set to 2', 'converged: 4 chunks with 2 replicas each'], 'each line on its own, the wait line gone');
});

t.test('times are local and say their offset from UTC', async (t) => {
  t.equal((await dfs(['put', '-', '/t.txt'], { input: Buffer.from('t') })).code, 0);
  const { mtimeMs } = JSON.parse((await dfs(['stat', '--json', '/t.txt'])).stdout.toString()) as { mtimeMs: number };
  // India has one offset all year (no summer time): +05:30.
  const wall = new Date(mtimeMs + 330 * 60_000).toISOString().replace('T', ' ').slice(0, 19);
  const env = { TZ: 'Asia/Kolkata' };
  const [stat, ls] = await Promise.all([dfs(['stat', '/t.txt'], { env }), dfs(['ls', '-l', '/t.txt'], { env })]);
  t.match(stat.stdout.toString(), new RegExp(`^modified: {4}${wall} \\+0530$`, 'm'), 'stat: the local time, with its zone');
  t.match(ls.stdout.toString(), new RegExp(`^- r3 +1 ${wall} \\+0530 t\\.txt$`, 'm'), 'ls -l: the same');
  const utc = await dfs(['stat', '/t.txt'], { env: { TZ: 'UTC' } });
  t.match(utc.stdout.toString(), new RegExp(`^modified: {4}${new Date(mtimeMs).toISOString().replace('T', ' ').slice(0, 19)} \\+0000$`, 'm'), 'UTC says so');
});
