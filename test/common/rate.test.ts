// The token bucket in common/rate.ts, driven by a hand-moved clock: what it lets through at once,
// how long it makes callers sleep, how concurrent callers share it, and the option parser.
import t from 'tap';
import { MAX_RATE_MIBPS, MiB, MIN_RATE_MIBPS, parseRateMiBps, RateLimiter, systemClock } from '../../common/rate.js';
import { FakeClock } from '../helpers/clock.js';

const KiB = 1024;

t.test('a burst passes at once; beyond it, a take sleeps until its debt is paid', async (t) => {
  const clock = new FakeClock(true);
  const lim = new RateLimiter(1, { clock, burstBytes: 100 * KiB });
  t.equal(lim.bytesPerSec, MiB);
  await lim.take(100 * KiB);
  t.same(clock.sleeps, [], 'the first 100 KiB are the burst');
  await lim.take(MiB);
  t.same(clock.sleeps, [1000], '1 MiB of debt at 1 MiB/s is a second');
  await lim.take(512 * KiB);
  t.same(clock.sleeps, [1000, 500], 'the debt was paid by the sleep; the next take owes only itself');
});

t.test('idle time refills the bucket, but never past the burst', async (t) => {
  const clock = new FakeClock(true);
  const lim = new RateLimiter(2, { clock, burstBytes: 256 * KiB });
  await lim.take(256 * KiB);
  clock.now += 60_000; // a minute idle is worth 120 MiB, but the bucket holds 256 KiB
  await lim.take(256 * KiB);
  t.same(clock.sleeps, [], 'a full bucket after the idle spell');
  await lim.take(256 * KiB);
  t.same(clock.sleeps, [125], 'then empty: 256 KiB at 2 MiB/s is 125 ms');
  clock.now += 62.5;
  await lim.take(256 * KiB);
  t.same(clock.sleeps, [125, 62.5], 'half refilled by 62.5 ms idle, so half the wait');
});

t.test('the default burst is a tenth of a second of the rate', async (t) => {
  const clock = new FakeClock(true);
  const lim = new RateLimiter(10, { clock });
  await lim.take(MiB);
  t.same(clock.sleeps, [], '1 MiB = 0.1 s at 10 MiB/s passes at once');
  await lim.take(MiB);
  t.same(clock.sleeps, [100]);
});

t.test('concurrent callers share one rate: each waits for the debt ahead of it', async (t) => {
  const clock = new FakeClock();
  const lim = new RateLimiter(1, { clock, burstBytes: 0 });
  const done: string[] = [];
  const a = lim.take(MiB).then(() => done.push('a'));
  const b = lim.take(MiB).then(() => done.push('b'));
  const c = lim.take(MiB / 2).then(() => done.push('c'));
  t.same(clock.sleeps, [1000, 2000, 2500], 'wake times queue up: 1 s, 2 s, 2.5 s');
  clock.advance(999);
  await Promise.resolve();
  t.same(done, [], 'nobody before a second');
  clock.advance(1);
  await a;
  t.same(done, ['a']);
  clock.advance(1000);
  await b;
  t.same(done, ['a', 'b']);
  clock.advance(500);
  await c;
  t.same(done, ['a', 'b', 'c'], '2.5 MiB in 2.5 s: the rate held across three callers');
});

t.test('over many takes the average rate is the limit', async (t) => {
  const clock = new FakeClock(true);
  const lim = new RateLimiter(16, { clock, burstBytes: MiB });
  let bytes = 0;
  for (let i = 0; i < 1000; i++) {
    const n = 1 + ((i * 7919) % (200 * KiB)); // uneven pieces
    bytes += n;
    await lim.take(n);
  }
  const sleptMs = clock.sleeps.reduce((s, x) => s + x, 0);
  const wantMs = ((bytes - MiB) / (16 * MiB)) * 1000; // all but the first burst is paid for in time
  t.ok(Math.abs(sleptMs - wantMs) < 1e-6, `slept ${sleptMs} ms for ${bytes} bytes; expected ${wantMs}`);
});

t.test('an abort ends the wait at once', async (t) => {
  const clock = new FakeClock();
  const lim = new RateLimiter(1, { clock, burstBytes: 0 });
  const ac = new AbortController();
  const waiting = lim.take(MiB, ac.signal);
  await clock.untilSleeping();
  ac.abort(new Error('closing'));
  await t.rejects(waiting, /closing/);
  t.equal(clock.pending, 0, 'no sleeper left behind');
  await t.rejects(lim.take(1, ac.signal), /closing/, 'an aborted signal refuses new takes');
  // The real clock obeys the signal too (nothing here depends on how long it takes).
  const real = new AbortController();
  const sleeping = systemClock.sleep(3_600_000, real.signal);
  real.abort(new Error('stop'));
  await t.rejects(sleeping, /stop/);
  await t.rejects(systemClock.sleep(1, real.signal), /stop/);
  await systemClock.sleep(1);
});

t.test('a limiter needs a positive rate', async (t) => {
  for (const bad of [0, -1, Number.NaN, Number.POSITIVE_INFINITY]) {
    t.throws(() => new RateLimiter(bad), { code: 'INVALID_ARGUMENT' }, `rate ${bad}`);
  }
});

t.test('parseRateMiBps: 0 or a number in range, with a message that says which', async (t) => {
  t.equal(parseRateMiBps('0', '--copy-rate'), 0);
  t.equal(parseRateMiBps(0, '--copy-rate'), 0);
  t.equal(parseRateMiBps('16', '--scrub-rate'), 16);
  t.equal(parseRateMiBps(' 2.5 ', '--scrub-rate'), 2.5);
  t.equal(parseRateMiBps(String(MIN_RATE_MIBPS), 'x'), MIN_RATE_MIBPS);
  t.equal(parseRateMiBps(MAX_RATE_MIBPS, 'x'), MAX_RATE_MIBPS);
  for (const bad of ['', 'abc', '-1', '1e400', 'NaN', '16MiB', undefined, null, true]) {
    t.throws(() => parseRateMiBps(bad, '--copy-rate'), { code: 'INVALID_ARGUMENT', message: /^--copy-rate must be a number of MiB\/s \(0 for no limit\)/ }, `rejects ${String(bad)}`);
  }
  for (const bad of ['0.05', String(MAX_RATE_MIBPS + 1)]) {
    t.throws(() => parseRateMiBps(bad, '--scrub-rate', 'no scrubbing'), { code: 'INVALID_ARGUMENT', message: /^--scrub-rate must be 0 \(no scrubbing\) or from 0\.1 to 10240 MiB\/s/ }, `rejects ${bad}`);
  }
});
