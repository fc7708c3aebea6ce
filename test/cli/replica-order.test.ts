// The client's replica order for reads (cli/client-download.ts): readers spread across copies.
import t from 'tap';
import { orderForRead } from '../../cli/client-download.js';

t.test('orderForRead rotates by the spread', async (t) => {
  const r = ['a', 'b', 'c'];
  t.same(orderForRead(r, 0), ['a', 'b', 'c']);
  t.same(orderForRead(r, 1), ['b', 'c', 'a']);
  t.same(orderForRead(r, 2), ['c', 'a', 'b']);
  t.same(orderForRead(r, 3), ['a', 'b', 'c'], 'wraps');
  t.same(orderForRead(r, 7), ['b', 'c', 'a']);
  t.same(orderForRead(r, -1), ['c', 'a', 'b'], 'negative spreads rotate the other way');
  t.same(orderForRead(r, -4), ['c', 'a', 'b']);
  t.same(orderForRead(r, Number.MAX_SAFE_INTEGER), orderForRead(r, Number.MAX_SAFE_INTEGER % 3));
  t.same(r, ['a', 'b', 'c'], 'input not modified');
  t.not(orderForRead(r, 0), r, 'a new array even with no rotation');
  t.same(orderForRead([], 5), []);
  t.same(orderForRead(['only'], 12345), ['only']);
});

t.test('orderForRead spreads readers: consecutive spreads put every replica first once', async (t) => {
  for (const n of [1, 2, 3, 5]) {
    const replicas = Array.from({ length: n }, (_, i) => ({ id: `s${i}` }));
    const firsts = Array.from({ length: n }, (_, k) => orderForRead(replicas, 100 + k)[0]!.id);
    t.same([...firsts].sort(), replicas.map((r) => r.id).sort(), `n=${n}: each first once`);
    for (let k = 0; k < n; k++) {
      const o = orderForRead(replicas, k);
      t.same([...o].sort((x, y) => (x.id < y.id ? -1 : 1)), replicas, `n=${n}, spread ${k}: a permutation of the same objects`);
      t.equal(o[0], replicas[k], 'the very same object, not a copy');
    }
  }
});
