// What the route fuzz checks of every answer (test/helpers/fuzz/route-fuzz.ts): no 5xx but the
// few that say the cluster cannot do it now; every 4xx a JSON error with a stable code whose
// status is its code's; no success for a caller without the credential the route needs, for a
// wrong method or for a path the contract does not have; and no byte of a file, no file name
// and no secret in an answer to a caller that may not read them. These expectations are the
// fuzz's own, written from docs/SECURITY.md, not read from the servers' policy table.
import { ErrorCodes, isErrorCode } from '../../../common/errors.js';
import { routeKey, type Route } from '../../../common/contract/route.js';
import { CLUSTER, FS } from '../../../common/contract/index.js';
import type { ChunkTokens, Credential } from './credentials.js';
import type { Built, Kind } from './requests.js';
import type { RawResult } from './wire.js';

export interface Finding {
  kind: 'server-error' | 'no-error-code' | 'unauthorized-success' | 'leak' | 'wrong-route-success' | 'no-answer' | 'crash' | 'changed' | 'ssrf' | 'term';
  route: string;
  cls: string;
  detail: string;
  request: string;
}

/**
 * The 5xx codes an answer may carry on a healthy cluster: each says the cluster cannot do it now
 * (too few chunkservers for the replication asked, the master still starting), so a retry later
 * or elsewhere can succeed. Any other 5xx answered to a caller's request is a bug: the caller's
 * mistake gets a 4xx, and a server's own failure must not be reachable from outside.
 */
export const ALLOWED_5XX = new Set(['NO_CHUNKSERVERS', 'TOO_FEW_REPLICAS', 'NO_REPLICAS', 'SAFE_MODE']);

/** POSTs that change nothing a read-only token may not change: a session, a hint that a chunkserver is unreachable. */
const NON_MUTATING_POSTS = new Set([routeKey(FS.session), routeKey(CLUSTER.unreachable)]);

/** What a caller of class `cls` may not see: file names and bytes, secrets. */
export interface Forbidden { strings: string[]; contents: Buffer[] }

/** A batch (POST /v1/fs/batch) that holds only stats: SECURITY.md lets a read-only token make it. */
function batchOfReads(body: Buffer | undefined): boolean {
  try {
    const calls = (JSON.parse(body?.toString('utf8') ?? '') as { calls?: unknown }).calls;
    return Array.isArray(calls) && calls.length > 0 && calls.every((c) => (c as { op?: unknown } | null)?.op === 'stat');
  } catch {
    return false;
  }
}

/** Whether `cls` may get a success from `route` at all (scope within a route is judged by the fingerprint and the leak check). */
export function maySucceed(route: Route, cls: Credential, method: string, handle: number | undefined, chunk: ChunkTokens, body?: Buffer): boolean {
  switch (route.caller) {
    case 'public': case 'optional': return true;
    case 'chunkserver': case 'member': return false;
    case 'admin': return cls.scope?.admin === true;
    case 'token':
      if (route === FS.batch && cls.scope?.readOnly) return batchOfReads(body);
      return cls.scope !== undefined && !(cls.scope.readOnly && route.method === 'POST' && !NON_MUTATING_POSTS.has(routeKey(route)));
    case 'chunk-token':
      if (method === 'PUT') return cls.name === 'admin';
      return cls.name === 'admin' || cls.name === 'read-only' || (cls.name === 'prefix' && handle !== undefined && chunk.ownHandles.has(handle));
  }
}

/** A piece of a forbidden file's bytes in `body`: a chunk read returns a slice of a file, so look for its start and middle. */
function leakedBytes(body: Buffer, contents: Buffer[]): boolean {
  if (body.length < 16) return false;
  const probes = [body.subarray(0, 16), body.subarray(Math.floor(body.length / 2) - 8, Math.floor(body.length / 2) + 8)];
  return contents.some((c) => probes.some((p) => c.includes(p)));
}

function errorCodeProblem(status: number, body: Buffer): string | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString('utf8'));
  } catch {
    return `HTTP ${status} with a body that is not JSON: ${JSON.stringify(body.subarray(0, 120).toString('latin1'))}`;
  }
  const err = (parsed as { error?: { code?: unknown; message?: unknown } }).error;
  if (!err || !isErrorCode(err.code) || typeof err.message !== 'string') return `HTTP ${status} without an {error:{code,message}} body: ${body.subarray(0, 120).toString()}`;
  if (ErrorCodes[err.code] !== status) return `HTTP ${status} with code ${err.code}, whose status is ${ErrorCodes[err.code]}`;
  return undefined;
}

function decodedIncludes(path: string, s: string): boolean {
  try {
    return decodeURIComponent(path).includes(s);
  } catch {
    return false;
  }
}

function codeOf(body: Buffer): string | undefined {
  try {
    return (JSON.parse(body.toString('utf8')) as { error?: { code?: string } }).error?.code;
  } catch {
    return undefined;
  }
}

/** Kinds whose request a server may refuse and close while it is still being sent (the caller then may see a reset, not the answer). */
const HTTP_LEVEL: ReadonlySet<Kind> = new Set(['bad-headers', 'declared-huge', 'oversized']);

/** The findings of one answer. */
export function judge(route: Route, cls: Credential, kind: Kind, built: Built, result: RawResult, forbidden: Forbidden, chunk: ChunkTokens): Omit<Finding, 'request'>[] {
  const where = { route: routeKey(route), cls: cls.name };
  if (result.kind === 'timeout') return [{ ...where, kind: 'no-answer', detail: 'no answer within the time bound' }];
  if (result.kind === 'closed') return HTTP_LEVEL.has(kind) ? [] : [{ ...where, kind: 'no-answer', detail: `connection closed without an answer (${result.error})` }];
  const { status, body, headers } = result.res;
  const out: Omit<Finding, 'request'>[] = [];
  const code = codeOf(body);
  if (status >= 500 && !(code !== undefined && ALLOWED_5XX.has(code))) out.push({ ...where, kind: 'server-error', detail: `HTTP ${status} ${code ?? ''}: ${body.subarray(0, 200).toString()}` });
  if (status >= 400 && built.req.method !== 'HEAD') {
    const problem = errorCodeProblem(status, body);
    if (problem) out.push({ ...where, kind: 'no-error-code', detail: problem });
  }
  // A CORS preflight (the dashboard's state, polled by a page on another master) answers 204 and no data.
  const preflight = built.req.method === 'OPTIONS' && status === 204 && body.length === 0;
  if (status < 400 && status >= 100 && !preflight) {
    if (kind === 'wrong-method' || kind === 'path-variant') out.push({ ...where, kind: 'wrong-route-success', detail: `HTTP ${status} for ${kind === 'wrong-method' ? 'a method the route does not take' : 'a path the contract does not have'}` });
    else if (!maySucceed(route, cls, built.req.method, built.handle, chunk, built.req.body)) out.push({ ...where, kind: 'unauthorized-success', detail: `HTTP ${status} without the credential the route needs: ${body.subarray(0, 200).toString('latin1')}` });
  }
  const text = `${body.toString('latin1')}\n${headers.location ?? ''}`;
  // A name the caller sent may come back in its error ("... is outside it"): it learns nothing it did not know.
  const sent = `${built.req.path}\n${built.req.body?.toString('latin1') ?? ''}`;
  const seen = forbidden.strings.find((s) => text.includes(s) && !sent.includes(s) && !decodedIncludes(built.req.path, s));
  if (seen !== undefined) out.push({ ...where, kind: 'leak', detail: `the answer (HTTP ${status}) holds ${JSON.stringify(seen.slice(0, 40))}, which this caller may not see` });
  if (leakedBytes(body, forbidden.contents)) out.push({ ...where, kind: 'leak', detail: `the answer (HTTP ${status}) holds bytes of a file this caller may not read` });
  return out;
}
