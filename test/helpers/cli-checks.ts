// Checks of what the `dfs` CLI prints when a command fails, shared by the integration tests.
import type t from 'tap';
import type { RunResult } from './cluster.js';

type Tap = Parameters<Parameters<typeof t.test>[0]>[0];

/** A failed command: exit 1 and one line on stderr matching `pattern`, no stack trace. */
export function failedWithOneLine(t: Tap, r: RunResult, pattern: RegExp, what: string): void {
  t.equal(r.code, 1, `${what}: exit 1`);
  t.match(r.stderr, pattern, `${what}: says why`);
  t.equal(r.stderr.trimEnd().split('\n').length, 1, `${what}: one line`);
  t.notMatch(r.stderr, /\bat .*\.js:\d+/, `${what}: no stack trace`);
}
