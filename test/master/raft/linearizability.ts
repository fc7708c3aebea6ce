// A linearizability checker for key-value histories (Wing & Gong's search with the memoisation of
// Lowe / Porcupine). Histories are partitioned by key (P-compositionality: a history is
// linearizable iff each key's sub-history is), and each partition is searched for an order of
// operations that respects real time and the sequential model. Operations whose outcome is
// unknown (timed out) have return time Infinity and accept any output.

export type KvInput =
  | { readonly kind: 'put'; readonly value: string }
  | { readonly kind: 'get' }
  | { readonly kind: 'cas'; readonly expected: string | null; readonly value: string };

/** get → the value read (null if absent); put → null; cas → whether it swapped; undefined if unknown. */
export type KvOutput = string | null | boolean | undefined;

export interface KvOperation {
  readonly clientId: number;
  readonly key: string;
  readonly input: KvInput;
  readonly output: KvOutput;
  /** Invocation time. */
  readonly call: number;
  /** Response time; Infinity when the outcome is unknown. */
  readonly ret: number;
}

type State = string | null;

/** The sequential specification of one register: returns the next state or undefined if illegal. */
function stepModel(state: State, input: KvInput, output: KvOutput): State | undefined {
  switch (input.kind) {
    case 'put':
      return input.value;
    case 'get':
      return output === undefined || output === state ? state : undefined;
    case 'cas': {
      const swapped = state === input.expected;
      if (output !== undefined && output !== swapped) return undefined;
      return swapped ? input.value : state;
    }
  }
}

interface Node {
  readonly op: number;
  readonly isCall: boolean;
  /** For a call: its return node. */
  match: Node | null;
  prev: Node | null;
  next: Node | null;
}

export interface CheckResult {
  readonly ok: boolean;
  /** The first key whose history is not linearizable. */
  readonly badKey?: string;
  /** Whether a partition's search hit the step budget (the result is then "ok" but unproven). */
  readonly timedOut: boolean;
}

export function checkLinearizable(history: readonly KvOperation[], maxStepsPerKey = 2_000_000): CheckResult {
  const byKey = new Map<string, KvOperation[]>();
  for (const op of history) {
    const list = byKey.get(op.key) ?? [];
    list.push(op);
    byKey.set(op.key, list);
  }
  let timedOut = false;
  for (const key of [...byKey.keys()].sort()) {
    const result = checkPartition(byKey.get(key)!, maxStepsPerKey);
    if (result === 'timeout') timedOut = true;
    else if (!result) return { ok: false, badKey: key, timedOut };
  }
  return { ok: true, timedOut };
}

function checkPartition(ops: readonly KvOperation[], maxSteps: number): boolean | 'timeout' {
  // Build the event list: calls and returns sorted by time; a call sorts before a return at the
  // same instant, so touching operations count as concurrent (the permissive reading).
  const events: { time: number; isCall: boolean; op: number }[] = [];
  ops.forEach((op, i) => {
    events.push({ time: op.call, isCall: true, op: i });
    events.push({ time: op.ret, isCall: false, op: i });
  });
  events.sort((a, b) => a.time - b.time || Number(b.isCall) - Number(a.isCall) || a.op - b.op);
  const head: Node = { op: -1, isCall: false, match: null, prev: null, next: null };
  let tail = head;
  const calls = new Map<number, Node>();
  for (const e of events) {
    const node: Node = { op: e.op, isCall: e.isCall, match: null, prev: tail, next: null };
    tail.next = node;
    tail = node;
    if (e.isCall) calls.set(e.op, node);
    else calls.get(e.op)!.match = node;
  }

  const lift = (call: Node): void => {
    call.prev!.next = call.next;
    if (call.next !== null) call.next.prev = call.prev;
    const ret = call.match!;
    ret.prev!.next = ret.next;
    if (ret.next !== null) ret.next.prev = ret.prev;
  };
  const unlift = (call: Node): void => {
    const ret = call.match!;
    ret.prev!.next = ret;
    if (ret.next !== null) ret.next.prev = ret;
    call.prev!.next = call;
    if (call.next !== null) call.next.prev = call;
  };

  const linearized = new Uint8Array(ops.length);
  const cache = new Set<string>();
  const cacheKey = (state: State): string => `${state === null ? '\u0000' : state}|${linearized.join('')}`;
  const stack: { call: Node; state: State }[] = [];
  let state: State = null;
  let entry = head.next;
  let steps = 0;
  while (head.next !== null) {
    if (++steps > maxSteps) return 'timeout';
    if (entry === null) return false;
    if (entry.isCall) {
      const op = ops[entry.op]!;
      const next = stepModel(state, op.input, op.output);
      if (next !== undefined) {
        linearized[entry.op] = 1;
        const key = cacheKey(next);
        if (!cache.has(key)) {
          cache.add(key);
          stack.push({ call: entry, state });
          state = next;
          lift(entry);
          entry = head.next;
          continue;
        }
        linearized[entry.op] = 0;
      }
      entry = entry.next;
    } else {
      // A return whose call is not linearized yet: undo the last choice and try the next one.
      const top = stack.pop();
      if (top === undefined) return false;
      state = top.state;
      linearized[top.call.op] = 0;
      unlift(top.call);
      entry = top.call.next;
    }
  }
  return true;
}
