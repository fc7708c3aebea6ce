// What every handler gets: the request, its checked signature, the bucket and key it names, and
// the gateway's dfs client; and the few reply helpers they share.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { DfsClient } from '../cli/client.js';
import type { Logger } from '../common/log.js';
import { S3Error } from './errors.js';
import type { KeyScope } from './scope.js';
import type { Authenticated } from './sigv4.js';
import { renderXml, type XmlObject } from './xml.js';

export interface GatewayConfig {
  /** Reported by GetBucketLocation; requests signed for any region are accepted. */
  region: string;
  /** Smallest part but the last of a multipart upload (S3: 5 MiB). */
  minPartBytes: number;
  /** An upload with no activity for this long is deleted with its parts. */
  multipartExpiryMs: number;
  /** Virtual-host style: a request to `<bucket>.<domain>` names that bucket. */
  domain?: string;
}

export interface Gateway { client: DfsClient; log: Logger; config: GatewayConfig }

export interface Ctx {
  gw: Gateway;
  req: IncomingMessage;
  res: ServerResponse;
  auth: Authenticated;
  bucket: string;
  key: string;
  query: Map<string, string>;
  /** What the request's access key may do (s3/scope.ts); undefined: all the gateway may. */
  scope?: KeyScope;
}

/** S3's largest single PUT and largest part: 5 GiB. */
export const MAX_OBJECT_PUT_BYTES = 5 * 1024 ** 3;

export function sendXml(res: ServerResponse, status: number, root: string, children: XmlObject): void {
  const body = Buffer.from(renderXml(root, children));
  res.writeHead(status, { 'content-type': 'application/xml', 'content-length': body.length });
  res.end(body);
}

export function sendEmpty(res: ServerResponse, status: number, headers: Record<string, string | number> = {}): void {
  res.writeHead(status, { ...headers, 'content-length': 0 });
  res.end();
}

export function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v.join(',') : v;
}

export const isoDate = (ms: number): string => new Date(ms).toISOString().replace(/\.\d{3}Z$/, '.000Z');
export const httpDate = (ms: number): string => new Date(ms).toUTCString();
export const quoted = (etag: string): string => `"${etag}"`;

/** max-keys, max-uploads, max-parts: 0 to 1000, 1000 when absent. */
export function maxItems(query: Map<string, string>, name: string): number {
  const raw = query.get(name);
  if (raw === undefined) return 1000;
  if (!/^\d{1,9}$/.test(raw)) throw new S3Error('InvalidArgument', `${name} must be a whole number ≥ 0`);
  return Math.min(Number(raw), 1000);
}
