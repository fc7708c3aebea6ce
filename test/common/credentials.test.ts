// The client token format (common/credentials.ts) and the replicated keys and revocations
// (master/credentials/state.ts), without servers: forged, expired, revoked, unknown-key and
// rotated tokens, scope rules, and the state through a snapshot.
import t, { type Test } from 'tap';
import {
  bootstrapKey, inScope, leadsToScope, newTokenId, parseTtl, TOKEN_ID, signClientToken, verifyClientToken, VerifiedTokens, type ClientGrant, type SigningKey,
} from '../../common/credentials.js';
import { DfsError } from '../../common/errors.js';
import { MasterState } from '../../master/state/index.js';

const SECRET = Buffer.from('unit-test-cluster-secret-0123456789');
const NOW = 1_700_000_000_000;
const grant = (over: Partial<ClientGrant> = {}): ClientGrant => ({ id: 'tok1', name: 'alice', admin: false, readOnly: false, prefix: '/', issuedAtMs: NOW, ...over });
const keysOf = (...keys: SigningKey[]) => (id: string) => keys.find((k) => k.id === id)?.secret;

function refusal(t: Test, fn: () => unknown, reason: string, what: string): void {
  try {
    fn();
    t.fail(`${what}: accepted`);
  } catch (err) {
    t.ok(err instanceof DfsError && err.code === 'UNAUTHORIZED' && err.details.reason === reason, `${what}: UNAUTHORIZED (${reason}), got ${(err as DfsError).code} ${String((err as DfsError).details?.reason)}`);
  }
}

t.test('a token verifies under its key and gives back its grant', async (t) => {
  const k0 = bootstrapKey(SECRET);
  const token = signClientToken(k0, grant({ prefix: '/home/alice', readOnly: true, expiresAtMs: NOW + 60_000 }));
  t.match(token, /^dfs1\.k0\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/);
  const p = verifyClientToken(token, keysOf(k0), NOW);
  t.same({ id: p.id, prefix: p.prefix, readOnly: p.readOnly, keyId: p.keyId }, { id: 'tok1', prefix: '/home/alice', readOnly: true, keyId: 'k0' });
  t.equal(bootstrapKey(SECRET).secret.toString('hex'), k0.secret.toString('hex'), 'the bootstrap key is the same on every master');
  t.not(bootstrapKey(Buffer.from('another-cluster-secret-xxxxxxxx')).secret.toString('hex'), k0.secret.toString('hex'), 'another secret, another key');
});

t.test('a remembered token answers only under the same key bytes, before it expires; forged ones are never remembered', async (t) => {
  const k0 = bootstrapKey(SECRET);
  const token = signClientToken(k0, grant({ expiresAtMs: NOW + 1000, prefix: '/home/alice' }));
  const seen = new VerifiedTokens(2);
  let lookups = 0;
  let current: Buffer | undefined = k0.secret;
  const keys = (id: string) => (lookups++, id === 'k0' ? current : undefined);
  t.equal(seen.verify(token, keys, NOW).prefix, '/home/alice');
  const again = seen.verify(token, keys, NOW + 999);
  t.equal(again.prefix, '/home/alice', 'remembered');
  again.prefix = '/';
  t.equal(seen.verify(token, keys, NOW).prefix, '/home/alice', 'a caller changing its copy changes nothing remembered');
  refusal(t, () => seen.verify(token, keys, NOW + 1000), 'expired', 'remembered, then expired');
  current = bootstrapKey(Buffer.from('another-cluster-secret-xxxxxxxx')).secret;
  refusal(t, () => seen.verify(token, keys, NOW), 'signature', 'remembered, then its key id names other bytes');
  current = undefined;
  refusal(t, () => seen.verify(token, keys, NOW), 'unknown-key', 'remembered, then its key dropped');
  current = k0.secret;
  const forged = `${token.slice(0, -4)}AAAA`;
  for (let i = 0; i < 3; i++) refusal(t, () => seen.verify(forged, keys, NOW), 'signature', `a forged token, try ${i + 1}`);
  t.equal(seen.size, 0, 'no refused token is remembered');
  for (let i = 0; i < 5; i++) seen.verify(signClientToken(k0, grant({ id: `t${i}` })), keys, NOW);
  t.ok(seen.size <= 2, `bounded: ${seen.size} remembered at most 2`);
  t.ok(lookups > 0);
});

t.test('forged, tampered, expired, malformed and unknown-key tokens are refused', async (t) => {
  const k0 = bootstrapKey(SECRET);
  const good = signClientToken(k0, grant({ expiresAtMs: NOW + 1000 }));
  const [f, kid, payload, sig] = good.split('.') as [string, string, string, string];
  const other = bootstrapKey(Buffer.from('another-cluster-secret-xxxxxxxx'));
  refusal(t, () => verifyClientToken(signClientToken(other, grant()), keysOf(k0), NOW), 'signature', 'signed by another cluster');
  const admin = Buffer.from(JSON.stringify({ ...grant({ expiresAtMs: NOW + 1000 }), admin: true })).toString('base64url');
  refusal(t, () => verifyClientToken([f, kid, admin, sig].join('.'), keysOf(k0), NOW), 'signature', 'payload changed to admin');
  refusal(t, () => verifyClientToken([f, kid, payload, sig.slice(0, -2) + (sig.endsWith('AA') ? 'BB' : 'AA')].join('.'), keysOf(k0), NOW), 'signature', 'signature changed');
  refusal(t, () => verifyClientToken([f, 'k7', payload, sig].join('.'), keysOf(k0), NOW), 'unknown-key', 'a key id the cluster lacks');
  refusal(t, () => verifyClientToken(good, keysOf(k0), NOW + 1000), 'expired', 'at its expiry');
  t.ok(verifyClientToken(good, keysOf(k0), NOW + 999), 'a millisecond before it');
  for (const bad of ['', 'dfs1', 'dfs2.k0.a.b', 'dfs1.k0.a', 'dfs1.kx.a.b', 'dfs1.k0.a!.b', `dfs1.k0.${'a'.repeat(5000)}.b`]) {
    refusal(t, () => verifyClientToken(bad, keysOf(k0), NOW), 'malformed', `malformed ${JSON.stringify(bad.slice(0, 20))}`);
  }
  const notJson = Buffer.from('{nope').toString('base64url');
  const head = `dfs1.k0.${notJson}`;
  const { createHmac } = await import('node:crypto');
  refusal(t, () => verifyClientToken(`${head}.${createHmac('sha256', k0.secret).update(head).digest('base64url')}`, keysOf(k0), NOW), 'malformed', 'a signed payload that is not JSON');
});

t.test('grants are checked when signed: an admin token has no prefix, a prefix is normalised', async (t) => {
  const k0 = bootstrapKey(SECRET);
  t.throws(() => signClientToken(k0, grant({ admin: true, readOnly: true })), { code: 'INVALID_ARGUMENT' });
  t.throws(() => signClientToken(k0, grant({ prefix: '/a/../b' })), { code: 'INVALID_PATH' });
  t.throws(() => signClientToken(k0, grant({ prefix: '/a/' })), { code: 'INVALID_PATH' });
  t.throws(() => signClientToken(k0, grant({ name: 'a b' })), { code: 'INVALID_ARGUMENT' });
  t.throws(() => signClientToken(k0, grant({ expiresAtMs: NOW })), { code: 'INVALID_ARGUMENT' });
});

t.test('scope: within the prefix, or a directory on the way to it', async (t) => {
  const p = { prefix: '/home/alice' };
  t.ok(inScope(p, '/home/alice'));
  t.ok(inScope(p, '/home/alice/x/y'));
  t.notOk(inScope(p, '/home/alice2'), 'a sibling sharing the prefix\'s letters is outside');
  t.notOk(inScope(p, '/home'));
  t.ok(leadsToScope(p, '/home'), '/home leads to it');
  t.ok(leadsToScope(p, '/'), '/ leads to it');
  t.notOk(leadsToScope(p, '/home/bob'));
  t.notOk(leadsToScope(p, '/home/alicé'), 'a look-alike name is another name');
  t.ok(inScope({ prefix: '/' }, '/anything'));
});

t.test('token ids: never one a command line reads as options', async (t) => {
  // One base64url id in 64 starts with '-': `dfs token revoke -AbC...` was then a list of flags
  // (CI drew one). 5,000 draws miss such an id with odds (63/64)^5000, about 1e-34.
  const ids = Array.from({ length: 5000 }, () => newTokenId());
  t.equal(ids.filter((id) => id.startsWith('-')).length, 0, 'no id starts with -');
  t.ok(ids.every((id) => TOKEN_ID.test(id) && id.length === 16), 'every id is 16 base64url characters');
  t.equal(new Set(ids).size, ids.length, 'all distinct');
});

t.test('--ttl', async (t) => {
  t.equal(parseTtl('24h'), 24 * 3600_000);
  t.equal(parseTtl('30m'), 30 * 60_000);
  t.equal(parseTtl('7d'), 7 * 86_400_000);
  t.equal(parseTtl('90'), 90_000);
  for (const bad of ['', '0', '1y', '-1h', '400d', '1.5h']) t.throws(() => parseTtl(bad), { code: 'INVALID_ARGUMENT' }, `refuses ${JSON.stringify(bad)}`);
});

/** Verifies as a master does: the state's keys and revocations. */
function verifyAt(state: MasterState, token: string, now = NOW): string {
  const p = verifyClientToken(token, (id) => state.credentials.verifyingKey(SECRET, id), now);
  if (state.credentials.isRevoked(p.id)) throw new DfsError('UNAUTHORIZED', 'revoked', { reason: 'revoked' });
  return p.id;
}

const credentials = (action: import('../../master/credentials/state.js').CredentialAction, nowMs = NOW) => ({ op: 'credentials' as const, action, nowMs });

t.test('rotation: the new key signs, old ones verify until dropped; revocations hold; all of it survives a snapshot', async (t) => {
  const s = new MasterState();
  const old = signClientToken(s.credentials.signingKey(SECRET), grant({ id: 'old' }));
  t.equal(s.credentials.signingKeyId(), 'k0', 'before any rotation the bootstrap key signs');
  t.ok(s.apply(credentials({ kind: 'addKey', secretHex: 'ab'.repeat(32) })).ok, 'rotate');
  t.equal(s.credentials.signingKeyId(), 'k1');
  const fresh = signClientToken(s.credentials.signingKey(SECRET), grant({ id: 'fresh' }));
  t.match(fresh, /^dfs1\.k1\./, 'new tokens carry the new key id');
  t.equal(verifyAt(s, old), 'old', 'a token of the old key still verifies');
  t.equal(verifyAt(s, fresh), 'fresh');

  t.ok(s.apply(credentials({ kind: 'recordToken', grant: grant({ id: 'listed', expiresAtMs: NOW + 10_000 }), keyId: 'k1' })).ok, 'record a token');
  t.notOk(s.apply(credentials({ kind: 'recordToken', grant: grant({ id: 'stale' }), keyId: 'k0' })).ok, 'a token recorded for a key that no longer signs is refused');
  t.ok(s.apply(credentials({ kind: 'revokeToken', id: 'fresh' })).ok, 'revoke');
  refusal(t, () => verifyAt(s, fresh), 'revoked', 'a revoked token');

  const restored = MasterState.restore(s.snapshot());
  refusal(t, () => verifyAt(restored, fresh), 'revoked', 'revoked after a snapshot round trip');
  t.equal(verifyAt(restored, old), 'old', 'the bootstrap key verifies after a snapshot');
  t.equal(restored.credentials.signingKeyId(), 'k1', 'and k1 still signs');
  t.same([...restored.credentials.tokens.keys()], ['listed']);

  t.ok(restored.apply(credentials({ kind: 'dropOldKeys' })).ok, 'drop the old keys');
  refusal(t, () => verifyAt(restored, old), 'unknown-key', 'a token of a dropped key');
  t.same(restored.credentials.keyInfo().map((k) => k.id), ['k1']);
  t.notOk(restored.apply(credentials({ kind: 'addKey', secretHex: 'zz' })).ok, 'a malformed key is refused');
  const before = restored.snapshot().toString();
  t.notOk(restored.apply(credentials({ kind: 'revokeToken', id: 'bad id!' })).ok, 'a malformed id is refused');
  t.equal(restored.snapshot().toString(), before, 'a refused command changes nothing');
});

t.test('dropping keys before any rotation is refused (the cluster would keep no key)', async (t) => {
  const s = new MasterState();
  const r = s.apply(credentials({ kind: 'dropOldKeys' }));
  t.notOk(r.ok);
  t.equal(s.credentials.signingKeyId(), 'k0');
});

t.test('expired tokens and their revocations are forgotten, so the lists stay bounded', async (t) => {
  const s = new MasterState();
  s.apply(credentials({ kind: 'recordToken', grant: grant({ id: 'short', expiresAtMs: NOW + 1000 }), keyId: 'k0' }));
  s.apply(credentials({ kind: 'revokeToken', id: 'short' }));
  t.ok(s.credentials.isRevoked('short'));
  s.apply(credentials({ kind: 'recordToken', grant: grant({ id: 'later' }), keyId: 'k0' }, NOW + 2000));
  t.notOk(s.credentials.tokens.has('short'), 'the expired token is forgotten');
  s.apply(credentials({ kind: 'revokeToken', id: 'later' }, NOW + 2000));
  t.notOk(s.credentials.revoked.has('short'), 'so is its revocation');
});
