// The limits every HTTP listener of every role puts on what a caller may send before any route
// sees it (issue 15, "found by a fuzz of every route"): a JSON body is refused on its declared
// length before a byte is read, read with a time bound, checked for nesting depth and keys per
// object before it is parsed (4 million levels of nesting once stalled a leader 3 s and forced an
// election), and parsed only after the caller is authenticated where a route needs that; a Host
// header must name this server (DNS rebinding); a write from another web origin is refused; a
// known path called with the wrong method answers 405; headers, bodies and connections are bounded.
import { createHash } from 'node:crypto';
import { STATUS_CODES, type Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { isIP } from 'node:net';
import { hostname } from 'node:os';
import type { Express, NextFunction, Request, RequestHandler, Response } from 'express';
import { DfsError } from './errors.js';

export const HTTP_SERVER_LIMITS = {
  /** A request's headers must arrive within this (slowloris); Node's default is 60 s. */
  headersTimeoutMs: 10_000,
  /** A JSON body must arrive within this once its headers have. */
  jsonBodyTimeoutMs: 30_000,
  /** Nesting of arrays and objects in a JSON body; ours need 6 at most. */
  maxJsonDepth: 64,
  /** Keys in one JSON object; ours have about 20 at most (large bodies are long arrays of small objects). */
  maxJsonKeysPerObject: 1_000,
  /** Open connections to one listener, all clients together. */
  maxConnections: 8_192,
  /** Open connections from one client address (a local cluster shares 127.0.0.1). */
  maxConnectionsPerClient: 2_048,
  /** An idle keep-alive connection is closed after this. */
  keepAliveTimeoutMs: 30_000,
  /** How often Node looks for requests over their header or request time (its default is 30 s). */
  checkIntervalMs: 1_000,
};

export type ServerLimits = typeof HTTP_SERVER_LIMITS;

const rawBodies = new WeakMap<Request, Buffer>();

/** SHA-256 (hex) of the body read by `readBody`; the hash of nothing when there was none. */
export function bodySha256(req: Request): string {
  return createHash('sha256').update(rawBodies.get(req) ?? Buffer.alloc(0)).digest('hex');
}

/** Answers `err` without reading the request's body, and closes the connection after it. */
export function refuseUnread(req: Request, res: Response, err: DfsError): void {
  req.unpipe();
  req.pause();
  res.set('connection', 'close');
  res.status(err.status).json(err.toBody());
}

/**
 * Reads a POST's body into memory, up to `limitOf` bytes (or the route's limit it names) and within the body time bound, without
 * parsing it. A declared length over the limit is refused before anything is read; a body that
 * grows past it, or stalls, is cut. Other methods pass unread (a chunk PUT streams to its route).
 */
export function readBody(limitOf: number | ((req: Request) => number), timeoutMs: number = HTTP_SERVER_LIMITS.jsonBodyTimeoutMs): RequestHandler {
  return (req, res, next) => {
    if (req.method !== 'POST') return next();
    const limit = typeof limitOf === 'number' ? limitOf : limitOf(req);
    const declared = req.headers['content-length'];
    if (declared !== undefined && !(Number(declared) <= limit)) {
      return refuseUnread(req, res, new DfsError('BODY_TOO_LARGE', `request body of ${String(declared).slice(0, 20)} bytes is over the limit of ${limit}`));
    }
    const encoding = req.headers['content-encoding'];
    if (encoding !== undefined && encoding !== 'identity') return refuseUnread(req, res, new DfsError('INVALID_ARGUMENT', 'request bodies must not be compressed'));
    const chunks: Buffer[] = [];
    let total = 0;
    let done = false;
    const finish = (err?: DfsError): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      req.off('data', onData);
      if (err) return refuseUnread(req, res, err);
      rawBodies.set(req, Buffer.concat(chunks, total));
      next();
    };
    const onData = (chunk: Buffer): void => {
      total += chunk.length;
      if (total > limit) return finish(new DfsError('BODY_TOO_LARGE', `request body is over the limit of ${limit} bytes`));
      chunks.push(chunk);
    };
    const timer = setTimeout(() => finish(new DfsError('BODY_TIMEOUT', `request body did not arrive within ${timeoutMs / 1000} s`)), timeoutMs);
    req.on('data', onData);
    req.once('end', () => finish());
    req.once('error', () => finish(new DfsError('INVALID_ARGUMENT', 'request body was cut off')));
  };
}

/**
 * Throws JSON_TOO_COMPLEX if `text` nests deeper than `maxDepth` or has an object with more than
 * `maxKeys` keys. One linear pass that only tracks strings and brackets: bounded work on any
 * input, before JSON.parse (whose recursion and allocations are not).
 */
export function checkJsonShape(text: Buffer, maxDepth: number = HTTP_SERVER_LIMITS.maxJsonDepth, maxKeys: number = HTTP_SERVER_LIMITS.maxJsonKeysPerObject): void {
  const keys: number[] = []; // per open container: keys so far (objects), -1 (arrays)
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === 0x22) {
      // A string's bytes are skipped natively (an inline file's create is a 5 KiB string): to the
      // first quote after an even run of backslashes (an odd run escapes it). Unterminated: the end.
      let end = i;
      for (;;) {
        end = text.indexOf(0x22, end + 1);
        if (end < 0) return;
        let run = 0;
        while (text[end - 1 - run] === 0x5c) run++;
        if (run % 2 === 0) break;
      }
      i = end;
    } else if (c === 0x7b || c === 0x5b) {
      keys.push(c === 0x7b ? 0 : -1);
      if (keys.length > maxDepth) throw new DfsError('JSON_TOO_COMPLEX', `request body nests deeper than ${maxDepth} levels`);
    } else if (c === 0x7d || c === 0x5d) keys.pop();
    else if (c === 0x3a && keys.length > 0 && keys[keys.length - 1]! >= 0) {
      if (++keys[keys.length - 1]! > maxKeys) throw new DfsError('JSON_TOO_COMPLEX', `an object in the request body has more than ${maxKeys} keys`);
    }
  }
}

/** Parses the body `readBody` read, when it is sent as JSON, after checking its shape. */
export function parseJsonBody(): RequestHandler {
  return (req, _res, next) => {
    const raw = rawBodies.get(req);
    if (raw === undefined || raw.length === 0) return next();
    const type = req.headers['content-type'];
    if (type === undefined || !/^application\/([\w.+-]*\+)?json\b/i.test(type)) return next();
    try {
      checkJsonShape(raw);
      req.body = JSON.parse(raw.toString('utf8')) as unknown;
    } catch (err) {
      return next(err instanceof DfsError ? err : new DfsError('INVALID_ARGUMENT', 'request body is not valid JSON'));
    }
    next();
  };
}

/** The host names a listener answers to besides IP literals and localhost: its configured names. */
export function allowedHostNames(addrs: readonly (string | undefined)[]): Set<string> {
  const names = new Set(['localhost', hostname().toLowerCase()]);
  for (const a of addrs) {
    if (!a) continue;
    const host = a.replace(/^https?:\/\//, '').replace(/:\d+$/, '').replace(/^\[|\]$/g, '').toLowerCase();
    if (host) names.add(host);
  }
  return names;
}

function nameAllowed(host: string, names: Set<string>): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  // DNS rebinding needs a name that resolves to us; an IP literal is not one.
  return isIP(h) !== 0 || names.has(h) || h.endsWith('.localhost');
}

/**
 * Refuses a request whose Host names another server (a web page's DNS rebinding: evil.example
 * resolving to 127.0.0.1) with HOST_NOT_ALLOWED, and a write (not GET/HEAD/OPTIONS) sent by a
 * page of another origin with CROSS_ORIGIN: a browser names the page in Origin.
 */
export function hostGuard(names: () => Set<string>): RequestHandler {
  return (req: Request, res: Response, next: NextFunction) => {
    const host = req.headers.host;
    const hostName = host === undefined ? undefined : /^(\[[^\]]*\]|[^:]*)(:\d+)?$/.exec(host)?.[1];
    if (hostName === undefined || !nameAllowed(hostName, names())) {
      return refuseUnread(req, res, new DfsError('HOST_NOT_ALLOWED', 'the Host header does not name this server (use its address or a configured name)'));
    }
    const origin = req.headers.origin;
    if (origin !== undefined && !['GET', 'HEAD', 'OPTIONS'].includes(req.method)) {
      let originHost: string | undefined;
      try {
        originHost = new URL(origin).hostname;
      } catch {
        originHost = undefined;
      }
      if (originHost === undefined || originHost === '' || !nameAllowed(originHost, names())) {
        return refuseUnread(req, res, new DfsError('CROSS_ORIGIN', 'a write from a web page of another origin is refused'));
      }
    }
    next();
  };
}

interface RouteLayer { route?: { path?: unknown; methods?: Record<string, boolean> }; match?: (path: string) => boolean }

/** The methods the app's routes answer for `path` (empty: no route has that path). */
export function methodsFor(app: Express, path: string): string[] {
  const stack = (app as unknown as { router?: { stack?: RouteLayer[] } }).router?.stack ?? [];
  const methods = new Set<string>();
  for (const layer of stack) {
    if (!layer.route?.methods || typeof layer.match !== 'function' || !layer.match(path)) continue;
    for (const [m, on] of Object.entries(layer.route.methods)) if (on && m !== '_all') methods.add(m.toUpperCase());
  }
  if (methods.has('GET')) methods.add('HEAD');
  return [...methods].sort();
}

/** Installed after the routes: a known path with another method answers 405 (with Allow), not 404. */
export function methodNotAllowed(app: Express): RequestHandler {
  return (req, res, next) => {
    const allowed = methodsFor(app, req.path);
    if (allowed.length === 0) return next();
    res.set('allow', allowed.join(', '));
    refuseUnread(req, res, new DfsError('METHOD_NOT_ALLOWED', `${req.method.slice(0, 16)} is not allowed here; use ${allowed.join(' or ')}`));
  };
}

/** An error as a whole HTTP/1.1 answer, for a socket no route has (a request the HTTP parser refused, a CONNECT). */
export function rawErrorAnswer(err: DfsError): string {
  const body = JSON.stringify(err.toBody());
  return `HTTP/1.1 ${err.status} ${STATUS_CODES[err.status] ?? 'Error'}\r\nconnection: close\r\ncontent-type: application/json; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
}

/** What Node's HTTP parser refused (its own answer is a bare status line), as a refusal with a stable code. */
export function parserRefusal(code: string | undefined): DfsError {
  switch (code) {
    case 'HPE_HEADER_OVERFLOW': return new DfsError('HEADERS_TOO_LARGE', 'request headers are over the 16 KiB limit');
    case 'ERR_HTTP_REQUEST_TIMEOUT': return new DfsError('REQUEST_TIMEOUT', 'the request did not arrive in time');
    case 'HPE_INVALID_METHOD': return new DfsError('METHOD_NOT_ALLOWED', 'unknown HTTP method');
    default: return new DfsError('INVALID_ARGUMENT', 'malformed HTTP request');
  }
}

/**
 * Answers what the HTTP layer refuses before any route runs as every other refusal is answered:
 * a JSON error with a stable code (not Node's bare status line), then the connection closed. A
 * CONNECT (no route takes one; Node would drop the connection unanswered) gets 405.
 */
function answerRefusals(server: Server): void {
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
    // Nothing to answer on a connection gone, or one whose answer has begun.
    const begun = (socket as { _httpMessage?: { headersSent?: boolean } })._httpMessage?.headersSent === true;
    if (err.code === 'ECONNRESET' || !socket.writable || begun) return void socket.destroy();
    socket.end(rawErrorAnswer(parserRefusal(err.code)));
  });
  server.on('connect', (_req, socket: Duplex) => {
    socket.end(rawErrorAnswer(new DfsError('METHOD_NOT_ALLOWED', 'CONNECT is not served here')));
  });
}

/** Timeouts and connection caps on a listener (plain or TLS). `requestTimeoutMs`: the longest a whole request may take to arrive. */
export function applyServerLimits(server: Server, requestTimeoutMs: number, limits: ServerLimits = HTTP_SERVER_LIMITS): void {
  server.headersTimeout = limits.headersTimeoutMs;
  server.requestTimeout = requestTimeoutMs;
  server.keepAliveTimeout = limits.keepAliveTimeoutMs;
  server.maxConnections = limits.maxConnections;
  answerRefusals(server);
  const perClient = new Map<string, number>();
  server.on('connection', (socket) => {
    const who = socket.remoteAddress ?? '?';
    const n = (perClient.get(who) ?? 0) + 1;
    if (n > limits.maxConnectionsPerClient) {
      socket.destroy();
      return;
    }
    perClient.set(who, n);
    socket.once('close', () => {
      const left = (perClient.get(who) ?? 1) - 1;
      if (left <= 0) perClient.delete(who);
      else perClient.set(who, left);
    });
  });
}
