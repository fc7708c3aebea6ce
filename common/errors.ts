// Every error a user or a peer can see has a stable code here, an HTTP status, and a message
// that says what went wrong (and, where it helps, what to do next).

export const ErrorCodes = {
  INVALID_ARGUMENT: 400,
  INVALID_PATH: 400,
  /** A server's config file (--config) has an unknown key or a bad value: nothing is started. */
  INVALID_CONFIG: 400,
  BODY_TOO_LARGE: 413,
  UNAUTHORIZED: 401,
  /** A valid client token whose scope (read-only, a prefix, not admin) does not cover the call. */
  FORBIDDEN: 403,
  /** A cluster member's call without a valid signature: no header, bad form, another secret, a changed request. */
  PEER_AUTH_INVALID: 401,
  /** A member's signature outside the ±60 s window of the receiver's clock. */
  PEER_AUTH_EXPIRED: 401,
  /** A member's signed call (or Raft stream opening) seen before: a replay. */
  PEER_AUTH_REPLAYED: 401,
  /** With mutual TLS on, a peer route called without a client certificate of the cluster CA. */
  PEER_CERT_REQUIRED: 401,
  /** A chunk request without a chunk access token this cluster signed: none, malformed, or a forged or altered signature. */
  CHUNK_TOKEN_INVALID: 401,
  /** A chunk access token past its expiry: get a fresh one from the master (stat, allocate, a new copy order) and retry. */
  CHUNK_TOKEN_EXPIRED: 401,
  /** A chunk access token for another chunk handle. */
  CHUNK_TOKEN_WRONG_CHUNK: 403,
  /** A chunk access token for another version of the chunk. */
  CHUNK_TOKEN_WRONG_VERSION: 403,
  /** A chunk access token for another operation (a read token to write, a write token to read). */
  CHUNK_TOKEN_WRONG_OPERATION: 403,
  /** A write or copy-source token that does not name the chunkserver it was presented to. */
  CHUNK_TOKEN_WRONG_SERVER: 403,
  /** A pipelined write whose `next` names a hop the write token does not name after this server: nothing is dialled. */
  PIPELINE_HOP_NOT_ALLOWED: 403,
  /** A complete whose chunk lengths or checksums no chunkserver reported storing (its write receipts): nothing is changed. */
  COMPLETE_MISMATCH: 409,
  /** A JSON body nested too deep or with too many keys in one object. */
  JSON_TOO_COMPLEX: 400,
  /** A request body that did not arrive in time. */
  BODY_TIMEOUT: 408,
  /** A request whose headers (or, on a chunkserver, whose whole body) did not arrive in time: Node's HTTP layer cut it. */
  REQUEST_TIMEOUT: 408,
  /** Request headers over Node's 16 KiB limit. */
  HEADERS_TOO_LARGE: 431,
  /** A Host header that names no name of this server (DNS rebinding). */
  HOST_NOT_ALLOWED: 403,
  /** A write sent by a web page of another origin. */
  CROSS_ORIGIN: 403,
  /** A known path called with a method it does not take. */
  METHOD_NOT_ALLOWED: 405,
  NOT_FOUND: 404,
  EXISTS: 409,
  NOT_A_DIRECTORY: 409,
  IS_A_DIRECTORY: 409,
  DIRECTORY_NOT_EMPTY: 409,
  FILE_NOT_READY: 409,
  FILE_BUSY: 409,
  /** A record for a record append is larger than a quarter of the file's chunk size (or empty): nothing was appended. */
  RECORD_TOO_LARGE: 413,
  /** A directory's name or space quota would be exceeded (dfs quota show): nothing was changed. */
  QUOTA_EXCEEDED: 403,
  /**
   * A create carrying its bytes inline that the master will not keep inline (inline files off, the
   * file larger than the master's limit, or the namespace's inline bytes at their cap): nothing was
   * changed; the client writes the file as chunks instead (`reason`, `inlineMaxBytes`).
   */
  INLINE_REFUSED: 409,
  /** A create whose inline bytes do not match their length or xxHash64 checksum: nothing was changed. */
  INLINE_CHECKSUM_MISMATCH: 400,
  WRITE_NOT_FOUND: 404,
  CHUNK_NOT_FOUND: 404,
  CHUNK_EXISTS: 409,
  STALE_VERSION: 409,
  CHECKSUM_MISMATCH: 502,
  PIPELINE_FAILED: 502,
  NO_CHUNKSERVERS: 503,
  NO_REPLICAS: 503,
  TOO_FEW_REPLICAS: 503,
  NOT_LEADER: 421,
  SESSION_EXPIRED: 409,
  /** A master's --id, --peers or --listen disagree with the group recorded in its data folder. */
  MEMBERSHIP_MISMATCH: 409,
  /** A data folder made with another cluster's secret. */
  WRONG_CLUSTER: 409,
  /** A change of the master group refused: another is pending, it would leave no quorum, the master is already there, ... */
  MEMBERSHIP_CHANGE_REFUSED: 409,
  SAFE_MODE: 503,
  UNAVAILABLE: 503,
  TIMEOUT: 504,
  /** Client-side only: the caller stopped the operation (Ctrl-C, SIGTERM, an aborted signal). */
  INTERRUPTED: 499,
  DISK_FULL: 507,
  IO_ERROR: 500,
  /** A server's reply that does not fit the wire contract (common/contract/): a server of another version, or not a dfs server. */
  BAD_REPLY: 502,
  INTERNAL: 500,
} as const;

export type ErrorCode = keyof typeof ErrorCodes;

export interface ErrorBody {
  error: { code: ErrorCode; message: string; [extra: string]: unknown };
}

export class DfsError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly details: Record<string, unknown>;
  /** The id the server served the failed call under (its x-dfs-request-id), to find it in the server's log. */
  requestId?: string;

  constructor(code: ErrorCode, message: string, details: Record<string, unknown> = {}) {
    super(message);
    this.name = 'DfsError';
    this.code = code;
    this.status = ErrorCodes[code];
    this.details = details;
  }

  toBody(): ErrorBody {
    return { error: { ...this.details, code: this.code, message: this.message } };
  }
}

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && Object.prototype.hasOwnProperty.call(ErrorCodes, value);
}

/** Turns an `{error:{code,message}}` body from a peer back into a DfsError. */
export function errorFromBody(body: unknown, fallbackStatus: number): DfsError {
  const err = (body as ErrorBody | undefined)?.error;
  if (err && isErrorCode(err.code) && typeof err.message === 'string') {
    const { code, message, ...details } = err;
    return new DfsError(code, message, details);
  }
  return new DfsError(fallbackStatus >= 500 ? 'UNAVAILABLE' : 'INTERNAL', `unexpected HTTP ${fallbackStatus} from peer`);
}

/** Classifies a Node/undici error into a DfsError; connection failures become UNAVAILABLE. */
export function toDfsError(err: unknown, what = 'request'): DfsError {
  if (err instanceof DfsError) return err;
  const e = err as { code?: string; name?: string; message?: string; cause?: { code?: string } };
  const code = e?.code ?? e?.cause?.code;
  if (e?.name === 'TimeoutError' || code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT' || code === 'ETIMEDOUT') {
    return new DfsError('TIMEOUT', `${what} timed out`);
  }
  if (code === 'ENOSPC') return new DfsError('DISK_FULL', `${what}: no space left on device`);
  if (code && /^(ECONNREFUSED|ECONNRESET|EPIPE|EHOSTUNREACH|ENOTFOUND|EAI_AGAIN|UND_ERR_SOCKET|UND_ERR_CLOSED|UND_ERR_CONNECT_TIMEOUT|UND_ERR_ABORTED)$/.test(code)) {
    return new DfsError('UNAVAILABLE', `${what} failed: ${code}`);
  }
  if (e?.name === 'AbortError') return new DfsError('UNAVAILABLE', `${what} was aborted`);
  return new DfsError('INTERNAL', `${what} failed: ${e?.message ?? String(err)}`);
}
