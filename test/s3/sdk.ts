// The AWS SDK for JS v3 as the tests use it: a client for the gateway with the SDK's defaults
// (but one attempt), and a record of every request exactly as it went out, after signing.
import type { Agent } from 'node:http';
import { S3Client } from '@aws-sdk/client-s3';
import { ACCESS_KEY, SECRET_KEY, type Gateway } from './gateway.js';

export type Sent = { method: string; path: string; query: Record<string, unknown>; headers: Record<string, string> };

/** A client with the SDK's defaults but the endpoint, and a record of every request as it went out (after signing). */
export function sdkClient(gw: Gateway, opts: { forcePathStyle?: boolean; endpoint?: string; httpAgent?: Agent } = {}): { s3: S3Client; sent: Sent[] } {
  const s3 = new S3Client({
    endpoint: opts.endpoint ?? gw.endpoint, forcePathStyle: opts.forcePathStyle ?? true, region: 'us-east-1',
    credentials: { accessKeyId: ACCESS_KEY, secretAccessKey: SECRET_KEY }, maxAttempts: 1,
    ...(opts.httpAgent ? { requestHandler: { httpAgent: opts.httpAgent } } : {}),
  });
  const sent: Sent[] = [];
  s3.middlewareStack.add((next) => async (args) => {
    const req = args.request as Sent;
    sent.push({ method: req.method, path: req.path, query: { ...req.query }, headers: { ...req.headers } });
    return next(args);
  }, { step: 'deserialize', name: 'recordSent' });
  return { s3, sent };
}

