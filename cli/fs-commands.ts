import { createReadStream, createWriteStream, statSync, renameSync, rmSync, type Stats } from 'node:fs';
import { basename, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { finished } from 'node:stream/promises';
import type { Argv } from 'yargs';
import { initChecksums } from '../common/checksum.js';
import { DEFAULT_MASTERS, formatBytes, parseAddrList } from '../common/config.js';
import { DfsError } from '../common/errors.js';
import { closeHttpAgent } from '../common/http.js';
import { baseName, joinPath, namesDirectory, normalizePath } from '../common/paths.js';
import { rackFromEnv } from '../common/racks.js';
import { DfsClient, type ClientOptions } from './client.js';
import { findToken } from './token-source.js';
import { formatDegradedWrite, formatDu, formatFsck, formatLong, formatStat, formatStatus, localTime } from './format.js';
import { Progress } from './progress.js';
import { StatusLine } from './status-line.js';
import { getMany, putMany, type GotFile } from './tree-transfer.js';
import type { EntryInfo } from '../common/protocol.js';
import { removeOrTrash } from './trash-commands.js'; // trash-quota
import { catRecords } from './record-commands.js';

/** Stands for a '-' argument (stdin or stdout); cannot be a real path, as argv holds no NUL. */
export const STDIO = '\0-';

export type FsArgs = Record<string, unknown> & { masters?: string; json: boolean; _: (string | number)[] };
type Handler = (client: DfsClient, args: FsArgs) => Promise<void>;

/** A command line that is wrong (a malformed option value): `dfs` exits 2 for it, as for an unknown flag. */
export class UsageError extends DfsError {
  constructor(message: string) {
    super('INVALID_ARGUMENT', message);
  }
}

export function mastersFrom(args: FsArgs): string[] {
  // An explicit --masters, even an empty one, is used as given; an empty $DFS_MASTERS counts as unset.
  const [raw, what] = args.masters !== undefined ? [args.masters, '--masters'] : [process.env.DFS_MASTERS, 'DFS_MASTERS'];
  if (args.masters === undefined && !raw) return DEFAULT_MASTERS;
  try {
    return parseAddrList(String(raw), what);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

/** The token for this command: --token-file, else as any client finds one, else (aimed at the default local cluster) its admin token. */
export function tokenFrom(args: FsArgs): string | undefined {
  const tokenFile = args['token-file'];
  return findToken({ tokenFile: typeof tokenFile === 'string' ? tokenFile : undefined, localCluster: args.masters === undefined && !process.env.DFS_MASTERS });
}

function out(text: string): void {
  if (text.length > 0) process.stdout.write(text.endsWith('\n') ? text : text + '\n');
}

function json(value: unknown): void {
  out(JSON.stringify(value, null, 2));
}

function localStat(path: string): Stats | undefined {
  try {
    return statSync(path);
  } catch {
    return undefined;
  }
}

/**
 * Polls once a second until `done`, showing `progress` on a terminal; gives up after --timeout
 * seconds with TIMEOUT (the cluster keeps working; only the waiting stops).
 */
async function waitUntil<T>(args: FsArgs, what: string, poll: () => Promise<T>, done: (v: T) => boolean, progress: (v: T) => string): Promise<T> {
  const deadline = Date.now() + Number(args.timeout) * 1000;
  const line = new StatusLine(showProgress(args) ? process.stderr : undefined);
  try {
    for (;;) {
      const v = await poll();
      if (done(v)) return v;
      if (Date.now() >= deadline) throw new DfsError('TIMEOUT', `gave up waiting for ${what} after ${args.timeout} s (${progress(v)}); the cluster keeps working on it`);
      line.draw(`waiting for ${what}: ${progress(v)}`);
      await new Promise((r) => setTimeout(r, 1000));
    }
  } finally {
    // The outcome (or the error) is printed next, on a line of its own.
    line.end();
  }
}

/** How long an interrupted put waits for the master to drop its write before it exits anyway. */
const ABANDON_WAIT_MS = 3000;
/** Exit codes after a signal, as shells report them: 128 + the signal's number. */
const SIGNAL_EXIT_CODES = { SIGINT: 130, SIGTERM: 143 } as const;

/**
 * Awaits `work`; if SIGINT or SIGTERM comes first, runs `cleanup` (bounded by the caller) and
 * exits with 128 + the signal's number. A second signal exits at once.
 */
async function untilSignal<T>(work: Promise<T>, cleanup: (signal: keyof typeof SIGNAL_EXIT_CODES) => Promise<void>): Promise<T> {
  let handler!: (signal: keyof typeof SIGNAL_EXIT_CODES) => void;
  const signalled = new Promise<keyof typeof SIGNAL_EXIT_CODES>((resolve) => (handler = resolve));
  const onSignal = (signal: NodeJS.Signals) => handler(signal as keyof typeof SIGNAL_EXIT_CODES);
  process.once('SIGINT', onSignal).once('SIGTERM', onSignal);
  try {
    const first = await Promise.race([work.then((value) => ({ value })), signalled]);
    if (typeof first === 'object') return first.value;
    const exitNow = (s: NodeJS.Signals) => process.exit(SIGNAL_EXIT_CODES[s as keyof typeof SIGNAL_EXIT_CODES] ?? 130);
    process.removeListener('SIGINT', onSignal).removeListener('SIGTERM', onSignal);
    process.once('SIGINT', exitNow).once('SIGTERM', exitNow);
    await cleanup(first);
    process.exit(SIGNAL_EXIT_CODES[first]);
  } finally {
    process.removeListener('SIGINT', onSignal).removeListener('SIGTERM', onSignal);
  }
}

function showProgress(args: FsArgs): boolean {
  return !args.quiet && !args.json && process.stderr.isTTY === true;
}

/** One source of `dfs put` to one destination (a file, or a directory to put it into). */
export async function putOne(client: DfsClient, args: FsArgs, srcArg: string, dstArg: string): Promise<EntryInfo> {
  const src = srcArg === STDIO ? '-' : srcArg;
  const intoDir = namesDirectory(dstArg);
  let dst = normalizePath(dstArg);
  let total: number | undefined;
  if (src !== '-') {
    const st = localStat(src);
    if (!st) throw new DfsError('NOT_FOUND', `local file ${src} does not exist`);
    if (!st.isFile()) throw new DfsError('INVALID_ARGUMENT', `local path ${src} is not a regular file`);
    total = st.size;
  }
  // Like cp: into an existing directory, the source's name is kept.
  const target = await client.stat(dst).catch((e: DfsError) => (e.code === 'NOT_FOUND' ? undefined : Promise.reject(e)));
  // A trailing '/' says the destination is a directory: never a new file by that name.
  if (intoDir && !target) throw new DfsError('NOT_FOUND', `directory ${dst} does not exist (mkdir -p creates it)`);
  if (intoDir && target?.type !== 'dir') throw new DfsError('NOT_A_DIRECTORY', `${dst} is not a directory`);
  if (target?.type === 'dir') {
    if (src === '-') throw new DfsError('IS_A_DIRECTORY', `${dst} is a directory; name the file to create`);
    dst = joinPath(dst, basename(src));
  }
  const input = src === '-' ? process.stdin : createReadStream(src, { highWaterMark: 1024 * 1024 });
  const progress = new Progress(`put ${dst}`, total, showProgress(args));
  const minReplicas = Number(args.minReplicas ?? 1);
  let replicasPerChunk: number[] = [];
  const stop = new AbortController();
  const putting = client.put(input, dst, {
    overwrite: args.force === true,
    parents: true,
    replication: args.replication as number | undefined,
    sizeBytes: total, // trash-quota: a local file's size, for the quota check at create
    minReplicas,
    onProgress: (n) => progress.update(n),
    // As HDFS's client does, say when a pipeline failed and which node is now left out.
    onRetry: (msg) => {
      if (!args.quiet) progress.log(`dfs: ${msg}`);
    },
    onStored: (chunks) => (replicasPerChunk = chunks.map((c) => c.replicas.length)),
    signal: stop.signal,
  }).catch((err: unknown) => {
    if (err instanceof DfsError && err.code === 'TOO_FEW_REPLICAS') {
      throw new DfsError(err.code, `${dst} was not stored: ${err.message} (--min-replicas); start the missing chunkservers or lower --min-replicas`);
    }
    throw err;
  });
  // Ctrl-C (or a kill) must not leave the path held until the write lease runs out.
  const info = await untilSignal(putting, async (signal) => {
    stop.abort();
    const outcome = await Promise.race([
      putting.then(() => `after ${dst} was stored`, (err: unknown) => (err as Error).message),
      new Promise<string>((r) => setTimeout(r, ABANDON_WAIT_MS, `no answer within ${ABANDON_WAIT_MS / 1000} s: ${dst} may have been stored (dfs stat ${dst} tells), or is freed when its write lease expires`)),
    ]);
    progress.log(`dfs: interrupted (${signal}); ${outcome}`);
  });
  progress.done();
  // A degraded write succeeds (the cluster copies the rest), but never silently; even with -q.
  const degraded = formatDegradedWrite(info.path, info.replication, replicasPerChunk);
  if (degraded) process.stderr.write(`dfs: ${degraded}\n`);
  return info;
}

/** One dfs file of `dfs get` to one local destination (a file, a directory, or - for stdout). */
export async function getOne(client: DfsClient, args: FsArgs, srcArg: string, dstArg: string): Promise<GotFile | undefined> {
  const src = normalizePath(srcArg);
  let dst = dstArg;
  if (dst === '') throw new UsageError('local path must be a non-empty string (- for stdout)');
  if (dst === STDIO) {
    await client.get(src, process.stdout);
    return undefined;
  }
  if (dst.endsWith('/')) {
    // A trailing '/' says a directory, as for put; stat sees a file named so as ENOTDIR.
    const dir = localStat(dst.replace(/\/+$/, '') || '/');
    if (!dir?.isDirectory()) throw dir ? new DfsError('NOT_A_DIRECTORY', `local path ${dst} is not a directory`) : new DfsError('NOT_FOUND', `local directory ${dst} does not exist`);
  }
  if (localStat(dst)?.isDirectory()) dst = join(dst, baseName(src));
  if (localStat(dst) && args.force !== true) throw new DfsError('EXISTS', `local file ${dst} exists; use -f to overwrite it`);
  // Write beside the target and rename, so a failed download never leaves a truncated file.
  const part = `${dst}.dfs-${randomBytes(4).toString('hex')}.part`;
  const sink = createWriteStream(part, { highWaterMark: 1024 * 1024 });
  const progress = new Progress(`get ${src}`, undefined, showProgress(args));
  try {
    // A local file that cannot be created (no such folder, not a folder, no permission) is
    // reported before any download, as one line rather than an unhandled stream error.
    await once(sink, 'open').catch((err: NodeJS.ErrnoException) => {
      throw new DfsError('IO_ERROR', `cannot create local file ${dst} (${err.message.split(',')[0]})`);
    });
    const info = await client.get(src, sink, { onProgress: (n, t) => progress.update(n, t) });
    sink.end();
    await finished(sink);
    renameSync(part, dst);
    progress.done();
    return { path: src, local: dst, size: info.size };
  } catch (err) {
    sink.destroy();
    try {
      rmSync(part, { force: true });
    } catch {
      // it was never created (its folder is missing or is a file)
    }
    throw err;
  }
}

const handlers: Record<string, Handler> = {
  put: (client, args) => putMany(client, args, putOne),
  get: (client, args) => getMany(client, args, getOne),

  async cat(client, args) {
    if (args.records) return catRecords(client, args);
    await client.get(String(args.path), process.stdout);
  },

  async ls(client, args) {
    const reply = await client.list(String(args.path ?? '/'), args.R === true);
    if (args.json) return json(reply);
    if (args.l) out(formatLong(reply.entries, args.h === true, args.R === true));
    else out(reply.entries.map((e) => (args.R ? e.path : e.name) + (e.type === 'dir' ? '/' : '')).join('\n'));
  },

  async mkdir(client, args) {
    const made = [];
    for (const p of args.paths as string[]) made.push(await client.mkdir(String(p), args.p === true));
    if (args.json) json(made);
  },

  async rm(client, args) {
    // A malformed path is a usage error, found before anything is removed.
    const paths = (args.paths as string[]).map((p) => normalizePath(String(p)));
    let files = 0;
    let failed = 0;
    const trashed: { path: string; trashPath: string }[] = []; // trash-quota
    for (const p of paths) {
      try {
        files += await removeOrTrash(client, p, args, trashed); // trash-quota: into the trash unless --skip-trash
      } catch (err) {
        // A cluster that does not answer fails every path alike: stop at the first.
        if (!(err instanceof DfsError) || err.status >= 500) throw err;
        if (args.force === true && err.code === 'NOT_FOUND') continue;
        // As rm(1): say what is wrong with this path and go on with the others; exit 1 at the end.
        process.stderr.write(`dfs: ${err.message}\n`);
        failed++;
      }
    }
    if (args.json) json({ files, ...(trashed.length > 0 ? { trashed } : {}) });
    if (failed > 0) process.exitCode = 1;
  },

  async mv(client, args) {
    const info = await client.rename(String(args.src), String(args.dst));
    if (args.json) json(info);
  },

  async stat(client, args) {
    const info = await client.stat(String(args.path), true);
    if (args.json) return json(info);
    out(formatStat(info, args.h === true));
  },

  async du(client, args) {
    const reply = await client.du(String(args.path ?? '/'), args.s === true, args['per-file'] === true);
    if (args.json) return json(reply);
    out(formatDu(reply, args.h === true));
  },

  async fsck(client, args) {
    const r = await client.fsck(String(args.path ?? '/'), args.files === true);
    if (args.json) json(r);
    else out(formatFsck(r));
    // As HDFS's fsck: a chunk with no good replica (data that cannot be read) is a failure.
    if (r.status !== 'HEALTHY') process.exitCode = 1;
  },

  async setrep(client, args) {
    const path = String(args.path);
    const replication = Number(args.replication);
    const { files } = await client.setReplication(path, replication, args.R === true);
    if (!args.json) out(`replication of ${files} file${files === 1 ? '' : 's'} under ${normalizePath(path)} set to ${replication}`);
    if (args.w === true) {
      // As HDFS's setrep -w: wait until every chunk has exactly that many good replicas.
      const r = await waitUntil(args, 'replication to converge', () => client.fsck(path), (f) => f.underReplicated + f.overReplicated + f.missing + f.corrupt === 0,
        (f) => `${f.underReplicated} under-replicated, ${f.overReplicated} over-replicated, ${f.missing + f.corrupt} without a good replica`);
      // A chunk a snapshot of higher replication shares is kept at that (HDFS keeps a block at its snapshots' highest too).
      const higher = r.keptHigher ?? 0;
      if (!args.json) out(`converged: ${r.chunks - higher} chunks with ${replication} replicas each${higher > 0 ? `; ${higher} shared with a snapshot of higher replication keep that` : ''}`);
    }
    if (args.json) json({ path: normalizePath(path), replication, files });
  },

  async decommission(client, args) {
    const cancel = args.cancel === true;
    const r = await client.decommission(String(args.server), cancel);
    if (cancel) {
      if (!args.json) out(`${r.server} is back in service`);
      else json(r);
      return;
    }
    if (!args.json) out(`decommissioning ${r.server}: its replicas are being copied elsewhere (dfs status shows progress)`);
    if (args.w === true) {
      await waitUntil(args, `${r.server} to drain`, () => client.status(), (s) => s.chunkservers.find((c) => c.id === r.server)?.state === 'decommissioned',
        (s) => `${s.chunkservers.find((c) => c.id === r.server)?.decommissionRemaining ?? '?'} chunks still to copy`);
      if (!args.json) out(`${r.server} is decommissioned: every chunk it holds has its replicas elsewhere; it can be stopped`);
    }
    if (args.json) json(r);
  },

  async status(client, args) {
    if (args.watch !== true) {
      const s = await client.status();
      if (args.json) return json(s);
      return out(formatStatus(s));
    }
    // A live view: redrawn every second (on a terminal, in place) until Ctrl-C or --count frames.
    const frames = args.count === undefined ? Infinity : Number(args.count);
    let previous: { atMs: number; bytes: number } | undefined;
    for (let frame = 0; frame < frames; frame++) {
      if (frame > 0) await new Promise((r) => setTimeout(r, 1000));
      const s = await client.status();
      const now = Date.now();
      if (args.json) {
        process.stdout.write(JSON.stringify(s) + '\n'); // one object a line
        continue;
      }
      const rate = previous ? (s.repair.bytesCopied - previous.bytes) / Math.max(0.001, (now - previous.atMs) / 1000) : 0;
      previous = { atMs: now, bytes: s.repair.bytesCopied };
      const text = `${formatStatus(s)}\ncopy rate: ${formatBytes(Math.max(0, rate))}/s   (${localTime(now, true)}, Ctrl-C to stop)\n`;
      process.stdout.write(process.stdout.isTTY ? `\x1b[H\x1b[2J${text}` : `${text}\n`);
    }
  },
};

/** Runs a file command with a client, printing errors as one line; the exit code says how it went. */
export async function runFsCommand(name: string, args: FsArgs): Promise<void> {
  // `dfs cat | head` closes stdout early: that is not an error.
  // Any other failure to write stdout (a full disk under `>`) must not pass for success.
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(0);
    process.stderr.write(`dfs: cannot write to stdout (${err.message.split(',')[0]})\n`);
    process.exit(1);
  });
  await withClient(args, (client) => handlers[name]!(client, args));
}

/** Runs `fn` with a client for the masters the arguments name; the HTTP agent is closed after, so the process can exit. */
export async function withClient(args: FsArgs, fn: (client: DfsClient) => Promise<void>, extra: Pick<ClientOptions, 'recordBatch'> = {}): Promise<void> {
  await initChecksums();
  const client = new DfsClient(mastersFrom(args), { rack: rackFromEnv(), token: tokenFrom(args), ...extra }); // rack rule
  try {
    await fn(client);
  } finally {
    await closeHttpAgent();
  }
}

/** put and get take sources and then a destination: at least two paths, said as yargs says it for other commands. */
function twoPaths(paths: unknown): true {
  const n = Array.isArray(paths) ? paths.length : 0;
  if (n < 2) throw new Error(`Not enough non-option arguments: got ${n}, need at least 2`);
  return true;
}

const human = { h: { type: 'boolean', default: false, describe: 'human-readable sizes (KiB, MiB, GiB)' } } as const;

export function fsCommands(cli: Argv, run: (name: string, args: FsArgs) => Promise<void>): Argv {
  const h = (name: string) => (args: unknown) => run(name, args as FsArgs);
  return cli
    .command('put <paths..>', 'upload local files (- for stdin) to a dfs path: the last path is the destination; several sources (or -R) go into a directory; missing parents are created', (y) => y
      .usage('$0 put <src..> <dst>\n\nupload local files (- for stdin) to a dfs path: the last path is the destination; several sources (or -R) go into a directory; missing parents are created')
      .positional('paths', { type: 'string', array: true, describe: 'local files (- for stdin), then the dfs path or an existing directory (a trailing / requires one)' })
      .option('recursive', { alias: 'R', type: 'boolean', default: false, describe: 'upload local directories and everything below them' })
      .option('force', { alias: 'f', type: 'boolean', default: false, describe: 'replace an existing file (atomically, on completion)' })
      .option('replication', { alias: 'r', type: 'number', describe: 'replicas per chunk (default: the cluster\'s)' })
      .option('min-replicas', { type: 'number', default: 1, describe: 'fail (and store nothing) if any chunk reaches fewer chunkservers than this' })
      .option('quiet', { alias: 'q', type: 'boolean', default: false, describe: 'no progress bar' })
      .check((a) => {
        twoPaths(a.paths);
        if (a.replication !== undefined && (!Number.isInteger(a.replication) || a.replication < 1 || a.replication > 16)) throw new Error('--replication must be a whole number from 1 to 16');
        const min = a['min-replicas'];
        if (!Number.isInteger(min) || min < 1 || min > 16) throw new Error('--min-replicas must be a whole number from 1 to 16');
        if (a.replication !== undefined && min > a.replication) throw new Error('--min-replicas must not be more than --replication');
        return true;
      }), h('put'))
    .command('get <paths..>', 'download dfs files to a local path (- for stdout): the last path is the destination; several sources (or -R) go into a local directory', (y) => y
      .usage('$0 get <src..> <dst>\n\ndownload dfs files to a local path (- for stdout): the last path is the destination; several sources (or -R) go into a local directory')
      .positional('paths', { type: 'string', array: true, describe: 'dfs files, then a local file or directory (a trailing / requires one), or - for stdout' })
      .option('recursive', { alias: 'R', type: 'boolean', default: false, describe: 'download dfs directories and everything below them' })
      .check((a) => twoPaths(a.paths))
      .option('force', { alias: 'f', type: 'boolean', default: false, describe: 'overwrite an existing local file' })
      .option('quiet', { alias: 'q', type: 'boolean', default: false, describe: 'no progress bar' }), h('get'))
    .command('cat <path>', 'write a dfs file to stdout', (y) => y.positional('path', { type: 'string' })
      .option('records', { type: 'boolean', default: false, describe: 'a record file (dfs append --record): each record once, then a newline' }), h('cat'))
    .command('ls [path]', 'list a directory', (y) => y
      .positional('path', { type: 'string', default: '/' })
      .option('l', { type: 'boolean', default: false, describe: 'long format: type, replication, size, modified, state' })
      .option('R', { type: 'boolean', default: false, describe: 'recursive' })
      .options(human), h('ls'))
    .command('mkdir <paths..>', 'create directories', (y) => y
      .positional('paths', { type: 'string', array: true })
      .option('p', { type: 'boolean', default: false, describe: 'create parents as needed; no error if it exists' }), h('mkdir'))
    .command('rm <paths..>', 'move files or directories to your trash (dfs trash), or delete them with --skip-trash; a path that cannot be removed is reported and the rest still are (exit 1)', (y) => y
      .positional('paths', { type: 'string', array: true })
      .option('skip-trash', { type: 'boolean', default: false, describe: 'delete at once instead of moving to the trash (inside /.trash, rm always deletes)' })
      .option('r', { type: 'boolean', default: false, describe: 'remove directories and their contents' })
      .option('force', { alias: 'f', type: 'boolean', default: false, describe: 'no error when a path does not exist' }), h('rm'))
    .command('mv <src> <dst>', 'move or rename a file or directory', (y) => y
      .positional('src', { type: 'string' })
      .positional('dst', { type: 'string', describe: 'new path, or an existing directory to move into (a trailing / requires one)' }), h('mv'))
    .command('stat <path>', 'show a file\'s size, replication, state and each chunk with its replicas', (y) => y
      .positional('path', { type: 'string' })
      .options(human), h('stat'))
    .command('du [path]', 'bytes used below a path', (y) => y
      .positional('path', { type: 'string', default: '/' })
      .option('s', { type: 'boolean', default: false, describe: 'only the total' })
      .option('per-file', { type: 'boolean', default: false, describe: 'count each file\'s whole size, even chunks it shares with a snapshot (counted once by default)' })
      .options(human), h('du'))
    .command('fsck [path]', 'check every file\'s chunks: healthy, under-replicated, missing or corrupt (exit 1 if any chunk has no good replica)', (y) => y
      .positional('path', { type: 'string', default: '/' })
      .option('files', { type: 'boolean', default: false, describe: 'list every file with its health, not only the unhealthy ones' }), h('fsck'))
    .command('setrep <replication> <path>', 'change the replication of a file (or with -R every file below a directory); the cluster converges', (y) => y
      .positional('replication', { type: 'number', describe: 'replicas per chunk, 1 to 16' })
      .positional('path', { type: 'string' })
      .option('R', { type: 'boolean', default: false, describe: 'every file below a directory' })
      .option('w', { type: 'boolean', default: false, describe: 'wait until every chunk has exactly that many replicas' })
      .option('timeout', { type: 'number', default: 600, describe: 'with -w: give up waiting after this many seconds' })
      .check((a) => {
        if (!Number.isInteger(a.replication) || (a.replication as number) < 1 || (a.replication as number) > 16) throw new Error('replication must be a whole number from 1 to 16');
        if (!(Number(a.timeout) > 0)) throw new Error('--timeout must be a number of seconds > 0');
        return true;
      }), h('setrep'))
    .command('decommission <server>', 'drain a chunkserver (id or host:port) so it can be removed; dfs status shows progress', (y) => y
      .positional('server', { type: 'string' })
      .option('cancel', { type: 'boolean', default: false, describe: 'put a decommissioning server back in service' })
      .option('w', { type: 'boolean', default: false, describe: 'wait until it is drained' })
      .option('timeout', { type: 'number', default: 3600, describe: 'with -w: give up waiting after this many seconds' })
      .check((a) => {
        if (!(Number(a.timeout) > 0)) throw new Error('--timeout must be a number of seconds > 0');
        return true;
      }), h('decommission'))
    .command('status', 'masters and chunkservers: role, capacity, use, chunks, heartbeats', (y) => y
      .option('watch', { alias: 'w', type: 'boolean', default: false, describe: 'redraw every second: under-replicated chunks, copies, copy rate' })
      .option('count', { type: 'number', describe: 'with --watch: stop after this many frames' })
      .check((a) => {
        if (a.count !== undefined && (!Number.isInteger(a.count) || a.count < 1)) throw new Error('--count must be a whole number ≥ 1');
        if (a.count !== undefined && !a.watch) throw new Error('--count goes with --watch');
        return true;
      }), h('status'));
}
