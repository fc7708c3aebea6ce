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
  app[VERB[r.method]](r.path, route(async (req, res) => {
    arrived?.();
    const input = (r.method === 'POST' ? parseInput(r.request, req.body) : queryOf(r, req)) as z.output<R['request']>;
    sendJson(res, await handler(input, req, res));
  }));
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
