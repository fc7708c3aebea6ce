// common/errors.ts: error codes and HTTP statuses, error bodies, and classification of
// Node/undici failures.
import t from 'tap';
import { errors as undiciErrors } from 'undici';
import { DfsError, errorFromBody, ErrorCodes, isErrorCode, toDfsError, type ErrorCode } from '../../common/errors.js';

const codes = Object.keys(ErrorCodes) as ErrorCode[];

/** Node-style system error: an Error with a string `code`. */
function sysError(code: string, message = `${code} happened`): Error {
  return Object.assign(new Error(message), { code });
}

t.test('every error code maps to an HTTP error status', async (t) => {
  t.ok(codes.length >= 20, 'the table is populated');
  for (const code of codes) {
    const status = ErrorCodes[code];
    t.ok(Number.isInteger(status) && status >= 400 && status <= 599, `${code} -> ${status} is a 4xx/5xx status`);
    const e = new DfsError(code, 'm');
    t.equal(e.status, status, `DfsError(${code}).status`);
    t.equal(e.code, code);
    t.ok(isErrorCode(code), `isErrorCode(${code})`);
  }
});

t.test('statuses of the well-known codes', async (t) => {
  const want: Partial<Record<ErrorCode, number>> = {
    INVALID_ARGUMENT: 400,
    INVALID_PATH: 400,
    UNAUTHORIZED: 401,
    NOT_FOUND: 404,
    CHUNK_NOT_FOUND: 404,
    EXISTS: 409,
    CHUNK_EXISTS: 409,
    STALE_VERSION: 409,
    BODY_TOO_LARGE: 413,
    NOT_LEADER: 421,
    INTERNAL: 500,
    IO_ERROR: 500,
    CHECKSUM_MISMATCH: 502,
    PIPELINE_FAILED: 502,
    UNAVAILABLE: 503,
    NO_CHUNKSERVERS: 503,
    TIMEOUT: 504,
    DISK_FULL: 507,
  };
  for (const [code, status] of Object.entries(want)) t.equal(ErrorCodes[code as ErrorCode], status, code);
});

t.test('DfsError', async (t) => {
  const e = new DfsError('NOT_FOUND', 'no such file: /a', { path: '/a' });
  t.ok(e instanceof Error);
  t.equal(e.name, 'DfsError');
  t.equal(e.message, 'no such file: /a');
  t.equal(e.status, 404);
  t.same(e.details, { path: '/a' });
  t.same(new DfsError('INTERNAL', 'x').details, {}, 'details default to {}');
  t.same(e.toBody(), { error: { path: '/a', code: 'NOT_FOUND', message: 'no such file: /a' } });
  const clash = new DfsError('TIMEOUT', 'real', { code: 'FAKE', message: 'fake', extra: 1 });
  t.same(clash.toBody(), { error: { code: 'TIMEOUT', message: 'real', extra: 1 } }, 'details cannot override code or message');
  t.same(JSON.parse(JSON.stringify(e.toBody())), e.toBody(), 'body is plain JSON');
});

t.test('isErrorCode', async (t) => {
  for (const v of ['NOT_FOUND', 'INTERNAL', 'CHECKSUM_MISMATCH']) t.ok(isErrorCode(v), v);
  for (const v of ['not_found', 'NOT FOUND', '', 'toString', 'constructor', '__proto__', 'hasOwnProperty', 'valueOf', 404, null, undefined, {}, ['NOT_FOUND']]) {
    t.notOk(isErrorCode(v), `rejects ${JSON.stringify(v) ?? String(v)}`);
  }
});

t.test('errorFromBody: well-formed bodies round-trip', async (t) => {
  for (const code of codes) {
    const orig = new DfsError(code, `message for ${code}`, { handle: 7, nested: { a: [1, 2] } });
    const wire = JSON.parse(JSON.stringify(orig.toBody()));
    const back = errorFromBody(wire, 200);
    t.ok(back instanceof DfsError, `${code}: a DfsError`);
    t.equal(back.code, code, `${code}: code`);
    t.equal(back.status, orig.status, `${code}: status from the code, not the HTTP status`);
    t.equal(back.message, orig.message, `${code}: message`);
    t.same(back.details, { handle: 7, nested: { a: [1, 2] } }, `${code}: details kept, code/message not duplicated`);
  }
  const leader = errorFromBody({ error: { code: 'NOT_LEADER', message: 'ask n2', leader: 'n2:9401' } }, 421);
  t.equal(leader.code, 'NOT_LEADER');
  t.equal(leader.details.leader, 'n2:9401', 'extra fields survive (e.g. a leader hint)');
  const sneaky = errorFromBody({ error: { code: 'NOT_FOUND', message: 'm', status: 200 } }, 404);
  t.equal(sneaky.status, 404, 'a status field in the body does not change the status');
});

t.test('errorFromBody: malformed and non-JSON bodies fall back by HTTP status', async (t) => {
  const bodies: Array<[string, unknown]> = [
    ['undefined', undefined],
    ['null', null],
    ['empty object', {}],
    ['html text', '<html><body>502 Bad Gateway</body></html>'],
    ['plain text', 'Internal Server Error'],
    ['number', 42],
    ['array', [{ error: { code: 'NOT_FOUND', message: 'x' } }]],
    ['error is a string', { error: 'NOT_FOUND' }],
    ['error is null', { error: null }],
    ['unknown code', { error: { code: 'NOPE', message: 'x' } }],
    ['lower-case code', { error: { code: 'not_found', message: 'x' } }],
    ['prototype key as code', { error: { code: '__proto__', message: 'x' } }],
    ['toString as code', { error: { code: 'toString', message: 'x' } }],
    ['code missing', { error: { message: 'x' } }],
    ['message missing', { error: { code: 'NOT_FOUND' } }],
    ['message not a string', { error: { code: 'NOT_FOUND', message: 404 } }],
    ['flat shape', { code: 'NOT_FOUND', message: 'x' }],
  ];
  for (const [name, body] of bodies) {
    for (const [status, code] of [[500, 'UNAVAILABLE'], [502, 'UNAVAILABLE'], [503, 'UNAVAILABLE'], [504, 'UNAVAILABLE'], [400, 'INTERNAL'], [404, 'INTERNAL'], [200, 'INTERNAL']] as const) {
      const e = errorFromBody(body, status);
      t.equal(e.code, code, `${name} with HTTP ${status} -> ${code}`);
      t.equal(e.message, `unexpected HTTP ${status} from peer`, `${name} with HTTP ${status}: message names the status`);
    }
  }
});

t.test('toDfsError passes DfsErrors through untouched', async (t) => {
  const e = new DfsError('STALE_VERSION', 'old', { handle: 1 });
  t.equal(toDfsError(e), e, 'same instance');
  t.equal(toDfsError(e, 'anything'), e);
});

t.test('toDfsError: connection failures are UNAVAILABLE', async (t) => {
  for (const code of ['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'EHOSTUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'UND_ERR_SOCKET', 'UND_ERR_CLOSED', 'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_ABORTED']) {
    const direct = toDfsError(sysError(code), 'fetching chunk 5');
    t.equal(direct.code, 'UNAVAILABLE', `${code} -> UNAVAILABLE`);
    t.equal(direct.status, 503);
    t.equal(direct.message, `fetching chunk 5 failed: ${code}`, `${code}: message`);
    // how undici's fetch reports them: TypeError('fetch failed') with the system error as cause
    const viaCause = toDfsError(new TypeError('fetch failed', { cause: sysError(code) }));
    t.equal(viaCause.code, 'UNAVAILABLE', `fetch failed (cause ${code}) -> UNAVAILABLE`);
    t.equal(viaCause.message, `request failed: ${code}`, 'default label');
  }
  // Node 20's happy-eyeballs connect reports an AggregateError that carries the code
  const agg = Object.assign(new AggregateError([sysError('ECONNREFUSED'), sysError('ECONNREFUSED')], ''), { code: 'ECONNREFUSED' });
  t.equal(toDfsError(new TypeError('fetch failed', { cause: agg })).code, 'UNAVAILABLE', 'AggregateError cause');
});

t.test('toDfsError: real undici error classes', async (t) => {
  const cases: Array<[Error, string]> = [
    [new undiciErrors.SocketError('other side closed'), 'UNAVAILABLE'],
    [new undiciErrors.ClientClosedError(), 'UNAVAILABLE'],
    [new undiciErrors.ConnectTimeoutError(), 'UNAVAILABLE'],
    [new undiciErrors.RequestAbortedError(), 'UNAVAILABLE'],
    [new undiciErrors.HeadersTimeoutError(), 'TIMEOUT'],
    [new undiciErrors.BodyTimeoutError(), 'TIMEOUT'],
    [new undiciErrors.InvalidArgumentError('bad'), 'INTERNAL'],
  ];
  for (const [err, code] of cases) {
    const e = toDfsError(err, 'req');
    t.equal(e.code, code, `${err.constructor.name} (${(err as { code?: string }).code}) -> ${code}`);
  }
});

t.test('toDfsError: timeouts', async (t) => {
  for (const code of ['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'ETIMEDOUT']) {
    const e = toDfsError(sysError(code), 'heartbeat');
    t.equal(e.code, 'TIMEOUT', `${code} -> TIMEOUT`);
    t.equal(e.status, 504);
    t.equal(e.message, 'heartbeat timed out');
    t.equal(toDfsError(new TypeError('fetch failed', { cause: sysError(code) })).code, 'TIMEOUT', `${code} as cause -> TIMEOUT`);
  }
  const domTimeout = new DOMException('The operation was aborted due to timeout', 'TimeoutError');
  t.equal(toDfsError(domTimeout, 'x').code, 'TIMEOUT', 'DOMException TimeoutError (AbortSignal.timeout)');
  const named = Object.assign(new Error('t'), { name: 'TimeoutError' });
  t.equal(toDfsError(named).code, 'TIMEOUT', 'any error named TimeoutError');
});

t.test('toDfsError: aborts', async (t) => {
  const ctl = new AbortController();
  ctl.abort();
  const reason = ctl.signal.reason as Error;
  t.equal(reason.name, 'AbortError');
  const e = toDfsError(reason, 'upload');
  t.equal(e.code, 'UNAVAILABLE', 'AbortSignal reason -> UNAVAILABLE');
  t.equal(e.message, 'upload was aborted');
  t.equal(toDfsError(new DOMException('aborted', 'AbortError')).code, 'UNAVAILABLE', 'DOMException AbortError (numeric .code 20 ignored)');
  t.equal(toDfsError(Object.assign(new Error('a'), { name: 'AbortError' })).code, 'UNAVAILABLE', 'plain Error named AbortError');
});

t.test('toDfsError: disk full', async (t) => {
  const e = toDfsError(sysError('ENOSPC', 'ENOSPC: no space left on device, write'), 'writing chunk 3');
  t.equal(e.code, 'DISK_FULL');
  t.equal(e.status, 507);
  t.equal(e.message, 'writing chunk 3: no space left on device');
});

t.test('toDfsError: anything else is INTERNAL with the original message', async (t) => {
  const cases: Array<[unknown, string]> = [
    [sysError('EACCES', 'EACCES: permission denied'), 'req failed: EACCES: permission denied'],
    [sysError('EIO', 'EIO: i/o error'), 'req failed: EIO: i/o error'],
    [new TypeError('x is not a function'), 'req failed: x is not a function'],
    [new Error('boom'), 'req failed: boom'],
    ['a string', 'req failed: a string'],
    [42, 'req failed: 42'],
    [null, 'req failed: null'],
    [undefined, 'req failed: undefined'],
    [{}, 'req failed: [object Object]'],
    [{ code: 42, message: 'numeric code' }, 'req failed: numeric code'],
  ];
  for (const [err, message] of cases) {
    const e = toDfsError(err, 'req');
    t.ok(e instanceof DfsError, `${message}: a DfsError`);
    t.equal(e.code, 'INTERNAL', `${message}: INTERNAL`);
    t.equal(e.status, 500);
    t.equal(e.message, message);
  }
  t.equal(toDfsError(new Error('x')).message, 'request failed: x', 'default label');
});

t.test('toDfsError: the error itself wins over its cause', async (t) => {
  const e = toDfsError(Object.assign(new Error('outer'), { code: 'ECONNRESET', cause: sysError('ENOSPC') }));
  t.equal(e.code, 'UNAVAILABLE', "outer code is used, not the cause's");
  const timeoutWithCause = Object.assign(new Error('t'), { name: 'TimeoutError', cause: sysError('ECONNREFUSED') });
  t.equal(toDfsError(timeoutWithCause).code, 'TIMEOUT', 'a TimeoutError stays a timeout');
});
