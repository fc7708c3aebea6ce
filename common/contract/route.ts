// What one route of the wire contract is (common/contract/README.md says how to add one). An
// entry names its method, path, request and reply schemas, who may call it and how large a body
// it takes; the servers mount from it (common/serve.ts) and the clients call through it
// (common/contract/call.ts), so the path is written once, here, and a reply is checked where it
// arrives. This file holds no express and no HTTP client: the client loads it as it is.
import { z } from 'zod';
import { MAX_JSON_BODY_BYTES } from '../limits.js';

/**
 * Who may call a route. The master's credential check (master/credentials/policy.ts) takes a
 * route's class from here; the chunkserver's routes check their own (a chunk access token).
 */
export type Caller =
  /** Anyone: liveness, the Raft view, metrics. */
  | 'public'
  /** A client token (any): the master's policy narrows what its scope allows (a prefix, read-only). */
  | 'token'
  /** An admin token. */
  | 'admin'
  /** A token if one is sent, else anonymous: the route limits what an anonymous caller gets (the dashboard's state). */
  | 'optional'
  /** A chunkserver of this cluster, signing each call with the cluster secret (master/peer-guard.ts). */
  | 'chunkserver'
  /** Another master of the group (the Raft stream, authenticated when it opens). */
  | 'member'
  /** Whoever holds a chunk access token the leader signed for this chunk and operation (common/auth.ts). */
  | 'chunk-token';

export type Method = 'GET' | 'POST' | 'PUT';
export type Role = 'master' | 'chunkserver' | 'every server';

/** A route whose reply is not JSON: chunk bytes, metrics text, a stream kept open, a web page or its files. */
export type RawReply = 'bytes' | 'text' | 'stream' | 'page';

/** Query parameters: strings, numbers and flags (a flag is sent as 1, or left out when false). */
export type QueryShape = Record<string, z.ZodType<string | number | boolean | undefined>>;

export interface Route<In extends z.ZodType = z.ZodType, Out extends z.ZodType | RawReply = z.ZodType | RawReply> {
  /** Who serves it. */
  readonly server: Role;
  readonly method: Method;
  /** Express's pattern (`:handle` for a parameter). */
  readonly path: string;
  /** POST: the JSON body's schema (the server parses the body with it); GET and PUT: the query's. */
  readonly request: In;
  /** The JSON reply's schema (the client checks every reply with it), or what kind of raw reply. */
  readonly reply: Out;
  readonly caller: Caller;
  /** The largest body the server reads for it (common/http-limits.ts refuses a larger one unread). */
  readonly bodyLimit: number;
}

/** A route that answers JSON: the only kind `call` calls. */
export type JsonRoute<In extends z.ZodType = z.ZodType, Out extends z.ZodType = z.ZodType> = Route<In, Out>;

/** What a caller sends: the body's or the query's input (defaults may be left out). */
export type RequestOf<R extends Route> = z.input<R['request']>;
/** What a route answers (its reply schema's type). */
export type ReplyOf<R extends JsonRoute> = z.output<R['reply']>;

/** A request with no body and no query. */
export const NoInput = z.strictObject({});

interface Spec<In extends z.ZodType, Out extends z.ZodType | RawReply> {
  server: Role; path: string; request?: In; reply: Out; caller: Caller; bodyLimit?: number;
}

/** A POST of a JSON body: at most MAX_JSON_BODY_BYTES unless the entry says less. */
export function post<In extends z.ZodType = typeof NoInput, Out extends z.ZodType = z.ZodType>(s: Spec<In, Out>): Route<In, Out> {
  return { method: 'POST', bodyLimit: MAX_JSON_BODY_BYTES, ...s, request: (s.request ?? NoInput) as In };
}

/** A GET; `request` is the query's shape. It takes no body. */
export function get<In extends z.ZodType = typeof NoInput, Out extends z.ZodType | RawReply = z.ZodType>(s: Spec<In, Out>): Route<In, Out> {
  return { method: 'GET', bodyLimit: 0, ...s, request: (s.request ?? NoInput) as In };
}

/** A PUT of a byte stream (a chunk); `request` is the query's shape. */
export function put<In extends z.ZodType, Out extends z.ZodType>(s: Spec<In, Out> & { bodyLimit: number }): Route<In, Out> {
  return { method: 'PUT', ...s, request: (s.request ?? NoInput) as In };
}

/** A query's schema: its values are checked as the server reads them (common/serve.ts, queryOf). */
export function query<S extends QueryShape>(shape: S) {
  return z.object(shape);
}

/** `/v1/chunks/:handle` with { handle: 7 } → `/v1/chunks/7`; every parameter must be given. */
export function pathOf(route: Route, params: Record<string, string | number> = {}): string {
  if (!route.path.includes(':')) return route.path; // most routes: nothing to fill in
  return route.path.replace(/:([A-Za-z]+)/g, (_, name: string) => {
    const v = params[name];
    if (v === undefined) throw new Error(`${route.method} ${route.path}: parameter ${name} not given`);
    return encodeURIComponent(String(v));
  });
}

/** A query as it goes on the wire: a true flag as 1, a false or absent value left out. */
export function wireQuery(input: Record<string, unknown>): Record<string, string | number | undefined> {
  const out: Record<string, string | number | undefined> = {};
  for (const [k, v] of Object.entries(input)) {
    if (v === true) out[k] = 1;
    else if (typeof v === 'string' || typeof v === 'number') out[k] = v;
  }
  return out;
}

/** `METHOD /path`: how docs/API.md and the master's policy name a route. */
export function routeKey(route: Pick<Route, 'method' | 'path'>): string {
  return `${route.method} ${route.path}`;
}
