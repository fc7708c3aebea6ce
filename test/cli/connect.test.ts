// connect()'s arguments, as a JavaScript caller may get them wrong: each mistake is an
// INVALID_ARGUMENT DfsError naming the argument, thrown before anything is contacted.
import t, { type Test } from 'tap';
import { connect, CONNECT_LIMITS } from '../../cli/api.js';
import { DfsError } from '../../common/errors.js';

const refused = (t: Test, call: () => unknown, message: RegExp, what: string) => {
  try {
    call();
    t.fail(`${what}: accepted`);
  } catch (err) {
    t.ok(err instanceof DfsError, `${what}: a DfsError`);
    t.match(err, { code: 'INVALID_ARGUMENT', message }, what);
  }
};

t.test('masters: a string or an array of strings', async (t) => {
  const bad = connect as unknown as (m?: unknown, o?: unknown) => unknown;
  refused(t, () => bad({ masters: '127.0.0.1:9400' }), /masters must be .* not an object \(options go second\)/, 'an options object first');
  refused(t, () => bad(9400), /not a number/, 'a number');
  refused(t, () => bad(['127.0.0.1:9400', 7]), /an array with a non-string entry/, 'an array with a number');
  refused(t, () => bad(null), /not null/, 'null');
  refused(t, () => connect('127.0.0.1'), /'127\.0\.0\.1' is not host:port/, 'no port');
  t.ok(connect(['127.0.0.1:9400', '127.0.0.1:9401']), 'an array of host:port is taken');
});

t.test('options: typed and within limits', async (t) => {
  const bad = connect as unknown as (m: string, o?: unknown) => unknown;
  const m = '127.0.0.1:9400';
  refused(t, () => bad(m, { token: 7 }), /token: /, 'a token that is no string');
  refused(t, () => bad(m, { token: '' }), /token: /, 'an empty token');
  refused(t, () => bad(m, { maxChunkAttempts: 0 }), /maxChunkAttempts: /, 'no attempts');
  refused(t, () => bad(m, { maxChunkAttempts: CONNECT_LIMITS.maxChunkAttempts + 1 }), /maxChunkAttempts: /, 'too many attempts');
  refused(t, () => bad(m, { chunkTimeoutMs: Number.NaN }), /chunkTimeoutMs: /, 'a NaN timeout');
  refused(t, () => bad(m, { chunkTimeoutMs: CONNECT_LIMITS.chunkTimeoutMs + 1 }), /chunkTimeoutMs: /, 'a timeout past a day');
  refused(t, () => bad(m, { rack: 'rack one' }), /rack: a rack name/, 'a rack with a space');
  refused(t, () => bad(m, { readFileMaxBytes: -1 }), /readFileMaxBytes: /, 'a negative readFile limit');
  refused(t, () => bad(m, { readFileMaxBytes: Number.NaN }), /readFileMaxBytes: /, 'a NaN readFile limit');
  refused(t, () => bad(m, 'fast'), /options: /, 'options that are a string');
  t.ok(connect(m, { token: 'dfs1.x', rack: 'r1', maxChunkAttempts: 3, chunkTimeoutMs: 60_000, readFileMaxBytes: 0 }), 'every option, well formed');
  t.ok(connect(m, undefined), 'no options');
  t.ok(bad(m, { token: 'dfs1.x', retries: 3, signal: null }), 'options it does not know are left out, as node:fs leaves them');
  t.ok(connect(m, { readFileMaxBytes: Infinity, chunkTimeoutMs: 1500.5 }), 'no readFile limit of its own, and a fractional timeout');
});
