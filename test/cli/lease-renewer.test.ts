// cli/lease-renewer.ts against a fake master: one call renews every open write, a third of the
// lease apart; a write the master no longer knows is reported lost; a failure is retried sooner
// and never thrown; the loop stops with the last write.
import t from 'tap';
import { DfsError } from '../../common/errors.js';
import { LeaseRenewer, MIN_RENEW_INTERVAL_MS } from '../../cli/lease-renewer.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const LEASE_MS = 900; // renewals every 300 ms

t.test('renews all open writes in one call, a third of the lease apart, until the last is removed', async (t) => {
  const calls: string[][] = [];
  const r = new LeaseRenewer({ renew: async (ids) => (calls.push(ids), { unknown: [] }) });
  const lost: string[] = [];
  r.add('w1', { leaseMs: LEASE_MS, onLost: () => lost.push('w1') });
  r.add('w2', { leaseMs: LEASE_MS, onLost: () => lost.push('w2') });
  await sleep(LEASE_MS + 100);
  t.ok(calls.length >= 2 && calls.length <= 4, `about three renewals per lease (${calls.length})`);
  t.same(calls[0], ['w1', 'w2'], 'both writes in one call');
  r.remove('w1');
  r.remove('w2');
  const n = calls.length;
  await sleep(LEASE_MS);
  t.equal(calls.length, n, 'no renewal once no write is open');
  t.same(lost, []);
});

t.test('a write the master no longer knows is lost; the others go on', async (t) => {
  const r = new LeaseRenewer({ renew: async (ids) => ({ unknown: ids.filter((id) => id === 'gone') }) });
  const lost: DfsError[] = [];
  r.add('gone', { leaseMs: LEASE_MS, onLost: (e) => lost.push(e) });
  r.add('kept', { leaseMs: LEASE_MS, onLost: (e) => lost.push(e) });
  await sleep(LEASE_MS / 3 + 150);
  t.equal(lost.length, 1, 'one write lost');
  t.equal(lost[0]?.code, 'WRITE_NOT_FOUND');
  t.equal(r.size, 1, 'the other is still renewed');
  r.remove('kept');
});

t.test('WRITE_NOT_FOUND loses every write of the call; other failures are retried sooner, never thrown', async (t) => {
  let fail: DfsError = new DfsError('UNAVAILABLE', 'no leader');
  let calls = 0;
  const r = new LeaseRenewer({ renew: async () => { calls++; throw fail; } });
  const trouble: string[] = [];
  let lostCount = 0;
  r.add('w1', { leaseMs: LEASE_MS, onLost: () => lostCount++, onTrouble: (m) => trouble.push(m) });
  await sleep(LEASE_MS / 3 + 2 * MIN_RENEW_INTERVAL_MS + 100);
  t.ok(calls >= 2, `retried sooner than a third of the lease (${calls} calls)`);
  t.match(trouble[0], /^renewing the write lease failed \(no leader\); trying again$/);
  t.equal(lostCount, 0, 'not lost for a failure that may pass');
  fail = new DfsError('WRITE_NOT_FOUND', 'gone');
  await sleep(MIN_RENEW_INTERVAL_MS + 100);
  t.equal(lostCount, 1, 'lost when the master knows none');
  t.equal(r.size, 0);
});
