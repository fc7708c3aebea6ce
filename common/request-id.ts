// Request ids: one id follows a user's operation from the client to the master and along every
// hop of a chunk pipeline (and a repair copy from the leader's order to its target), so that a
// grep for it finds every log line the operation caused on every server (docs/ARCHITECTURE.md,
// "Following a request through the logs").
import { AsyncLocalStorage } from 'node:async_hooks';
import type { Logger } from './log.js';
import { randomId } from './random-id.js';

/** The header that carries a request id on every call, and back on every reply. */
export const REQUEST_ID_HEADER = 'x-dfs-request-id';

/** Longest id a server takes from a caller: long enough for a UUID or a trace id with a prefix. */
export const MAX_REQUEST_ID_CHARS = 64;

/**
 * What an id may be made of: letters, digits and `._:-`. No spaces, quotes, control characters
 * or anything a log reader or shell would take for syntax: an id is grepped for, and a caller's
 * id goes into the log lines of every server it reaches (log injection).
 */
const REQUEST_ID = /^[A-Za-z0-9._:-]+$/;

/** Whether `raw` may be taken as it is (a header value from anyone: never logged unless this holds). */
export function isWellFormedRequestId(raw: unknown): raw is string {
  return typeof raw === 'string' && raw.length >= 1 && raw.length <= MAX_REQUEST_ID_CHARS && REQUEST_ID.test(raw);
}

/** A fresh id: 16 hex digits (64 random bits: no two operations of a cluster's life collide in practice). */
export function newRequestId(): string {
  return randomId(8);
}

/**
 * The id a server serves a request under: the caller's when well formed, else a fresh one (a
 * malformed one is dropped, never logged: `replaced` says one was sent).
 */
export function acceptRequestId(raw: unknown): { id: string; replaced: boolean } {
  if (isWellFormedRequestId(raw)) return { id: raw, replaced: false };
  return { id: newRequestId(), replaced: raw !== undefined };
}

const current = new AsyncLocalStorage<string>();
/** The process's own operation, for a process that runs one (a `dfs` CLI command; never a server). */
let processOperation: string | undefined;

/** Makes `id` the request id of every call this process makes outside runWithRequestId (the CLI's one operation). */
export function setProcessRequestId(id: string | undefined): void {
  processOperation = id;
}

/** Runs `fn` with `id` as the request id of every call it makes (and every log line boundLog binds). */
export function runWithRequestId<T>(id: string, fn: () => T): T {
  return current.run(id, fn);
}

/** The id of the operation or request this code runs for, if any. */
export function currentRequestId(): string | undefined {
  return current.getStore() ?? processOperation;
}

/** The id an outgoing call carries: the current operation's, else a fresh one for this call alone. */
export function outgoingRequestId(): string {
  return currentRequestId() ?? newRequestId();
}

/** `log` with the current request id bound as `reqId` (`log` itself outside a request). */
export function boundLog(log: Logger): Logger {
  const id = currentRequestId();
  return id === undefined ? log : log.child({ reqId: id });
}

/** One finished call, as `dfs --verbose` prints it. */
export interface CallTrace {
  method: string;
  /** host:port and path (with its query) of the call. */
  target: string;
  /** The HTTP status, or 0 when no answer came (refused, timed out, cut off). */
  status: number;
  ms: number;
  /** The id the server served it under (its reply header), else the one sent. */
  requestId: string;
}

let tracer: ((t: CallTrace) => void) | undefined;

/** Sets (or with undefined clears) the process-wide observer of finished calls (`dfs --verbose`). */
export function setCallTracer(fn: ((t: CallTrace) => void) | undefined): void {
  tracer = fn;
}

/** Reports a finished call to the tracer, if one is set; the tracer's own failure never fails the call. */
export function traceCall(t: CallTrace): void {
  try {
    tracer?.(t);
  } catch {
    /* a tracer must not break the call it watches */
  }
}

/** The id a reply's header names, if well formed (a peer's reply is as untrusted as a request). */
export function replyRequestId(headers: Record<string, string | string[] | undefined>, sent: string): string {
  const raw = headers[REQUEST_ID_HEADER];
  return isWellFormedRequestId(raw) ? raw : sent;
}
