// A small linearizability checker for the metadata histories of the partition scenarios.
//
// A history is a list of operations, each with the time it was called and the time its answer
// came back (as seen by the test, which only widens the window). A history is linearizable when
// the operations can be put in one order that respects real time (an operation that returned
// before another was called comes first) and in which every answer is what the model gives. This
// is Wing and Gong's search with Lowe's memo of (operations done, state) pairs, as Porcupine and
// Knossos do it, over one key at a time (linearizability is local: a history is linearizable if
// and only if each key's is).
//
// An operation whose outcome is unknown (it timed out, the connection broke) may have taken
// effect at any time after its call, or never: it has ret = Infinity, and the search may leave it
// out. A read that failed is no observation and is not recorded at all.

export interface Operation<I, O> {
  /** Which client (for messages only). */
  client: string;
  input: I;
  /** The answer; undefined when the outcome is unknown. */
  output: O | undefined;
  call: number;
  /** When the answer came; Infinity when it never did (outcome unknown). */
  ret: number;
}

export interface Model<S, I, O> {
  init: S;
  /** The state after `input` answered `output` in state `s`, or undefined when that answer is impossible there. */
  step(s: S, input: I, output: O | undefined): S | undefined;
  /** A string equal for equal states (for the memo). */
  key(s: S): string;
  describe(op: Operation<I, O>): string;
}

export type CheckResult = { ok: true; order: number[] } | { ok: false; reason: string };

/** The most operations one key's history may have: the search is exponential in the concurrency, and the memo grows with the history. */
export const MAX_OPS = 1000;
/** Search steps before giving up (reported as a failure: an unchecked history is not a passed check). */
const MAX_STEPS = 2_000_000;

export function checkLinearizable<S, I, O>(model: Model<S, I, O>, history: Operation<I, O>[]): CheckResult {
  if (history.length > MAX_OPS) return { ok: false, reason: `history of ${history.length} operations is over the checker's bound of ${MAX_OPS}` };
  const ops = history.map((op, i) => ({ ...op, i })).sort((a, b) => a.call - b.call);
  const n = ops.length;
  const mustDo = ops.filter((o) => o.ret !== Infinity).length;
  const done = new Uint8Array(n);
  const memo = new Set<string>();
  const order: number[] = [];
  let steps = 0;
  let best: number[] = [];

  const search = (state: S, doneCompleted: number): boolean | 'gave-up' => {
    if (doneCompleted === mustDo) return true;
    if (++steps > MAX_STEPS) return 'gave-up';
    const memoKey = `${model.key(state)}|${Buffer.from(done).toString('base64')}`;
    if (memo.has(memoKey)) return false;
    memo.add(memoKey);
    // An operation may go next only if no other pending one returned before it was called.
    let minRet = Infinity;
    for (let j = 0; j < n; j++) if (!done[j] && ops[j]!.ret < minRet) minRet = ops[j]!.ret;
    for (let j = 0; j < n; j++) {
      const op = ops[j]!;
      if (done[j] || op.call > minRet) continue;
      const next = model.step(state, op.input, op.output);
      if (next === undefined) continue;
      done[j] = 1;
      order.push(op.i);
      if (order.length > best.length) best = [...order];
      const r = search(next, doneCompleted + (op.ret !== Infinity ? 1 : 0));
      if (r !== false) return r;
      order.pop();
      done[j] = 0;
    }
    return false;
  };

  const r = search(model.init, 0);
  if (r === true) return { ok: true, order: [...order] };
  if (r === 'gave-up') return { ok: false, reason: `the search gave up after ${MAX_STEPS} steps (too much concurrency): not checked` };
  // Say where it got stuck: the longest prefix that worked, and the operations that could not follow it.
  const prefix = best.map((i) => model.describe(history[i]!));
  const stuck = ops.filter((o) => !best.includes(o.i) && o.ret !== Infinity).slice(0, 5).map((o) => model.describe(o));
  return { ok: false, reason: `not linearizable: after [${prefix.slice(-5).join(', ')}] none of [${stuck.join(', ')}] can come next` };
}

// ---- a register: a file's replication factor, written by setrep and read by stat ----

export type RegisterInput = { kind: 'write'; value: number } | { kind: 'read' };

export const registerModel = (initial: number): Model<number, RegisterInput, number> => ({
  init: initial,
  step: (s, input, output) => {
    if (input.kind === 'write') return input.value;
    return output === s ? s : undefined;
  },
  key: (s) => String(s),
  describe: (op) => `${op.client} ${op.input.kind === 'write' ? `write ${op.input.value}` : `read ${op.output}`} [${op.call.toFixed(0)}, ${op.ret === Infinity ? '?' : op.ret.toFixed(0)}]`,
});

/** Groups a history by key, and checks each key's; the first key that fails is the answer. */
export function checkPerKey<S, I, O>(model: (key: string) => Model<S, I, O>, history: (Operation<I, O> & { key: string })[]): CheckResult & { keys: number } {
  const byKey = new Map<string, Operation<I, O>[]>();
  for (const op of history) {
    if (!byKey.has(op.key)) byKey.set(op.key, []);
    byKey.get(op.key)!.push(op);
  }
  for (const [key, ops] of byKey) {
    const r = checkLinearizable(model(key), ops);
    if (!r.ok) return { ok: false, reason: `${key}: ${r.reason}`, keys: byKey.size };
  }
  return { ok: true, order: [], keys: byKey.size };
}
