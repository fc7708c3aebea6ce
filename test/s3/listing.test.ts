// The lazy listing walk (s3/listing.ts) against a simple model (every key in one sorted array,
// filtered, rolled up and sliced), over seeded random trees and queries, paging to the end; an
// empty directory's folder key (`d/`) with every part of S3's listing rules; and that the walk is
// lazy: a page opens only the directories it needs.
import t from 'tap';
import { pathOrderKey, selectPage } from '../../common/list-order.js';
import type { EntryInfo } from '../../common/protocol.js';
import { firstObject, listPage, startAfter, walkKeys, type DirLister, type ListQuery } from '../../s3/listing.js';

const utf8Order = (a: string, b: string) => Buffer.compare(Buffer.from(a), Buffer.from(b));

/** A namespace of directories and files, made from a list of keys (and empty directories). */
class Tree {
  readonly dirs = new Map<string, Map<string, EntryInfo>>([['', new Map()]]);
  opened: string[] = [];
  constructor(keys: string[], emptyDirs: string[] = [], incomplete: string[] = [], readonly pageSize = 3) {
    for (const d of emptyDirs) this.mkdirs(d);
    for (const k of [...keys, ...incomplete]) {
      const i = k.lastIndexOf('/');
      const dir = i < 0 ? '' : k.slice(0, i);
      this.mkdirs(dir);
      this.dirs.get(dir)!.set(k.slice(i + 1), this.entry(k, 'file', incomplete.includes(k) ? 'writing' : 'complete'));
    }
  }
  private entry(path: string, type: 'file' | 'dir', state: string): EntryInfo {
    return { path: `/b/${path}`, name: path.slice(path.lastIndexOf('/') + 1), type, size: path.length, mtimeMs: 1, replication: 1, state, chunkCount: 0 } as EntryInfo;
  }
  private mkdirs(dir: string): void {
    if (!dir || this.dirs.has(dir)) return;
    const i = dir.lastIndexOf('/');
    const parent = i < 0 ? '' : dir.slice(0, i);
    this.mkdirs(parent);
    this.dirs.set(dir, new Map());
    this.dirs.get(parent)!.set(dir.slice(i + 1), this.entry(dir, 'dir', 'complete'));
  }
  /** What S3 would list, by the plain rule: every complete file, and `d/` for each directory (not the bucket) with no entries. */
  objects(): string[] {
    const out: string[] = [];
    for (const [dir, children] of this.dirs) {
      if (dir && children.size === 0) out.push(`${dir}/`);
      for (const e of children.values()) if (e.type === 'file' && e.state === 'complete') out.push(e.path.slice('/b/'.length));
    }
    return out;
  }
  /** Entries handed out by `list`, over all its pages. */
  read = 0;
  /** As the master's paged list: path order, after a name, a few entries a page (so a directory takes several). */
  readonly list: DirLister = (dir, after) => {
    this.opened.push(dir);
    const children = [...(this.dirs.get(dir)?.values() ?? [])];
    const tree = this;
    return (async function* pages() {
      for (let from = after; ;) {
        const { page, more } = selectPage(children, (e) => pathOrderKey(e.name, e.type === 'dir'), from, tree.pageSize);
        tree.read += page.length;
        yield* page;
        if (!more) return;
        from = pathOrderKey(page.at(-1)!.name, page.at(-1)!.type === 'dir');
      }
    })();
  };
}

/** The model: every key at hand, sorted; S3's rules applied in the plainest way. */
function model(keys: string[], q: ListQuery) {
  const entries: { value: string; prefix: boolean }[] = [];
  for (const k of [...keys].sort(utf8Order)) {
    if (!k.startsWith(q.prefix) || (q.after !== undefined && utf8Order(k, q.after) <= 0)) continue;
    const i = q.delimiter ? k.indexOf(q.delimiter, q.prefix.length) : -1;
    const value = i >= 0 ? k.slice(0, i + q.delimiter!.length) : k;
    if (value === q.after || entries.at(-1)?.value === value) continue;
    entries.push({ value, prefix: i >= 0 });
  }
  const page = entries.slice(0, q.maxKeys);
  return {
    contents: page.filter((e) => !e.prefix).map((e) => e.value),
    commonPrefixes: page.filter((e) => e.prefix).map((e) => e.value),
    truncated: entries.length > q.maxKeys,
  };
}

async function walkPage(tree: Tree, q: ListQuery) {
  const page = await listPage(walkKeys(tree.list, { prefix: q.prefix, after: q.after, groupDirs: q.delimiter === '/', completeOnly: true }), q);
  return { page, got: { contents: page.contents.map((o) => o.key), commonPrefixes: page.commonPrefixes, truncated: page.truncated } };
}

/** mulberry32: a small seeded generator; r(n) is in [0, n). */
function rng(seed: number) {
  let s = seed >>> 0;
  return (n: number) => {
    s = (s + 0x6d2b79f5) >>> 0;
    let z = Math.imul(s ^ (s >>> 15), 1 | s);
    z ^= z + Math.imul(z ^ (z >>> 7), 61 | z);
    return ((z ^ (z >>> 14)) >>> 0) % n;
  };
}

const PARTS = ['a', 'b', 'a-b', 'a0', 'x', 'x-1', 'x0', 'ü', '\uff5e', '𝄞', 'a b', 'c+d'];

function randomKeys(r: (n: number) => number, n: number): string[] {
  const keys = new Set<string>();
  while (keys.size < n) keys.add(Array.from({ length: 1 + r(4) }, () => PARTS[r(PARTS.length)]).join('/'));
  // A key below another (a and a/b) cannot both be dfs files: keep the longer.
  const all = [...keys];
  return all.filter((k) => !all.some((o) => o.startsWith(`${k}/`)));
}

/** Directories of one to three parts that no key needs to be a file (some hold keys, so are not empty). */
function randomDirs(r: (n: number) => number, n: number, keys: string[]): string[] {
  const dirs = Array.from({ length: n }, () => Array.from({ length: 1 + r(3) }, () => PARTS[r(PARTS.length)]).join('/'));
  return dirs.filter((d) => !keys.some((k) => k === d || d.startsWith(`${k}/`)));
}

t.test('pages of the lazy walk match the model, paged to the end', async (t) => {
  let checked = 0;
  let folders = 0;
  for (let seed = 1; seed <= 60; seed++) {
    const r = rng(seed);
    const keys = randomKeys(r, 20 + r(120));
    // Empty directories are folder objects; a file being written is no object, and its directory is not empty (the names are outside PARTS, so they clash with no key).
    const tree = new Tree(keys, ['empty/dir', 'e/empty', ...randomDirs(r, 1 + r(8), keys)], ['e/writing', 'w/only']);
    const objects = tree.objects();
    const folderKeys = objects.filter((k) => k.endsWith('/'));
    const picked = folderKeys[r(folderKeys.length)]!;
    const prefixes = ['', 'a', 'a/', 'a-', 'e', 'e/', 'w/', 'x/', 'x/a', '𝄞/', 'no/such/', picked, picked.slice(0, -1), picked.slice(0, -2)];
    const prefix = prefixes[r(prefixes.length)]!;
    const delimiter = [undefined, '/', '-', 'b'][r(4)];
    const maxKeys = [1, 2, 3, 7, 1000][r(5)]!;
    const starts = [...keys, ...folderKeys, ...folderKeys.map((k) => k.slice(0, -1))];
    let after: string | undefined = r(3) === 0 ? starts[r(starts.length)] : undefined;
    for (let pages = 0; pages < 500; pages++) {
      const q = { prefix, delimiter, maxKeys, after };
      const { page, got } = await walkPage(tree, q);
      t.same(got, model(objects, q), `seed ${seed}: ${JSON.stringify(q)}`);
      for (const o of page.contents) if (o.key.endsWith('/')) {
        folders++;
        t.same([o.size, o.folder], [0, true], `${o.key}: a folder object, 0 bytes`);
      }
      checked++;
      if (!page.truncated) break;
      after = page.last;
    }
  }
  t.ok(checked > 100, `${checked} pages checked`);
  t.ok(folders > 20, `${folders} folder objects listed`);
});

t.test('the walk is lazy: a page opens only the directories it needs', async (t) => {
  const keys: string[] = [];
  for (let d = 0; d < 50; d++) for (let f = 0; f < 20; f++) keys.push(`d${String(d).padStart(2, '0')}/sub/f${String(f).padStart(2, '0')}`);
  const tree = new Tree(keys);
  const { got } = await walkPage(tree, { prefix: '', maxKeys: 5 });
  t.same(got.contents, keys.slice(0, 5));
  t.same(tree.opened, ['', 'd00', 'd00/sub'], 'the first page of 5 opens the bucket and one path down');
  tree.opened = [];
  const after = await walkPage(tree, { prefix: '', maxKeys: 3, after: 'd31/sub/f19' });
  t.same(after.got.contents, ['d32/sub/f00', 'd32/sub/f01', 'd32/sub/f02']);
  t.same(tree.opened, ['', 'd31', 'd31/sub', 'd32', 'd32/sub'], 'directories before the start are never opened');
  tree.opened = [];
  const grouped = await walkPage(tree, { prefix: '', delimiter: '/', maxKeys: 4 });
  t.same(grouped.got.commonPrefixes, ['d00/', 'd01/', 'd02/', 'd03/']);
  t.equal(tree.opened.filter((d) => d.endsWith('/sub')).length, 5, 'with delimiter "/" each directory is opened only to find its first object (4 on the page, 1 to know it is truncated)');
});

t.test('firstObject: an empty directory is its folder object; a file being written counts only when asked', async (t) => {
  const tree = new Tree(['keep/x'], ['empty/a/b', 'empty/c', 'bare'], ['writing/w']);
  t.equal((await firstObject(tree.list, 'empty', { completeOnly: true }))?.key, 'empty/a/b/', 'a directory of empty directories holds their folder objects');
  t.same(await firstObject(tree.list, 'bare', { completeOnly: true }), { key: 'bare/', size: 0, mtimeMs: 1, folder: true }, 'an empty directory is its own');
  t.equal((await firstObject(tree.list, 'keep', { completeOnly: true }))?.key, 'keep/x');
  t.equal(await firstObject(tree.list, 'writing', { completeOnly: true }), undefined, 'a directory holding a file being written is not empty, and that file no object yet');
  t.equal((await firstObject(tree.list, 'writing', { completeOnly: false }))?.key, 'writing/w');
  t.equal(await firstObject(tree.list, 'nothing', { completeOnly: false }), undefined, 'a directory that is not there holds nothing');
  t.equal(await firstObject(tree.list, 'keep/x', { completeOnly: false }), undefined, 'nor does a file');
  const { got } = await walkPage(tree, { prefix: '', delimiter: '/', maxKeys: 10 });
  t.same(got.commonPrefixes, ['bare/', 'empty/', 'keep/'], 'a common prefix for each directory with an object at or below it');
  // DeleteBucket asks firstObject of the bucket ('') for any object, files being written included.
  t.equal((await firstObject(new Tree([], ['only/empty']).list, '', { completeOnly: false }))?.key, 'only/empty/', 'a bucket holding only an empty directory is not empty (S3 would list d/)');
  t.equal(await firstObject(new Tree([]).list, '', { completeOnly: false }), undefined, 'an empty bucket: its own directory is no object');
  t.same((await walkPage(new Tree([]), { prefix: '', maxKeys: 10 })).got.contents, [], 'and is never listed');
});

t.test('an empty directory as S3 lists a stored folder object', async (t) => {
  // a/b-1 < a/b/ < a/b0 by bytes ('-' < '/' < '0'); a/d holds only an empty directory; w only a file being written.
  const tree = new Tree(['a/a-1', 'a/b-1', 'a/b0', 'a/c/f', 'z'], ['a/b', 'a/d/e', 'solo'], ['w/writing']);
  const list = async (q: Partial<ListQuery>) => (await walkPage(tree, { prefix: '', maxKeys: 1000, ...q })).got;
  const all = ['a/a-1', 'a/b-1', 'a/b/', 'a/b0', 'a/c/f', 'a/d/e/', 'solo/', 'z'];
  t.same(await list({}), { contents: all, commonPrefixes: [], truncated: false }, 'no delimiter: folder keys among the keys, in byte order');
  const whole = (await walkPage(tree, { prefix: '', maxKeys: 1000 })).page.contents;
  t.same(whole.find((o) => o.key === 'a/b/'), { key: 'a/b/', size: 0, mtimeMs: 1, folder: true }, "0 bytes, the directory's mtime");
  t.same(await list({ delimiter: '/' }), { contents: ['z'], commonPrefixes: ['a/', 'solo/'], truncated: false }, 'an empty top-level directory is a common prefix; one holding only a file being written is not');
  t.same(await list({ prefix: 'a/', delimiter: '/' }), { contents: ['a/a-1', 'a/b-1', 'a/b0'], commonPrefixes: ['a/b/', 'a/c/', 'a/d/'], truncated: false },
    'delimiter "/", prefix a/: the empty a/b is the common prefix a/b/, and so is a/d/ (an empty directory below it)');
  t.same(await list({ prefix: 'a/b/', delimiter: '/' }), { contents: ['a/b/'], commonPrefixes: [], truncated: false }, 'prefix a/b/: the folder object itself');
  t.same(await list({ prefix: 'a/b/' }), { contents: ['a/b/'], commonPrefixes: [], truncated: false });
  t.same(await list({ prefix: 'a/d/', delimiter: '/' }), { contents: [], commonPrefixes: ['a/d/e/'], truncated: false });
  t.same(await list({ prefix: 'a/b' }), { contents: ['a/b-1', 'a/b/', 'a/b0'], commonPrefixes: [], truncated: false }, 'prefix a/b, no slash');
  t.same(await list({ prefix: 'a/b', delimiter: '/' }), { contents: ['a/b-1', 'a/b0'], commonPrefixes: ['a/b/'], truncated: false });
  t.same(await list({ prefix: 'solo/' }), { contents: ['solo/'], commonPrefixes: [], truncated: false }, 'the directory a prefix names, when empty');
  for (const prefix of ['nothing/', 'z/', 'w/', 'a/b/x', 'a/b//']) t.same(await list({ prefix }), { contents: [], commonPrefixes: [], truncated: false }, `prefix ${prefix}: nothing`);
  t.same((await list({ after: 'a/b-1' })).contents, all.slice(2), 'start-after just before a/b/');
  t.same((await list({ after: 'a/b' })).contents, all.slice(1), 'start-after a/b (before a/b-1)');
  t.same((await list({ after: 'a/b/' })).contents, all.slice(3), 'start-after on a/b/');
  t.same((await list({ after: 'a/b/0' })).contents, all.slice(3), 'start-after inside a/b/');
  t.same(await list({ prefix: 'a/', delimiter: '/', after: 'a/b/' }), { contents: ['a/b0'], commonPrefixes: ['a/c/', 'a/d/'], truncated: false }, 'a common prefix that was the last page\'s last is not given again');
  t.same(await list({ prefix: 'a/', delimiter: '/', after: 'a/b-1' }), { contents: ['a/b0'], commonPrefixes: ['a/b/', 'a/c/', 'a/d/'], truncated: false });
  t.same(await list({ prefix: 'a/b/', after: 'a/b/' }), { contents: [], commonPrefixes: [], truncated: false });
  for (const maxKeys of [1, 2, 3]) {
    const pages: string[][] = [];
    const lasts: string[] = [];
    for (let after: string | undefined; pages.length < 20;) {
      const { page } = await walkPage(tree, { prefix: '', maxKeys, after });
      pages.push(page.contents.map((o) => o.key));
      if (!page.truncated) break;
      lasts.push(page.last!);
      after = page.last;
    }
    t.same(pages.flat(), all, `max-keys ${maxKeys}: paged to the end, every key once`);
    t.ok(pages.slice(0, -1).every((p) => p.length === maxKeys), `max-keys ${maxKeys}: every page full but the last`);
    if (maxKeys !== 2) t.ok(lasts.includes('a/b/'), `max-keys ${maxKeys}: a page ends on a/b/ and the next starts after it`);
  }
  const grouped: string[] = [];
  for (let after: string | undefined; grouped.length < 20;) {
    const { page } = await walkPage(tree, { prefix: 'a/', delimiter: '/', maxKeys: 1, after });
    grouped.push(...page.contents.map((o) => o.key), ...page.commonPrefixes);
    if (!page.truncated) break;
    after = page.last;
  }
  t.same(grouped, ['a/a-1', 'a/b-1', 'a/b/', 'a/b0', 'a/c/', 'a/d/'], 'delimiter "/", one a page: the folder common prefix once, in its place');
});

t.test('a folder object costs no master call of its own, but for the directory a prefix names', async (t) => {
  const tree = new Tree(['a/x', 'a/y/z'], ['a/b', 'a/c/d', 'e']);
  await walkPage(tree, { prefix: '', maxKeys: 1000 });
  t.same(tree.opened, ['', 'a', 'a/b', 'a/c', 'a/c/d', 'a/y', 'e'], 'each directory is read once: an empty one is known empty by that read');
  tree.opened = [];
  await walkPage(tree, { prefix: 'a/', delimiter: '/', maxKeys: 1000 });
  t.same(tree.opened, ['a', 'a/b', 'a/c', 'a/c/d', 'a/y'], 'grouped: the same reads');
  tree.opened = [];
  t.same((await walkPage(tree, { prefix: 'e/', maxKeys: 1000 })).got.contents, ['e/']);
  t.same(tree.opened, ['e', ''], 'the empty directory a prefix names: one read of its parent, from its name, tells it is there');
  tree.opened = [];
  t.same((await walkPage(tree, { prefix: 'a/y/', maxKeys: 1000 })).got.contents, ['a/y/z']);
  t.same(tree.opened, ['a/y'], 'one with entries: no more');
  tree.opened = [];
  t.same((await walkPage(tree, { prefix: 'a/b/', maxKeys: 1000, after: 'a/b/' })).got.contents, []);
  t.same(tree.opened, ['a/b'], 'nor where the page starts past its folder key');
});

t.test('a page of a huge flat directory reads the names from its start, not the directory from its top', async (t) => {
  const keys = Array.from({ length: 5000 }, (_, i) => `flat/k${String(i).padStart(5, '0')}`);
  const tree = new Tree(keys, [], [], 100);
  const { got } = await walkPage(tree, { prefix: '', maxKeys: 10, after: 'flat/k04000' });
  t.same(got.contents, keys.slice(4001, 4011));
  t.ok(tree.read <= 101 + 1, `after the continuation point: ${tree.read} entries read (one master page in flat, one entry above it)`);
  tree.read = 0;
  const byPrefix = await walkPage(tree, { prefix: 'flat/k033', maxKeys: 1000 });
  t.same(byPrefix.got.contents, keys.slice(3300, 3400));
  t.ok(tree.read <= 200, `a prefix starts the read at its place: ${tree.read} entries read (its 100, and the page past them that ends it)`);
});

t.test('the empty directory a prefix names is found without reading the names before it', async (t) => {
  // `d-…` and `d.…` sort between `d` and `d/`: a read of the parent from `d` would pass over all of them.
  const keys = [...Array.from({ length: 3000 }, (_, i) => `d-${String(i).padStart(5, '0')}`), 'd.txt', 'e'];
  const tree = new Tree(keys, ['d'], [], 100);
  t.same((await walkPage(tree, { prefix: 'd/', maxKeys: 1000 })).got.contents, ['d/']);
  t.ok(tree.read <= 2, `${tree.read} entries read`);
  tree.read = 0;
  t.same((await walkPage(tree, { prefix: 'x/', maxKeys: 1000 })).got.contents, [], 'a prefix naming no directory');
  t.ok(tree.read <= 2, `${tree.read} entries read`);
});

t.test("startAfter: a directory named in the page's start is still opened, a file of that name is not read again", async (t) => {
  t.equal(startAfter('', { prefix: '', after: 'a/x' }), 'a', 'dir a sorts as a/, after a');
  t.equal(startAfter('a', { prefix: '', after: 'a/x' }), 'x');
  t.equal(startAfter('a', { prefix: '', after: 'a/' }), undefined, 'the common prefix a/ itself: the whole of a');
  t.equal(startAfter('b', { prefix: '', after: 'a/x' }), undefined, 'a directory past the start is read whole');
  t.equal(startAfter('d', { prefix: 'd/k12', after: undefined }), 'k11\u{10ffff}', 'just below the prefix');
  t.equal(startAfter('d', { prefix: 'd/k𝄞', after: undefined }), 'k\u{1d11d}\u{10ffff}', 'a character past U+FFFF is one character');
  t.equal(startAfter('d', { prefix: 'd/k\ue000', after: undefined }), 'k\ud7ff\u{10ffff}', 'no surrogate is made');
  t.equal(startAfter('d', { prefix: 'd/k12', after: 'd/k5' }), 'k5', 'the later of the two');
});
