// coalesceMessages (master/raft/coalesce.ts): which messages merge, which never do, and that a
// follower fed the merged appends ends exactly where the originals, one by one, leave it.
import t from 'tap';
import { coalesceMessages } from '../../../master/raft/coalesce.js';
import type { AppendRequest, AppendResponse, Entry, Message } from '../../../master/raft/types.js';
import { mulberry32 } from '../../helpers/rng.js';
import { drain, newNode, storageWith } from './helpers.js';

const LIMITS = { maxEntriesPerMsg: 1024, maxSizePerMsgBytes: 1024 * 1024 };

function ent(index: number, term: number, size = 1): Entry {
  return { index, term, data: new Uint8Array(size).fill(index & 0xff) };
}

function app(to: string, prev: [number, number], ents: Entry[], commit: number, term = 2): AppendRequest {
  return { type: 'append', from: 'n1', to, term, prevLogIndex: prev[0], prevLogTerm: prev[1], entries: ents, commit };
}

function ack(to: string, index: number, reject = false, term = 2): AppendResponse {
  return { type: 'appendResp', from: 'n2', to, term, index, reject, rejectHintIndex: reject ? index - 1 : 0, rejectHintTerm: 0 };
}

t.test('appends that continue each other merge, with the later commit index', async (t) => {
  const out = coalesceMessages([app('n2', [4, 2], [ent(5, 2), ent(6, 2)], 4), app('n2', [6, 2], [ent(7, 2)], 5), app('n2', [7, 2], [], 7)], LIMITS);
  t.equal(out.length, 1);
  const m = out[0] as AppendRequest;
  t.same([m.prevLogIndex, m.prevLogTerm, m.commit], [4, 2, 7]);
  t.same(m.entries.map((e) => e.index), [5, 6, 7]);
});

t.test('appends that do not continue each other stay apart', async (t) => {
  // A probe resending from an earlier index, and one whose prevLogTerm disagrees.
  const a = app('n2', [4, 2], [ent(5, 2)], 4);
  t.equal(coalesceMessages([a, app('n2', [3, 2], [ent(4, 2)], 4)], LIMITS).length, 2, 'earlier prevLogIndex');
  t.equal(coalesceMessages([a, app('n2', [5, 1], [ent(6, 2)], 4)], LIMITS).length, 2, 'other prevLogTerm');
  t.equal(coalesceMessages([a, app('n2', [5, 2], [ent(6, 3)], 4, 3)], LIMITS).length, 2, 'another message term');
});

t.test('nothing merges across another message to the same peer, and peers do not mix', async (t) => {
  const hb: Message = { type: 'heartbeat', from: 'n1', to: 'n2', term: 2, commit: 4, context: 'r1' };
  const across = coalesceMessages([app('n2', [4, 2], [ent(5, 2)], 4), hb, app('n2', [5, 2], [], 5)], LIMITS);
  t.same(across.map((m) => m.type), ['append', 'heartbeat', 'append'], 'a heartbeat between two appends keeps them apart');
  const two = coalesceMessages([
    app('n2', [4, 2], [ent(5, 2)], 4), app('n3', [2, 2], [ent(3, 2)], 4), app('n2', [5, 2], [], 5), app('n3', [3, 2], [ent(4, 2)], 5),
  ], LIMITS);
  t.same(two.map((m) => [m.to, (m as AppendRequest).entries.map((e) => e.index), (m as AppendRequest).commit]), [['n2', [5], 5], ['n3', [3, 4], 5]]);
});

t.test('a merged append stays within the per-message limits', async (t) => {
  const small = { maxEntriesPerMsg: 3, maxSizePerMsgBytes: 1000 };
  t.equal(coalesceMessages([app('n2', [0, 0], [ent(1, 2), ent(2, 2)], 0), app('n2', [2, 2], [ent(3, 2), ent(4, 2)], 0)], small).length, 2, 'too many entries');
  t.equal(coalesceMessages([app('n2', [0, 0], [ent(1, 2, 600)], 0), app('n2', [1, 2], [ent(2, 2, 600)], 0)], small).length, 2, 'too many bytes');
  t.equal(coalesceMessages([app('n2', [0, 0], [ent(1, 2), ent(2, 2), ent(3, 2)], 0), app('n2', [3, 2], [], 3)], small).length, 1, 'an empty append always fits');
});

t.test('successful append responses merge to the highest index; rejections never merge', async (t) => {
  t.same(coalesceMessages([ack('n1', 5), ack('n1', 9), ack('n1', 7)], LIMITS), [ack('n1', 9)]);
  t.equal(coalesceMessages([ack('n1', 5), ack('n1', 4, true), ack('n1', 9)], LIMITS).length, 3, 'a rejection keeps its place between the others');
  t.equal(coalesceMessages([ack('n1', 5, false, 2), ack('n1', 9, false, 3)], LIMITS).length, 2, 'not across terms');
});

/** An append in one line: prevLogIndex/prevLogTerm [entry indexes] commit. */
function show(m: Message): string {
  const a = m as AppendRequest;
  return `${a.prevLogIndex}/${a.prevLogTerm} [${a.entries.map((e) => e.index).join(',')}] c${a.commit}`;
}

/** A leader's log of `n` entries with terms rising from 1 to at most `maxTerm`. */
function leaderLog(r: () => number, n: number, maxTerm: number): Entry[] {
  const log: Entry[] = [];
  let term = 1;
  for (let i = 1; i <= n; i++) {
    if (r() < 0.15 && term < maxTerm) term++;
    log.push(ent(i, term, 1 + Math.floor(r() * 40)));
  }
  return log;
}

t.test('a follower fed the merged appends ends with the same log, commit and answers as fed the originals one by one', async (t) => {
  const SEEDS = 400;
  let merged = 0;
  let total = 0;
  for (let seed = 1; seed <= SEEDS; seed++) {
    const r = mulberry32(seed);
    const leaderTerm = 6;
    const log = leaderLog(r, 5 + Math.floor(r() * 30), leaderTerm - 1);
    const termAt = (i: number) => (i === 0 ? 0 : log[i - 1]!.term);
    // The follower holds a prefix of the leader's log, maybe with a diverging tail of older terms.
    const keep = Math.floor(r() * log.length);
    const mine = log.slice(0, keep).map((e) => ({ ...e }));
    if (r() < 0.5) for (let i = keep + 1; i <= keep + 1 + Math.floor(r() * 4); i++) mine.push(ent(i, Math.max(termAt(keep), 1), 7));
    // A stream of appends as a leader sends them: mostly continuing, sometimes a probe from
    // earlier, sometimes empty (a commit update); the commit index only grows.
    const msgs: Message[] = [];
    let next = 1 + Math.floor(r() * log.length);
    let commit = 0;
    for (let k = 0, n = 2 + Math.floor(r() * 8); k < n; k++) {
      if (r() < 0.2) next = 1 + Math.floor(r() * log.length);
      const count = r() < 0.3 ? 0 : Math.min(1 + Math.floor(r() * 4), log.length - next + 1);
      commit = Math.min(log.length, commit + Math.floor(r() * 3));
      msgs.push(app('f', [next - 1, termAt(next - 1)], log.slice(next - 1, next - 1 + count), commit, leaderTerm));
      next += count;
    }
    const limits = r() < 0.5 ? LIMITS : { maxEntriesPerMsg: 3, maxSizePerMsgBytes: 80 };
    const before = msgs.map(show).join();
    const coalesced = coalesceMessages(msgs, limits);
    if (msgs.map(show).join() !== before) t.fail(`seed ${seed}: coalescing changed its input messages`);
    total += msgs.length;
    merged += msgs.length - coalesced.length;

    const run = (input: Message[]) => {
      const f = newNode('f', ['n1', 'f', 'n3'], {}, storageWith(mine, { term: 1 }));
      const answers: Message[] = [];
      for (const m of input) {
        f.core.step(m);
        answers.push(...drain(f));
      }
      return { log: f.storage.entries(1, f.storage.lastIndex() + 1, Infinity).map((e) => `${e.index}/${e.term}/${e.data.length}`), commit: f.core.log.committed, answers };
    };
    const one = run(msgs);
    const all = run(coalesced);
    if (one.log.join() !== all.log.join() || one.commit !== all.commit) {
      t.fail(`seed ${seed}: log or commit differ`, { one, all, msgs: msgs.map(show), coalesced: coalesced.map(show), followerHeld: mine.length });
      continue;
    }
    // The follower's final word is the same: the same acknowledged index, or a rejection with the
    // same hint (a merged append is rejected at its first prevLogIndex, where the originals'
    // second rejection named the later one; the hint is what the leader backs off to).
    const last = (a: Message[]) => {
      const m = a.at(-1) as AppendResponse;
      return JSON.stringify(m.reject ? [m.reject, m.rejectHintIndex, m.rejectHintTerm] : [m.reject, m.index]);
    };
    if (last(one.answers) !== last(all.answers)) t.fail(`seed ${seed}: final answers differ`, { one: one.answers.at(-1), all: all.answers.at(-1) });
  }
  t.ok(merged > total / 5, `merging happened (${merged} of ${total} appends merged away)`);
  t.pass(`${SEEDS} random streams agree`);
});

t.test('a follower takes the part of an append past its commit index, even when the append starts below it', async (t) => {
  const log = [ent(1, 1), ent(2, 1), ent(3, 2), ent(4, 2), ent(5, 2)];
  const f = newNode('f', ['n1', 'f', 'n3'], {}, storageWith(log.slice(0, 4), { term: 2, commit: 3 }));
  t.equal(f.core.log.committed, 3, 'restarted with commit index 3');
  f.core.step(app('f', [1, 1], log.slice(1, 5), 5, 2));
  const answers = drain(f) as AppendResponse[];
  t.same(answers.map((a) => [a.reject, a.index]), [[false, 5]], 'acknowledges up to the last new entry');
  t.equal(f.core.log.lastIndex(), 5, 'the entry past the commit index is appended');
  t.equal(f.core.log.committed, 5, 'and the commit index follows the leader');

  const g = newNode('g', ['n1', 'g', 'n3'], {}, storageWith(log.slice(0, 4), { term: 2, commit: 3 }));
  g.core.step(app('g', [0, 0], log.slice(0, 2), 5, 2));
  t.same((drain(g) as AppendResponse[]).map((a) => [a.reject, a.index]), [[false, 3]], 'an append wholly below the commit index is answered with it');
  t.equal(g.core.log.lastIndex(), 4, 'and changes nothing');
  t.equal(g.core.log.committed, 3);
});
