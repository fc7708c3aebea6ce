// `dfs put` and `dfs get` of several sources into a directory, and of whole trees (-R), as
// `hdfs dfs -put/-get` and cp(1) do: the last path is the destination. One file at a time goes
// through the single-file put or get, so every file keeps their guarantees (a put is visible
// only when complete; a get is renamed into place only when whole).
import { mkdirSync, readdirSync, statSync, type Stats } from 'node:fs';
import { basename, join, relative, sep } from 'node:path';
import { DfsError } from '../common/errors.js';
import { joinPath, namesDirectory, normalizePath } from '../common/paths.js';
import type { EntryInfo } from '../common/protocol.js';
import type { DfsClient } from './client.js';
import type { FsArgs } from './fs-commands.js';

/** Stands for a '-' argument (stdin or stdout), as fs-commands.ts's STDIO. */
const STDIO = '\0-';
/** The most files and folders one put or get of trees walks: a bound on its memory and its run. */
export const TRANSFER_MAX_ENTRIES = 1_000_000;

export interface GotFile { path: string; local: string; size: number }
type PutOne = (client: DfsClient, args: FsArgs, src: string, dst: string) => Promise<EntryInfo>;
type GetOne = (client: DfsClient, args: FsArgs, src: string, dst: string) => Promise<GotFile | undefined>;

class TransferUsage extends DfsError {
  constructor(message: string) {
    super('INVALID_ARGUMENT', message);
  }
}

function split(args: FsArgs, verb: string): { sources: string[]; dst: string } {
  const all = (args.paths as unknown[]).map(String);
  if (all.length < 2) throw new TransferUsage(`${verb} needs a source and a destination (see dfs ${verb} --help)`);
  const dst = all.pop()!;
  if (all.length > 1 && all.includes(STDIO)) throw new TransferUsage(`- (stdin or stdout) goes with a single source only`);
  return { sources: all, dst };
}

function localStat(path: string): Stats | undefined {
  try {
    return statSync(path);
  } catch {
    return undefined;
  }
}

function print(args: FsArgs, many: boolean, results: unknown[]): void {
  if (!args.json) return;
  const value = many ? results : results[0];
  if (value !== undefined) process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/** The regular files and folders below a local folder, relative to it, in name order; others are reported and skipped. */
function localTree(root: string): { dirs: string[]; files: string[] } {
  const dirs: string[] = [];
  const files: string[] = [];
  const entries = readdirSync(root, { recursive: true, withFileTypes: true });
  if (entries.length > TRANSFER_MAX_ENTRIES) throw new DfsError('INVALID_ARGUMENT', `local folder ${root} holds ${entries.length} entries; one put walks at most ${TRANSFER_MAX_ENTRIES}`);
  for (const e of entries) {
    const rel = relative(root, join(e.parentPath ?? (e as unknown as { path: string }).path, e.name));
    if (e.isDirectory()) dirs.push(rel);
    else if (e.isFile()) files.push(rel);
    else process.stderr.write(`dfs: skipping ${join(root, rel)}: not a regular file or folder\n`);
  }
  return { dirs: dirs.sort(), files: files.sort() };
}

/** A local relative path as a dfs path below `base`. */
function below(base: string, rel: string): string {
  return rel === '' ? base : joinPath(base, rel.split(sep).join('/'));
}

/** Where a tree goes: into `dst` when it is an existing directory (or several sources), else `dst` itself. */
async function treeRoot(client: DfsClient, name: string, dst: string, many: boolean): Promise<string> {
  const st = await client.stat(normalizePath(dst)).catch((e: unknown) => (e instanceof DfsError && e.code === 'NOT_FOUND' ? undefined : Promise.reject(e)));
  if (st && st.type !== 'dir') throw new DfsError('NOT_A_DIRECTORY', `${normalizePath(dst)} is not a directory`);
  if (!st && (many || namesDirectory(dst))) throw new DfsError('NOT_FOUND', `directory ${normalizePath(dst)} does not exist (mkdir -p creates it)`);
  return st ? joinPath(normalizePath(dst), name) : normalizePath(dst);
}

export async function putMany(client: DfsClient, args: FsArgs, putOne: PutOne): Promise<void> {
  const { sources, dst } = split(args, 'put');
  const many = sources.length > 1;
  const results: EntryInfo[] = [];
  for (const src of sources) {
    const st = src === STDIO ? undefined : localStat(src);
    if (!st?.isDirectory()) {
      // Several sources go into a directory: the trailing '/' makes put check that it is one.
      results.push(await putOne(client, args, src, many && !dst.endsWith('/') ? `${dst}/` : dst));
      continue;
    }
    if (args.recursive !== true) throw new DfsError('IS_A_DIRECTORY', `local path ${src} is a directory (put -R uploads trees)`);
    const root = await treeRoot(client, basename(src.replace(/\/+$/, '')) || 'root', dst, many);
    const tree = localTree(src);
    await client.mkdir(root, true);
    for (const d of tree.dirs) await client.mkdir(below(root, d), true);
    for (const f of tree.files) results.push(await putOne(client, args, join(src, f), below(root, f)));
  }
  print(args, many || args.recursive === true, results);
}

export async function getMany(client: DfsClient, args: FsArgs, getOne: GetOne): Promise<void> {
  const { sources, dst } = split(args, 'get');
  const many = sources.length > 1;
  if (many && dst === STDIO) throw new TransferUsage('several sources go into a local directory, not stdout (dfs cat prints a file)');
  if (many && !localStat(dst)?.isDirectory()) throw new DfsError('NOT_FOUND', `local directory ${dst} does not exist (several sources go into one)`);
  const results: GotFile[] = [];
  for (const raw of sources) {
    const src = normalizePath(raw);
    const st = await client.stat(src);
    if (st.type === 'file') {
      const got = await getOne(client, args, src, many ? join(dst, st.name) : dst);
      if (got) results.push(got);
      continue;
    }
    if (args.recursive !== true) throw new DfsError('IS_A_DIRECTORY', `${src} is a directory (get -R downloads trees)`);
    if (dst === STDIO) throw new TransferUsage('a directory goes into a local directory, not stdout');
    const root = localStat(dst)?.isDirectory() ? join(dst, st.name || 'root') : dst;
    const entries = (await client.list(src, true)).entries;
    if (entries.length > TRANSFER_MAX_ENTRIES) throw new DfsError('INVALID_ARGUMENT', `${src} holds ${entries.length} entries; one get walks at most ${TRANSFER_MAX_ENTRIES}`);
    mkdirSync(root, { recursive: true });
    for (const e of [...entries].sort((a, b) => (a.path < b.path ? -1 : 1))) {
      const local = join(root, ...e.path.slice(src === '/' ? 1 : src.length + 1).split('/'));
      if (e.type === 'dir') mkdirSync(local, { recursive: true });
      else if (e.state === 'complete') results.push((await getOne(client, args, e.path, local))!);
      else process.stderr.write(`dfs: skipping ${e.path}: still being written\n`);
    }
  }
  print(args, many || args.recursive === true, results);
}
