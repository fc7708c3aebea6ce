// Per-request signatures between cluster members (common/peer-auth.ts): a signature is good once,
// within the window, for exactly the request it was made for, under exactly this secret.
import t from 'tap';
import { chunkserverSigner, PEER_AUTH_HEADER, PEER_AUTH_WINDOW_MS, PeerVerifier, sha256Hex, signPeerRequest } from '../../common/peer-auth.js';

const SECRET = Buffer.from('test-secret-0123456789abcdef');
const OTHER = Buffer.from('another-secret-0123456789abcdef');
const REQ = { method: 'POST', path: '/v1/cs/heartbeat', bodySha256: sha256Hex('{"id":"cs1"}'), clusterId: 'c-1' };

t.test('a signed request is accepted once, with its sender', async (t) => {
  const v = new PeerVerifier(SECRET);
  const h = signPeerRequest(SECRET, 'chunkserver', 'cs1', REQ);
  t.equal(v.verify('chunkserver', h, REQ), 'cs1', 'the sender id comes back');
  t.throws(() => v.verify('chunkserver', h, REQ), { code: 'PEER_AUTH_REPLAYED' }, 'the same header again is a replay');
  t.equal(v.verify('chunkserver', signPeerRequest(SECRET, 'chunkserver', 'cs1', REQ), REQ), 'cs1', 'a fresh signature of the same request is fine');
  t.equal(v.rememberedNonces, 2);
});

t.test('anything changed breaks the signature', async (t) => {
  const v = new PeerVerifier(SECRET);
  const sign = () => signPeerRequest(SECRET, 'chunkserver', 'cs1', REQ);
  const cases: [string, () => void][] = [
    ['another secret', () => v.verify('chunkserver', signPeerRequest(OTHER, 'chunkserver', 'cs1', REQ), REQ)],
    ['another body', () => v.verify('chunkserver', sign(), { ...REQ, bodySha256: sha256Hex('{"id":"cs2"}') })],
    ['no body', () => v.verify('chunkserver', sign(), { ...REQ, bodySha256: undefined })],
    ['another path', () => v.verify('chunkserver', sign(), { ...REQ, path: '/v1/cs/register' })],
    ['another query', () => v.verify('chunkserver', sign(), { ...REQ, path: '/v1/cs/heartbeat?x=1' })],
    ['another method', () => v.verify('chunkserver', sign(), { ...REQ, method: 'PUT' })],
    ['another cluster', () => v.verify('chunkserver', sign(), { ...REQ, clusterId: 'c-2' })],
    ['another role', () => v.verify('raft', sign(), REQ)],
    ['another sender named', () => v.verify('chunkserver', sign().replace('id=cs1', 'id=cs2'), REQ)],
    ['another time named', () => v.verify('chunkserver', sign().replace(/ts=(\d+)/, (_m, ts: string) => `ts=${Number(ts) + 1}`), REQ)],
    ['a fixed token of the old kind', () => v.verify('chunkserver', 'Wm9vYmFy', REQ)],
    ['no header', () => v.verify('chunkserver', undefined, REQ)],
    ['an array', () => v.verify('chunkserver', ['a', 'b'], REQ)],
    ['a huge header', () => v.verify('chunkserver', `v1 id=cs1,ts=1,nonce=${'a'.repeat(10_000)},sig=x`, REQ)],
  ];
  for (const [what, fn] of cases) t.throws(fn, { name: 'DfsError', code: 'PEER_AUTH_INVALID' }, what);
  t.equal(v.rememberedNonces, 0, 'nothing refused is remembered');
});

t.test('outside the window is expired, by either clock', async (t) => {
  let now = 1_000_000_000;
  const v = new PeerVerifier(SECRET, { now: () => now });
  t.throws(() => v.verify('chunkserver', signPeerRequest(SECRET, 'chunkserver', 'cs1', REQ, now - PEER_AUTH_WINDOW_MS - 1), REQ), { code: 'PEER_AUTH_EXPIRED' }, 'too old');
  t.throws(() => v.verify('chunkserver', signPeerRequest(SECRET, 'chunkserver', 'cs1', REQ, now + PEER_AUTH_WINDOW_MS + 1), REQ), { code: 'PEER_AUTH_EXPIRED' }, 'from the future');
  const edge = signPeerRequest(SECRET, 'chunkserver', 'cs1', REQ, now - PEER_AUTH_WINDOW_MS);
  t.equal(v.verify('chunkserver', edge, REQ), 'cs1', 'at the edge of the window');
  // Later its nonce is forgotten, but then the timestamp alone refuses it.
  now += PEER_AUTH_WINDOW_MS;
  v.verify('chunkserver', signPeerRequest(SECRET, 'chunkserver', 'cs1', REQ, now), REQ);
  t.equal(v.rememberedNonces, 1, 'the expired nonce was dropped');
  t.throws(() => v.verify('chunkserver', edge, REQ), { code: 'PEER_AUTH_EXPIRED' }, 'a forgotten nonce is still refused by its age');
});

t.test('the nonce cache is bounded', async (t) => {
  const now = 1_000_000_000;
  const v = new PeerVerifier(SECRET, { now: () => now, maxNonces: 3 });
  for (let i = 0; i < 3; i++) v.verify('chunkserver', signPeerRequest(SECRET, 'chunkserver', 'cs1', REQ, now), REQ);
  t.throws(() => v.verify('chunkserver', signPeerRequest(SECRET, 'chunkserver', 'cs1', REQ, now), REQ), { code: 'UNAVAILABLE' }, 'full of live nonces: refused, not forgotten');
  t.equal(v.rememberedNonces, 3);
});

t.test('chunkserverSigner signs the body it is given', async (t) => {
  const v = new PeerVerifier(SECRET);
  const body = Buffer.from('{"id":"cs1"}');
  const h = chunkserverSigner(SECRET, 'cs1')('POST', '/v1/cs/heartbeat', body)[PEER_AUTH_HEADER];
  t.equal(v.verify('chunkserver', h, { method: 'POST', path: '/v1/cs/heartbeat', bodySha256: sha256Hex(body) }), 'cs1');
  const get = chunkserverSigner(SECRET, 'cs1')('GET', '/v1/cs/x', undefined)[PEER_AUTH_HEADER];
  t.equal(v.verify('chunkserver', get, { method: 'GET', path: '/v1/cs/x', bodySha256: sha256Hex('') }), 'cs1', 'no body signs as the empty body');
});
