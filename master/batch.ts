// POST /v1/fs/batch on the leader (common/batch.ts): many namespace calls in one request. The
// credential check has already judged every call as its own route would (master/credentials/
// policy.ts, its `batch` check), so a batch with one call its token may not make never reaches here.
// Each call's input and session are then checked, all before any call runs: a bad one refuses
// the whole batch and changes nothing. The calls then run together (their mutations share Raft
// rounds) and each answers for itself: its route's reply, or the error its route would give.
import type { Logger } from '../common/log.js';
import { type BatchOp, type BatchRequest, type BatchResult } from '../common/batch.js';
import type { z } from 'zod';
import { FS, type JsonRoute, type ReplyOf } from '../common/contract/index.js';
import { DfsError } from '../common/errors.js';
import { parseInput } from '../common/server.js';
import type { SessionRef } from './replicator.js';
import type { NamespaceCalls } from './service/index.js';

/** Who made a call: a new session is bound to the caller's token (CredentialService.bindSession). */
export interface BatchCaller {
  bindSession(rawId: string): string;
}

/** One batchable call: its route (for the input schema) and what runs it. */
export interface BatchEntry<R extends JsonRoute = JsonRoute> {
  route: R;
  /** `caller`: needed by a session's open only (the other calls' tokens were judged already). */
  run(input: z.output<R['request']>, session: SessionRef | undefined, caller?: BatchCaller): Promise<ReplyOf<R>>;
}

const entry = <R extends JsonRoute>(route: R, run: BatchEntry<R>['run']): BatchEntry<R> => ({ route, run });

/**
 * What each batchable op runs: the same service calls the single routes make (master/routes.ts
 * mounts those from this table too, so a call means the same thing either way).
 */
export function batchOps(calls: NamespaceCalls, inlineMaxBytes: () => number) {
  return {
    // No input and no session: a new session, bound to the caller's token.
    session: entry(FS.session, async (_in, _s, caller) => {
      if (caller === undefined) throw new DfsError('INTERNAL', 'a session is opened for a caller');
      return { sessionId: caller.bindSession(await calls.registerSession()), inlineMaxBytes: inlineMaxBytes() };
    }),
    mkdir: entry(FS.mkdir, (b, s) => calls.mkdir(b, s)),
    create: entry(FS.create, (b, s) => calls.create(b, s)),
    allocate: entry(FS.allocate, (b, s) => calls.allocate(b, s)),
    complete: entry(FS.complete, (b, s) => calls.complete(b, s)),
    delete: entry(FS.delete, (b, s) => calls.delete(b, s)),
    rename: entry(FS.rename, (b, s) => calls.rename(b, s)),
    // A read: no session; the same query fields the GET takes, as JSON values.
    stat: entry(FS.stat, (q) => calls.stat(q.path, q.chunks ?? false)),
  } satisfies Record<BatchOp, BatchEntry>;
}

/** `<session id>:<sequence number from 1>`, as routes.ts's session() reads the header. */
export function parseSession(raw: string | undefined): SessionRef | undefined {
  if (raw === undefined) return undefined;
  const m = /^([A-Za-z0-9_-]{1,64}):(\d{1,15})$/.exec(raw);
  if (!m || Number(m[2]) < 1) throw new DfsError('INVALID_ARGUMENT', 'a session must be <session id>:<sequence number from 1>');
  return { clientId: m[1]!, seq: Number(m[2]) };
}

export interface BatchDeps {
  ops: ReturnType<typeof batchOps>;
  caller: BatchCaller;
  /** A call's session as its token bound it (CredentialService.unbindSession): the plain `<id>:<seq>`. */
  unbind(raw: string | undefined): string | undefined;
  /** Counts each call under its op, as the single routes count theirs. */
  count(op: BatchOp): void;
  log: Logger;
}

/** Runs a batch: every call checked first, then all run at once; one result per call, in order. */
export async function runBatch(body: BatchRequest, deps: BatchDeps): Promise<{ results: BatchResult[] }> {
  const prepared = body.calls.map((c, i) => {
    const entry: BatchEntry = deps.ops[c.op];
    try {
      if (c.session !== undefined && (c.op === 'stat' || c.op === 'session')) throw new DfsError('INVALID_ARGUMENT', `a ${c.op} takes no session`);
      return { entry, input: parseInput(entry.route.request, c.input), session: parseSession(deps.unbind(c.session)) };
    } catch (err) {
      if (err instanceof DfsError) throw new DfsError(err.code, `call ${i} (${c.op}): ${err.message}`, err.details);
      throw err;
    }
  });
  body.calls.forEach((c) => deps.count(c.op));
  const results = await Promise.all(prepared.map(async ({ entry, input, session }): Promise<BatchResult> => {
    try {
      return { reply: await entry.run(input, session, deps.caller) };
    } catch (err) {
      if (err instanceof DfsError) return err.toBody();
      deps.log.error({ err }, 'unhandled error in a batched call');
      return new DfsError('INTERNAL', 'internal error; see the server log').toBody();
    }
  }));
  return { results };
}
