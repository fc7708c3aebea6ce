// The request id check (common/request-id.ts): a caller's id is kept only when well formed; any
// other is replaced by a fresh one and never logged (log injection).
import t from 'tap';
import { acceptRequestId, currentRequestId, isWellFormedRequestId, MAX_REQUEST_ID_CHARS, newRequestId, outgoingRequestId, runWithRequestId } from '../../common/request-id.js';

t.test('well-formed ids are kept as they are', async (t) => {
  for (const id of ['3f2a9c0d11223344', 'copy-t7-42', 'a', 'Trace.ID:01-ab_c', '0'.repeat(MAX_REQUEST_ID_CHARS)]) {
    t.ok(isWellFormedRequestId(id), `${id} is well formed`);
    t.same(acceptRequestId(id), { id, replaced: false }, `${id} kept`);
  }
  t.ok(isWellFormedRequestId(newRequestId()), 'a fresh id passes the check itself');
  t.match(newRequestId(), /^[0-9a-f]{16}$/, 'a fresh id is 16 hex digits');
});

t.test('malformed, oversized and control-character ids are replaced by fresh ones', async (t) => {
  const bad: unknown[] = [
    '', '0'.repeat(MAX_REQUEST_ID_CHARS + 1), 'x'.repeat(10_000), 'abc\ndef', 'abc\r\n{"level":60}', 'a\u0000b', 'tab\there', 'a b',
    '"quoted"', 'semi;colon', 'ünïcode', 'a/b', '$(rm -rf /)', ['a', 'b'], 42,
  ];
  for (const raw of bad) {
    t.notOk(isWellFormedRequestId(raw), `${JSON.stringify(raw).slice(0, 40)} is refused`);
    const { id, replaced } = acceptRequestId(raw);
    t.ok(replaced, 'said to be replaced');
    t.not(id, raw, 'not the value sent');
    t.match(id, /^[0-9a-f]{16}$/, 'a fresh id instead');
  }
  const none = acceptRequestId(undefined);
  t.notOk(none.replaced, 'no id sent: a fresh one, nothing replaced');
  t.match(none.id, /^[0-9a-f]{16}$/);
});

t.test('calls in an operation carry its id; calls outside one get a fresh id each', async (t) => {
  t.equal(currentRequestId(), undefined, 'no operation here');
  t.not(outgoingRequestId(), outgoingRequestId(), 'each call outside an operation gets its own id');
  const seen = await runWithRequestId('op-1', async () => {
    await new Promise((r) => setImmediate(r));
    return [currentRequestId(), outgoingRequestId()];
  });
  t.same(seen, ['op-1', 'op-1'], 'the id survives awaits');
});
