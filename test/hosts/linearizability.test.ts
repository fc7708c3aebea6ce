// The checker of the partition scenarios' histories: it accepts what is linearizable and, what
// matters more, rejects a stale read (a check that cannot fail checks nothing).
import t from 'tap';
import { checkLinearizable, checkPerKey, registerModel, type Operation, type RegisterInput } from './linearizability.js';

type Op = Operation<RegisterInput, number>;
const w = (client: string, value: number, call: number, ret: number): Op => ({ client, input: { kind: 'write', value }, output: undefined, call, ret });
const r = (client: string, value: number, call: number, ret: number): Op => ({ client, input: { kind: 'read' }, output: value, call, ret });
const model = registerModel(1);

t.test('a sequential history that reads what was written is linearizable', async (t) => {
  t.ok(checkLinearizable(model, [r('a', 1, 0, 1), w('a', 2, 2, 3), r('b', 2, 4, 5), w('b', 3, 6, 7), r('a', 3, 8, 9)]).ok);
});

t.test('a stale read (the old value, asked after the new one was acknowledged) is not', async (t) => {
  const res = checkLinearizable(model, [w('a', 2, 0, 10), r('b', 1, 11, 12)]);
  t.notOk(res.ok);
  t.match(res.ok ? '' : res.reason, /not linearizable/);
  // ...but the same read overlapping the write may see either value.
  t.ok(checkLinearizable(model, [w('a', 2, 0, 10), r('b', 1, 5, 12)]).ok);
  t.ok(checkLinearizable(model, [w('a', 2, 0, 10), r('b', 2, 5, 12)]).ok);
});

t.test('reads may not go back in time: new value then old value, one after the other, is not linearizable', async (t) => {
  t.notOk(checkLinearizable(model, [w('a', 2, 0, 100), r('b', 2, 10, 20), r('c', 1, 30, 40)]).ok);
});

t.test('a write whose outcome is unknown may take effect late, or never', async (t) => {
  t.ok(checkLinearizable(model, [w('a', 2, 0, Infinity), r('b', 1, 5, 6), r('b', 2, 50, 60)]).ok, 'took effect after the first read');
  t.ok(checkLinearizable(model, [w('a', 2, 0, Infinity), r('b', 1, 50, 60)]).ok, 'never took effect');
  t.notOk(checkLinearizable(model, [w('a', 2, 0, Infinity), r('b', 2, 5, 6), r('b', 1, 50, 60)]).ok, 'but once seen, it stays');
});

t.test('a value nobody wrote is not linearizable', async (t) => {
  t.notOk(checkLinearizable(model, [w('a', 2, 0, 1), r('b', 7, 2, 3)]).ok);
});

t.test('keys are checked apart, and the failing key is named', async (t) => {
  const res = checkPerKey(() => registerModel(1), [
    { ...w('a', 2, 0, 1), key: '/x' }, { ...r('a', 2, 2, 3), key: '/x' },
    { ...w('a', 3, 0, 1), key: '/y' }, { ...r('b', 1, 2, 3), key: '/y' },
  ]);
  t.notOk(res.ok);
  t.match(res.ok ? '' : res.reason, /^\/y: not linearizable/);
});

t.test('a long concurrent history is checked within the bound', async (t) => {
  // Three clients, each writing its own values and reading, with overlapping windows: 300 operations.
  const ops: Op[] = [];
  let value = 1;
  for (let i = 0; i < 100; i++) {
    const base = i * 10;
    ops.push(w('a', value + 1, base, base + 6));
    ops.push(r('b', i % 2 === 0 ? value : value + 1, base + 2, base + 4));
    ops.push(r('c', value + 1, base + 7, base + 9));
    value++;
  }
  t.ok(checkLinearizable(registerModel(1), ops).ok);
});
