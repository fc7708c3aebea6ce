// common/chunk-keys.ts: chunk token keys from the masters' rotating key set, sealed for each
// chunkserver in heartbeat replies, and the chunkserver's ring that only moves forward.
import t from 'tap';
import { signChunkToken, verifyChunkToken, type ChunkGrant } from '../../common/auth.js';
import { ChunkKeyRing, chunkKeyOf, openChunkKeys, sealChunkKeys } from '../../common/chunk-keys.js';
import { DfsError } from '../../common/errors.js';

const SECRET = Buffer.from('0123456789abcdef0123456789abcdef');
const K1 = chunkKeyOf('k1', Buffer.alloc(32, 1));
const K2 = chunkKeyOf('k2', Buffer.alloc(32, 2));
const NOW = 1_700_000_000_000;
const grant: ChunkGrant = { handle: 7, version: 1, mode: 'read', expiresAtMs: NOW + 60_000 };

function code(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return (err as DfsError).code;
  }
  return undefined;
}

t.test('a rotated key signs kN.payload.sig with a key derived from it; k0 is the cluster secret', async (t) => {
  t.not(K1.secret.toString('hex'), Buffer.alloc(32, 1).toString('hex'), 'the chunk key is not the signing key itself');
  const k1Token = signChunkToken(K1, grant);
  t.match(k1Token, /^k1\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/, 'key id first');
  const lookup = (id: string) => (id === 'k1' ? K1.secret : id === 'k0' ? SECRET : undefined);
  t.same(verifyChunkToken(lookup, k1Token, { handle: 7, mode: 'read' }, NOW), grant, 'verified with k1');
  t.equal(signChunkToken({ id: 'k0', secret: SECRET }, grant), signChunkToken(SECRET, grant), 'k0 tokens are the bare form');
  t.same(verifyChunkToken(lookup, signChunkToken(SECRET, grant), { handle: 7, mode: 'read' }, NOW), grant, 'a k0 token verifies with the secret');
  t.equal(code(() => verifyChunkToken(lookup, signChunkToken(K2, grant), { handle: 7, mode: 'read' }, NOW)), 'CHUNK_TOKEN_INVALID', 'a key not held: refused');
  t.equal(code(() => verifyChunkToken(SECRET, k1Token, { handle: 7, mode: 'read' }, NOW)), 'CHUNK_TOKEN_INVALID', 'a bare secret verifies no rotated key');
  const relabelled = `k2.${k1Token.slice(3)}`;
  const both = (id: string) => (id === 'k1' ? K1.secret : id === 'k2' ? K1.secret : undefined);
  t.equal(code(() => verifyChunkToken(both, relabelled, { handle: 7, mode: 'read' }, NOW)), 'CHUNK_TOKEN_INVALID', 'the key id is signed too');
  t.equal(code(() => verifyChunkToken(lookup, `k0.${k1Token.slice(3)}`, { handle: 7, mode: 'read' }, NOW)), 'CHUNK_TOKEN_INVALID', 'an explicit k0 prefix is malformed');
  t.equal(code(() => verifyChunkToken((id) => (id === 'k0' ? undefined : undefined), signChunkToken(SECRET, grant), { handle: 7, mode: 'read' }, NOW)), 'CHUNK_TOKEN_INVALID', 'k0 dropped: its tokens are refused');
});

t.test('sealed key sets open only for their server, under this secret', async (t) => {
  const sealed = sealChunkKeys(SECRET, 'cs1', { bootstrap: true, keys: [K1] });
  const opened = openChunkKeys(SECRET, 'cs1', sealed);
  t.same(opened?.bootstrap, true);
  t.same(opened?.keys.map((k) => [k.id, k.secret.toString('hex')]), [['k1', K1.secret.toString('hex')]], 'the keys come through');
  t.notOk(sealed.includes(K1.secret.toString('hex')) || sealed.includes(K1.secret.toString('base64url')), 'the key is not readable on the wire');
  t.equal(openChunkKeys(SECRET, 'cs2', sealed), undefined, 'another server cannot open it');
  t.equal(openChunkKeys(Buffer.from('another-cluster-secret-000'), 'cs1', sealed), undefined, 'nor another cluster');
  const [iv, data, tag] = sealed.split('.') as [string, string, string];
  // The second-to-last character, changed (whatever it was: comparing the last one left it as it
  // was whenever it already read 'A', one run in 64).
  const flipped = `${iv}.${data.slice(0, -2)}${data.at(-2) === 'A' ? 'B' : 'A'}${data.slice(-1)}.${tag}`;
  t.equal(openChunkKeys(SECRET, 'cs1', flipped), undefined, 'a changed byte is caught');
  for (const bad of [undefined, 42, '', 'a.b', 'a.b.c', 'x'.repeat(20_000)]) t.equal(openChunkKeys(SECRET, 'cs1', bad), undefined, `garbage: ${String(bad).slice(0, 10)}`);
});

t.test("a chunkserver's ring: k0 at start, then what the masters say, never backwards", async (t) => {
  const ring = new ChunkKeyRing(SECRET, 'cs1');
  t.same(ring.ids(), ['k0'], 'k0 at start');
  t.equal(ring.lookup('k0'), SECRET);
  t.ok(ring.update(sealChunkKeys(SECRET, 'cs1', { bootstrap: true, keys: [K1] })), 'a rotation is taken');
  t.same(ring.ids(), ['k0', 'k1']);
  t.same(ring.lookup('k1'), K1.secret);
  t.notOk(ring.update(sealChunkKeys(SECRET, 'cs2', { bootstrap: true, keys: [K1, K2] })), 'a set sealed for another server is ignored');
  t.notOk(ring.update('garbage'), 'garbage is ignored');
  t.same(ring.ids(), ['k0', 'k1'], 'and changes nothing');
  const old = sealChunkKeys(SECRET, 'cs1', { bootstrap: true, keys: [K1] });
  t.ok(ring.update(sealChunkKeys(SECRET, 'cs1', { bootstrap: false, keys: [K2] })), 'old keys dropped');
  t.same(ring.ids(), ['k2']);
  t.equal(ring.lookup('k0'), undefined, 'k0 verifies nothing now');
  t.equal(ring.lookup('k1'), undefined, 'nor k1');
  t.notOk(ring.update(old), 'a replayed reply from before the drop is ignored');
  t.same(ring.ids(), ['k2'], 'the dropped keys stay dropped');
  t.notOk(ring.update(sealChunkKeys(SECRET, 'cs1', { bootstrap: false, keys: [] })), 'an empty set is ignored');
});
