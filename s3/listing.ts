// Bucket listings (ListObjectsV2 and V1) without holding the bucket: the namespace is walked
// lazily, one directory at a time, each read in pages (the master's paged list), in S3's key
// order, and the walk stops as soon as a page is full. In a directory a file `name` sorts as
// `name` and a directory as `name/`, by UTF-8 bytes (the master's path order): every key below
// `name/` falls between `name/` and the next sibling, so depth-first is key order. Each
// directory's read starts where the page's start (start-after, marker, continuation token) or the
// prefix points into it, so a page of a huge flat directory does not read the names before it;
// with delimiter "/" a directory is one common prefix, opened only until it shows one object.
// An empty directory (no entries at all) is the folder object `name/` (keys.ts, folderOf): 0
// bytes, yielded where `name/` sorts, when the read the walk makes of it anyway comes back empty;
// a directory with entries is implied by its keys and is no object. Only the directory a prefix
// ending in "/" names, when empty, costs one more read (of its parent, from just below `name/`) to tell it
// from one that is not there. The bucket's own directory is never an object.
// What is held at once: one master page for each directory on the current path, and a page.
import type { EntryInfo } from '../common/protocol.js';
import { compareUtf8, pathOrderKey } from '../common/list-order.js';
import { compareKeys } from './keys.js';

/** An object of a listing; `folder`: an empty directory's folder key (`name/`), whose ETag is the MD5 of nothing. */
export interface ListedObject { key: string; size: number; mtimeMs: number; folder?: true }
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

/**
 * The entries directly in a directory of the bucket ('' for the bucket itself), in path order (a
 * directory as `name/`, by UTF-8 bytes: common/list-order.ts), only those after `after` (such a
 * name); none when it is not there. Lazy: the master hands a huge directory over page by page.
 */
export type DirLister = (dir: string, after: string | undefined) => AsyncIterable<EntryInfo>;

interface Child { key: string; sortKey: string; dir: boolean; entry: EntryInfo }

/** Whether anything below (or at) this child can sort after `after`. */
function reachesPast(c: Child, after: string | undefined): boolean {
  if (after === undefined) return true;
  if (c.dir) return after.startsWith(c.sortKey) || compareKeys(c.sortKey, after) > 0;
  return compareKeys(c.key, after) > 0;
}

/**
 * Where a walk of `dir` may start: a name in it such that no child up to it (in path order) holds
 * a key the walk yields. From `after` when it points into the directory: its name there (a file
 * of that name is at most `after`; a directory of it, `name/`, sorts past it and is still opened).
 * From the prefix in the directory it names: the children before it (up to just below it).
 */
export function startAfter(dir: string, o: Pick<WalkOptions, 'prefix' | 'after'>): string | undefined {
  const base = dir ? `${dir}/` : '';
  let hint: string | undefined;
  if (o.after?.startsWith(base)) {
    const rest = o.after.slice(base.length);
    const i = rest.indexOf('/');
    hint = i < 0 ? rest : rest.slice(0, i);
  }
  const rest = o.prefix.startsWith(base) ? o.prefix.slice(base.length) : '';
  if (rest && !rest.includes('/')) {
    const below = justBelow(rest);
    if (hint === undefined || compareUtf8(below, hint) > 0) hint = below;
  }
  return hint || undefined;
}

/** A string just below `s` in key order: its last character one less, then the highest one (what falls between is rare, and only read). */
function justBelow(s: string): string {
  const chars = Array.from(s);
  const last = chars.pop()!.codePointAt(0)! - 1;
  if (last < 1) return chars.join('');
  // No code point is a surrogate (D800-DFFF): below E000 comes D7FF.
  return chars.join('') + String.fromCodePoint(last >= 0xd800 && last <= 0xdfff ? 0xd7ff : last) + '\u{10ffff}';
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

/**
 * The walk of `dir`; `self` is its entry where a listing of its parent showed it (undefined: it
 * may not be there). Counts every entry the read gives: none, read from the start, is an empty
 * directory, whose folder key comes where its `dir/` sorts (before anything below it, of which
 * there is none).
 */
async function* walkDir(list: DirLister, dir: string, o: WalkOptions, self?: EntryInfo): AsyncGenerator<ListItem> {
  const from = startAfter(dir, o);
  let entries = 0;
  for await (const entry of list(dir, from)) {
    entries++;
    if (entry.type !== 'dir' && entry.type !== 'file') continue;
    const key = dir ? `${dir}/${entry.name}` : entry.name;
    const c: Child = { key, sortKey: pathOrderKey(key, entry.type === 'dir'), dir: entry.type === 'dir', entry };
    if (!c.sortKey.startsWith(o.prefix) && !(c.dir && o.prefix.startsWith(c.sortKey))) {
      // Keys with the prefix are one run in key order: past it, nothing later has it.
      if (compareKeys(c.sortKey, o.prefix) > 0) return;
      continue;
    }
    if (!reachesPast(c, o.after)) continue;
    if (!c.dir) {
      if (!o.completeOnly || c.entry.state === 'complete') yield { key: c.key, size: c.entry.size, mtimeMs: c.entry.mtimeMs };
    } else if (o.groupDirs && c.sortKey.startsWith(o.prefix)) {
      if (c.sortKey !== o.after && (await firstObject(list, c.key, o, c.entry)) !== undefined) yield { prefix: c.sortKey };
    } else yield* walkDir(list, c.key, o, c.entry);
  }
  // A read that started past a name may have skipped entries; but then `dir/` is at most the
  // page's start or outside the prefix (startAfter), so it is no key of this walk either way.
  if (entries > 0 || from !== undefined || !dir) return;
  const folder = pathOrderKey(dir, true);
  if (!folder.startsWith(o.prefix) || (o.after !== undefined && compareKeys(folder, o.after) <= 0)) return;
  const info = self ?? (await dirEntry(list, dir));
  if (info) yield { key: folder, size: 0, mtimeMs: info.mtimeMs, folder: true };
}

/** The entry of the directory `dir` as its parent lists it (read from just below `name/` on), or undefined when there is none. */
async function dirEntry(list: DirLister, dir: string): Promise<EntryInfo | undefined> {
  const i = dir.lastIndexOf('/');
  const name = dir.slice(i + 1);
  const sortKey = pathOrderKey(name, true);
  // From just below `name/`: the names before it (a file `name`, `name!`, `name-…`, `name.…`, a
  // million of them perhaps) are never read; the first entry is `name/` when it is there.
  for await (const e of list(i < 0 ? '' : dir.slice(0, i), justBelow(sortKey))) {
    if (e.name === name && e.type === 'dir') return e;
    if (compareUtf8(pathOrderKey(e.name, e.type === 'dir'), sortKey) >= 0) return undefined;
  }
  return undefined;
}

/**
 * The first object at or below `dir` (its folder key when it is empty, else the first below it)
 * after `o.after`, opening no more directories than it takes; undefined when there is none.
 * `self`: the directory's entry, when a listing already showed it.
 */
export async function firstObject(list: DirLister, dir: string, o: Omit<WalkOptions, 'groupDirs' | 'prefix'>, self?: EntryInfo): Promise<ListedObject | undefined> {
  const walk = walkDir(list, dir, { ...o, prefix: dir ? `${dir}/` : '', groupDirs: false }, self);
  const first = await walk.next();
  await walk.return(undefined);
  return first.done ? undefined : (first.value as ListedObject);
}
