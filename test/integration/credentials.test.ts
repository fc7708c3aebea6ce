// Client credentials with real processes and the real CLI (issue 15, item 1, and the session
// findings of its fuzz): anonymous calls are refused and change nothing; a read-only token reads
// and changes nothing; a prefix token sees only what leads to its prefix and touches nothing
// outside it; a session opened by one token is useless to another; a revocation holds on every
// master (the leader is killed and the new one refuses too); a key rotation keeps old tokens valid
// until the old keys are dropped.
import t from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { callJson } from '../../common/http.js';
import { DfsError } from '../../common/errors.js';
import { closeHttpAgent } from '../../common/http.js';
import { TestCluster, waitFor, type RunResult } from '../helpers/cluster.js';

t.teardown(() => closeHttpAgent());
// Every step runs the real CLI, a process each: slow on a loaded machine.
t.setTimeout(900_000);

const c = await TestCluster.start({ masters: 3, chunkservers: 3, replication: 2, chunkSizeBytes: 64 * 1024 });
t.teardown(() => c.stop());
// No ~/.config/dfs/token of the machine's user may stand in for the token a test means to send.
const home = mkdtempSync(join(tmpdir(), 'dfs-creds-home-'));
t.teardown(() => rmSync(home, { recursive: true, force: true }));

/** Runs dfs with exactly this token ('' for none). */
function as(token: string, args: string[], input?: string): Promise<RunResult> {
  return c.dfs(args, { input, env: { DFS_TOKEN: token, XDG_CONFIG_HOME: home, HOME: home } });
}
const text = (r: RunResult) => r.stdout.toString();

/** A raw master call, as any process could make one: the error code, or 'ok'. */
async function raw(path: string, opts: { token?: string; body?: unknown; query?: Record<string, string>; session?: string; method?: 'GET' | 'POST' } = {}): Promise<string> {
  const { proc } = await c.leader();
  const headers: Record<string, string> = {};
  if (opts.token !== undefined) headers.authorization = `Bearer ${opts.token}`;
  if (opts.session !== undefined) headers['x-dfs-session'] = opts.session;
  try {
    await callJson(proc.addr, path, { method: opts.method, body: opts.body, query: opts.query, headers });
    return 'ok';
  } catch (err) {
    return (err as DfsError).code;
  }
}

async function token(args: string[]): Promise<{ token: string; id: string }> {
  const r = await c.dfs(['token', 'create', '--json', ...args]);
  if (r.code !== 0) throw new Error(`token create failed: ${r.stderr}`);
  const out = JSON.parse(text(r)) as { token: string; info: { id: string } };
  return { token: out.token, id: out.info.id };
}

await c.dfs(['put', '-', '/home/alice/a.txt'], { input: 'alice\n' });
await c.dfs(['put', '-', '/home/bob/b.txt'], { input: 'bob\n' });
await c.dfs(['put', '-', '/top.txt'], { input: 'top\n' });

t.test('without a credential nothing is read or changed', async (t) => {
  const ls = await as('', ['ls', '/']);
  t.equal(ls.code, 1, 'dfs ls without a token fails');
  t.match(ls.stderr, /^dfs: this cluster needs a credential/, 'and says what is missing, on one line');
  t.notMatch(ls.stderr, /\n.+/, 'one line, no stack');
  for (const [path, body] of [['/v1/fs/delete', { path: '/top.txt' }], ['/v1/fs/rename', { src: '/top.txt', dst: '/x' }], ['/v1/fs/setrep', { path: '/top.txt', replication: 1 }],
    ['/v1/fs/create', { path: '/top.txt', overwrite: true }], ['/v1/cluster/decommission', { server: 'cs1' }], ['/v1/session', {}], ['/v1/auth/tokens', {}]] as const) {
    t.equal(await raw(path, { body }), 'UNAUTHORIZED', `POST ${path} without a token: UNAUTHORIZED`);
  }
  for (const path of ['/v1/fs/list', '/v1/fs/stat', '/v1/fs/fsck', '/v1/fs/du']) t.equal(await raw(path, { query: { path: '/' } }), 'UNAUTHORIZED', `GET ${path}: UNAUTHORIZED`);
  t.equal(await raw('/v1/cluster/status'), 'UNAUTHORIZED', 'GET /v1/cluster/status: UNAUTHORIZED');
  t.equal(await raw('/v1/fs/list', { query: { path: '/' }, token: 'dfs1.k0.e30.AAAA' }), 'UNAUTHORIZED', 'a forged token: UNAUTHORIZED');
  t.equal(await raw('/v1/raft/status'), 'ok', 'the Raft view stays open (masters and the launcher read it)');
  t.equal(await raw('/v1/health'), 'ok', 'so does health');
  t.equal(text(await c.dfs(['cat', '/top.txt'])), 'top\n', 'and /top.txt is untouched');
  t.equal((await c.dfs(['stat', '/top.txt', '--json'])).code, 0);
});

t.test('a read-only token reads and cannot change anything', async (t) => {
  const ro = await token(['--read-only', '--name', 'reader']);
  t.match(ro.token, /^dfs1\.k0\./);
  t.equal(text(await as(ro.token, ['cat', '/home/bob/b.txt'])), 'bob\n', 'it reads');
  t.match(text(await as(ro.token, ['ls', '/'])), /home/, 'it lists');
  t.equal((await as(ro.token, ['status'])).code, 0, 'it sees the cluster status');
  for (const args of [['put', '-', '/new.txt'], ['put', '-f', '-', '/top.txt'], ['rm', '/top.txt'], ['mkdir', '/d'], ['mv', '/top.txt', '/moved.txt'], ['setrep', '1', '/top.txt'], ['decommission', 'cs1'], ['token', 'create']]) {
    const r = await as(ro.token, args, 'x');
    t.equal(r.code, 1, `dfs ${args.join(' ')} fails`);
    t.match(r.stderr, /read-only|needs an admin token/, `and says why: ${r.stderr.trim()}`);
  }
  t.equal(text(await c.dfs(['cat', '/top.txt'])), 'top\n', '/top.txt is unchanged');
  t.notMatch(text(await c.dfs(['ls', '/'])), /new\.txt|moved\.txt|\bd\b/, 'nothing was made');
  t.match(text(await c.dfs(['stat', '/top.txt'])), /replication\s*2|2 replicas|replication: 2/i, 'the replication is unchanged');
});

t.test('a prefix token sees only the way to its prefix and touches nothing outside', async (t) => {
  const alice = await token(['--prefix', '/home/alice', '--name', 'alice']);
  t.equal(text(await as(alice.token, ['ls', '/'])).trim(), 'home/', 'ls / shows only what leads to the prefix');
  t.equal(text(await as(alice.token, ['ls', '/home'])).trim(), 'alice/', 'ls /home shows only alice');
  t.notMatch(text(await as(alice.token, ['ls', '-R', '/'])), /bob|top/, 'ls -R / shows nothing outside');
  t.equal(text(await as(alice.token, ['cat', '/home/alice/a.txt'])), 'alice\n', 'it reads its own files');
  t.equal((await as(alice.token, ['put', '-', '/home/alice/new.txt'], 'new\n')).code, 0, 'and writes below its prefix');
  t.equal(text(await c.dfs(['cat', '/home/alice/new.txt'])), 'new\n');
  for (const args of [['cat', '/home/bob/b.txt'], ['stat', '/home/bob'], ['ls', '/home/bob'], ['put', '-', '/home/bob/x'], ['rm', '/top.txt'], ['mv', '/home/alice/a.txt', '/home/bob/'],
    ['mv', '/home/bob/b.txt', '/home/alice/'], ['du', '/'], ['fsck', '/'], ['mkdir', '/home/alice2'], ['stat', '/top.txt'], ['token', 'list']]) {
    const r = await as(alice.token, args, 'x');
    t.equal(r.code, 1, `dfs ${args.join(' ')} fails`);
    t.match(r.stderr, /limited to \/home\/alice|needs an admin token/, `and says why: ${r.stderr.trim()}`);
  }
  for (const p of ['/home/alice/../bob/b.txt', '/home/alice//x', '/home/alice/%2e%2e/bob']) {
    t.equal(await raw('/v1/fs/stat', { token: alice.token, query: { path: p } }).then((code) => code === 'FORBIDDEN' || code === 'INVALID_PATH' || code === 'NOT_FOUND'), true, `stat ${p} is refused or finds nothing`);
  }
  const many = (paths: string[]) => raw('/v1/fs/stat-many', { token: alice.token, method: 'POST', body: { paths } });
  t.equal(await many(['/home/alice/a.txt', '/home/alice/none']), 'ok', 'stat-many of paths below its prefix');
  t.equal(await many(['/home/alice/a.txt', '/home/bob/b.txt']), 'FORBIDDEN', 'stat-many with one path outside is refused whole');
  t.equal(await many(['/home']), 'FORBIDDEN', 'stat-many does not walk down to the prefix (stat and list do)');
  t.equal(text(await c.dfs(['cat', '/home/bob/b.txt'])), 'bob\n', 'bob\'s file is untouched');
  t.equal(text(await c.dfs(['cat', '/top.txt'])), 'top\n', '/top.txt is untouched');
});

t.test('a session belongs to the token that opened it', async (t) => {
  const alice = await token(['--prefix', '/home/alice', '--name', 'alice-s']);
  const eve = await token(['--name', 'eve-s']);
  const { proc } = await c.leader();
  const { sessionId } = await callJson<{ sessionId: string }>(proc.addr, '/v1/session', { body: {}, headers: { authorization: `Bearer ${alice.token}` } });
  t.match(sessionId, /^c\d+\.[A-Za-z0-9_-]{22}$/, 'the id carries a MAC, not only the Raft index');
  const mkdir = { path: '/home/alice/s1', parents: true };
  t.equal(await raw('/v1/fs/mkdir', { token: alice.token, body: mkdir, session: `${sessionId}:1` }), 'ok', 'its owner uses it');
  t.equal(await raw('/v1/fs/mkdir', { token: eve.token, body: { path: '/eve1' }, session: `${sessionId}:2` }), 'UNAUTHORIZED', 'another token sending it is refused');
  t.equal(await raw('/v1/fs/mkdir', { token: eve.token, body: { path: '/eve2' }, session: `${sessionId.split('.')[0]}:2` }), 'UNAUTHORIZED', 'so is the bare Raft index');
  t.equal(await raw('/v1/fs/mkdir', { token: alice.token, body: { path: '/home/alice/s2' }, session: `${sessionId}:2` }), 'ok', 'the owner\'s next call applies');
  const ls = text(await c.dfs(['ls', '/home/alice']));
  t.match(ls, /s2/, 'and did apply');
  t.notMatch(text(await c.dfs(['ls', '/'])), /eve/, 'the refused calls made nothing');
});

t.test('a revocation holds on every master, the next leader too', async (t) => {
  const eve = await token(['--name', 'eve']);
  t.equal((await as(eve.token, ['ls', '/'])).code, 0, 'the token works');
  const r = await c.dfs(['token', 'revoke', eve.id]);
  t.equal(r.code, 0, `dfs token revoke: ${r.stderr}`);
  const refused = await as(eve.token, ['ls', '/']);
  t.equal(refused.code, 1, 'refused at once');
  t.match(refused.stderr, /has been revoked/);
  t.match(text(await c.dfs(['token', 'list'])), new RegExp(`${eve.id}.*REVOKED`), 'dfs token list says so');
  // An id starting with '-' (an older master made one in 64 so) is given after --, as text.
  const dashed = await c.dfs(['token', 'revoke', '--', '-000001234567']);
  t.equal(dashed.code, 0, `dfs token revoke -- -id: ${dashed.stderr}`);
  t.match(text(dashed), /revoked -000001234567 \(not a token of dfs token list/, 'the id after -- is the one revoked');

  const { proc } = await c.leader();
  await c.kill(proc);
  await waitFor(async () => (await c.dfs(['ls', '/'])).code === 0, 30_000, 'a new leader');
  const after = await as(eve.token, ['ls', '/']);
  t.equal(after.code, 1, 'the new leader refuses it too');
  t.match(after.stderr, /has been revoked/);
  t.equal((await c.dfs(['ls', '/'])).code, 0, 'while the admin token works');
});

t.test('rotate-keys: old tokens verify until the old keys are dropped', async (t) => {
  const before = await token(['--read-only', '--name', 'before']);
  const rot = await c.dfs(['admin', 'rotate-keys']);
  t.equal(rot.code, 0, `rotate-keys: ${rot.stderr}`);
  t.match(text(rot), /k1\s+signing/, 'k1 signs');
  const after = await token(['--admin', '--name', 'after']);
  t.match(after.token, /^dfs1\.k1\./, 'a new token carries the new key');
  t.equal((await as(before.token, ['ls', '/'])).code, 0, 'a token of the old key still works');
  t.equal((await as(after.token, ['ls', '/'])).code, 0, 'so does the new one');
  const drop = await as(after.token, ['admin', 'drop-old-keys']);
  t.equal(drop.code, 0, `drop-old-keys: ${drop.stderr}`);
  const old = await as(before.token, ['ls', '/']);
  t.equal(old.code, 1, 'a token of a dropped key is refused');
  t.match(old.stderr, /does not have/);
  t.equal((await as(after.token, ['ls', '/'])).code, 0, 'the new key\'s token works');
  t.match(text(await as(after.token, ['admin', 'keys'])), /^k1\s+signing/m);
});
