import t from 'tap';
import { checkLinearizable, type KvOperation } from './linearizability.js';

const put = (clientId: number, key: string, value: string, call: number, ret: number): KvOperation => ({
  clientId, key, input: { kind: 'put', value }, output: null, call, ret,
});
const get = (clientId: number, key: string, output: string | null, call: number, ret: number): KvOperation => ({
  clientId, key, input: { kind: 'get' }, output, call, ret,
});
const cas = (clientId: number, key: string, expected: string | null, value: string, output: boolean | undefined, call: number, ret: number): KvOperation => ({
  clientId, key, input: { kind: 'cas', expected, value }, output, call, ret,
});

t.test('a sequential history that follows the model is linearizable', async (t) => {
  t.ok(checkLinearizable([put(1, 'x', 'a', 0, 1), get(1, 'x', 'a', 2, 3), cas(1, 'x', 'a', 'b', true, 4, 5), get(1, 'x', 'b', 6, 7)]).ok);
});

t.test('a read of a value never written is not linearizable', async (t) => {
  t.notOk(checkLinearizable([put(1, 'x', 'a', 0, 1), get(2, 'x', 'z', 2, 3)]).ok);
});

t.test('a stale read after a completed write is not linearizable', async (t) => {
  const r = checkLinearizable([put(1, 'x', 'a', 0, 1), put(1, 'x', 'b', 2, 3), get(2, 'x', 'a', 4, 5)]);
  t.notOk(r.ok);
  t.equal(r.badKey, 'x');
});

t.test('concurrent operations may take effect in either order', async (t) => {
  // The read overlaps the write: it may see the old or the new value.
  t.ok(checkLinearizable([put(1, 'x', 'a', 0, 1), put(1, 'x', 'b', 2, 10), get(2, 'x', 'a', 3, 4)]).ok);
  t.ok(checkLinearizable([put(1, 'x', 'a', 0, 1), put(1, 'x', 'b', 2, 10), get(2, 'x', 'b', 3, 4)]).ok);
});

t.test('two reads cannot see two writes in opposite orders (no new-old inversion)', async (t) => {
  // Writer puts b then c-concurrent; reader 2 sees c then b after c was already visible.
  const history = [
    put(1, 'x', 'b', 0, 100),
    put(3, 'x', 'c', 0, 100),
    get(2, 'x', 'c', 10, 20),
    get(2, 'x', 'b', 30, 40),
    get(4, 'x', 'c', 50, 60),
  ];
  t.notOk(checkLinearizable(history).ok);
});

t.test('an operation with unknown outcome may or may not have taken effect', async (t) => {
  const lost = put(1, 'x', 'a', 0, Infinity);
  t.ok(checkLinearizable([lost, get(2, 'x', null, 5, 6)]).ok, 'not applied');
  t.ok(checkLinearizable([lost, get(2, 'x', 'a', 5, 6)]).ok, 'applied');
  t.notOk(checkLinearizable([put(1, 'x', 'a', 0, Infinity), get(2, 'x', 'a', 5, 6), get(2, 'x', null, 7, 8)]).ok, 'but not undone');
});

t.test('compare-and-set results must agree with the order', async (t) => {
  // Both CAS from null succeed: impossible.
  t.notOk(checkLinearizable([cas(1, 'x', null, 'a', true, 0, 10), cas(2, 'x', null, 'b', true, 0, 10)]).ok);
  t.ok(checkLinearizable([cas(1, 'x', null, 'a', true, 0, 10), cas(2, 'x', null, 'b', false, 0, 10), get(3, 'x', 'a', 11, 12)]).ok);
  t.ok(checkLinearizable([cas(1, 'x', null, 'a', undefined, 0, Infinity), get(3, 'x', 'a', 11, 12)]).ok);
});

t.test('keys are checked independently', async (t) => {
  const r = checkLinearizable([put(1, 'x', 'a', 0, 1), put(1, 'y', 'b', 0, 1), get(2, 'y', 'a', 2, 3), get(2, 'x', 'a', 2, 3)]);
  t.notOk(r.ok);
  t.equal(r.badKey, 'y');
});

t.test('a large concurrent linearizable history is checked quickly (memoisation)', async (t) => {
  const history: KvOperation[] = [];
  // 12 concurrent writers and readers over one key, all overlapping: a naive search is 12!.
  for (let i = 0; i < 12; i++) history.push(put(i, 'x', `v${i}`, 0, 1000));
  for (let i = 0; i < 6; i++) history.push(get(100 + i, 'x', `v${i * 2}`, 500 + i, 2000));
  const started = Date.now();
  const r = checkLinearizable(history);
  t.ok(r.ok);
  t.notOk(r.timedOut);
  t.ok(Date.now() - started < 5000, 'finishes in time');
});
