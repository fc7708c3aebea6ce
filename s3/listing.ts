// One page of a bucket listing (ListObjectsV2 and V1), as a pure function of the sorted keys:
// prefix, delimiter (common prefixes), the key to start after, and max-keys, S3's way: a common
// prefix counts as one entry and is returned once, on the page where its first key falls.
import { compareKeys } from './keys.js';

export interface ListedObject { key: string; size: number; mtimeMs: number }
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

export function listPage(sorted: Iterable<ListedObject>, q: ListQuery): ListPage {
  const page: ListPage = { contents: [], commonPrefixes: [], truncated: false };
  let count = 0;
  for (const obj of sorted) {
    if (!obj.key.startsWith(q.prefix)) continue;
    if (q.after !== undefined && compareKeys(obj.key, q.after) <= 0) continue;
    let prefix: string | undefined;
    if (q.delimiter) {
      const i = obj.key.indexOf(q.delimiter, q.prefix.length);
      if (i >= 0) prefix = obj.key.slice(0, i + q.delimiter.length);
    }
    // The rest of a common prefix already returned (on this page or, as `after`, on the last).
    if (prefix !== undefined && (prefix === page.commonPrefixes.at(-1) || prefix === q.after)) continue;
    if (count === q.maxKeys) {
      page.truncated = true;
      break;
    }
    count++;
    if (prefix !== undefined) page.commonPrefixes.push(prefix);
    else page.contents.push(obj);
    page.last = prefix ?? obj.key;
  }
  return page;
}

/** The deepest directory below the bucket that holds every key with `prefix`: listing only it saves reading the rest. */
export function prefixDirectory(prefix: string): string {
  const i = prefix.lastIndexOf('/');
  return i < 0 ? '' : prefix.slice(0, i);
}
