// How a server mounts a route of the wire contract (common/contract/): the path and method come
// from the entry, a POST's body is parsed with its request schema and a GET's query with its
// query schema, and the handler's answer is typed by the reply schema, so a server cannot answer
// what its clients would refuse without tsc saying so.
import type { Express, Request, RequestHandler, Response } from 'express';
import type { z } from 'zod';
import type { JsonRoute, ReplyOf, Route } from './contract/route.js';
import { DfsError } from './errors.js';
import { parseInput, parseIntParam, route } from './server.js';

export type Handler<R extends JsonRoute> = (input: z.output<R['request']>, req: Request, res: Response) => Promise<ReplyOf<R>> | ReplyOf<R>;

const VERB = { GET: 'get', POST: 'post', PUT: 'put' } as const;

/** A query flag: 1 or true, 0 or false, or absent (false). */
export function queryFlag(req: Request, name: string): boolean {
  const v = req.query[name];
  if (v === undefined) return false;
  if (v === '1' || v === 'true') return true;
  if (v === '0' || v === 'false') return false;
  throw new DfsError('INVALID_ARGUMENT', `query parameter ${name} must be true or false`);
}

/** What a query field is, under its optional(). */
function fieldKind(field: z.ZodType): { kind: string; optional: boolean } {
  const def = (field as unknown as { def: { type: string; innerType?: z.ZodType } }).def;
  if (def.type === 'optional' && def.innerType) return { kind: fieldKind(def.innerType).kind, optional: true };
  return { kind: def.type, optional: false };
}

/**
 * A GET's query, read by its route's query schema: flags as queryFlag reads them, numbers as
 * non-negative integers, strings as given (an array, a repeated parameter, is refused).
 */
export function queryOf<R extends Route>(r: R, req: Request): z.output<R['request']> {
  const shape = (r.request as unknown as { shape?: Record<string, z.ZodType> }).shape ?? {};
  const values: Record<string, unknown> = {};
  for (const [name, field] of Object.entries(shape)) {
    const { kind, optional } = fieldKind(field);
    const raw = req.query[name];
    if (kind === 'boolean') values[name] = queryFlag(req, name);
    else if (kind === 'number') values[name] = parseIntParam(raw, name, { optional });
    else if (raw === undefined && optional) values[name] = undefined;
    else if (typeof raw !== 'string') throw new DfsError('INVALID_ARGUMENT', optional ? `query parameter ${name} must be given once` : `query parameter ${name} is required`);
    else values[name] = raw;
  }
  return parseInput(r.request, values) as z.output<R['request']>;
}

/**
 * Mounts a JSON route: `handler` gets the parsed body (POST) or query (GET) and answers the reply.
 * `arrived` runs first, before the input is parsed (a request counter counts refused ones too).
 */
export function serve<R extends JsonRoute>(app: Express, r: R, handler: Handler<R>, arrived?: () => void): void {
  mount(app, r, route(async (req, res) => {
    arrived?.();
    const input = (r.method === 'POST' ? parseInput(r.request, req.body) : queryOf(r, req)) as z.output<R['request']>;
    sendJson(res, await handler(input, req, res));
  }));
}

/** An express layer, as far as the fast table needs to see one. */
interface Layer { route?: unknown; handle?: unknown; match?: (path: string) => boolean }

/** Each app's table of JSON routes that are reached without express's walk through its layers. */
interface FastTable { routes: Map<string, { path: string; handle: RequestHandler }>; dispatcher: RequestHandler }
const fastTables = new WeakMap<Express, FastTable>();

function layers(app: Express): Layer[] {
  return (app as unknown as { router: { stack: Layer[] } }).router.stack;
}

/**
 * Mounts a JSON route as express does, and where it is safe also in the app's fast table: one
 * middleware, added where the app's first JSON route is mounted, that finds a request's route by
 * its method and exact path in a Map and calls it, instead of express testing the request against
 * every layer before it in turn (up to ~60 on a master). Only a route with nothing between the
 * table's middleware and its own layer but routes of other paths goes in the table, so a request
 * skips no middleware, and no route of its own path, that it would have run (the credential
 * check, mounted before the first route, runs before the table). A path with parameters is left
 * to express; so is anything else (405s, 404s). A handler here never calls next() without an
 * error: express would then run the route's own layer, the same handler, again.
 */
function mount(app: Express, r: JsonRoute, handle: RequestHandler): void {
  let table = fastTables.get(app);
  if (table === undefined) {
    const routes = new Map<string, { path: string; handle: RequestHandler }>();
    const dispatcher: RequestHandler = (req, res, next) => {
      const entry = routes.get(`${req.method === 'HEAD' ? 'GET' : req.method} ${req.path}`);
      if (entry === undefined) return next();
      // As express's router leaves them for a route: what the metrics and the handlers read.
      (req as { route?: unknown }).route = { path: entry.path };
      req.params ??= {};
      entry.handle(req, res, next);
    };
    app.use(dispatcher);
    table = { routes, dispatcher };
    fastTables.set(app, table);
  }
  const stack = layers(app);
  const at = stack.findIndex((l) => l.handle === table!.dispatcher);
  const onlyRoutesSince = at >= 0 && stack.slice(at + 1).every((l) => l.route !== undefined && !(typeof l.match === 'function' && l.match(r.path)));
  const key = `${r.method} ${r.path}`;
  if (onlyRoutesSince && !r.path.includes(':') && !table.routes.has(key)) table.routes.set(key, { path: r.path, handle });
  app[VERB[r.method]](r.path, handle);
}

/** The JSON routes `app` answers from its fast table (for tests). */
export function fastRoutes(app: Express): string[] {
  return [...(fastTables.get(app)?.routes.keys() ?? [])];
}

/**
 * A route's answer, as res.json writes it under createApp's settings (no ETag, so no 304; no
 * spaces), without express's per-reply header work (charset rewriting, the freshness check): 1.7 %
 * of a busy leader's CPU. Node sends no body to a HEAD request.
 */
function sendJson(res: Response, value: unknown): void {
  const body = JSON.stringify(value) ?? 'null';
  res.setHeader('content-type', 'application/json; charset=utf-8');
  res.setHeader('content-length', Buffer.byteLength(body));
  res.end(body);
}

/** Mounts a route that streams or answers other than JSON (chunk bytes, a link, the dashboard's state with its own headers). */
export function serveRaw(app: Express, r: Route, ...handlers: RequestHandler[]): void {
  app[VERB[r.method]](r.path, ...handlers);
}
