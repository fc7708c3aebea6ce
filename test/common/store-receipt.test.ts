// common/store-receipt.ts: a chunkserver's signed word on what it stored, which complete checks.
import t from 'tap';
import { signChunkToken } from '../../common/auth.js';
import { openStoreReceipt, signStoreReceipt, type StoreReceipt } from '../../common/store-receipt.js';

const SECRET = Buffer.from('0123456789abcdef0123456789abcdef');
const r: StoreReceipt = { server: 'cs1', handle: 42, version: 1, length: 1000, checksum: 'ab'.repeat(16) };

t.test('a receipt opens to what the chunkserver signed', async (t) => {
  const receipt = signStoreReceipt(SECRET, r);
  t.same(openStoreReceipt(SECRET, receipt), r, 'opened');
  t.equal(signStoreReceipt(SECRET, { ...r, extra: 1 } as StoreReceipt), receipt, 'only the five fields are signed');
});

t.test('nothing else opens', async (t) => {
  const receipt = signStoreReceipt(SECRET, r);
  const [payload, sig] = receipt.split('.') as [string, string];
  const edited = Buffer.from(JSON.stringify({ ...r, length: 1 })).toString('base64url');
  const cases: Array<[string, unknown]> = [
    ['another secret', signStoreReceipt(Buffer.from('another-secret-0123456789'), r)],
    ['length edited, signature kept', `${edited}.${sig}`],
    ['truncated signature', `${payload}.${sig.slice(0, -1)}`],
    ['a chunk access token (same secret)', signChunkToken(SECRET, { handle: 42, version: 1, mode: 'write', expiresAtMs: Date.now() + 1000 })],
    ['not a string', 42],
    ['too long', `${'A'.repeat(1100)}.${sig}`],
    ['no dot', payload + sig],
  ];
  for (const [name, value] of cases) t.equal(openStoreReceipt(SECRET, value), undefined, name);
});
