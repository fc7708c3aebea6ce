import { Agent, request, type Dispatcher } from 'undici';
import { DfsError, errorFromBody, toDfsError } from './errors.js';
import { clientTls, onClientTlsChange, scheme } from './tls.js';
import { CONNECT_TIMEOUT_MS } from './limits.js';
import { outgoingRequestId, replyRequestId, REQUEST_ID_HEADER, traceCall } from './request-id.js';

/** Bounds for the one HTTP client every role shares. */
export const HTTP_LIMITS = {
  /**
   * Keep-alive connections per peer: enough for pipelines and parallel reads, bounded under load.
   * 64 so that 64 metadata calls in flight reach the master instead of queueing here (with 32,
   * creates with 64 in flight ran 15 % slower).
   */
  connectionsPerOrigin: 64,
  /** Control calls are small; a peer that takes longer than this is treated as unavailable. */
  controlTimeoutMs: 10_000,
  /** A JSON reply larger than this is refused rather than buffered. */
  maxJsonReplyBytes: 64 * 1024 * 1024,
};

let agent: Agent | undefined;
// Connections made before TLS was turned on (or off) must not be reused.
onClientTlsChange(() => void closeHttpAgent());

/** The process-wide keep-alive dispatcher (with this process's TLS settings, common/tls.ts). */
export function httpAgent(): Agent {
  const tls = clientTls();
  agent ??= new Agent({
    connections: HTTP_LIMITS.connectionsPerOrigin,
    keepAliveTimeout: 10_000,
    connect: { timeout: CONNECT_TIMEOUT_MS },
    headersTimeout: 0, // per-call AbortSignal.timeout() is precise; undici's own timers are coarse
    bodyTimeout: 0,
    ...(tls ? { connect: { ...tls } } : {}),
  });
  return agent;
}

export async function closeHttpAgent(): Promise<void> {
  const a = agent;
  agent = undefined;
  await a?.close();
}

export interface CallOptions {
  method?: 'GET' | 'POST' | 'PUT' | 'DELETE';
  body?: unknown;
  timeoutMs?: number;
  headers?: Record<string, string>;
  query?: Record<string, string | number | boolean | undefined>;
  /** Extra headers computed from the call itself: a member's per-request signature (common/peer-auth.ts). */
  sign?: (method: string, pathWithQuery: string, body: Buffer | undefined) => Record<string, string>;
}

export function buildUrl(base: string, path: string, query?: CallOptions['query']): string {
  const url = new URL(path, base.startsWith('http') ? base : `${scheme()}://${base}`);
  for (const [k, v] of Object.entries(query ?? {})) if (v !== undefined) url.searchParams.set(k, String(v));
  return url.toString();
}

/** Reads a whole response body as JSON, bounded in size. */
export async function readJson(body: Dispatcher.ResponseData['body']): Promise<unknown> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of body) {
    total += (chunk as Buffer).length;
    if (total > HTTP_LIMITS.maxJsonReplyBytes) {
      body.destroy();
      throw new DfsError('BODY_TOO_LARGE', 'reply from peer is too large');
    }
    chunks.push(chunk as Buffer);
  }
  if (total === 0) return undefined;
  const text = Buffer.concat(chunks).toString('utf8');
  try {
    return JSON.parse(text);
  } catch {
    throw new DfsError('INTERNAL', 'peer sent a reply that is not JSON');
  }
}

/** A TLS failure says how to fix it: trust the cluster's CA, or speak TLS to a TLS cluster. */
export function withTlsHint(e: DfsError, cause: unknown): DfsError {
  const text = `${(cause as Error)?.message ?? ''} ${String((cause as { code?: unknown })?.code ?? '')}`;
  if (/certificate|CERT_|SELF_SIGNED/i.test(text)) return new DfsError('UNAVAILABLE', `${e.message}: trust the cluster's CA with DFS_TLS_CA or --tls-ca`);
  if (scheme() === 'http' && e.message.endsWith('UND_ERR_SOCKET')) return new DfsError('UNAVAILABLE', `${e.message} (a TLS cluster needs https:// master addresses or DFS_TLS_CA)`);
  return e;
}

/**
 * A JSON call to a peer (`addr` is host:port). Answers the parsed body on 2xx; otherwise throws
 * the peer's DfsError, or UNAVAILABLE / TIMEOUT when the peer cannot be reached.
 */
export async function callJson<T>(addr: string, path: string, opts: CallOptions = {}): Promise<T> {
  const url = buildUrl(addr, path, opts.query);
  const method = opts.method ?? (opts.body === undefined ? 'GET' : 'POST');
  const body = opts.body === undefined ? undefined : Buffer.from(JSON.stringify(opts.body));
  let res: Dispatcher.ResponseData;
  // The operation's id (common/request-id.ts); the reply names the id the server used.
  const sentId = outgoingRequestId();
  const startMs = performance.now();
  const u = new URL(url);
  const trace = (status: number, id: string) => traceCall({ method, target: `${u.host}${u.pathname}${u.search}`, status, ms: performance.now() - startMs, requestId: id });
  try {
    res = await request(url, {
      method,
      dispatcher: httpAgent(),
      headers: { ...(body === undefined ? {} : { 'content-type': 'application/json' }), [REQUEST_ID_HEADER]: sentId, ...opts.headers, ...opts.sign?.(method, u.pathname + u.search, body) },
      body,
      signal: AbortSignal.timeout(opts.timeoutMs ?? HTTP_LIMITS.controlTimeoutMs),
    });
  } catch (err) {
    trace(0, sentId);
    throw withTlsHint(toDfsError(err, `call to ${addr}`), err);
  }
  const requestId = replyRequestId(res.headers, sentId);
  trace(res.statusCode, requestId);
  let parsed: unknown;
  try {
    parsed = await readJson(res.body);
  } catch (err) {
    throw toDfsError(err, `reply from ${addr}`);
  }
  if (res.statusCode >= 200 && res.statusCode < 300) return parsed as T;
  const e = errorFromBody(parsed, res.statusCode);
  e.requestId = requestId;
  throw e;
}
