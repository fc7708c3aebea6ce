// Pooled random ids (common/random-id.ts): each byte drawn once, across refills of the pool.
import t from 'tap';
import { MAX_RANDOM_ID_BYTES, RANDOM_POOL_BYTES, randomId } from '../../common/random-id.js';

t.test('ids are distinct and of their length, across many refills of the pool', async (t) => {
  const seen = new Set<string>();
  const draws = 20 * Math.ceil(RANDOM_POOL_BYTES / 8);
  for (let i = 0; i < draws; i++) seen.add(randomId(8));
  t.equal(seen.size, draws, `${draws} ids of 8 bytes, no two alike (a byte drawn twice would repeat ids)`);
  t.ok([...seen].every((id) => /^[0-9a-f]{16}$/.test(id)), 'each 16 hex digits');
  // Odd sizes that do not divide the pool: the last draw before a refill must not run past it.
  const odd = new Set<string>();
  for (let i = 0; i < 3 * RANDOM_POOL_BYTES / 12; i++) odd.add(randomId(12, 'base64url'));
  t.ok([...odd].every((id) => /^[A-Za-z0-9_-]{16}$/.test(id)), 'base64url of 12 bytes is 16 characters');
  t.equal(odd.size, Math.floor(3 * RANDOM_POOL_BYTES / 12), 'and distinct');
  const big = randomId(MAX_RANDOM_ID_BYTES);
  t.equal(big.length, 2 * MAX_RANDOM_ID_BYTES);
  t.not(big, '0'.repeat(2 * MAX_RANDOM_ID_BYTES), 'not the zero-filled pool');
  t.throws(() => randomId(0), /assertion failed/);
  t.throws(() => randomId(MAX_RANDOM_ID_BYTES + 1), /assertion failed/);
  t.throws(() => randomId(1.5), /assertion failed/);
});
