// The one way a client calls a JSON route of the contract: the entry gives the method and path,
// the input is typed by its request schema, and the reply is checked with its reply schema where
// it arrives. A reply that does not fit is BAD_REPLY (a server of another version, or not a dfs
// server at all), never a value cast to a type it does not have.
import { DfsError } from '../errors.js';
import { buildUrl, callJson, type CallOptions } from '../http.js';
import type { LeaderClient } from '../leader.js';
import { pathOf, wireQuery, type JsonRoute, type ReplyOf, type RequestOf, type Route } from './route.js';

/** An error message quotes this much of what did not fit, at most. */
const MAX_PROBLEM_CHARS = 200;

export interface RouteCallOptions {
  headers?: Record<string, string>;
  timeoutMs?: number;
  /** A chunkserver's per-request signature (common/peer-auth.ts). */
  sign?: CallOptions['sign'];
  /** The path's parameters (`:handle`). */
  params?: Record<string, string | number>;
}

/**
 * Checks a reply against its route's schema. Answers the reply as it came (so fields a newer
 * server added travel on), or throws BAD_REPLY naming the route, the server and the first field
 * that does not fit.
 */
export function checkReply<R extends JsonRoute>(route: R, reply: unknown, from: string): ReplyOf<R> {
  const result = route.reply.safeParse(reply);
  if (result.success) return reply as ReplyOf<R>;
  const issue = result.error.issues[0];
  const where = issue?.path.length ? `${issue.path.join('.')}: ` : '';
  const problem = `${where}${issue?.message ?? 'does not fit'}`.slice(0, MAX_PROBLEM_CHARS);
  throw new DfsError('BAD_REPLY', `${route.method} ${route.path} to ${from}: the reply does not fit the protocol (${problem}); is it a dfs server of the same version?`, { route: `${route.method} ${route.path}` });
}

/**
 * The URL of a streaming route (a chunk's PUT or GET) on the server at `addr`: its path with
 * `params` filled in, and its query typed by the route's query schema.
 */
export function routeUrl<R extends Route>(addr: string, route: R, params: Record<string, string | number>, q: RequestOf<R>): string {
  return buildUrl(addr, pathOf(route, params), wireQuery(q as Record<string, unknown>));
}

/** The call's HTTP options: a POST's input is its JSON body, a GET's its query. */
function httpOptions(route: JsonRoute, input: unknown, opts: RouteCallOptions): CallOptions {
  const common = { method: route.method, ...(opts.headers ? { headers: opts.headers } : {}), ...(opts.timeoutMs !== undefined ? { timeoutMs: opts.timeoutMs } : {}), ...(opts.sign ? { sign: opts.sign } : {}) };
  return route.method === 'POST' ? { ...common, body: input ?? {} } : { ...common, query: wireQuery((input ?? {}) as Record<string, unknown>) };
}

/**
 * Calls `route` on `via`: the master group's leader (a LeaderClient, which follows NOT_LEADER and
 * waits out elections) or one server by host:port.
 */
export async function call<R extends JsonRoute>(via: LeaderClient | string, route: R, input: RequestOf<R>, opts: RouteCallOptions = {}): Promise<ReplyOf<R>> {
  const path = pathOf(route, opts.params);
  const http = httpOptions(route, input, opts);
  if (typeof via === 'string') return checkReply(route, await callJson<unknown>(via, path, http), via);
  const reply = await via.call<unknown>(path, http);
  return checkReply(route, reply, via.leader);
}
