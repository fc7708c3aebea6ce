// The session layer: a retried command is applied once and answers with its first result.
import t from 'tap';
import { encodeCommand, encodeRaw, encodeRegister, SessionStateMachine, unwrapSessionResult, type SessionResult } from '../../../master/raft/session.js';
import { encodeKv, KvStateMachine } from './kv.js';

function setup(maxSessions = 10): { kv: KvStateMachine; sm: SessionStateMachine; next: () => number } {
  const kv = new KvStateMachine();
  let index = 0;
  return { kv, sm: new SessionStateMachine(kv, { maxSessions }), next: () => ++index };
}

t.test('a retried command (same client and seq) is applied once and returns the first result', async (t) => {
  const { kv, sm, next } = setup();
  const reg = sm.apply(encodeRegister(), next()) as SessionResult;
  t.equal(reg.status, 'registered');
  const clientId = unwrapSessionResult(reg) as string;
  const cas = encodeCommand(clientId, 1, encodeKv({ op: 'cas', key: 'k', expected: null, value: 'v' }));
  const first = sm.apply(cas, next());
  const retry = sm.apply(cas, next());
  t.same(first, { status: 'ok', result: true });
  t.same(retry, first, 'the retry answers true although a second CAS would now fail');
  t.equal(kv.applyCount, 1);
});

t.test('an older sequence number is refused without being applied', async (t) => {
  const { kv, sm, next } = setup();
  const id = unwrapSessionResult(sm.apply(encodeRegister(), next())) as string;
  sm.apply(encodeCommand(id, 1, encodeKv({ op: 'put', key: 'k', value: 'a' })), next());
  sm.apply(encodeCommand(id, 2, encodeKv({ op: 'put', key: 'k', value: 'b' })), next());
  const stale = sm.apply(encodeCommand(id, 1, encodeKv({ op: 'put', key: 'k', value: 'a' })), next());
  t.same(stale, { status: 'staleSequence' });
  t.equal(kv.get('k'), 'b');
  t.throws(() => unwrapSessionResult(stale), { code: 'RAFT_STALE_SEQUENCE' });
});

t.test('sessions are bounded: the least recently used is evicted and then expires', async (t) => {
  const { sm, next } = setup(2);
  const a = unwrapSessionResult(sm.apply(encodeRegister(), next())) as string;
  const b = unwrapSessionResult(sm.apply(encodeRegister(), next())) as string;
  sm.apply(encodeCommand(a, 1, encodeKv({ op: 'put', key: 'k', value: 'a' })), next()); // a is now most recent
  const c = unwrapSessionResult(sm.apply(encodeRegister(), next())) as string;
  t.equal(sm.sessionCount(), 2);
  t.same(sm.apply(encodeCommand(b, 1, encodeKv({ op: 'put', key: 'k', value: 'b' })), next()), { status: 'sessionExpired' }, 'b was evicted');
  t.same(sm.apply(encodeCommand(a, 2, encodeKv({ op: 'put', key: 'k', value: 'a2' })), next()), { status: 'ok', result: null });
  t.not(c, a);
});

t.test('the session table travels in snapshots, so a retry after restore is still deduplicated', async (t) => {
  const { sm, next } = setup();
  const id = unwrapSessionResult(sm.apply(encodeRegister(), next())) as string;
  const cmd = encodeCommand(id, 1, encodeKv({ op: 'cas', key: 'k', expected: null, value: 'v' }));
  sm.apply(cmd, next());
  const kv2 = new KvStateMachine();
  const restored = new SessionStateMachine(kv2);
  restored.restore(sm.snapshot() as Uint8Array);
  t.equal(kv2.get('k'), 'v');
  t.same(restored.apply(cmd, next()), { status: 'ok', result: true });
  t.equal(kv2.applyCount, 0, 'not applied again');
});

t.test('raw commands bypass sessions', async (t) => {
  const { kv, sm, next } = setup();
  const put = encodeRaw(encodeKv({ op: 'put', key: 'k', value: 'r' }));
  sm.apply(put, next());
  sm.apply(put, next());
  t.equal(kv.applyCount, 2);
});

t.test('results too large to keep are applied but a retry is told so', async (t) => {
  const kv = new KvStateMachine();
  const sm = new SessionStateMachine(kv, { maxResultBytes: 2 });
  const id = unwrapSessionResult(sm.apply(encodeRegister(), 1)) as string;
  const cmd = encodeCommand(id, 1, encodeKv({ op: 'cas', key: 'k', expected: null, value: 'v' }));
  t.same(sm.apply(cmd, 2), { status: 'ok', result: true }, '"true" is 4 bytes > 2');
  t.same(sm.apply(cmd, 3), { status: 'resultTooLarge' });
  t.equal(kv.applyCount, 1);
});

t.test('encodeCommand validates its inputs', async (t) => {
  t.throws(() => encodeCommand('', 1, new Uint8Array()));
  t.throws(() => encodeCommand('c1', 0, new Uint8Array()));
  t.throws(() => encodeCommand('x'.repeat(65), 1, new Uint8Array()));
});
