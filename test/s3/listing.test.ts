// The lazy listing walk (s3/listing.ts) against a simple model (every key in one sorted array,
// filtered, rolled up and sliced), over seeded random trees and queries, paging to the end; and
// that the walk is lazy: a page opens only the directories it needs.
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

t.test('pages of the lazy walk match the model, paged to the end', async (t) => {
  let checked = 0;
  for (let seed = 1; seed <= 40; seed++) {
    const r = rng(seed);
    const keys = randomKeys(r, 20 + r(120));
    // Empty directories and a file being written: neither is an object (the names are outside PARTS, so they clash with no key).
    const tree = new Tree(keys, ['empty/dir', 'e/empty'], ['e/writing']);
    const prefixes = ['', 'a', 'a/', 'a-', 'e', 'x/', 'x/a', '𝄞/', 'no/such/'];
    const prefix = prefixes[r(prefixes.length)]!;
    const delimiter = [undefined, '/', '-', 'b'][r(4)];
    const maxKeys = [1, 2, 3, 7, 1000][r(5)]!;
    let after: string | undefined = r(3) === 0 ? keys[r(keys.length)] : undefined;
    for (let pages = 0; pages < 500; pages++) {
      const q = { prefix, delimiter, maxKeys, after };
      const { page, got } = await walkPage(tree, q);
      t.same(got, model(keys, q), `seed ${seed}: ${JSON.stringify(q)}`);
      checked++;
      if (!page.truncated) break;
      after = page.last;
    }
  }
  t.ok(checked > 100, `${checked} pages checked`);
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

t.test('firstObject: empty directories hold nothing; a file being written counts only when asked', async (t) => {
  const tree = new Tree(['keep/x'], ['empty/a/b', 'empty/c'], ['writing/w']);
  t.equal(await firstObject(tree.list, 'empty', { completeOnly: true }), undefined);
  t.equal((await firstObject(tree.list, 'keep', { completeOnly: true }))?.key, 'keep/x');
  t.equal(await firstObject(tree.list, 'writing', { completeOnly: true }), undefined);
  t.equal((await firstObject(tree.list, 'writing', { completeOnly: false }))?.key, 'writing/w');
  const { got } = await walkPage(tree, { prefix: '', delimiter: '/', maxKeys: 10 });
  t.same(got.commonPrefixes, ['keep/'], 'no common prefix for a directory without objects');
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
