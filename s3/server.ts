// The gateway's HTTP server: every request is authenticated (SigV4), routed by method, path
// (path-style: /bucket/key) and query to one handler, and any failure answered in S3's XML.
import { randomId } from '../common/random-id.js';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import type { LoadedTls } from '../common/tls.js';
import type { Socket } from 'node:net';
import { createBucket, bucketLocation, deleteBucket, headBucket, listBuckets, listObjects } from './buckets.js';
import { header, sendXml, type Ctx, type Gateway } from './context.js';
import { fromDfsError, S3Error } from './errors.js';
import { abortUpload, completeUpload, createUpload, listParts, listUploads, uploadPart } from './multipart.js';
import { deleteObject, deleteObjects, getObject, parseCopySource, putObject } from './objects.js';
import { authorize, type KeyScopes } from './scope.js';
import { authenticate, type SignedRequest } from './sigv4.js';
import type { S3Key } from './credentials.js';
import { renderError } from './xml.js';
import { runWithRequestId } from '../common/request-id.js';

/** Largest request head accepted (node's default); over it, S3's RequestHeaderSectionTooLarge. */
const MAX_HEADER_BYTES = 16 * 1024;
/** Longest a request may take to send its head. */
const HEADERS_TIMEOUT_MS = 60_000;

/** Query parameters that name S3 features the gateway does not have: 501, never a silent wrong answer. */
const UNSUPPORTED = new Set([
  'acl', 'policy', 'policyStatus', 'tagging', 'cors', 'lifecycle', 'website', 'replication', 'encryption', 'notification', 'logging',
  'object-lock', 'retention', 'legal-hold', 'torrent', 'restore', 'select', 'accelerate', 'requestPayment', 'analytics', 'inventory',
  'metrics', 'intelligent-tiering', 'ownershipControls', 'publicAccessBlock', 'versions', 'attributes',
]);

function decode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    throw new S3Error('InvalidURI', 'Couldn\'t parse the specified URI.');
  }
}

/** Query pairs as sent, percent-decoded ('+' stays '+': SigV4 clients encode a space as %20). */
export function parseQuery(raw: string): [string, string][] {
  if (!raw) return [];
  return raw.split('&').filter((p) => p !== '').map((p) => {
    const i = p.indexOf('=');
    return i < 0 ? [decode(p), ''] : [decode(p.slice(0, i)), decode(p.slice(i + 1))];
  });
}

/**
 * The bucket and key a request names: virtual-host style when the Host is `<bucket>.<domain>`
 * (the path is then the key), else path style (`/bucket/key`).
 */
export function addressed(path: string, host: string | undefined, domain: string | undefined): { bucket: string; key: string } {
  const name = (host ?? '').replace(/:\d+$/, '').toLowerCase();
  if (domain && name.endsWith(`.${domain}`)) {
    const bucket = name.slice(0, -domain.length - 1);
    return { bucket, key: path.slice(1) };
  }
  const slash = path.indexOf('/', 1);
  return slash < 0 ? { bucket: path.slice(1), key: '' } : { bucket: path.slice(1, slash), key: path.slice(slash + 1) };
}

type Handler = (ctx: Ctx) => Promise<void>;

function notImplemented(what: string): Handler {
  return async () => {
    throw new S3Error('NotImplemented', `${what} is not implemented by the dfs S3 gateway (docs/S3.md lists what is)`);
  };
}

/** The handler for a request, from its method, whether it names a bucket and a key, and its query. */
function route(method: string, bucket: string, key: string, q: Map<string, string>): Handler {
  const unsupported = [...q.keys()].find((k) => UNSUPPORTED.has(k));
  if (unsupported) return notImplemented(`?${unsupported}`);
  if (!bucket) return method === 'GET' ? listBuckets : notImplemented(`${method} /`);
  if (!key) {
    switch (method) {
      case 'GET':
        if (q.has('location')) return bucketLocation;
        if (q.has('uploads')) return listUploads;
        if (q.has('versioning')) return async (ctx) => sendXml(ctx.res, 200, 'VersioningConfiguration', {});
        return (ctx) => listObjects(ctx, q.get('list-type') === '2' ? 2 : 1);
      case 'HEAD': return headBucket;
      case 'PUT': return q.size === 0 ? createBucket : notImplemented(`PUT /bucket?${[...q.keys()].join('&')}`);
      case 'DELETE': return q.size === 0 ? deleteBucket : notImplemented(`DELETE /bucket?${[...q.keys()].join('&')}`);
      case 'POST': return q.has('delete') ? deleteObjects : notImplemented('POST /bucket (browser uploads)');
      default: return notImplemented(method);
    }
  }
  switch (method) {
    case 'GET': return q.has('uploadId') ? listParts : (ctx) => getObject(ctx, false);
    case 'HEAD': return (ctx) => getObject(ctx, true);
    case 'PUT': return q.has('uploadId') ? uploadPart : putObject;
    case 'DELETE': return q.has('uploadId') ? abortUpload : deleteObject;
    case 'POST':
      if (q.has('uploads')) return createUpload;
      if (q.has('uploadId')) return completeUpload;
      return notImplemented('POST on an object');
    default: return notImplemented(method);
  }
}

export interface S3Server { server: Server; close(): Promise<void> }

/** The access keys the gateway knows (a KeyFile, or a fixed list in tests). */
export interface KeyLookup { get(accessKeyId: string): S3Key | undefined }

/** `tls`: serve HTTPS with this certificate (`dfs s3 --tls-cert/--tls-key`); S3 clients need no certificate of their own. */
export function createS3Server(gw: Gateway, keys: KeyLookup, scopes: KeyScopes, opts: { tls?: LoadedTls; now?: () => number } = {}): S3Server {
  const now = opts.now ?? Date.now;
  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const requestId = randomId(8).toUpperCase();
    res.setHeader('x-amz-request-id', requestId);
    res.setHeader('server', 'dfs');
    const url = req.url ?? '/';
    const qi = url.indexOf('?');
    const rawPath = qi < 0 ? url : url.slice(0, qi);
    try {
      if (!rawPath.startsWith('/')) throw new S3Error('InvalidURI', 'Couldn\'t parse the specified URI.');
      const path = decode(rawPath);
      const pairs = parseQuery(qi < 0 ? '' : url.slice(qi + 1));
      const signed: SignedRequest = { method: req.method ?? 'GET', path, query: pairs, headers: req.headers };
      const auth = authenticate(signed, (id) => keys.get(id), now());
      const { bucket, key } = addressed(path, header(req, 'host'), gw.config.domain);
      const query = new Map(pairs.filter(([k]) => !k.startsWith('X-Amz-')));
      const handler = route(signed.method, bucket, key, query);
      const copy = header(req, 'x-amz-copy-source');
      // Its calls to the masters and chunkservers carry the S3 request id: their logs name it as reqId.
      await runWithRequestId(requestId, async () => {
        const scope = await scopes.of(keys.get(auth.accessKeyId)?.token);
        authorize(scope, { method: signed.method, bucket, key, query, ...(copy !== undefined && key ? { copySource: parseCopySource(copy) } : {}) });
        await handler({ gw, req, res, auth, bucket, key, query, scope });
      });
    } catch (err) {
      answerError(gw, req, res, err, rawPath, requestId);
    }
  };
  const httpOpts = { maxHeaderSize: MAX_HEADER_BYTES, headersTimeout: HEADERS_TIMEOUT_MS, requestTimeout: 0 };
  const onRequest = (req: IncomingMessage, res: ServerResponse) => void handle(req, res);
  const server: Server = opts.tls
    ? createTlsServer({ ...httpOpts, cert: opts.tls.cert, key: opts.tls.key, minVersion: 'TLSv1.2' }, onRequest)
    : createServer(httpOpts, onRequest);
  server.on('clientError', (err: Error & { code?: string }, socket: Socket) => {
    if (!socket.writable) return socket.destroy();
    const e = err.code === 'HPE_HEADER_OVERFLOW'
      ? new S3Error('RequestHeaderSectionTooLarge', `Your request header section exceeds the maximum allowed size (${MAX_HEADER_BYTES} bytes).`)
      : new S3Error('InvalidRequest', 'the request could not be parsed as HTTP');
    const body = renderError(e, '', '0');
    socket.end(`HTTP/1.1 ${e.status} Bad Request\r\nContent-Type: application/xml\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
  });
  return {
    server,
    close: () => new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    }),
  };
}

function answerError(gw: Gateway, req: IncomingMessage, res: ServerResponse, err: unknown, resource: string, requestId: string): void {
  const e = err instanceof S3Error ? err : fromDfsError(err);
  if (e.code === 'InternalError') gw.log.error({ err, method: req.method, resource, requestId }, 's3 request failed');
  if (res.headersSent) {
    // Part of the object has gone out: all a client can be told is that the body is short.
    res.destroy();
    return;
  }
  // A body not read to its end cannot be skipped reliably: the connection closes after the answer.
  if (!req.complete) res.setHeader('connection', 'close');
  res.removeHeader('content-range');
  if (e.code === 'InvalidRange' && err instanceof S3Error) res.setHeader('content-range', `bytes */${e.extra.ActualObjectSize ?? '*'}`);
  if (req.method === 'HEAD') {
    res.writeHead(e.status, { 'content-length': 0, 'x-amz-error-code': e.code });
    res.end();
    return;
  }
  const body = Buffer.from(renderError(e, resource, requestId));
  res.writeHead(e.status, { 'content-type': 'application/xml', 'content-length': body.length });
  res.end(body);
  if (!req.complete) req.resume();
}
