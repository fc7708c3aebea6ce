// Path order (common/list-order.ts): compareUtf8 against the UTF-8 bytes themselves, and
// selectPage against the plainest model (sort everything, drop up to `after`, slice), over seeded
// random names that mix ASCII, '-' and '.' (which sort before '/'), and characters on both sides
// of the surrogates.
import t from 'tap';
import { compareUtf8, PathOrderIndex, pathOrderKey, selectPage } from '../../common/list-order.js';

const byBytes = (a: string, b: string) => Buffer.compare(Buffer.from(a), Buffer.from(b));

function rng(seed: number) {
  let s = seed >>> 0;
  return (n: number) => {
    s = (s + 0x6d2b79f5) >>> 0;
    let z = Math.imul(s ^ (s >>> 15), 1 | s);
    z ^= z + Math.imul(z ^ (z >>> 7), 61 | z);
    return ((z ^ (z >>> 14)) >>> 0) % n;
  };
}

const CHARS = ['a', 'b', '-', '.', '0', 'z', 'ü', '\ud7ff', '\ue000', '\uff5e', '\uffff', '𝄞', '😀'];
const randomName = (r: (n: number) => number) => Array.from({ length: 1 + r(4) }, () => CHARS[r(CHARS.length)]).join('');

t.test('compareUtf8 orders as the UTF-8 bytes do', async (t) => {
  const r = rng(7);
  let checked = 0;
  for (let i = 0; i < 20_000; i++) {
    const [a, b] = [randomName(r), randomName(r)];
    if (Math.sign(compareUtf8(a, b)) !== Math.sign(byBytes(a, b))) t.fail(`${JSON.stringify(a)} vs ${JSON.stringify(b)}`);
    checked++;
  }
  t.equal(checked, 20_000);
  t.ok(compareUtf8('\uffff', '𝄞') < 0, 'U+FFFF sorts before U+1D11E (UTF-16 units put it after)');
  t.ok('\uffff' > '𝄞', 'as JavaScript\'s < does not');
});

t.test('selectPage: the page after `after` in path order, as sorting everything would give', async (t) => {
  for (let seed = 1; seed <= 30; seed++) {
    const r = rng(seed);
    const names = new Map<string, boolean>();
    for (let i = 0, n = r(300); i < n; i++) names.set(randomName(r), r(3) === 0);
    const items = [...names].map(([name, dir]) => ({ name, dir }));
    const keyOf = (e: { name: string; dir: boolean }) => pathOrderKey(e.name, e.dir);
    const sorted = items.map(keyOf).sort(byBytes);
    const limit = 1 + r(40);
    // Page to the end from the start, then once from a random point.
    let after: string | undefined;
    const seen: string[] = [];
    for (let pages = 0; pages < 1000; pages++) {
      const { page, more } = selectPage(items, keyOf, after, limit);
      const want = sorted.filter((k) => after === undefined || byBytes(k, after) > 0);
      t.same(page.map(keyOf), want.slice(0, limit), `seed ${seed}, after ${JSON.stringify(after)}`);
      t.equal(more, want.length > limit);
      seen.push(...page.map(keyOf));
      if (!more) break;
      after = keyOf(page.at(-1)!);
    }
    t.same(seen, sorted, `seed ${seed}: the pages together are every name once, in order`);
  }
  t.same(selectPage([{ name: 'a', dir: true }, { name: 'a-b', dir: false }, { name: 'a0', dir: false }], (e) => pathOrderKey(e.name, e.dir), undefined, 10).page.map((e) => e.name),
    ['a-b', 'a', 'a0'], 'a directory a sorts as a/: after a-b, before a0');
  t.throws(() => selectPage([], String, undefined, 0), /limit/);
});

t.test('PathOrderIndex: keys added and removed at random page as sorting the live set would give', async (t) => {
  for (let seed = 1; seed <= 20; seed++) {
    const r = rng(100 + seed);
    const live = new Set<string>();
    for (let i = 0, n = r(50); i < n; i++) live.add(randomName(r));
    const index = new PathOrderIndex(live);
    for (let step = 0; step < 300; step++) {
      const key = randomName(r);
      if (r(3) === 0) {
        index.remove(key);
        live.delete(key);
      } else {
        index.add(key);
        live.add(key);
      }
      const sorted = [...live].sort(byBytes);
      const after = r(4) === 0 ? undefined : randomName(r);
      const limit = 1 + r(20);
      const want = sorted.filter((k) => after === undefined || byBytes(k, after) > 0);
      const { keys, more } = index.page(after, limit);
      t.same(keys, want.slice(0, limit), `seed ${seed} step ${step}`);
      t.equal(more, want.length > limit);
    }
    t.equal(index.size, live.size, `seed ${seed}: one key each, however often added`);
  }
  t.throws(() => new PathOrderIndex([]).page(undefined, 0), /limit/);
});
