// POST /v1/fs/batch with real masters and chunkservers (common/batch.ts, master/batch.ts,
// cli/meta-batch.ts): a client with many calls out sends them in batches, and every call does
// what it does alone (the namespace and the bytes read back; the master counts each call under
// its op); a raw batch answers each call on its own, applies a retried batch once, and is
// refused whole, changing nothing, when one call is bad, out of the token's scope, read-only
// writing, or under another token's session.
import t from 'tap';
import { Readable, Writable } from 'node:stream';
import { DfsClient } from '../../cli/client.js';
import { MAX_BATCH_CALLS, MAX_BATCH_SESSIONS, type BatchResult } from '../../common/batch.js';
import { DfsError } from '../../common/errors.js';
import { callJson, closeHttpAgent } from '../../common/http.js';
import { ADMIN_TOKEN, TestCluster, randomBytesSeeded } from '../helpers/cluster.js';

t.teardown(() => closeHttpAgent());
t.setTimeout(300_000);

const c = await TestCluster.start({ masters: 3, chunkservers: 3, replication: 2, chunkSizeBytes: 64 * 1024 });
t.teardown(() => c.stop());

/** The leader's count of calls by op, from its metrics. */
async function opCount(op: string): Promise<number> {
  const { proc } = await c.leader();
  const text = await (await fetch(`http://${proc.addr}/metrics`)).text();
  const m = new RegExp(`^dfs_master_requests_total\\{[^}]*\\bop="${op}"[^}]*\\} (\\d+)`, 'm').exec(text);
  return m ? Number(m[1]) : 0;
}

/** Requests the leader answered on `route` (single calls, not calls inside batches), from its metrics. */
async function routeRequests(route: string): Promise<number> {
  const { proc } = await c.leader();
  const text = await (await fetch(`http://${proc.addr}/metrics`)).text();
  let n = 0;
  for (const m of text.matchAll(/^dfs_http_request_duration_seconds_count\{([^}]*)\} (\d+)/gm)) if (m[1]!.includes(`route="${route}"`)) n += Number(m[2]);
  return n;
}

/** A raw batch to the leader with `token`: its results, or the error code the whole batch got. */
async function batch(token: string, calls: unknown[]): Promise<BatchResult[] | string> {
  const { proc } = await c.leader();
  try {
    return (await callJson<{ results: BatchResult[] }>(proc.addr, '/v1/fs/batch', { body: { calls }, headers: { authorization: `Bearer ${token}` } })).results;
  } catch (err) {
    return (err as DfsError).code;
  }
}

/** A session for `token` (as a client opens one): its id, to use with sequence numbers from 1. */
async function session(token: string): Promise<string> {
  const { proc } = await c.leader();
  return (await callJson<{ sessionId: string }>(proc.addr, '/v1/session', { body: {}, headers: { authorization: `Bearer ${token}` } })).sessionId;
}

async function token(args: string[]): Promise<string> {
  const r = await c.dfs(['token', 'create', '--json', ...args]);
  if (r.code !== 0) throw new Error(`token create failed: ${r.stderr}`);
  return (JSON.parse(r.stdout.toString()) as { token: string }).token;
}

/** A file's bytes as the client reads them. */
async function readBack(client: DfsClient, path: string): Promise<Buffer> {
  const parts: Buffer[] = [];
  await client.get(path, new Writable({ write: (chunk: Buffer, _enc, done) => (parts.push(chunk), done()) }));
  return Buffer.concat(parts);
}

const exists = async (client: DfsClient, path: string) => client.stat(path).then(() => true, (e: DfsError) => (e.code === 'NOT_FOUND' ? false : Promise.reject(e)));

t.test('a client with 64 calls out batches them, and each call does what it does alone', async (t) => {
  const client = new DfsClient(c.masters.split(','), { token: ADMIN_TOKEN });
  const batches0 = await opCount('batch');
  const mkdirs0 = await opCount('mkdir');
  const n = 400;
  const run = async (count: number, op: (i: number) => Promise<unknown>) => {
    let next = 0;
    await Promise.all(Array.from({ length: 64 }, async () => {
      while (next < count) await op(next++);
    }));
  };
  await run(n, (i) => client.mkdir(`/b/d${i}`, true));
  const batches1 = await opCount('batch');
  t.ok(batches1 > batches0, `the mkdirs went in batches (${batches1 - batches0})`);
  t.equal(await opCount('mkdir') - mkdirs0, n, 'the leader counted each mkdir once, batched or not');
  t.ok(batches1 - batches0 < n / 4, 'far fewer requests than calls');
  const listed = await client.list('/b');
  t.equal(listed.entries.length, n, 'every directory is there');
  // Stats of what exists and what does not: each gets its own answer.
  const seen: boolean[] = [];
  await run(n + 50, async (i) => (seen[i] = await exists(client, `/b/d${i}`)));
  t.same(seen, Array.from({ length: n + 50 }, (_, i) => i < n), 'stats answer each path for itself (NOT_FOUND past the last)');
  // Files through the chunk path (create, allocate, complete batched), then read back byte for byte.
  const files = 48;
  await run(files, (i) => client.put(Readable.from([randomBytesSeeded(3000 + i, i)]), `/b/f${i}`, { parents: true }));
  let same = 0;
  for (let i = 0; i < files; i++) if ((await readBack(client, `/b/f${i}`)).equals(randomBytesSeeded(3000 + i, i))) same++;
  t.equal(same, files, 'every file reads back as written');
  await run(files, (i) => client.rename(`/b/f${i}`, `/b/g${i}`));
  await run(files, (i) => client.remove(`/b/g${i}`));
  t.equal((await client.list('/b')).entries.length, n, 'renamed and deleted in batches: only the directories are left');
  t.ok(await opCount('batch') > batches1, 'the file calls were batched too');
  // A delete with a type (what the S3 gateway sends for a folder key) leaves a path of the other type as it is.
  await client.put(Readable.from([Buffer.from('typed')]), '/typed/f', { parents: true });
  const codes = await Promise.all([client.remove('/typed/f', false, 'dir'), client.remove('/typed', true, 'file')].map((p) => p.then(() => 'OK', (e: DfsError) => e.code)));
  t.same(codes, ['NOT_A_DIRECTORY', 'IS_A_DIRECTORY'], 'a delete of the other type is refused');
  t.equal((await readBack(client, '/typed/f')).toString(), 'typed', 'and the file is still there');
  t.same(await client.remove('/typed/f', false, 'file'), { files: 1 });
  t.same(await client.remove('/typed', false, 'dir'), { files: 0 }, 'each of its own type is removed');
});

t.test('a raw batch: each call answers for itself; a retried batch is applied once', async (t) => {
  // One session per mutation, as a client uses them (a session answers a retry of its latest call only).
  const [s1, s2, s3] = [await session(ADMIN_TOKEN), await session(ADMIN_TOKEN), await session(ADMIN_TOKEN)];
  const calls = [
    { op: 'mkdir', session: `${s1}:1`, input: { path: '/raw/a', parents: true } },
    { op: 'create', session: `${s2}:1`, input: { path: '/raw/a/empty', empty: true } },
    { op: 'mkdir', session: `${s3}:1`, input: { path: '/nowhere/x' } },
    { op: 'stat', input: { path: '/raw/none' } },
  ];
  const first = await batch(ADMIN_TOKEN, calls);
  t.type(first, Array, 'the batch is answered');
  const r = first as BatchResult[];
  t.equal(r.length, 4, 'one result per call');
  t.match(r[0], { reply: { path: '/raw/a', type: 'dir' } }, 'mkdir -p made the directory');
  t.match(r[1], { reply: { file: { path: '/raw/a/empty', type: 'file', size: 0, state: 'complete' } } }, 'the empty file was made, complete');
  t.match(r[2], { error: { code: 'NOT_FOUND' } }, 'a mkdir without its parent fails on its own');
  t.match(r[3], { error: { code: 'NOT_FOUND' } }, 'a stat of nothing fails on its own');
  const again = await batch(ADMIN_TOKEN, calls);
  t.same((again as BatchResult[]).slice(0, 2), r.slice(0, 2), 'the same batch again (a retry) gets the first answers: nothing applied twice');
  const fresh = await batch(ADMIN_TOKEN, [{ op: 'create', session: `${s2}:2`, input: { path: '/raw/a/empty', empty: true } }]);
  t.match(fresh, [{ error: { code: 'EXISTS' } }], 'a new call (next sequence number) does run, and finds the file');
});

t.test('sessions open in a batch, each bound to the token that asked', async (t) => {
  const sessions0 = await opCount('session');
  const r = await batch(ADMIN_TOKEN, [{ op: 'session', input: {} }, { op: 'session', input: {} }, { op: 'stat', input: { path: '/' } }]);
  t.type(r, Array);
  const [a, b] = (r as { reply: { sessionId: string; inlineMaxBytes?: number } }[]).map((x) => x.reply);
  t.ok(a?.sessionId && b?.sessionId && a.sessionId !== b.sessionId, 'two new sessions, not the same');
  t.equal(typeof a?.inlineMaxBytes, 'number', 'with the leader\'s inline limit, as the single route answers');
  t.equal(await opCount('session') - sessions0, 2, 'each counted as a session, batched or not');
  t.match(await batch(ADMIN_TOKEN, [{ op: 'mkdir', session: `${a!.sessionId}:1`, input: { path: '/sess/a', parents: true } }]), [{ reply: { path: '/sess/a' } }], 'usable by the token that opened it');
  const other = await token(['--name', 'other']);
  t.equal(await batch(other, [{ op: 'mkdir', session: `${b!.sessionId}:1`, input: { path: '/sess/b', parents: true } }]), 'UNAUTHORIZED', 'and by no other token');
  t.equal(await batch(ADMIN_TOKEN, [{ op: 'session', session: `${b!.sessionId}:1`, input: {} }]), 'INVALID_ARGUMENT', 'a session\'s open takes no session');
  t.equal(await batch(ADMIN_TOKEN, [{ op: 'session', input: { extra: 1 } }]), 'INVALID_ARGUMENT', 'nor any input');
  t.equal(await batch('', [{ op: 'session', input: {} }]), 'UNAUTHORIZED', 'nor is one opened for no token');
  const sessions2 = await opCount('session');
  t.equal(await batch(ADMIN_TOKEN, Array.from({ length: MAX_BATCH_SESSIONS + 1 }, () => ({ op: 'session', input: {} }))), 'INVALID_ARGUMENT', `a batch opens at most ${MAX_BATCH_SESSIONS} sessions`);
  t.equal(await opCount('session'), sessions2, 'and that one opened none');
  // A fresh client with 64 calls out opens its 64 sessions in batches too.
  const client = new DfsClient(c.masters.split(','), { token: ADMIN_TOKEN });
  const single0 = await routeRequests('/v1/session');
  const sessions1 = await opCount('session');
  await Promise.all(Array.from({ length: 64 }, (_, i) => client.mkdir(`/sess/many/d${i}`, true)));
  t.equal(await opCount('session') - sessions1, 64, 'one session per call out at once');
  const single = await routeRequests('/v1/session') - single0;
  t.ok(single <= 2, `opened in batches: ${single} of the 64 came alone to POST /v1/session`);
  t.equal((await client.list('/sess/many')).entries.length, 64);
});

t.test('a batch is refused whole, and changes nothing, when one call may not run', async (t) => {
  const client = new DfsClient(c.masters.split(','), { token: ADMIN_TOKEN });
  await client.mkdir('/team/in', true);
  const prefix = await token(['--prefix', '/team', '--name', 'team']);
  const reader = await token(['--read-only', '--name', 'reader']);
  const ps = await session(prefix);
  const admin = await session(ADMIN_TOKEN);
  const mk = (sess: string, path: string) => ({ op: 'mkdir', session: sess, input: { path } });
  const cases: [string, string, unknown[], string][] = [
    ['a call outside the token\'s prefix', prefix, [mk(`${ps}:1`, '/team/in/p1'), mk(`${ps}:2`, '/elsewhere')], 'FORBIDDEN'],
    ['a read-only token\'s mkdir among stats', reader, [{ op: 'stat', input: { path: '/team' } }, mk(`${ps}:3`, '/team/in/p2')], 'FORBIDDEN'],
    ['a session another token opened', prefix, [mk(`${ps}:4`, '/team/in/p3'), mk(`${admin}:1`, '/team/in/p4')], 'UNAUTHORIZED'],
    ['a call with a bad input', ADMIN_TOKEN, [mk(`${admin}:2`, '/team/in/p5'), { op: 'mkdir', session: `${admin}:3`, input: { path: 7 } }], 'INVALID_ARGUMENT'],
    ['an unknown op', ADMIN_TOKEN, [mk(`${admin}:4`, '/team/in/p6'), { op: 'format', input: {} }], 'INVALID_ARGUMENT'],
    ['a stat with a session', ADMIN_TOKEN, [mk(`${admin}:5`, '/team/in/p7'), { op: 'stat', session: `${admin}:6`, input: { path: '/' } }], 'INVALID_ARGUMENT'],
    ['a malformed session', ADMIN_TOKEN, [{ op: 'mkdir', session: 'no-seq', input: { path: '/team/in/p8' } }], 'INVALID_ARGUMENT'],
    [`more than ${MAX_BATCH_CALLS} calls`, ADMIN_TOKEN, Array.from({ length: MAX_BATCH_CALLS + 1 }, (_, i) => ({ op: 'stat', input: { path: `/s${i}` } })), 'INVALID_ARGUMENT'],
    ['no calls', ADMIN_TOKEN, [], 'INVALID_ARGUMENT'],
    ['no token', '', [{ op: 'stat', input: { path: '/' } }], 'UNAUTHORIZED'],
  ];
  for (const [what, tok, calls, code] of cases) t.equal(await batch(tok, calls), code, `${what}: ${code}`);
  const made: string[] = [];
  for (let i = 1; i <= 8; i++) if (await exists(client, `/team/in/p${i}`)) made.push(`/team/in/p${i}`);
  t.same(made, [], 'none of the refused batches\' other calls ran');
  t.notOk(await exists(client, '/elsewhere'), '/elsewhere was not made');
  // What each token may do, it may do in a batch.
  t.match(await batch(reader, [{ op: 'stat', input: { path: '/team' } }, { op: 'stat', input: { path: '/team/in' } }]), [{ reply: { type: 'dir' } }, { reply: { type: 'dir' } }], 'a read-only token\'s batch of stats');
  t.match(await batch(prefix, [mk(`${ps}:5`, '/team/in/q1'), { op: 'stat', input: { path: '/team/in/q1' } }]), [{ reply: { path: '/team/in/q1' } }, {}], 'a prefix token\'s batch within its prefix');
  t.ok(await exists(client, '/team/in/q1'));
  // A prefix token's client: a batch refused whole falls back to calls alone, each its own answer.
  const teamClient = new DfsClient(c.masters.split(','), { token: prefix });
  const outcomes = await Promise.all(Array.from({ length: 40 }, (_, i) => teamClient.mkdir(i % 10 === 9 ? `/other${i}` : `/team/in/c${i}`).then(() => 'ok', (e: DfsError) => e.code)));
  t.same(outcomes, Array.from({ length: 40 }, (_, i) => (i % 10 === 9 ? 'FORBIDDEN' : 'ok')), 'out of 40 calls out at once, exactly the four outside the prefix are refused');
});
