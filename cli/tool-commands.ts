// The everyday commands `hdfs dfs` and `hdfs dfsadmin` users reach for (issue 18, item 4) that
// read or copy bytes: cp, head, tail [-f], getmerge, find, df and admin report. Each streams
// through the client as put and get do; none holds more than a chunk's worth in memory.
import { createWriteStream, renameSync, rmSync } from 'node:fs';
import { once } from 'node:events';
import { randomBytes } from 'node:crypto';
import { PassThrough, Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import type { Argv } from 'yargs';
import { formatBytes } from '../common/config.js';
import { DfsError } from '../common/errors.js';
import { baseName, joinPath, namesDirectory, normalizePath } from '../common/paths.js';
import type { ChunkserverStatus, ClusterStatus, EntryInfo, StatReply } from '../common/protocol.js';
import { DfsClient } from './client.js';
import { UsageError, withClient, type FsArgs } from './fs-commands.js';
import { adminKeyCommands } from './token-commands.js';
import { adminMasterCommands } from './master-admin-commands.js';

/** `head` and `tail` print this much by default, as HDFS's do (1 KiB). */
export const HEAD_TAIL_DEFAULT_BYTES = 1024;
/** The most `head -c`/`tail -c` print: a terminal command, not a download (`dfs get` is). */
export const HEAD_TAIL_MAX_BYTES = 64 * 1024 * 1024;
/** How often `tail -f` asks the master whether the file grew (HDFS's tail -f: every second). */
export const TAIL_FOLLOW_INTERVAL_MS = 1000;
/** The most entries `find` walks and `cp -r` copies in one command: a bound on its listing. */
export const TREE_MAX_ENTRIES = 1_000_000;

type Handler = (client: DfsClient, args: FsArgs) => Promise<void>;

function json(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/** The entry at `path`, or undefined when there is none. */
async function statOrNone(client: DfsClient, path: string): Promise<StatReply | undefined> {
  return client.stat(path).catch((e: unknown) => (e instanceof DfsError && e.code === 'NOT_FOUND' ? undefined : Promise.reject(e)));
}

/**
 * A shell glob (`*`, `?`, `[abc]`, `[!a-z]`) as an anchored regular expression over one name, as
 * `find -name` matches: `*` and `?` never match a '/'.
 */
export function globToRegExp(glob: string): RegExp {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const ch = glob[i]!;
    if (ch === '*') re += '[^/]*';
    else if (ch === '?') re += '[^/]';
    else if (ch === '[') {
      const close = glob.indexOf(']', i + 2);
      if (close < 0) {
        re += '\\[';
        continue;
      }
      let body = glob.slice(i + 1, close);
      const negate = body.startsWith('!') || body.startsWith('^');
      if (negate) body = body.slice(1);
      re += `[${negate ? '^' : ''}${body.replace(/[\\\]^]/g, '\\$&')}]`;
      i = close;
    } else re += ch.replace(/[.+^${}()|\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`, 'su');
}

/** Every entry below `dir` (itself excluded), depth first in name order, bounded by TREE_MAX_ENTRIES. */
async function walk(client: DfsClient, dir: string): Promise<EntryInfo[]> {
  const reply = await client.list(dir, true);
  if (reply.entries.length > TREE_MAX_ENTRIES) {
    throw new DfsError('INVALID_ARGUMENT', `${dir} holds ${reply.entries.length} entries; one command walks at most ${TREE_MAX_ENTRIES}`);
  }
  return [...reply.entries].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

/** Streams one dfs file into a new dfs file: get into put, with back-pressure between them. */
async function copyFile(client: DfsClient, src: StatReply | EntryInfo, dst: string, args: FsArgs): Promise<EntryInfo> {
  const pipe = new PassThrough({ highWaterMark: 1024 * 1024 });
  const reading = client.get(src.path, pipe).then(() => void pipe.end(), (err: unknown) => {
    pipe.destroy(err as Error);
    throw err;
  });
  const writing = client.put(pipe, dst, {
    overwrite: args.force === true,
    parents: true,
    ...(args.p === true ? { replication: src.replication } : {}),
  });
  const [, info] = await Promise.all([reading, writing]);
  return info;
}

/** Where `src` goes under `cp src dst`: into `dst` when it is a directory, else `dst` itself. */
async function copyTarget(client: DfsClient, src: string, dst: string, many: boolean): Promise<{ target: string; into: boolean }> {
  const st = await statOrNone(client, dst);
  const wantDir = many || namesDirectory(dst);
  if (wantDir && st?.type !== 'dir') {
    throw st ? new DfsError('NOT_A_DIRECTORY', `${normalizePath(dst)} is not a directory`) : new DfsError('NOT_FOUND', `directory ${normalizePath(dst)} does not exist (mkdir -p creates it)`);
  }
  return st?.type === 'dir' ? { target: joinPath(normalizePath(dst), baseName(src)), into: true } : { target: normalizePath(dst), into: false };
}

async function cpOne(client: DfsClient, src: string, dst: string, many: boolean, args: FsArgs): Promise<EntryInfo[]> {
  const from = await client.stat(src);
  const { target } = await copyTarget(client, src, dst, many);
  if (target === from.path || target.startsWith(`${from.path}/`)) throw new DfsError('INVALID_ARGUMENT', `cannot copy ${from.path} into itself (${target})`);
  if (from.type === 'file') return [await copyFile(client, from, target, args)];
  if (args.r !== true) throw new DfsError('IS_A_DIRECTORY', `${from.path} is a directory (cp -r copies trees)`);
  const copied: EntryInfo[] = [];
  const entries = await walk(client, from.path);
  await client.mkdir(target, true);
  for (const e of entries) {
    const to = target + e.path.slice(from.path.length);
    if (e.type === 'dir') await client.mkdir(to, true);
    else copied.push(await copyFile(client, e, to, args));
  }
  return copied;
}

/** A byte count given to -c: a whole number from 0 to HEAD_TAIL_MAX_BYTES. */
function byteCount(args: FsArgs): number {
  const n = Number(args.c ?? HEAD_TAIL_DEFAULT_BYTES);
  if (!Number.isInteger(n) || n < 0 || n > HEAD_TAIL_MAX_BYTES) throw new UsageError(`-c must be a whole number of bytes from 0 to ${HEAD_TAIL_MAX_BYTES}`);
  return n;
}

/** Writes to stdout, resolving once the bytes are handed over (so a piped reader sets the pace). */
function stdoutSink(): Writable {
  return new Writable({
    write(chunk: Buffer, _enc, done) {
      if (process.stdout.write(chunk)) done();
      else process.stdout.once('drain', () => done());
    },
  });
}

async function readableFile(client: DfsClient, path: string): Promise<StatReply> {
  const st = await client.stat(normalizePath(path), true);
  if (st.type === 'dir') throw new DfsError('IS_A_DIRECTORY', `${st.path} is a directory`);
  return st;
}

/** `tail -f`: prints what is added to the file, once a second, until interrupted or the file goes. */
async function follow(client: DfsClient, start: StatReply, args: FsArgs): Promise<void> {
  let known = start;
  const rounds = args.count === undefined ? Infinity : Number(args.count);
  for (let i = 0; i < rounds; i++) {
    await new Promise((r) => setTimeout(r, TAIL_FOLLOW_INTERVAL_MS));
    const now = await client.stat(known.path, true);
    if (now.state !== 'complete' || now.size === known.size) continue;
    if (now.size < known.size) {
      // As GNU tail: a file that shrank was replaced; go on from its new end.
      process.stderr.write(`dfs: tail: ${now.path}: file truncated\n`);
    } else {
      await client.getRange(now.path, stdoutSink(), known.size, now.size, now);
    }
    known = now;
  }
}

/** One local file written beside its target and renamed into place, as `dfs get` does. */
async function writeLocal(dst: string, fill: (sink: Writable) => Promise<void>): Promise<void> {
  const part = `${dst}.dfs-${randomBytes(4).toString('hex')}.part`;
  const sink = createWriteStream(part, { highWaterMark: 1024 * 1024 });
  try {
    await once(sink, 'open').catch((err: NodeJS.ErrnoException) => {
      throw new DfsError('IO_ERROR', `cannot create local file ${dst} (${err.message.split(',')[0]})`);
    });
    await fill(sink);
    sink.end();
    await finished(sink);
    renameSync(part, dst);
  } catch (err) {
    sink.destroy();
    rmSync(part, { force: true });
    throw err;
  }
}

/** The cluster's space as `df` shows it: totals of the live servers, and each server, by rack. */
export function diskFree(s: ClusterStatus): { capacityBytes: number; usedBytes: number; freeBytes: number; racks: Record<string, ChunkserverStatus[]> } {
  const live = s.chunkservers.filter((c) => c.alive);
  const racks: Record<string, ChunkserverStatus[]> = {};
  for (const c of live) (racks[c.rack ?? 'default'] ??= []).push(c);
  const sum = (f: (c: ChunkserverStatus) => number) => live.reduce((n, c) => n + f(c), 0);
  return { capacityBytes: sum((c) => c.capacityBytes), usedBytes: sum((c) => c.usedBytes), freeBytes: sum((c) => c.freeBytes), racks };
}

function pct(part: number, whole: number): string {
  return whole > 0 ? `${((100 * part) / whole).toFixed(1)}%` : '0%';
}

/** `dfs admin report`, as `hdfs dfsadmin -report`: the cluster's space and health, then each chunkserver. */
export function formatReport(s: ClusterStatus, human: boolean): string {
  const size = (n: number) => (human ? formatBytes(n) : `${n} (${formatBytes(n)})`);
  const df = diskFree(s);
  const dead = s.chunkservers.filter((c) => !c.alive);
  const lines = [
    `Configured Capacity: ${size(df.capacityBytes)}`,
    `DFS Used: ${size(df.usedBytes)}`,
    `DFS Remaining: ${size(df.freeBytes)}`,
    `DFS Used%: ${pct(df.usedBytes, df.capacityBytes)}`,
    `Under replicated chunks: ${s.underReplicatedChunks}`,
    `Missing chunks: ${s.missingChunks}`,
    `Files: ${s.files}  Directories: ${s.dirs}  Chunks: ${s.chunks}`,
    `Safe mode: ${s.safeMode ? 'ON' : 'off'}`,
    `Leader: ${s.leader ?? 'none'}`,
    '',
    `Live chunkservers (${s.chunkservers.length - dead.length}):`,
  ];
  const server = (c: ChunkserverStatus) => [
    `Name: ${c.addr} (${c.id})`,
    `Rack: ${c.rack ?? 'default'}`,
    `Decommission Status: ${c.state}`,
    `Configured Capacity: ${size(c.capacityBytes)}`,
    `DFS Used: ${size(c.usedBytes)}`,
    `DFS Remaining: ${size(c.freeBytes)}`,
    `DFS Used%: ${pct(c.usedBytes, c.capacityBytes)}`,
    `Chunks: ${c.chunkCount}`,
    `Last contact: ${(c.lastHeartbeatAgoMs / 1000).toFixed(1)} s ago`,
    '',
  ];
  for (const c of s.chunkservers.filter((x) => x.alive)) lines.push(...server(c));
  lines.push(`Dead chunkservers (${dead.length}):`);
  for (const c of dead) lines.push(...server(c));
  return lines.join('\n');
}

function formatDf(s: ClusterStatus, human: boolean): string {
  const size = (n: number) => (human ? formatBytes(n) : String(n));
  const df = diskFree(s);
  const rows = [['Filesystem', 'Size', 'Used', 'Available', 'Use%'], ['dfs', size(df.capacityBytes), size(df.usedBytes), size(df.freeBytes), pct(df.usedBytes, df.capacityBytes)]];
  for (const [rack, servers] of Object.entries(df.racks).sort()) {
    const sum = (f: (c: ChunkserverStatus) => number) => servers.reduce((n, c) => n + f(c), 0);
    rows.push([`rack ${rack}`, size(sum((c) => c.capacityBytes)), size(sum((c) => c.usedBytes)), size(sum((c) => c.freeBytes)), pct(sum((c) => c.usedBytes), sum((c) => c.capacityBytes))]);
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((v, i) => (i === 0 ? v.padEnd(widths[i]!) : v.padStart(widths[i]!))).join('  ')).join('\n');
}

const handlers: Record<string, Handler> = {
  async cp(client, args) {
    const all = (args.paths as string[]).map(String);
    if (all.length < 2) throw new UsageError('cp needs a source and a destination');
    const dst = all.pop()!;
    const copied: EntryInfo[] = [];
    for (const src of all) copied.push(...(await cpOne(client, normalizePath(src), dst, all.length > 1, args)));
    if (args.json) json(copied);
  },

  async head(client, args) {
    const st = await readableFile(client, String(args.path));
    await client.getRange(st.path, stdoutSink(), 0, Math.min(st.size, byteCount(args)), st);
  },

  async tail(client, args) {
    const st = await readableFile(client, String(args.path));
    await client.getRange(st.path, stdoutSink(), Math.max(0, st.size - byteCount(args)), st.size, st);
    if (args.f === true) await follow(client, st, args);
  },

  async getmerge(client, args) {
    const src = normalizePath(String(args.src));
    const st = await client.stat(src);
    const files = st.type === 'file' ? [st] : (await client.list(src)).entries.filter((e) => e.type === 'file').sort((a, b) => (a.name < b.name ? -1 : 1));
    await writeLocal(String(args.dst), async (sink) => {
      for (const f of files) {
        await client.get(f.path, sink);
        if (args.nl === true) sink.write('\n');
      }
    });
    if (args.json) json({ path: src, local: String(args.dst), files: files.length, size: files.reduce((n, f) => n + f.size, 0) + (args.nl === true ? files.length : 0) });
  },

  async find(client, args) {
    const root = await client.stat(normalizePath(String(args.path ?? '/')));
    const name = args.name === undefined ? undefined : globToRegExp(String(args.name));
    const type = args.type as 'f' | 'd' | undefined;
    const candidates: EntryInfo[] = root.type === 'dir' ? [root, ...(await walk(client, root.path))] : [root];
    const found = candidates.filter((e) => (!name || name.test(e.name || '/')) && (!type || (type === 'f') === (e.type === 'file')));
    if (args.json) json(found);
    else if (found.length > 0) process.stdout.write(`${found.map((e) => e.path).join('\n')}\n`);
  },

  async df(client, args) {
    const s = await client.status();
    if (args.json) {
      const { racks, ...totals } = diskFree(s);
      return json({ ...totals, racks: Object.fromEntries(Object.entries(racks).map(([r, cs]) => [r, cs.map((c) => ({ id: c.id, addr: c.addr, capacityBytes: c.capacityBytes, usedBytes: c.usedBytes, freeBytes: c.freeBytes }))])) });
    }
    process.stdout.write(`${formatDf(s, args.h === true)}\n`);
  },

  async report(client, args) {
    const s = await client.status();
    if (args.json) return json(s);
    process.stdout.write(`${formatReport(s, args.h === true)}\n`);
  },
};

async function run(name: string, args: FsArgs): Promise<void> {
  await withClient(args, (client) => handlers[name]!(client, args));
}

const human = { h: { type: 'boolean', default: false, describe: 'human-readable sizes (KiB, MiB, GiB)' } } as const;
const count = { c: { type: 'number', describe: `bytes to print (default ${HEAD_TAIL_DEFAULT_BYTES})` } } as const;

/**
 * `find` takes its tests with one dash, as find(1) and `hdfs dfs -find` do (`-name`, `-iname`,
 * `-type`): turned into the options yargs parses. Only arguments after `find` are touched.
 */
export function findArgv(argv: string[]): string[] {
  if (argv[0] !== 'find') return argv;
  return argv.map((a, i) => (i > 0 && (a === '-name' || a === '-type') ? `-${a}` : a));
}

export function toolCommands(cli: Argv): Argv {
  const h = (name: string) => (args: unknown) => run(name, args as FsArgs);
  return cli
    .command('cp <paths..>', 'copy dfs files (the last path is the destination; several sources go into a directory)', (y) => y
      .positional('paths', { type: 'string', array: true })
      .option('r', { type: 'boolean', default: false, describe: 'copy directories and everything below them' })
      .option('p', { type: 'boolean', default: false, describe: 'keep each file\'s replication (default: the cluster\'s)' })
      .option('force', { alias: 'f', type: 'boolean', default: false, describe: 'replace existing files' }), h('cp'))
    .command('head <path>', `print the first bytes of a file (${HEAD_TAIL_DEFAULT_BYTES} unless -c says)`, (y) => y
      .positional('path', { type: 'string' }).options(count), h('head'))
    .command('tail <path>', `print the last bytes of a file (${HEAD_TAIL_DEFAULT_BYTES} unless -c says)`, (y) => y
      .positional('path', { type: 'string' }).options(count)
      .option('f', { type: 'boolean', default: false, describe: 'keep printing what is added, until Ctrl-C' })
      .option('count', { type: 'number', hidden: true, describe: 'with -f: stop after this many checks (for scripts and tests)' }), h('tail'))
    .command('getmerge <src> <dst>', 'concatenate the files of a dfs directory (in name order) into one local file', (y) => y
      .positional('src', { type: 'string' })
      .positional('dst', { type: 'string', describe: 'local file' })
      .option('nl', { type: 'boolean', default: false, describe: 'add a newline after each file' }), h('getmerge'))
    .command('find [path]', 'list the entries below a path that match -name <glob> and -type f|d', (y) => y
      .positional('path', { type: 'string', default: '/' })
      .option('name', { type: 'string', describe: 'a shell glob the entry\'s name matches (* ? [..])' })
      .option('type', { type: 'string', choices: ['f', 'd'], describe: 'f: files, d: directories' }), h('find'))
    .command('df', 'the cluster\'s capacity, use and free space, in total and by rack', (y) => y.options(human), h('df'))
    .command('admin', 'cluster administration (as hdfs dfsadmin)', (y) => adminMasterCommands(adminKeyCommands(y)) // credentials hook: keys, rotate-keys, drop-old-keys; masters
      .command('report', 'capacity, health and every chunkserver, as hdfs dfsadmin -report', (z) => z.options(human), h('report'))
      .demandCommand(1, 'name an admin command'));
}
