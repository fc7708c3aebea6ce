// Every error the gateway answers, with S3's code and HTTP status (as AWS documents them in
// "Error responses"), in one table. A client library maps these codes to its own exceptions, so
// the codes are S3's own; the one dfs-specific code (KeyConflict) is for what dfs paths cannot hold.
import { DfsError } from '../common/errors.js';

export const S3ErrorCodes = {
  AccessDenied: 403,
  AuthorizationHeaderMalformed: 400,
  AuthorizationQueryParametersError: 400,
  BadDigest: 400,
  BucketAlreadyOwnedByYou: 409,
  BucketNotEmpty: 409,
  EntityTooLarge: 400,
  EntityTooSmall: 400,
  IncompleteBody: 400,
  InternalError: 500,
  InvalidAccessKeyId: 403,
  InvalidArgument: 400,
  InvalidBucketName: 400,
  InvalidDigest: 400,
  InvalidPart: 400,
  InvalidPartOrder: 400,
  InvalidRange: 416,
  InvalidRequest: 400,
  InvalidURI: 400,
  /** A key that names a "directory" of another key, or whose "directory" is another key: dfs paths hold one or the other. */
  KeyConflict: 409,
  KeyTooLongError: 400,
  MalformedXML: 400,
  MaxMessageLengthExceeded: 400,
  MetadataTooLarge: 400,
  MethodNotAllowed: 405,
  MissingContentLength: 411,
  MissingSecurityHeader: 400,
  NoSuchBucket: 404,
  NoSuchKey: 404,
  NoSuchUpload: 404,
  NotImplemented: 501,
  PreconditionFailed: 412,
  RequestHeaderSectionTooLarge: 400,
  RequestTimeTooSkewed: 403,
  ServiceUnavailable: 503,
  SignatureDoesNotMatch: 403,
  XAmzContentSHA256Mismatch: 400,
} as const;

export type S3ErrorCode = keyof typeof S3ErrorCodes;

export class S3Error extends Error {
  readonly code: S3ErrorCode;
  readonly status: number;
  /** More elements of the error document (e.g. the key, the expected signature's string to sign). */
  readonly extra: Record<string, string>;

  constructor(code: S3ErrorCode, message: string, extra: Record<string, string> = {}) {
    super(message);
    this.name = 'S3Error';
    this.code = code;
    this.status = S3ErrorCodes[code];
    this.extra = extra;
  }
}

/** What a failed dfs call means to an S3 client; `notFound` says which thing was missing. */
export function fromDfsError(err: unknown, notFound: 'NoSuchKey' | 'NoSuchBucket' | 'NoSuchUpload' = 'NoSuchKey'): S3Error {
  if (err instanceof S3Error) return err;
  if (!(err instanceof DfsError)) return new S3Error('InternalError', 'the gateway failed; see its log');
  switch (err.code) {
    case 'NOT_FOUND': return new S3Error(notFound, err.message);
    case 'NOT_A_DIRECTORY':
    case 'IS_A_DIRECTORY': return new S3Error('KeyConflict', `${err.message}: in dfs a key cannot also be the "directory" of other keys`);
    case 'INVALID_PATH': return new S3Error('InvalidArgument', err.message);
    case 'FILE_BUSY': return new S3Error('ServiceUnavailable', `${err.message}; retry`);
    case 'UNAVAILABLE':
    case 'NO_CHUNKSERVERS':
    case 'NO_REPLICAS':
    case 'SAFE_MODE':
    case 'TIMEOUT':
    case 'NOT_LEADER': return new S3Error('ServiceUnavailable', `dfs is unavailable: ${err.message}`);
    default: return new S3Error('InternalError', `dfs: ${err.message}`);
  }
}
