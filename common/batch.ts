// Many namespace calls in one request (POST /v1/fs/batch): what a client sends when it has many
// calls out at once, so the leader pays its HTTP, routing and token work once per batch rather
// than once per call, and the batch's mutations go into one Raft round. Each call is still its
// own: its route's input schema, its own scope check, its own session and sequence number
// (exactly once), its own answer or error. The server is master/batch.ts; the client's batching
// is cli/meta-batch.ts; docs/API.md describes the route.
import { z } from 'zod';

/**
 * The calls a batch may carry, by the name of their FS route (common/contract/namespace.ts). A
 * session opens in a batch too: a client with 64 calls out at once opens 64 sessions first.
 */
export const BATCH_OPS = ['session', 'mkdir', 'create', 'allocate', 'complete', 'delete', 'rename', 'stat'] as const;
export type BatchOp = (typeof BATCH_OPS)[number];

/** Calls one batch may carry. */
export const MAX_BATCH_CALLS = 256;
/**
 * Sessions one batch may open: what a client with 64 calls out needs at once. The leader keeps a
 * bounded table of sessions (the least recently used go first), so one request must not be able
 * to push out many other clients' sessions.
 */
export const MAX_BATCH_SESSIONS = 64;

/** x-dfs-session's form (common/leader.ts), as a call's `session`: `<session id>:<sequence number>`. */
const session = z.string().min(3).max(200);

export const BatchCall = z.strictObject({
  op: z.enum(BATCH_OPS),
  /** A mutation's session, as its x-dfs-session header would carry it; a stat or a session has none. */
  session: session.optional(),
  /** The call's input: its route's JSON body (a POST) or its query's fields (stat: path, chunks). */
  input: z.unknown(),
});
export const BatchRequest = z.strictObject({
  calls: z.array(BatchCall).min(1).max(MAX_BATCH_CALLS)
    .refine((calls) => calls.filter((c) => c.op === 'session').length <= MAX_BATCH_SESSIONS, `a batch opens at most ${MAX_BATCH_SESSIONS} sessions`),
});

/** One call's outcome, in the order of the calls: its route's reply, or the error it would have answered. */
export const BatchResult = z.union([
  z.object({ reply: z.unknown() }),
  z.object({ error: z.object({ code: z.string(), message: z.string() }).passthrough() }),
]);
export const BatchReply = z.object({ results: z.array(BatchResult) });

export type BatchCall = z.infer<typeof BatchCall>;
export type BatchRequest = z.infer<typeof BatchRequest>;
export type BatchResult = z.infer<typeof BatchResult>;
