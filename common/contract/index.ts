// The wire contract: every route of every server, in one table (README.md in this folder says
// how to add one). Grep a path to find its entry; grep the entry (FS.mkdir) to find its server
// and its callers.
import { AUTH } from './auth.js';
import { CS, CHUNKS } from './chunkserver.js';
import { CLUSTER } from './cluster.js';
import { FS } from './namespace.js';
import { routeKey, type Route } from './route.js';

export { AUTH, CS, CHUNKS, CLUSTER, FS };
export { CHUNKSERVER_PREFIX, MAX_CHUNK_SIZE_BYTES } from './chunkserver.js';
export { CreateTokenRequest, RevokeTokenRequest, type KeyInfo, type TokenInfo } from './auth.js';
export type { ConfReply, MastersReply, TransferReply } from './cluster.js';
export * from './route.js';

/** Every route, once. */
export const ROUTES: readonly Route[] = [...Object.values(FS), ...Object.values(CLUSTER), ...Object.values(AUTH), ...Object.values(CS), ...Object.values(CHUNKS)];

const byKey = new Map(ROUTES.map((r) => [routeKey(r), r]));

/** The route of a request, by method and express's path (HEAD is a GET's); undefined for a path the table does not have. */
export function routeFor(method: string, path: string): Route | undefined {
  return byKey.get(`${method === 'HEAD' ? 'GET' : method} ${path}`);
}
