// Access keys bound to dfs tokens: an entry of the credentials file may name a dfs client token
// (`dfs token create --s3-credentials FILE` writes one), and a request signed with that key may
// then do only what the token may: nothing that changes anything with a read-only token, nothing
// outside its prefix with a prefix token, nothing at all once it is revoked or expired. The
// gateway learns a token's scope from the masters (GET /v1/auth/whoami with that token), so the
// masters stay the only judge of a token; it keeps the answer for SCOPE_TTL_MS, so a revocation
// reaches S3 clients within that time. A key with no token acts as the gateway's own token.
import { call } from '../common/contract/call.js';
import { AUTH } from '../common/contract/index.js';
import { AUTHORIZATION_HEADER } from '../common/credentials.js';
import { DfsError } from '../common/errors.js';
import { LeaderClient } from '../common/leader.js';
import { S3Error } from './errors.js';
import { objectPath } from './keys.js';

/** How long a token's scope is trusted before the masters are asked again: the longest a revoked token's key keeps working. */
export const SCOPE_TTL_MS = 5_000;
/** Tokens whose scope is remembered at once (one per key in the credentials file). */
const MAX_CACHED_SCOPES = 10_000;

/** What a key's token may do; undefined: everything the gateway's own token may. */
export interface KeyScope { name: string; readOnly: boolean; prefix: string }

function denied(message: string): S3Error {
  return new S3Error('AccessDenied', message);
}

/** `path` is the scope's prefix or below it. */
export function within(scope: KeyScope | undefined, path: string): boolean {
  if (!scope || scope.prefix === '/') return true;
  const p = path.replace(/\/+$/, '') || '/';
  return p === scope.prefix || p.startsWith(`${scope.prefix}/`);
}

/** `path` is a directory on the way to the scope's prefix (listing it shows only that way). */
export function leadsTo(scope: KeyScope | undefined, path: string): boolean {
  if (!scope || scope.prefix === '/') return true;
  const p = path.replace(/\/+$/, '');
  return p === '' || scope.prefix.startsWith(`${p}/`);
}

/** A bucket ListBuckets shows to this scope: one inside it or on the way to it. */
export function visibleBucket(scope: KeyScope | undefined, bucket: string): boolean {
  return within(scope, `/${bucket}`) || leadsTo(scope, `/${bucket}`);
}

/** The key's scope allows writing `path`, for the handlers that check keys one by one (DeleteObjects). */
export function mayWrite(scope: KeyScope | undefined, path: string): boolean {
  return !scope || (!scope.readOnly && within(scope, path));
}

interface Asked { method: string; bucket: string; key: string; query: Map<string, string>; copySource?: { bucket: string; key: string } }

/**
 * Refuses (AccessDenied) a request its key's scope does not allow. Objects (and their multipart
 * uploads) must lie within the prefix; a bucket-level read (list, head, location, uploads) is
 * allowed on a bucket within the prefix, or on one leading to it when the listing's prefix keeps
 * it inside; creating and deleting buckets need the bucket within the prefix; DeleteObjects is
 * checked again key by key.
 */
export function authorize(scope: KeyScope | undefined, a: Asked): void {
  if (!scope) return;
  const write = a.method !== 'GET' && a.method !== 'HEAD';
  if (write && scope.readOnly) throw denied(`the access key's dfs token (${scope.name}) is read-only`);
  const outside = (what: string) => denied(`${what} is outside the access key's dfs token prefix ${scope.prefix}`);
  if (a.copySource && !within(scope, objectPath(a.copySource.bucket, a.copySource.key))) throw outside(`the copy source ${a.copySource.bucket}/${a.copySource.key}`);
  if (!a.bucket) return; // ListBuckets: filtered by visibleBucket
  if (a.key) {
    if (!within(scope, objectPath(a.bucket, a.key))) throw outside(`${a.bucket}/${a.key}`);
    return;
  }
  const bucketDir = `/${a.bucket}`;
  if (within(scope, bucketDir)) return;
  const isDelete = a.method === 'POST' && a.query.has('delete');
  const listPrefix = a.query.get('prefix') ?? '';
  if (leadsTo(scope, bucketDir) && (isDelete || a.method === 'HEAD' || a.query.has('location') || (a.method === 'GET' && within(scope, `${bucketDir}/${listPrefix}`)))) return;
  throw outside(`bucket ${a.bucket}${listPrefix ? ` (prefix ${listPrefix})` : ''}`);
}

/** The scopes of the tokens keys are bound to, asked of the masters and kept for SCOPE_TTL_MS. */
export class KeyScopes {
  private readonly cache = new Map<string, { scope: Promise<KeyScope | undefined>; untilMs: number }>();

  constructor(private readonly masters: string[], private readonly now: () => number = Date.now) {}

  /** The scope of `token`; undefined (everything) for an admin token. Throws AccessDenied when the masters refuse the token. */
  async of(token: string | undefined): Promise<KeyScope | undefined> {
    if (token === undefined) return undefined;
    const nowMs = this.now();
    const hit = this.cache.get(token);
    if (hit && hit.untilMs > nowMs) return hit.scope;
    if (this.cache.size >= MAX_CACHED_SCOPES) this.cache.clear();
    const scope = this.ask(token);
    this.cache.set(token, { scope, untilMs: nowMs + SCOPE_TTL_MS });
    // A failure is not remembered: the next request asks again.
    scope.catch(() => this.cache.delete(token));
    return scope;
  }

  private async ask(token: string): Promise<KeyScope | undefined> {
    const client = new LeaderClient(this.masters, { headers: { [AUTHORIZATION_HEADER]: `Bearer ${token}` } });
    try {
      const p = await call(client, AUTH.whoami, {});
      return p.admin ? undefined : { name: p.name, readOnly: p.readOnly, prefix: p.prefix };
    } catch (err) {
      if (err instanceof DfsError && (err.code === 'UNAUTHORIZED' || err.code === 'FORBIDDEN')) {
        throw denied(`the access key's dfs token is refused by the masters: ${err.message}`);
      }
      throw err;
    }
  }
}
