// The client's batching of namespace calls (cli/meta-batch.ts), against a fake leader that holds
// each request until the test lets it go: calls go alone while fewer than MAX_BATCHES_IN_FLIGHT
// are out, the ones made meanwhile go in one batch, in order, each answered by its own result;
// a call that got a retryable error, a batch refused whole and an older master (no batch route)
// all fall back to the call alone; a cluster that cannot be reached fails the whole batch.
import t from 'tap';
import { MAX_BATCH_CALLS, MAX_BATCH_SESSIONS, type BatchCall, type BatchResult } from '../../common/batch.js';
import { FS } from '../../common/contract/index.js';
import { DfsError } from '../../common/errors.js';
import { MAX_JSON_BODY_BYTES } from '../../common/limits.js';
import { MAX_BATCH_INPUT_BYTES, MAX_BATCHES_IN_FLIGHT, MetaBatcher } from '../../cli/meta-batch.js';

/** A directory's EntryInfo, as a master answers a mkdir. */
const dir = (path: string) => ({ path, name: path.slice(1), type: 'dir', size: 0, mtimeMs: 0, replication: 0, state: 'complete', chunkCount: 0 });

interface Held<T> { release: (v: T) => void; fail: (e: unknown) => void }

/** A leader whose requests wait until released; answers each batched call with `answer`. */
function fakeLeader(answer: (c: BatchCall) => BatchResult = (c) => ({ reply: dir((c.input as { path: string }).path) })) {
  const alone: { path: string; held: Held<unknown> }[] = [];
  const batches: { calls: BatchCall[]; held: Held<{ results: BatchResult[] }> }[] = [];
  const leader = {
    alone,
    batches,
    batcher: new MetaBatcher({
      batch: (calls) => new Promise((release, fail) => batches.push({ calls, held: { release, fail } })),
      leader: () => '127.0.0.1:1',
    }),
    mkdir(path: string, session = `s:${path.length}`) {
      return leader.batcher.submit(FS.mkdir, { path }, session, () => new Promise((release, fail) => alone.push({ path, held: { release, fail } })) as never);
    },
    /** Releases the oldest batch with answers for its calls. */
    answerBatch() {
      const b = batches.shift()!;
      b.held.release({ results: b.calls.map(answer) });
    },
    answerAlone() {
      const a = alone.shift()!;
      a.held.release({ path: a.path });
    },
  };
  return leader;
}

const tick = () => new Promise((r) => setImmediate(r));

/** Fills the window: MAX_BATCHES_IN_FLIGHT calls, each made in a turn of its own, so each goes alone and is held. */
async function fill(l: ReturnType<typeof fakeLeader>): Promise<Promise<unknown>[]> {
  const out: Promise<unknown>[] = [];
  for (let i = 0; i < MAX_BATCHES_IN_FLIGHT; i++) {
    out.push(l.mkdir(`/h${i}`));
    await tick();
  }
  return out;
}

t.test('a call alone in its turn goes alone; calls made in one turn, or while the window is full, go in one batch, in order', async (t) => {
  const l = fakeLeader();
  const first = l.mkdir('/a');
  await tick();
  t.equal(l.alone.length, 1, 'a single call goes alone, to its own route');
  t.equal(l.batches.length, 0);
  l.answerAlone();
  t.same(await first, { path: '/a' });
  const turn = Array.from({ length: 10 }, (_, i) => l.mkdir(`/t${i}`, `t:${i + 1}`));
  await tick();
  t.equal(l.alone.length, 0, 'calls made in one turn do not go alone');
  t.same(l.batches[0]?.calls.map((c) => [c.op, c.session, c.input]), Array.from({ length: 10 }, (_, i) => ['mkdir', `t:${i + 1}`, { path: `/t${i}` }]), 'they go as one batch, in order, each with its op and its own session');
  l.answerBatch();
  t.same((await Promise.all(turn)).map((r) => (r as { path: string }).path), Array.from({ length: 10 }, (_, i) => `/t${i}`), 'each call gets its own result');
  const hold = await fill(l);
  t.equal(l.alone.length, MAX_BATCHES_IN_FLIGHT, `${MAX_BATCHES_IN_FLIGHT} calls in turns of their own go alone`);
  const later = [l.mkdir('/w1', 'w:1')];
  await tick();
  later.push(l.mkdir('/w2', 'w:2'));
  await tick();
  t.equal(l.batches.length, 0, 'with the window full, calls wait, whatever turn they were made in');
  l.answerAlone();
  await tick();
  t.same(l.batches[0]?.calls.map((c) => c.input), [{ path: '/w1' }, { path: '/w2' }], 'when a request ends, the waiting calls go as one batch');
  l.answerBatch();
  while (l.alone.length > 0) l.answerAlone();
  await Promise.all([...hold, ...later]);
});

t.test('a batch holds at most MAX_BATCH_CALLS calls and about MAX_BATCH_INPUT_BYTES of input', async (t) => {
  t.ok(MAX_BATCH_CALLS * 256 + MAX_BATCH_INPUT_BYTES <= MAX_JSON_BODY_BYTES, 'a batch of the most input, with each call\'s envelope, fits the master\'s JSON body limit');
  const l = fakeLeader();
  const out = await fill(l);
  const waiting = Array.from({ length: MAX_BATCH_CALLS + 5 }, (_, i) => l.mkdir(`/b${i}`));
  await tick();
  t.equal(l.batches.length, 0, 'with the window full, they wait');
  l.answerAlone();
  await tick();
  t.equal(l.batches[0]!.calls.length, MAX_BATCH_CALLS, 'the first batch is full');
  l.answerAlone();
  await tick();
  t.equal(l.batches[1]!.calls.length, 5, 'the rest go in the next');
  while (l.batches.length > 0) l.answerBatch();
  while (l.alone.length > 0) l.answerAlone();
  await Promise.all([...out, ...waiting]);
  // Inline creates carry their bytes: a batch stops at the byte bound.
  const c = fakeLeader();
  const hold = await fill(c);
  const big = 'A'.repeat(20_000);
  const creates = Array.from({ length: 100 }, (_, i) => c.batcher.submit(FS.create, { path: `/f${i}`, inline: { data: big, size: 15_000, checksum: '0000000000000000' } }, `c:${i + 1}`, () => Promise.resolve({}) as never));
  await tick();
  c.answerAlone();
  await tick();
  const sizes = c.batches.map((b) => b.calls.length);
  t.ok(sizes.length >= 1 && sizes.every((n) => n * 20_000 <= MAX_BATCH_INPUT_BYTES + 20_000), `inline creates split by bytes (${sizes.join(', ')})`);
  // Each batch refused whole: each create goes alone (answered at once here).
  for (let round = 0; round < 10; round++) {
    while (c.batches.length > 0) c.batches.shift()!.held.fail(new DfsError('FORBIDDEN', 'refused'));
    while (c.alone.length > 0) c.answerAlone();
    await tick();
  }
  await Promise.all([...hold, ...creates]);
});

t.test('per-call errors: retryable ones go again alone, others are the call\'s own', async (t) => {
  const l = fakeLeader((c) => {
    const path = (c.input as { path: string }).path;
    if (path === '/moved') return new DfsError('NOT_LEADER', 'not the leader').toBody();
    if (path === '/exists') return new DfsError('EXISTS', '/exists exists').toBody();
    return { reply: dir(path) };
  });
  const hold = await fill(l);
  const moved = l.mkdir('/moved');
  const exists = l.mkdir('/exists');
  const fine = l.mkdir('/fine');
  await tick();
  l.answerAlone();
  await tick();
  l.answerBatch();
  await t.rejects(exists, { code: 'EXISTS' }, 'a refusal is the call\'s own error');
  t.equal(((await fine) as { path: string }).path, '/fine', 'its neighbours succeed');
  await tick();
  t.ok(l.alone.some((a) => a.path === '/moved'), 'a NOT_LEADER call is sent again alone (its own retries follow the leader)');
  while (l.alone.length > 0) l.answerAlone();
  t.same(await moved, { path: '/moved' });
  await Promise.all(hold);
});

t.test('a reply that does not fit its route is BAD_REPLY for that call only', async (t) => {
  const l = fakeLeader((c) => ((c.input as { path: string }).path === '/odd' ? { reply: { nonsense: true } } : { reply: dir('/ok') }));
  const hold = await fill(l);
  const odd = l.mkdir('/odd');
  const ok = l.mkdir('/ok');
  await tick();
  l.answerAlone();
  await tick();
  l.answerBatch();
  await t.rejects(odd, { code: 'BAD_REPLY' });
  t.equal(((await ok) as { path: string }).path, '/ok');
  while (l.alone.length > 0) l.answerAlone();
  await Promise.all(hold);
});

for (const [what, err, alone] of [
  ['an older master without the route (NOT_FOUND)', new DfsError('NOT_FOUND', 'no such route'), true],
  ['a batch refused whole (FORBIDDEN)', new DfsError('FORBIDDEN', 'call 1 (mkdir): /x is outside the token\'s prefix'), true],
  ['a batch with too many results', undefined, true],
  ['an older master, to a token that is not an admin\'s (FORBIDDEN: a route it does not know needs one)', new DfsError('FORBIDDEN', 'this needs an admin token; token t1 (ci) is not one'), true],
  ['no leader found in time (UNAVAILABLE, after the batch\'s own retries)', new DfsError('UNAVAILABLE', 'no master leader found (m1 127.0.0.1:1: no answer in time)'), true],
  ['a batch that timed out', new DfsError('TIMEOUT', 'call to 127.0.0.1:1 timed out'), true],
  ['a cluster that cannot be reached at all (UNAVAILABLE)', new DfsError('UNAVAILABLE', 'cannot reach a master at 127.0.0.1:1 (connection refused)'), false],
] as const) {
  t.test(`the whole batch failed: ${what}`, async (t) => {
    const l = fakeLeader();
    const hold = await fill(l);
    const calls = [l.mkdir('/p'), l.mkdir('/q')];
    await tick();
    l.answerAlone();
    await tick();
    // What each call ends with, watched before the batch fails (so no rejection goes unhandled).
    const ended = calls.map((c) => c.then(() => 'ok', (e: DfsError) => e.code));
    const b = l.batches.shift()!;
    if (err) b.held.fail(err);
    else b.held.release({ results: [...b.calls, ...b.calls].map(() => ({ reply: {} })) });
    await tick();
    if (alone) {
      t.same(l.alone.slice(-2).map((a) => a.path), ['/p', '/q'], 'each call is sent again alone');
      while (l.alone.length > 0) l.answerAlone();
      t.same(await Promise.all(calls), [{ path: '/p' }, { path: '/q' }], 'and gets its own answer');
    } else {
      t.same(await Promise.all(ended), ['UNAVAILABLE', 'UNAVAILABLE'], 'every call fails with the batch\'s error');
      while (l.alone.length > 0) l.answerAlone();
    }
    await Promise.all(hold);
    if (err?.code === 'NOT_FOUND' || err?.message.startsWith('this needs an admin token')) {
      const later = Array.from({ length: MAX_BATCHES_IN_FLIGHT + 3 }, (_, i) => l.mkdir(`/later${i}`));
      await tick();
      t.equal(l.batches.length, 0, 'after a master said it has no batch route, calls no longer wait to be batched');
      t.equal(l.alone.length, MAX_BATCHES_IN_FLIGHT + 3);
      while (l.alone.length > 0) l.answerAlone();
      await Promise.all(later);
    }
  });
}

t.test('a stat with chunks, and a call too large for a batch, go alone', async (t) => {
  const l = fakeLeader();
  const hold = await fill(l);
  let alone = 0;
  const stat = l.batcher.submit(FS.stat, { path: '/f', chunks: true }, undefined, async () => (alone++, {}) as never);
  const big = l.batcher.submit(FS.complete, { writeId: 'w'.repeat(16), chunks: [], receipts: ['r'.repeat(MAX_BATCH_INPUT_BYTES)] } as never, 's:1', async () => (alone++, {}) as never);
  await Promise.all([stat, big]);
  t.equal(alone, 2, 'both went at once, alone, though the window was full');
  t.equal(l.batches.length, 0, 'and no batch was made');
  while (l.alone.length > 0) l.answerAlone();
  await Promise.all(hold);
});

t.test('calls of other routes never wait behind batchable ones', async (t) => {
  const l = fakeLeader();
  const hold = [...await fill(l), l.mkdir('/h-more1'), l.mkdir('/h-more2')];
  await tick();
  // An append may wait for another writer's complete: it must not take or wait for a slot.
  let sent = false;
  const append = l.batcher.submit(FS.append, { path: '/log' }, 'a:1', async () => {
    sent = true;
    return {} as never;
  });
  t.ok(sent, 'an append goes at once though the window is full');
  await append;
  while (l.alone.length > 0) l.answerAlone();
  await tick();
  while (l.batches.length > 0) l.answerBatch();
  await Promise.all(hold);
});

t.test(`a batch opens at most ${MAX_BATCH_SESSIONS} sessions; a master that refuses sessions in batches gets them alone`, async (t) => {
  const answer = (c: BatchCall): BatchResult => (c.op === 'session' ? { reply: { sessionId: `id${Math.random()}`, inlineMaxBytes: 0 } } : { reply: dir((c.input as { path: string }).path) });
  const l = fakeLeader(answer);
  const openSession = () => l.batcher.submit(FS.session, {}, undefined, () => new Promise((release, fail) => l.alone.push({ path: 'session', held: { release, fail } })) as never);
  const hold = await fill(l);
  const opens = Array.from({ length: MAX_BATCH_SESSIONS + 10 }, () => openSession());
  const dirs = [l.mkdir('/m1'), l.mkdir('/m2')];
  await tick();
  l.answerAlone();
  await tick();
  t.equal(l.batches.length, 1, 'one batch went when a slot came free');
  t.equal(l.batches[0]!.calls.filter((c) => c.op === 'session').length, MAX_BATCH_SESSIONS, `with ${MAX_BATCH_SESSIONS} sessions, no more`);
  l.answerBatch();
  await tick();
  l.answerAlone();
  await tick();
  while (l.batches.length > 0) {
    t.ok(l.batches[0]!.calls.filter((c) => c.op === 'session').length <= MAX_BATCH_SESSIONS);
    l.answerBatch();
    await tick();
  }
  await Promise.all([...hold, ...opens, ...dirs]);
  t.equal(new Set((await Promise.all(opens)).map((r) => (r as { sessionId: string }).sessionId)).size, MAX_BATCH_SESSIONS + 10, 'every open answered, each with its own session');

  // An older master refuses a batch holding a session call (an op it does not know) whole.
  const old = fakeLeader(answer);
  const oldOpen = () => old.batcher.submit(FS.session, {}, undefined, () => new Promise((release, fail) => old.alone.push({ path: 'session', held: { release, fail } })) as never);
  const held = await fill(old);
  const first = [oldOpen(), old.mkdir('/o1')];
  await tick();
  old.answerAlone();
  await tick();
  old.batches.shift()!.held.fail(new DfsError('INVALID_ARGUMENT', 'calls.0.op: Invalid option'));
  await tick();
  t.same(old.alone.slice(-2).map((a) => a.path), ['session', '/o1'], 'the refused batch\'s calls went again alone');
  for (const a of old.alone.splice(0)) a.held.release(a.path === 'session' ? { sessionId: 'alone1', inlineMaxBytes: 0 } : { path: a.path });
  await Promise.all([...held, ...first]);
  const later = [oldOpen(), old.mkdir('/o2'), old.mkdir('/o3')];
  await tick();
  t.same(old.alone.map((a) => a.path), ['session'], 'from then on a session opens alone');
  t.same(old.batches.map((b) => b.calls.map((c) => c.op)), [['mkdir', 'mkdir']], 'and the other calls still go in a batch');
  old.answerAlone();
  old.answerBatch();
  await Promise.all(later);
});
