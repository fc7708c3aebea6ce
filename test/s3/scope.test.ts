// s3/scope.ts and the key file: which requests a key bound to a read-only or prefix token may
// make, and the credentials file's token field, limits and reloading.
import { mkdtempSync, rmSync, writeFileSync, utimesSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { addKey, KeyFile, parseCredentials } from '../../s3/credentials.js';
import { S3Error } from '../../s3/errors.js';
import { authorize, leadsTo, mayWrite, visibleBucket, within, type KeyScope } from '../../s3/scope.js';

const q = (o: Record<string, string> = {}) => new Map(Object.entries(o));
function verdict(scope: KeyScope | undefined, method: string, bucket: string, key = '', query = q(), copySource?: { bucket: string; key: string }): string {
  try {
    authorize(scope, { method, bucket, key, query, ...(copySource ? { copySource } : {}) });
    return 'ok';
  } catch (err) {
    return err instanceof S3Error ? err.code : String(err);
  }
}

t.test('paths within and on the way to a prefix', async (t) => {
  const s = { name: 'alice', readOnly: false, prefix: '/photos/alice' };
  t.ok(within(s, '/photos/alice'));
  t.ok(within(s, '/photos/alice/'), 'a trailing slash is the same directory');
  t.ok(within(s, '/photos/alice/2024/a.jpg'));
  t.notOk(within(s, '/photos/alicex'), 'a name that only starts the same is outside');
  t.notOk(within(s, '/photos'));
  t.ok(leadsTo(s, '/photos') && leadsTo(s, '/'), 'the parents lead to it');
  t.notOk(leadsTo(s, '/photos/bob'));
  t.ok(visibleBucket(s, 'photos'));
  t.notOk(visibleBucket(s, 'music'));
  t.ok(within(undefined, '/anything') && visibleBucket({ name: 'all', readOnly: true, prefix: '/' }, 'music'), 'no scope or / sees all');
  t.notOk(mayWrite({ ...s, readOnly: true }, '/photos/alice/a'), 'read-only writes nothing');
  t.ok(mayWrite(s, '/photos/alice/a'));
  t.notOk(mayWrite(s, '/photos/bob/a'));
});

t.test('what a read-only key may do', async (t) => {
  const ro = { name: 'ro', readOnly: true, prefix: '/' };
  t.equal(verdict(ro, 'GET', ''), 'ok', 'list buckets');
  t.equal(verdict(ro, 'GET', 'b', 'k'), 'ok', 'get an object');
  t.equal(verdict(ro, 'HEAD', 'b', 'k'), 'ok');
  t.equal(verdict(ro, 'GET', 'b', '', q({ 'list-type': '2' })), 'ok', 'list a bucket');
  for (const [m, b, k, query] of [['PUT', 'b', 'k', q()], ['DELETE', 'b', 'k', q()], ['PUT', 'b', '', q()], ['DELETE', 'b', '', q()], ['POST', 'b', '', q({ delete: '' })], ['POST', 'b', 'k', q({ uploads: '' })]] as const) {
    t.equal(verdict(ro, m, b, k, query), 'AccessDenied', `${m} /${b}/${k} ${[...query.keys()].join('&')} is refused`);
  }
});

t.test('what a prefix key may do', async (t) => {
  const s = { name: 'alice', readOnly: false, prefix: '/photos/alice' };
  t.equal(verdict(s, 'PUT', 'photos', 'alice/a.jpg'), 'ok', 'write inside');
  t.equal(verdict(s, 'PUT', 'photos', 'bob/a.jpg'), 'AccessDenied', 'write beside');
  t.equal(verdict(s, 'GET', 'photos', 'bob/a.jpg'), 'AccessDenied', 'read beside');
  t.equal(verdict(s, 'GET', 'music', 'a.mp3'), 'AccessDenied', 'another bucket');
  t.equal(verdict(s, 'GET', 'photos', '', q({ prefix: 'alice/' })), 'ok', 'list with a prefix inside');
  t.equal(verdict(s, 'GET', 'photos', '', q({ prefix: 'alice' })), 'ok', 'the prefix itself');
  t.equal(verdict(s, 'GET', 'photos', ''), 'AccessDenied', 'list the whole bucket');
  t.equal(verdict(s, 'GET', 'photos', '', q({ prefix: 'al' })), 'AccessDenied', 'a prefix that reaches beyond');
  t.equal(verdict(s, 'HEAD', 'photos'), 'ok', 'head the bucket on the way');
  t.equal(verdict(s, 'GET', 'photos', '', q({ location: '' })), 'ok');
  t.equal(verdict(s, 'PUT', 'photos'), 'AccessDenied', 'create a bucket it does not own');
  t.equal(verdict(s, 'DELETE', 'photos'), 'AccessDenied', 'delete it');
  t.equal(verdict(s, 'POST', 'photos', '', q({ delete: '' })), 'ok', 'DeleteObjects is checked key by key');
  t.equal(verdict(s, 'PUT', 'photos', 'alice/copy', q(), { bucket: 'photos', key: 'bob/a.jpg' }), 'AccessDenied', 'copy from outside');
  t.equal(verdict(s, 'PUT', 'photos', 'alice/copy', q(), { bucket: 'photos', key: 'alice/a.jpg' }), 'ok', 'copy from inside');
  const whole = { name: 'p', readOnly: false, prefix: '/photos' };
  t.equal(verdict(whole, 'PUT', 'photos'), 'ok', 'a bucket within the prefix may be made');
  t.equal(verdict(whole, 'GET', 'photos'), 'ok');
  t.equal(verdict(undefined, 'DELETE', 'anything'), 'ok', 'a key with no token: the gateway\'s own rights');
});

t.test('the credentials file: tokens, duplicates, limits, reloading', async (t) => {
  const token = `dfs1.k0.${'a'.repeat(40)}.${'b'.repeat(43)}`;
  t.same(parseCredentials(JSON.stringify([{ accessKeyId: 'KEY1', secretAccessKey: 'secret-123', token }]), 'f'), [{ accessKeyId: 'KEY1', secretAccessKey: 'secret-123', token }]);
  t.throws(() => parseCredentials(JSON.stringify([{ accessKeyId: 'KEY1', secretAccessKey: 'secret-123', token: 'guess' }]), 'f'), /not a dfs token/);
  t.throws(() => parseCredentials(JSON.stringify([{ accessKeyId: 'KEY1', secretAccessKey: 'secret-123' }, { accessKeyId: 'KEY1', secretAccessKey: 'secret-456' }]), 'f'), /there twice/);
  const dir = mkdtempSync(join(tmpdir(), 'dfs-s3keys-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'creds.json');
  const k1 = await addKey(file, token);
  t.equal(statSync(file).mode & 0o777, 0o600, 'a new file is for its owner only');
  const errors: unknown[] = [];
  const keys = new KeyFile(file, (e) => errors.push(e));
  t.equal(keys.get(k1.accessKeyId)?.token, token);
  const k2 = await addKey(file, token);
  t.not(k2.accessKeyId, k1.accessKeyId);
  t.equal(keys.get(k2.accessKeyId), undefined, 'not seen before a reload');
  utimesSync(file, new Date(), new Date(Date.now() + 5000)); // the same second as the first write on a coarse clock
  keys.reloadIfChanged();
  t.equal(keys.get(k2.accessKeyId)?.secretAccessKey, k2.secretAccessKey, 'a key added to the file is taken');
  writeFileSync(file, '{ not json');
  utimesSync(file, new Date(), new Date(Date.now() + 10_000));
  keys.reloadIfChanged();
  t.equal(errors.length, 1, 'a broken file is reported');
  t.ok(keys.get(k1.accessKeyId), 'and the keys it had stay');
  keys.reloadIfChanged();
  t.equal(errors.length, 1, 'once, not every check');
});
