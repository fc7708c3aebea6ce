// AWS Signature Version 4 for S3, as the gateway checks it: the Authorization header form and the
// presigned-URL (query) form. Pure: a request's parts and a clock reading in, the caller's
// identity and how its payload is to be checked out, or an S3Error. The streaming payload forms
// (aws-chunked) are checked as the body arrives, in chunked.ts, from what this returns.
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { S3Error } from './errors.js';

export interface Credential { accessKeyId: string; secretAccessKey: string }

/** A request as SigV4 sees it. */
export interface SignedRequest {
  method: string;
  /** The path, percent-decoded (`/bucket/a b`). */
  path: string;
  /** The query's pairs, percent-decoded, in the order sent. */
  query: [string, string][];
  /** Header values by lower-case name (node's IncomingMessage.headers). */
  headers: Record<string, string | string[] | undefined>;
}

export type PayloadCheck =
  /** The body's SHA-256 must be this (hex). */
  | { kind: 'sha256'; hex: string }
  | { kind: 'unsigned' }
  /** aws-chunked with a signature per chunk, chained from the request's; `trailer`: signed trailing headers follow. */
  | { kind: 'streaming-signed'; trailer: boolean }
  /** aws-chunked without signatures, with trailing headers (a checksum). */
  | { kind: 'streaming-unsigned-trailer' };

export interface Authenticated {
  accessKeyId: string;
  payload: PayloadCheck;
  /** What chunk signatures are chained from and made with. */
  seedSignature: string;
  signingKey: Buffer;
  amzDate: string;
  scope: string;
}

/** How far a signed request's time may be from ours (S3's own limit). */
export const MAX_CLOCK_SKEW_MS = 15 * 60_000;
/** The longest a presigned URL may live: 7 days, as S3. */
export const MAX_PRESIGN_EXPIRES_S = 7 * 24 * 3600;

export const EMPTY_SHA256 = createHash('sha256').update('').digest('hex');

export function sha256Hex(data: string | Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

export function hmac(key: Buffer | string, data: string): Buffer {
  return createHmac('sha256', key).update(data, 'utf8').digest();
}

/** RFC 3986 encoding as SigV4 specifies: everything but A-Z a-z 0-9 - _ . ~ (and '/' when kept) as %XX of UTF-8. */
export function uriEncode(s: string, keepSlash: boolean): string {
  let out = '';
  for (const byte of Buffer.from(s, 'utf8')) {
    const c = String.fromCharCode(byte);
    if (/[A-Za-z0-9\-_.~]/.test(c) || (keepSlash && c === '/')) out += c;
    else out += '%' + byte.toString(16).toUpperCase().padStart(2, '0');
  }
  return out;
}

export function signingKey(secret: string, date: string, region: string, service: string): Buffer {
  return hmac(hmac(hmac(hmac(`AWS4${secret}`, date), region), service), 'aws4_request');
}

function headerValue(req: SignedRequest, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v.join(',') : v;
}

export function canonicalRequest(req: SignedRequest, signedHeaders: string[], payloadHash: string, excludeQuery?: string): string {
  const query = req.query
    .filter(([k]) => k !== excludeQuery)
    .map(([k, v]) => [uriEncode(k, false), uriEncode(v, false)] as const)
    .sort(([a, av], [b, bv]) => (a < b ? -1 : a > b ? 1 : av < bv ? -1 : av > bv ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`)
    .join('&');
  const headers = signedHeaders.map((h) => `${h}:${(headerValue(req, h) ?? '').trim().replace(/\s+/g, ' ')}\n`).join('');
  return [req.method, uriEncode(req.path, true), query, headers, signedHeaders.join(';'), payloadHash].join('\n');
}

export function stringToSign(amzDate: string, scope: string, canonical: string): string {
  return ['AWS4-HMAC-SHA256', amzDate, scope, sha256Hex(canonical)].join('\n');
}

function sameHex(a: string, b: string): boolean {
  return a.length === b.length && timingSafeEqual(Buffer.from(a), Buffer.from(b));
}

/** `20130524T000000Z` to milliseconds; undefined when malformed. */
export function parseAmzDate(s: string | undefined): number | undefined {
  const m = s ? /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(s) : null;
  if (!m) return undefined;
  const [, y, mo, d, h, mi, se] = m.map(Number) as number[];
  const ms = Date.UTC(y!, mo! - 1, d!, h!, mi!, se!);
  return Number.isNaN(ms) ? undefined : ms;
}

interface Parsed { accessKeyId: string; date: string; region: string; service: string; signedHeaders: string[]; signature: string; amzDate: string }

function parseCredential(raw: string, where: string): Omit<Parsed, 'signedHeaders' | 'signature' | 'amzDate'> {
  const parts = raw.split('/');
  if (parts.length !== 5 || parts[4] !== 'aws4_request' || !/^\d{8}$/.test(parts[1]!)) {
    throw new S3Error('AuthorizationHeaderMalformed', `${where}: the credential must be <key id>/<yyyymmdd>/<region>/s3/aws4_request`);
  }
  const [accessKeyId, date, region, service] = parts as [string, string, string, string];
  if (service !== 's3') throw new S3Error('AuthorizationHeaderMalformed', `${where}: the credential's service must be s3, not ${service}`);
  return { accessKeyId, date, region, service };
}

function parseHeaderAuth(req: SignedRequest, auth: string): Parsed {
  const m = /^AWS4-HMAC-SHA256\s+(.*)$/s.exec(auth);
  if (!m) throw new S3Error('AuthorizationHeaderMalformed', 'only AWS4-HMAC-SHA256 (Signature Version 4) is supported');
  const fields = new Map(m[1]!.split(',').map((f) => {
    const i = f.indexOf('=');
    return [f.slice(0, i).trim(), f.slice(i + 1).trim()] as const;
  }));
  const cred = fields.get('Credential');
  const signed = fields.get('SignedHeaders');
  const signature = fields.get('Signature');
  if (!cred || !signed || !signature) throw new S3Error('AuthorizationHeaderMalformed', 'the Authorization header needs Credential, SignedHeaders and Signature');
  const amzDate = headerValue(req, 'x-amz-date') ?? '';
  if (parseAmzDate(amzDate) === undefined) throw new S3Error('AccessDenied', 'x-amz-date is missing or not yyyymmddThhmmssZ');
  return { ...parseCredential(cred, 'Authorization'), signedHeaders: signed.split(';'), signature, amzDate };
}

function payloadCheck(hash: string): PayloadCheck {
  switch (hash) {
    case 'UNSIGNED-PAYLOAD': return { kind: 'unsigned' };
    case 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD': return { kind: 'streaming-signed', trailer: false };
    case 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER': return { kind: 'streaming-signed', trailer: true };
    case 'STREAMING-UNSIGNED-PAYLOAD-TRAILER': return { kind: 'streaming-unsigned-trailer' };
    default:
      if (/^[0-9a-f]{64}$/.test(hash)) return { kind: 'sha256', hex: hash };
      throw new S3Error('InvalidArgument', `x-amz-content-sha256 ${JSON.stringify(hash.slice(0, 80))} is neither a SHA-256 in hex nor a payload mode S3 knows`);
  }
}

/**
 * Checks a request's signature. `lookup` finds a secret by access key id. Header auth: the
 * signature, x-amz-date within 15 minutes of `nowMs`, and x-amz-content-sha256 present (S3
 * requires it). Query auth (presigned): the signature and the expiry.
 */
export function authenticate(req: SignedRequest, lookup: (accessKeyId: string) => Credential | undefined, nowMs: number): Authenticated {
  const auth = headerValue(req, 'authorization');
  const q = new Map(req.query);
  const presigned = q.has('X-Amz-Signature') || q.has('X-Amz-Algorithm');
  if (!auth && q.has('AWSAccessKeyId') && q.has('Signature')) {
    throw new S3Error('AccessDenied', 'Signature Version 2 presigned URLs are not supported: presign with Signature Version 4 (boto3: Config(signature_version="s3v4"))');
  }
  if (auth?.startsWith('AWS ')) throw new S3Error('AccessDenied', 'Signature Version 2 is not supported: sign with Signature Version 4');
  if (!auth && !presigned) throw new S3Error('AccessDenied', 'anonymous requests are not accepted: sign requests with Signature Version 4');
  if (auth && presigned) throw new S3Error('InvalidArgument', 'a request may carry a signature in the Authorization header or the query, not both');
  let p: Parsed;
  let payloadHash: string;
  if (auth) {
    p = parseHeaderAuth(req, auth);
    const sent = headerValue(req, 'x-amz-content-sha256');
    if (!sent) throw new S3Error('InvalidRequest', 'x-amz-content-sha256 is required with Signature Version 4');
    payloadHash = sent;
    const skewMs = Math.abs(parseAmzDate(p.amzDate)! - nowMs);
    if (skewMs > MAX_CLOCK_SKEW_MS) throw new S3Error('RequestTimeTooSkewed', `the request's time is ${Math.round(skewMs / 1000)} s from the gateway's; at most 15 minutes are allowed`);
  } else {
    if (q.get('X-Amz-Algorithm') !== 'AWS4-HMAC-SHA256') throw new S3Error('AuthorizationQueryParametersError', 'X-Amz-Algorithm must be AWS4-HMAC-SHA256');
    const cred = q.get('X-Amz-Credential');
    const amzDate = q.get('X-Amz-Date');
    const expires = Number(q.get('X-Amz-Expires'));
    const signed = q.get('X-Amz-SignedHeaders');
    const signature = q.get('X-Amz-Signature');
    const dateMs = parseAmzDate(amzDate);
    if (!cred || dateMs === undefined || !signed || !signature || !Number.isInteger(expires)) {
      throw new S3Error('AccessDenied', 'a presigned URL needs X-Amz-Credential, X-Amz-Date, X-Amz-Expires, X-Amz-SignedHeaders and X-Amz-Signature');
    }
    if (expires < 1 || expires > MAX_PRESIGN_EXPIRES_S) throw new S3Error('AccessDenied', `X-Amz-Expires must be 1 to ${MAX_PRESIGN_EXPIRES_S} seconds`);
    if (nowMs > dateMs + expires * 1000) throw new S3Error('AccessDenied', 'Request has expired');
    if (dateMs > nowMs + MAX_CLOCK_SKEW_MS) throw new S3Error('AccessDenied', 'the presigned URL is dated in the future');
    p = { ...parseCredential(cred, 'X-Amz-Credential'), signedHeaders: signed.split(';'), signature, amzDate: amzDate! };
    payloadHash = q.get('X-Amz-Content-Sha256') ?? 'UNSIGNED-PAYLOAD';
  }
  if (p.amzDate.slice(0, 8) !== p.date) throw new S3Error('SignatureDoesNotMatch', 'the credential scope\'s date is not the request\'s date');
  if (!p.signedHeaders.includes('host')) throw new S3Error('AccessDenied', 'the host header must be signed');
  const payload = payloadCheck(payloadHash);
  if (presigned && payload.kind.startsWith('streaming')) throw new S3Error('InvalidRequest', 'a presigned URL cannot carry a streaming payload');
  const cred = lookup(p.accessKeyId);
  if (!cred) throw new S3Error('InvalidAccessKeyId', 'The AWS Access Key Id you provided does not exist in our records.');
  const scope = `${p.date}/${p.region}/${p.service}/aws4_request`;
  const canonical = canonicalRequest(req, p.signedHeaders, payloadHash, presigned ? 'X-Amz-Signature' : undefined);
  const toSign = stringToSign(p.amzDate, scope, canonical);
  const key = signingKey(cred.secretAccessKey, p.date, p.region, p.service);
  const expected = hmac(key, toSign).toString('hex');
  if (!sameHex(expected, p.signature)) {
    throw new S3Error('SignatureDoesNotMatch', 'The request signature we calculated does not match the signature you provided. Check your key and signing method.', {
      AWSAccessKeyId: p.accessKeyId, StringToSign: toSign, CanonicalRequest: canonical,
    });
  }
  return { accessKeyId: p.accessKeyId, payload, seedSignature: p.signature, signingKey: key, amzDate: p.amzDate, scope };
}

/** The signature of one aws-chunked chunk (its bytes' SHA-256 in hex), chained from the previous one (AWS "Signature calculations ... in multiple chunks"). */
export function chunkSignature(key: Buffer, amzDate: string, scope: string, previous: string, dataSha256Hex: string): string {
  return hmac(key, ['AWS4-HMAC-SHA256-PAYLOAD', amzDate, scope, previous, EMPTY_SHA256, dataSha256Hex].join('\n')).toString('hex');
}

/** The signature of an aws-chunked body's trailing headers (`name:value\n` each), chained from the last chunk's. */
export function trailerSignature(key: Buffer, amzDate: string, scope: string, previous: string, trailerText: string): string {
  return hmac(key, ['AWS4-HMAC-SHA256-TRAILER', amzDate, scope, previous, sha256Hex(trailerText)].join('\n')).toString('hex');
}

export function sameSignature(a: string, b: string): boolean {
  return sameHex(a, b);
}
