// `dfs trash list|restore|empty`, `dfs quota set|clear|show`, and what `dfs rm` does with the
// trash (docs/API.md, README's tour): rm moves into /.trash/<user>/<checkpoint>/<original path>
// unless --skip-trash, as `hdfs dfs -rm` does; the user is DFS_USER, else the OS user, until
// credentials exist.
import { userInfo } from 'node:os';
import type { Argv } from 'yargs';
import { formatBytes, parseSize } from '../common/config.js';
import { DfsError } from '../common/errors.js';
import { normalizePath } from '../common/paths.js';
import type { EntryInfo } from '../common/protocol.js';
import { TRASH_USER, trashOrigin, userTrash, type QuotaReply } from '../common/trash-quota-protocol.js';
import type { DfsClient } from './client.js';
import { UsageError, withClient, type FsArgs } from './fs-commands.js';

/** Whose trash `dfs rm` uses: $DFS_USER, else the OS user. */
export function trashUser(): string {
  let name = process.env.DFS_USER;
  if (!name) {
    try {
      name = userInfo().username;
    } catch {
      throw new UsageError('cannot tell whose trash to use: set DFS_USER');
    }
  }
  if (!TRASH_USER.test(name)) throw new UsageError(`DFS_USER ${JSON.stringify(name).slice(0, 80)} must be 1-64 of [A-Za-z0-9._-], not starting with . or -`);
  return name;
}

/**
 * rm of one path: into the trash (saying where), or with --skip-trash at once. Inside /.trash
 * the master deletes at once. Answers the files removed.
 */
export async function removeOrTrash(client: DfsClient, path: string, args: FsArgs, trashed: { path: string; trashPath: string }[]): Promise<number> {
  if (args['skip-trash'] === true) return (await client.remove(path, args.r === true)).files;
  const r = await client.trash(path, trashUser(), args.r === true);
  if (r.trashPath !== null) {
    trashed.push({ path: r.path, trashPath: r.trashPath });
    if (!args.json) process.stdout.write(`moved ${r.path} to the trash: ${r.trashPath}\n`);
  }
  return r.files;
}

/** What `dfs trash list` shows: each file (and empty folder) in a checkpoint, with where and when it was deleted. */
export interface TrashItem { trashPath: string; original: string; deletedAtMs: number; type: 'file' | 'dir'; size: number }

export function trashItems(entries: EntryInfo[]): TrashItem[] {
  const items: TrashItem[] = [];
  entries.forEach((e, i) => {
    const next = entries[i + 1];
    if (e.type === 'dir' && next && next.path.startsWith(`${e.path}/`)) return; // not empty: its contents are listed
    const origin = trashOrigin(e.path);
    if (origin) items.push({ trashPath: e.path, original: origin.original, deletedAtMs: origin.deletedAtMs, type: e.type, size: e.size });
  });
  return items;
}

function formatQuota(q: QuotaReply, human: boolean): string {
  const size = (n: number) => (human ? formatBytes(n) : String(n));
  const names = `names ${q.files.used}/${q.files.limit ?? 'none'}`;
  const space = `space ${size(q.bytes.used)}/${q.bytes.limit === null ? 'none' : size(q.bytes.limit)}`;
  return `${q.path}  ${names}  ${space}`;
}

type Handler = (client: DfsClient, args: FsArgs) => Promise<void>;

function print(args: FsArgs, value: unknown, text: string): void {
  process.stdout.write(args.json ? `${JSON.stringify(value)}\n` : text.length > 0 ? `${text}\n` : '');
}

/** The caller's trash as a recursive listing; empty when it does not exist yet. */
async function listTrash(client: DfsClient): Promise<EntryInfo[]> {
  try {
    return (await client.list(userTrash(trashUser()), true)).entries;
  } catch (err) {
    if (err instanceof DfsError && err.code === 'NOT_FOUND') return [];
    throw err;
  }
}

const handlers: Record<string, Handler> = {
  async 'trash-list'(client, args) {
    const items = trashItems(await listTrash(client));
    const size = (n: number) => (args.h ? formatBytes(n) : String(n));
    const when = (ms: number) => new Date(ms).toISOString().slice(0, 19).replace('T', ' ');
    print(args, items, items.map((it) => `${when(it.deletedAtMs)}  ${size(it.size).padStart(10)}  ${it.original}${it.type === 'dir' ? '/' : ''}  ${it.trashPath}`).join('\n'));
  },

  async 'trash-restore'(client, args) {
    const r = await client.restoreFromTrash(String(args.src), args.dst === undefined ? undefined : String(args.dst));
    print(args, r, `restored ${r.src} to ${r.dst}`);
  },

  async 'trash-empty'(client, args) {
    const user = trashUser();
    let files = 0;
    try {
      files = (await client.remove(userTrash(user), true)).files;
    } catch (err) {
      if (!(err instanceof DfsError && err.code === 'NOT_FOUND')) throw err;
    }
    print(args, { user, files }, `emptied the trash of ${user}: ${files} file${files === 1 ? '' : 's'} deleted`);
  },

  async 'quota-set'(client, args) {
    const limits: { files?: number; bytes?: number } = {};
    if (args.files !== undefined) limits.files = Number(args.files);
    if (args.bytes !== undefined) limits.bytes = parseSize(String(args.bytes), '--bytes');
    const q = await client.setQuota(String(args.dir), limits);
    print(args, q, formatQuota(q, args.h === true));
  },

  async 'quota-clear'(client, args) {
    const q = await client.setQuota(String(args.dir), { files: null, bytes: null });
    print(args, q, formatQuota(q, args.h === true));
  },

  async 'quota-show'(client, args) {
    const q = await client.quota(String(args.dir));
    print(args, q, formatQuota(q, args.h === true));
  },
};

const human = { h: { type: 'boolean', default: false, describe: 'human-readable sizes (KiB, MiB, GiB)' } } as const;

/** Checks paths and option values before anything is asked of the master: a mistake there exits 2. */
function checkArgs(a: Record<string, unknown>): true {
  for (const key of ['src', 'dst', 'dir']) if (a[key] !== undefined) normalizePath(String(a[key]));
  if (a.files !== undefined && (!Number.isSafeInteger(a.files) || (a.files as number) < 0)) throw new UsageError('--files must be a whole number ≥ 0');
  if (a.bytes !== undefined) {
    try {
      parseSize(String(a.bytes), '--bytes');
    } catch (err) {
      throw new UsageError((err as Error).message);
    }
  }
  return true;
}

export function trashCommands(cli: Argv): Argv {
  const h = (name: string) => (args: unknown) => withClient(args as FsArgs, (client) => handlers[name]!(client, args as FsArgs));
  return cli
    .command('trash', 'what rm moved to your trash (/.trash/$DFS_USER): list, restore, empty', (y) => y
      .command('list', 'each file in your trash: when it was deleted, its size, where it was, where it is', (z) => z.options(human), h('trash-list'))
      .command('restore <src> [dst]', 'move a path out of the trash: back where it was (parents made as needed), or to dst', (z) => z
        .positional('src', { type: 'string', describe: 'a path in the trash, as trash list shows it' })
        .positional('dst', { type: 'string', describe: 'where to put it (default: where it was deleted from)' })
        .check(checkArgs), h('trash-restore'))
      .command('empty', 'delete everything in your trash now', (z) => z, h('trash-empty'))
      .demandCommand(1, 'name a trash command: list, restore or empty'))
    .command('quota', 'directory quotas: names (files + directories) and space (bytes × replication)', (y) => y
      .command('set <dir>', 'set a directory\'s name and/or space quota; an operation that would exceed one fails with QUOTA_EXCEEDED', (z) => z
        .positional('dir', { type: 'string' })
        .option('files', { type: 'number', describe: 'most files and directories in the tree, the directory itself included' })
        .option('bytes', { type: 'string', describe: 'most bytes × replication in the tree (e.g. 10GiB)' })
        .options(human)
        .check((a) => {
          if (a.files === undefined && a.bytes === undefined) throw new UsageError('give --files, --bytes or both');
          return checkArgs(a);
        }), h('quota-set'))
      .command('clear <dir>', 'remove a directory\'s quotas', (z) => z.positional('dir', { type: 'string' }).options(human).check(checkArgs), h('quota-clear'))
      .command('show <dir>', 'a directory\'s quotas and what its tree uses', (z) => z.positional('dir', { type: 'string' }).options(human).check(checkArgs), h('quota-show'))
      .demandCommand(1, 'name a quota command: set, clear or show'));
}
