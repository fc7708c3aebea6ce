// Bucket listings (ListObjectsV2 and V1) without holding the bucket: the namespace is walked
// lazily, one directory at a time (the master's plain, non-recursive list), in S3's key order,
// and the walk stops as soon as a page is full. In a directory a file `name` sorts as `name` and
// a directory as `name/`, by UTF-8 bytes: every key below `name/` falls between `name/` and the
// next sibling, so depth-first over sorted children is key order. Directories whose keys all sort
// at or before the page's start (start-after, marker, continuation token) are never opened, and
// with delimiter "/" a directory is one common prefix, opened only until it shows one object.
// What is held at once: the sorted children of the directories on the current path, and a page.
import type { EntryInfo } from '../common/protocol.js';
import { compareKeys } from './keys.js';

export interface ListedObject { key: string; size: number; mtimeMs: number }
/** What a walk yields: an object, or a common prefix it already grouped (delimiter "/"). */
export type ListItem = ListedObject | { prefix: string };
export interface ListQuery {
  prefix: string;
  delimiter?: string;
  maxKeys: number;
  /** The page starts after this key or common prefix (start-after, marker, or a continuation token's). */
  after?: string;
}
export interface ListPage {
  contents: ListedObject[];
  commonPrefixes: string[];
  truncated: boolean;
  /** The last key or common prefix on the page: where the next page starts after. */
  last?: string;
}

/** S3's cap on a page. */
export const MAX_LIST_KEYS = 1000;

/**
 * One page from items in key order, S3's way: a common prefix counts as one entry and is returned
 * once, on the page where its first key falls. Items past the page are not pulled (but one, to
 * know whether the listing is truncated).
 */
export async function listPage(items: AsyncIterable<ListItem> | Iterable<ListItem>, q: ListQuery): Promise<ListPage> {
  const page: ListPage = { contents: [], commonPrefixes: [], truncated: false };
  let count = 0;
  for await (const item of items) {
    const grouped = 'prefix' in item ? item.prefix : undefined;
    const key = grouped ?? (item as ListedObject).key;
    if (!key.startsWith(q.prefix)) continue;
    // A key at or before `after` is skipped; a grouped prefix holds a key past it (the walk made sure), as S3 rolls such keys up.
    if (q.after !== undefined && grouped === undefined && compareKeys(key, q.after) <= 0) continue;
    let prefix = grouped;
    if (prefix === undefined && q.delimiter) {
      const i = key.indexOf(q.delimiter, q.prefix.length);
      if (i >= 0) prefix = key.slice(0, i + q.delimiter.length);
    }
    // The rest of a common prefix already returned (on this page or, as `after`, on the last).
    if (prefix !== undefined && (prefix === page.commonPrefixes.at(-1) || prefix === q.after)) continue;
    if (count === q.maxKeys) {
      page.truncated = true;
      break;
    }
    count++;
    if (prefix !== undefined) page.commonPrefixes.push(prefix);
    else page.contents.push(item as ListedObject);
    page.last = prefix ?? key;
  }
  return page;
}

/** The deepest directory below the bucket that holds every key with `prefix`: listing only it saves reading the rest. */
export function prefixDirectory(prefix: string): string {
  const i = prefix.lastIndexOf('/');
  return i < 0 ? '' : prefix.slice(0, i);
}

/** The entries directly in a directory of the bucket ('' for the bucket itself); none when it is not there. */
export type DirLister = (dir: string) => Promise<EntryInfo[]>;

interface Child { key: string; sortKey: string; dir: boolean; entry: EntryInfo }

/** A directory's files and subdirectories in S3 key order (a directory sorts as `name/`). */
async function sortedChildren(list: DirLister, dir: string): Promise<Child[]> {
  const children = (await list(dir)).filter((e) => e.type === 'dir' || e.type === 'file').map((entry) => {
    const key = dir ? `${dir}/${entry.name}` : entry.name;
    const sortKey = entry.type === 'dir' ? `${key}/` : key;
    return { key, sortKey, dir: entry.type === 'dir', entry, bytes: Buffer.from(sortKey, 'utf8') };
  });
  children.sort((a, b) => Buffer.compare(a.bytes, b.bytes));
  return children.map(({ key, sortKey, dir: isDir, entry }) => ({ key, sortKey, dir: isDir, entry }));
}

/** Whether anything below (or at) this child can sort after `after`. */
function reachesPast(c: Child, after: string | undefined): boolean {
  if (after === undefined) return true;
  if (c.dir) return after.startsWith(c.sortKey) || compareKeys(c.sortKey, after) > 0;
  return compareKeys(c.key, after) > 0;
}

export interface WalkOptions {
  prefix: string;
  after?: string;
  /** Delimiter "/": yield each directory below the prefix's directory as one common prefix. */
  groupDirs: boolean;
  /** Only complete files are objects (a file being written is not yet one); false: any file. */
  completeOnly: boolean;
}

/** Every object (and, grouping, common prefix) with the prefix after `after`, lazily, in key order. */
export function walkKeys(list: DirLister, opts: WalkOptions): AsyncGenerator<ListItem> {
  return walkDir(list, prefixDirectory(opts.prefix), opts);
}

async function* walkDir(list: DirLister, dir: string, o: WalkOptions): AsyncGenerator<ListItem> {
  for (const c of await sortedChildren(list, dir)) {
    if (!c.sortKey.startsWith(o.prefix) && !(c.dir && o.prefix.startsWith(c.sortKey))) continue;
    if (!reachesPast(c, o.after)) continue;
    if (!c.dir) {
      if (!o.completeOnly || c.entry.state === 'complete') yield { key: c.key, size: c.entry.size, mtimeMs: c.entry.mtimeMs };
    } else if (o.groupDirs && c.sortKey.startsWith(o.prefix)) {
      if (c.sortKey !== o.after && (await firstObject(list, c.key, o)) !== undefined) yield { prefix: c.sortKey };
    } else yield* walkDir(list, c.key, o);
  }
}

/** The first object below `dir` (after `o.after`), opening no more directories than it takes; undefined when there is none. */
export async function firstObject(list: DirLister, dir: string, o: Omit<WalkOptions, 'groupDirs' | 'prefix'>): Promise<ListedObject | undefined> {
  const walk = walkDir(list, dir, { ...o, prefix: dir ? `${dir}/` : '', groupDirs: false });
  const first = await walk.next();
  await walk.return(undefined);
  return first.done ? undefined : (first.value as ListedObject);
}
