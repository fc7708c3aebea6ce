// Raw HTTP/1.1 over a TCP socket, for the route fuzz (test/helpers/fuzz/route-fuzz.ts): any
// method, any path as written (`..`, `%2e`, unicode), any header, a Content-Length that lies
// about the body, an Upgrade. An HTTP client library would normalise or refuse most of these,
// which is exactly what a hostile caller does not do.
import { connect } from 'node:net';

export interface RawRequest {
  method: string;
  /** The request target as it goes on the wire (not normalised, not encoded). */
  path: string;
  headers: Record<string, string>;
  body?: Buffer;
  /** A Content-Length to declare other than the body's (a lie: more than is sent). */
  declaredLength?: number;
}

export interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
  /** The server closed the connection before the body it announced was complete. */
  cut: boolean;
}

export type RawResult =
  | { kind: 'answer'; res: RawResponse }
  /** The connection closed (or was reset) before a status line arrived. */
  | { kind: 'closed'; error: string }
  | { kind: 'timeout' };

/** Largest reply kept: a chunk read is at most a test chunk; a larger reply is cut here (and counted whole). */
const MAX_KEPT_REPLY_BYTES = 4 * 1024 * 1024;

function head(addr: string, r: RawRequest): string {
  const lines = [`${r.method} ${r.path} HTTP/1.1`];
  const names = new Set(Object.keys(r.headers).map((h) => h.toLowerCase()));
  if (!names.has('host')) lines.push(`Host: ${addr}`);
  if (!names.has('connection')) lines.push('Connection: close');
  for (const [k, v] of Object.entries(r.headers)) lines.push(`${k}: ${v}`);
  const length = r.declaredLength ?? r.body?.length;
  if (length !== undefined && !names.has('content-length')) lines.push(`Content-Length: ${length}`);
  return `${lines.join('\r\n')}\r\n\r\n`;
}

/** The reply in `buf` if it is complete (or `closed`: whatever arrived); undefined while more must come. */
function parse(buf: Buffer, method: string, closed: boolean): RawResponse | undefined {
  const end = buf.indexOf('\r\n\r\n');
  if (end < 0) return undefined;
  const [statusLine, ...headerLines] = buf.subarray(0, end).toString('latin1').split('\r\n');
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine ?? '')?.[1] ?? 0);
  // An interim answer (100 Continue) comes before the real one.
  if (status >= 100 && status < 200 && status !== 101) return parse(buf.subarray(end + 4), method, closed);
  const headers: Record<string, string> = {};
  for (const line of headerLines) {
    const i = line.indexOf(':');
    if (i > 0) headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
  }
  const rest = buf.subarray(end + 4);
  if (method === 'HEAD' || status === 101 || status === 204 || status === 304) return { status, headers, body: Buffer.alloc(0), cut: false };
  if (headers['content-length'] !== undefined) {
    const want = Number(headers['content-length']);
    if (rest.length >= want) return { status, headers, body: rest.subarray(0, want), cut: false };
    return closed ? { status, headers, body: rest, cut: true } : undefined;
  }
  if (/chunked/i.test(headers['transfer-encoding'] ?? '')) {
    const body = unchunk(rest);
    if (body) return { status, headers, body, cut: false };
    return closed ? { status, headers, body: rest, cut: true } : undefined;
  }
  return closed ? { status, headers, body: rest, cut: false } : undefined;
}

/** A chunked body decoded, or undefined while its last chunk has not arrived. */
function unchunk(raw: Buffer): Buffer | undefined {
  const parts: Buffer[] = [];
  let at = 0;
  for (;;) {
    const eol = raw.indexOf('\r\n', at);
    if (eol < 0) return undefined;
    const size = parseInt(raw.subarray(at, eol).toString('latin1'), 16);
    if (!Number.isFinite(size)) return undefined;
    if (size === 0) return Buffer.concat(parts);
    if (raw.length < eol + 2 + size + 2) return undefined;
    parts.push(raw.subarray(eol + 2, eol + 2 + size));
    at = eol + 2 + size + 2;
  }
}

/** Sends `r` to `addr` (host:port) on a fresh connection and reads one reply, within `timeoutMs`. */
export function sendRaw(addr: string, r: RawRequest, timeoutMs: number): Promise<RawResult> {
  const i = addr.lastIndexOf(':');
  const socket = connect(Number(addr.slice(i + 1)), addr.slice(0, i));
  return new Promise((resolve) => {
    const got: Buffer[] = [];
    let size = 0;
    let done = false;
    const finish = (result: RawResult): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(result);
    };
    const timer = setTimeout(() => finish({ kind: 'timeout' }), timeoutMs);
    const check = (closed: boolean, error?: string): void => {
      const buf = Buffer.concat(got);
      const res = parse(buf, r.method, closed);
      if (res) return finish({ kind: 'answer', res });
      if (closed) finish({ kind: 'closed', error: error ?? (buf.length ? `unparsable reply: ${buf.subarray(0, 80).toString('latin1')}` : 'closed without a reply') });
    };
    socket.on('connect', () => {
      socket.write(head(addr, r));
      // A write into a connection the server already refused and closed is its business, not ours.
      if (r.body?.length) socket.write(r.body, () => undefined);
    });
    socket.on('data', (piece: Buffer) => {
      if (size < MAX_KEPT_REPLY_BYTES) got.push(piece);
      size += piece.length;
      check(false);
    });
    socket.on('error', (err: NodeJS.ErrnoException) => check(true, err.code ?? err.message));
    socket.on('close', () => check(true));
  });
}
