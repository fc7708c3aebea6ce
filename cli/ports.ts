// Which of a set of TCP ports are taken, and by whom: what `dfs cluster` checks before it starts
// anything, so that a process left over from an earlier run is named instead of colliding with
// a new one. Finding the holder reads Linux's /proc; elsewhere the answer is "unknown".
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { createServer } from 'node:net';

/** Whether `host:port` can be listened on right now (a moment later it may not be). */
export function portIsFree(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, host, () => srv.close(() => resolve(true)));
  });
}

export interface PortHolder { pid: number; command: string }

/** TCP state LISTEN in /proc/net/tcp. */
const TCP_LISTEN = '0A';

/**
 * The socket inodes bound to local `port` in the text of /proc/net/tcp or tcp6, listening
 * sockets first: a listener is what blocks a new listen, but a socket merely bound to the port
 * (or an outgoing connection's local end) blocks it too.
 */
export function socketInodes(procNetTcp: string, port: number): number[] {
  const listening: number[] = [];
  const other: number[] = [];
  for (const line of procNetTcp.split('\n').slice(1)) {
    // sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode ...
    const f = line.trim().split(/\s+/);
    if (f.length < 10) continue;
    const localPort = parseInt(f[1]!.split(':')[1] ?? '', 16);
    const inode = Number(f[9]);
    if (localPort !== port || !(inode > 0)) continue; // inode 0: TIME_WAIT, owned by no process
    (f[3] === TCP_LISTEN ? listening : other).push(inode);
  }
  return [...listening, ...other];
}

/** A command line as a person would type it: arguments with spaces or quotes are quoted for sh. */
export function shellCommand(argv: readonly string[]): string {
  return argv.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(' ');
}

function readOr(file: string, fallback: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return fallback;
  }
}

/** The process whose file descriptors include one of `inodes`; only processes this user may inspect are seen. */
function processWithSocket(inodes: number[]): number | undefined {
  const wanted = new Set(inodes.map((i) => `socket:[${i}]`));
  let pids: string[];
  try {
    pids = readdirSync('/proc').filter((d) => /^\d+$/.test(d));
  } catch {
    return undefined;
  }
  for (const pid of pids) {
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${pid}/fd`);
    } catch {
      continue; // another user's process, or gone
    }
    for (const fd of fds) {
      try {
        if (wanted.has(readlinkSync(`/proc/${pid}/fd/${fd}`))) return Number(pid);
      } catch {
        /* closed meanwhile */
      }
    }
  }
  return undefined;
}

/**
 * Who holds local TCP `port`: its pid and command line, or a sentence saying why that cannot
 * be told (no /proc, another user's process).
 */
export function findPortHolder(port: number): PortHolder | string {
  const tables = ['/proc/net/tcp', '/proc/net/tcp6'].map((f) => readOr(f, ''));
  if (tables.every((t) => t === '')) return `which process holds it is unknown here (no /proc/net/tcp; try: lsof -i :${port})`;
  const inodes = tables.flatMap((t) => socketInodes(t, port));
  if (inodes.length === 0) return 'no socket on it is listed in /proc/net/tcp (it may have been freed just now)';
  const pid = processWithSocket(inodes);
  if (pid === undefined) return `by a process this user cannot inspect (another user's? try: sudo ss -ltnp 'sport = :${port}')`;
  const argv = readOr(`/proc/${pid}/cmdline`, '').split('\0').filter((a) => a !== '');
  return { pid, command: argv.length > 0 ? shellCommand(argv) : '(command line unknown)' };
}
