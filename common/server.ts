import express, { type Express, type NextFunction, type Request, type RequestHandler, type Response } from 'express';
import { createServer, IncomingMessage, type Server, ServerResponse } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import { collectDefaultMetrics, Histogram, Registry } from 'prom-client';
import type { z } from 'zod';
import { DfsError } from './errors.js';
import type { Logger } from './log.js';
import { applyServerLimits, hostGuard, HTTP_SERVER_LIMITS, methodNotAllowed, parseJsonBody, readBody } from './http-limits.js';
import { CLUSTER, routeFor } from './contract/index.js';
import { MAX_JSON_BODY_BYTES } from './protocol.js';
import { acceptRequestId, REQUEST_ID_HEADER, runWithRequestId } from './request-id.js';
import { serverTlsOptions, type LoadedTls } from './tls.js';

/** An error message built from a caller's input is cut to this. */
const MAX_ERROR_MESSAGE_CHARS = 300;

/** Parses untrusted input with a schema; the first problem becomes an INVALID_ARGUMENT. */
export function parseInput<S extends z.ZodType>(schema: S, input: unknown): z.infer<S> {
  const result = schema.safeParse(input ?? {});
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  const where = issue?.path.length ? `${issue.path.join('.')}: ` : '';
  // Never echo a caller's input back at length (600 k unknown keys once made a 7 MB answer).
  const message = `${where}${issue?.message ?? 'invalid input'}`;
  throw new DfsError('INVALID_ARGUMENT', message.length > MAX_ERROR_MESSAGE_CHARS ? `${message.slice(0, MAX_ERROR_MESSAGE_CHARS)}…` : message);
}

/** Parses a non-negative integer from a query string or route parameter. */
export function parseIntParam(raw: unknown, name: string, opts: { min?: number; max?: number; optional?: boolean } = {}): number | undefined {
  if (raw === undefined && opts.optional) return undefined;
  if (typeof raw !== 'string' || !/^\d{1,16}$/.test(raw)) throw new DfsError('INVALID_ARGUMENT', `${name} must be a non-negative integer`);
  const n = Number(raw);
  if (n < (opts.min ?? 0) || n > (opts.max ?? Number.MAX_SAFE_INTEGER)) {
    throw new DfsError('INVALID_ARGUMENT', `${name} must be between ${opts.min ?? 0} and ${opts.max ?? Number.MAX_SAFE_INTEGER}`);
  }
  return n;
}

export function sendError(res: Response, err: DfsError): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  res.status(err.status).json(err.toBody());
}

export interface AppOptions {
  /** Host names this server answers to besides IP literals and localhost (common/http-limits.ts). */
  hostNames?: () => Set<string>;
  /** Run after a body is read and before it is parsed: authentication (master/peer-guard.ts). */
  guards?: RequestHandler[];
  /**
   * Whether the routes run with the request's id as the async context (runWithRequestId), so that
   * calls to peers carry it and boundLog() binds it (default true). A server whose routes call no
   * peer turns it off: AsyncLocalStorage's hooks then never run in its process, about 7 % of a busy
   * leader's CPU (docs/ARCHITECTURE.md, "Following a request through the logs"). Its routes log
   * through requestLog(res), which carries the id either way.
   */
  requestContext?: boolean;
}

/**
 * Runs `handlers` one after another as one middleware, as express would run them as layers: an
 * error (passed or thrown) skips the rest and goes to express's error handling; a handler that
 * answers without calling next ends the request there.
 */
export function chain(handlers: RequestHandler[]): RequestHandler {
  return (req, res, next) => {
    let i = 0;
    const step = (err?: unknown): void => {
      if (err !== undefined && err !== null) return next(err);
      const h = handlers[i++];
      if (h === undefined) return next();
      try {
        void h(req, res, step);
      } catch (e) {
        next(e);
      }
    };
    step();
  };
}

/** An express app with the request limits, metrics and JSON errors every role uses. */
export function createApp(log: Logger, metrics: Registry, opts: AppOptions = {}): Express {
  const app = express();
  // A route matches its contract path exactly: no other case, no trailing '/'. Found by the route
  // fuzz: the peer guards compare the path as written, so with an admin client token and no peer
  // signature `POST /V1/CS/REGISTER` registered a made-up chunkserver and `GET /v1/raft/group/`
  // answered the group; `/V1/HEALTH` answered 200 for a path the contract does not have.
  app.set('case sensitive routing', true);
  app.set('strict routing', true);
  app.disable('x-powered-by');
  app.set('etag', false);
  // What every request goes through before its route, in this order, as one router layer rather
  // than eight (measured: no difference beyond noise; express's own fixed cost per request,
  // ~30-45 µs, does not depend on the number of layers).
  app.use(chain([
    requestLogging(log),
    requestMetrics(metrics),
    ...(opts.hostNames ? [hostGuard(opts.hostNames)] : []),
    // Only POSTs carry JSON: a chunk PUT's body is bytes whatever its content-type says, and must
    // reach its route unread. Bodies are read (up to the route's limit in the contract), then the
    // caller authenticated, then parsed.
    readBody((req) => routeFor(req.method, req.path)?.bodyLimit ?? MAX_JSON_BODY_BYTES),
    ...(opts.guards ?? []),
    parseJsonBody(),
    // From here on (the routes and what they call) the request's id is the current one: calls to
    // peers carry it, and boundLog() binds it (common/request-id.ts).
    ...(opts.requestContext === false ? [] : [(_req: Request, res: Response, next: NextFunction) => runWithRequestId(requestIdOf(res), next)]),
  ]));
  app.get(CLUSTER.metrics.path, async (_req, res) => {
    res.type(metrics.contentType).send(await metrics.metrics());
  });
  return app;
}

/**
 * Paths whose answered requests log at debug, not info: periodic traffic (heartbeats, reports,
 * polls, probes, lease renewals, metrics, raft) would drown the lines a person looks for.
 */
const QUIET_PATHS = /^\/(metrics$|ui\/|v1\/(health$|cs\/|raft\/|ui\/|fs\/renew$|cluster\/status$|session$))/;
/** A URL logged is cut to this. */
const MAX_LOGGED_URL_CHARS = 300;

/**
 * The request's id (the caller's x-dfs-request-id when well formed, else a fresh one: see
 * common/request-id.ts), echoed in the reply's header, bound as `reqId` to the request's logger
 * (requestLog), and one line when the request ends: info for a change, debug for a read or
 * periodic traffic that went well, info for a refusal (4xx), warn for a failure (5xx).
 */
function requestLogging(log: Logger) {
  return (req: Request, res: Response, next: NextFunction): void => {
    const { id, replaced } = acceptRequestId(req.get(REQUEST_ID_HEADER));
    // The request's logger is made when first asked for (requestLog): most requests never log but
    // their one line at the end, which names the id itself.
    res.locals.reqId = id;
    res.locals.appLog = log;
    res.setHeader(REQUEST_ID_HEADER, id);
    const startNs = process.hrtime.bigint();
    res.once('close', () => {
      const status = res.statusCode;
      const read = req.method === 'GET' || req.method === 'HEAD' || QUIET_PATHS.test(req.path);
      const level = status >= 500 ? 'warn' : status >= 400 ? 'info' : read ? 'debug' : 'info';
      if (!log.isLevelEnabled(level)) return;
      const url = req.originalUrl.length > MAX_LOGGED_URL_CHARS ? `${req.originalUrl.slice(0, MAX_LOGGED_URL_CHARS)}…` : req.originalUrl;
      const ms = Math.round(Number(process.hrtime.bigint() - startNs) / 1e5) / 10;
      log[level]({ reqId: id, method: req.method, url, status, ms, ...(res.writableFinished ? {} : { aborted: true }), ...(replaced ? { requestIdReplaced: true } : {}) }, 'request');
    });
    next();
  };
}

/** The id the request is served under (set by createApp's first step). */
export function requestIdOf(res: Response): string {
  return res.locals.reqId as string;
}

/** The request's logger: every line carries its `reqId`; `fallback` outside createApp's apps. */
export function requestLog(res: Response, fallback: Logger): Logger {
  const locals = res.locals as { reqId?: string; appLog?: Logger; log?: Logger };
  if (locals.log !== undefined) return locals.log;
  if (locals.reqId === undefined || locals.appLog === undefined) return fallback;
  return (locals.log = locals.appLog.child({ reqId: locals.reqId }));
}

/** Seconds: a control call takes milliseconds, a 64 MiB chunk through a pipeline seconds, a slow one minutes. */
const REQUEST_SECONDS_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];

/**
 * Times every request, labelled by the route pattern that matched (`/v1/chunks/:handle`, never
 * the raw URL: the label set stays bounded whatever clients send) or `unmatched`, and by status.
 */
function requestMetrics(metrics: Registry) {
  const seconds = new Histogram({
    name: 'dfs_http_request_duration_seconds', help: 'HTTP requests served, by method, route pattern and status, from arrival to the end of the reply',
    labelNames: ['method', 'route', 'status'], buckets: REQUEST_SECONDS_BUCKETS, registers: [metrics],
  });
  return (req: Request, res: Response, next: NextFunction): void => {
    const stop = seconds.startTimer();
    // 'close' comes for every reply, finished or cut off ('finish' never comes for an aborted one).
    res.once('close', () => {
      const pattern = (req.route as { path?: unknown } | undefined)?.path;
      const route = typeof pattern === 'string' ? req.baseUrl + pattern : 'unmatched';
      stop({ method: KNOWN_METHODS.has(req.method) ? req.method : 'other', route, status: String(res.statusCode) });
    });
    next();
  };
}

const KNOWN_METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'DELETE']);

function isClientError(err: unknown): boolean {
  const status = (err as { status?: unknown }).status;
  return typeof status === 'number' && status >= 400 && status < 500;
}

/** Installed last: every error becomes `{error:{code,message}}`, never express's HTML page. */
export function installErrorHandler(app: Express, log: Logger): void {
  app.use(methodNotAllowed(app));
  app.use((_req: Request, _res: Response, next: NextFunction) => next(new DfsError('NOT_FOUND', 'no such route')));
  app.use((err: unknown, req: Request, res: Response, _next: NextFunction) => {
    let dfsErr: DfsError;
    if (err instanceof DfsError) dfsErr = err;
    else if ((err as { type?: string }).type === 'entity.too.large') dfsErr = new DfsError('BODY_TOO_LARGE', 'request body is too large');
    else if ((err as { type?: string }).type === 'entity.parse.failed') dfsErr = new DfsError('INVALID_ARGUMENT', 'request body is not valid JSON');
    else if (isClientError(err)) dfsErr = new DfsError('INVALID_ARGUMENT', (err as Error).message); // e.g. an unsupported charset (415)
    else {
      requestLog(res, log).error({ err, url: req.originalUrl }, 'unhandled error');
      dfsErr = new DfsError('INTERNAL', 'internal error; see the server log');
    }
    sendError(res, dfsErr);
  });
}

export function newMetricsRegistry(role: string): Registry {
  const registry = new Registry();
  registry.setDefaultLabels({ role });
  collectDefaultMetrics({ register: registry });
  return registry;
}

/** Wraps an async route so a thrown error reaches the error handler. */
export function route(fn: (req: Request, res: Response) => Promise<void> | void) {
  return (req: Request, res: Response, next: NextFunction) => {
    Promise.resolve()
      .then(() => fn(req, res))
      .catch(next);
  };
}

/**
 * Serves `app` on host:port, over TLS when `tls` is given (asking peers for a client certificate
 * when it names a CA), with the header, request and connection limits of common/http-limits.ts.
 * `requestTimeoutMs` is the longest a whole request may take to arrive: a chunk PUT's bound on a
 * chunkserver, far less on a master.
 */
export function listen(app: Express, host: string, port: number, opts: { tls?: LoadedTls; requestTimeoutMs?: number } = {}): Promise<Server> {
  return new Promise((resolve, reject) => {
    const check = { connectionsCheckingInterval: HTTP_SERVER_LIMITS.checkIntervalMs, ...expressShaped(app) };
    const server: Server = opts.tls ? createTlsServer({ ...serverTlsOptions(opts.tls), ...check }, app) : createServer(check, app);
    applyServerLimits(server, opts.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS);
    server.once('listening', () => resolve(server));
    server.once('error', reject);
    server.listen(port, host);
  });
}

/**
 * The request and reply classes a listener makes its objects from: node's own, with the prototypes
 * express gives every request it handles (`app.request`, `app.response`). Express sets those in
 * app.handle; on an object born with them that is a no-op, where swapping a live object's
 * prototype gives it a new shape and slows every function that touches requests after it (about
 * 0.1 ms of a leader's CPU per create: docs/ARCHITECTURE.md, "Decisions, and why").
 */
function expressShaped(app: Express): { IncomingMessage?: typeof IncomingMessage; ServerResponse?: typeof ServerResponse } {
  // Node 20 writes these classes as functions, so ours call them on the object `new` made. Were
  // they written with `class`, that call would throw: node's own classes are used then, as
  // before. (Reflect.construct with our class as new.target works for both, but measured, it
  // made node's constructors slower than the swap it saves.)
  if (!callableConstructor(IncomingMessage) || !callableConstructor(ServerResponse)) return {};
  function AppRequest(this: IncomingMessage, ...args: ConstructorParameters<typeof IncomingMessage>): void {
    IncomingMessage.apply(this, args);
  }
  AppRequest.prototype = app.request;
  function AppResponse(this: ServerResponse, ...args: ConstructorParameters<typeof ServerResponse>): void {
    ServerResponse.apply(this, args);
  }
  AppResponse.prototype = app.response;
  return { IncomingMessage: AppRequest as unknown as typeof IncomingMessage, ServerResponse: AppResponse as unknown as typeof ServerResponse };
}

/** Whether `f` may be called without `new` (a function, not a `class`). */
function callableConstructor(f: unknown): boolean {
  return typeof f === 'function' && !/^class\b/.test(Function.prototype.toString.call(f));
}

/** A master's requests are JSON of at most 8 MiB: a minute is plenty even on a slow link. */
const DEFAULT_REQUEST_TIMEOUT_MS = 60_000;
