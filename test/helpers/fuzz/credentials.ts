// The credentials the route fuzz calls with (test/helpers/fuzz/route-fuzz.ts): none, garbage, an
// expired token, a forged one (signed with another secret), a revoked one, a replayed peer
// signature, a read-only token, a prefix token and an admin token. The real ones are made as a
// user makes them (POST /v1/auth/tokens with the admin token, as `dfs token create` does); the
// replayed peer signature is one a master accepted once, sent again.
import { signChunkToken, type ChunkGrant } from '../../../common/auth.js';
import { AUTH, CLUSTER } from '../../../common/contract/index.js';
import { call } from '../../../common/contract/call.js';
import { bootstrapKey, newTokenId, signClientToken } from '../../../common/credentials.js';
import { PEER_AUTH_HEADER, sha256Hex, signPeerRequest } from '../../../common/peer-auth.js';
import { ADMIN_TOKEN, TEST_SECRET, waitFor } from '../cluster.js';
import { pick, type Rng } from './inputs.js';
import { sendRaw } from './wire.js';

export const CLASS_NAMES = ['none', 'garbage', 'expired', 'forged', 'revoked', 'peer-replayed', 'read-only', 'prefix', 'admin'] as const;
export type ClassName = (typeof CLASS_NAMES)[number];

/** The prefix the prefix token is limited to. */
export const FUZZ_PREFIX = '/fz/p';
const CLUSTER_ID_HEADER = 'x-dfs-cluster-id';
/** A secret no member holds: what a forger signs with. */
const OTHER_SECRET = Buffer.from('another-cluster-secret-0123456789');

export interface Credential {
  name: ClassName;
  /** A valid client token's scope; undefined: no valid client token. */
  scope?: { admin: boolean; readOnly: boolean; prefix: string };
  /** Headers for one request to a master (drawn anew each time: garbage varies). */
  headers(rng: Rng): Record<string, string>;
}

export interface Credentials {
  byName: Map<ClassName, Credential>;
  /** Peer signatures as a stranger could hold them: replayed, for another request, stale. */
  peerHeaders(rng: Rng, clusterId: string): Record<string, string>;
  /** The token strings of the valid classes (they must never show up in another class's reply). */
  secrets: string[];
  /** The ids of the tokens made here (what a revoke names). */
  ids: string[];
}

const bearer = (token: string): Record<string, string> => ({ authorization: `Bearer ${token}` });

async function mint(master: string, body: { name: string; readOnly?: boolean; prefix?: string; ttlMs?: number }): Promise<{ token: string; id: string }> {
  const r = await call(master, AUTH.createToken, body, { headers: bearer(ADMIN_TOKEN) });
  return { token: r.token, id: r.info.id };
}

/** Garbage in the Authorization header: not a token, a truncated or altered one, the wrong scheme. */
function garbage(rng: Rng): string {
  const [head, key, payload, sig] = ADMIN_TOKEN.split('.') as [string, string, string, string];
  const grant = JSON.parse(Buffer.from(payload, 'base64url').toString()) as Record<string, unknown>;
  const altered = Buffer.from(JSON.stringify({ ...grant, name: 'eve', id: 'eve' })).toString('base64url');
  return pick(rng, [
    'Bearer garbage', 'Bearer ', 'Bearer', 'Basic YWRtaW46YWRtaW4=', 'bearer dfs1.k0.e30.AAAA', `Bearer ${head}.${key}.${altered}.${sig}`,
    `Bearer ${ADMIN_TOKEN.slice(0, -2)}`, `Bearer ${ADMIN_TOKEN}x`, `Bearer dfs1.k999.${payload}.${sig}`, `Bearer dfs2.${key}.${payload}.${sig}`,
    `Bearer ${'A'.repeat(5000)}`, `Bearer ${ADMIN_TOKEN} ${ADMIN_TOKEN}`, `Bearer dfs1.k0.${payload}.`, 'Bearer \u00e9\u00e9', `Bearer dfs1.k0..${sig}`,
  ]);
}

/**
 * A peer signature of a GET of the group's configuration as master m1 sent it, accepted once by
 * every master (as a listener on the wire would have seen it go by); the fuzz replays it.
 */
async function capturedPeerHeader(masters: string[], clusterId: string): Promise<string> {
  const path = CLUSTER.raftGroup.path;
  const header = signPeerRequest(Buffer.from(TEST_SECRET), 'raft', 'm1', { method: 'GET', path, clusterId });
  for (const m of masters) {
    const r = await sendRaw(m, { method: 'GET', path, headers: { [PEER_AUTH_HEADER]: header, [CLUSTER_ID_HEADER]: clusterId } }, 20_000);
    if (r.kind !== 'answer' || r.res.status !== 200) throw new Error(`the peer signature's first use on ${m} was refused: ${JSON.stringify(r)}`);
  }
  return header;
}

/** Makes every class's credential against a running cluster (`leader`: its leader's address). */
export async function makeCredentials(leader: string, masters: string[], clusterId: string): Promise<Credentials> {
  const [ro, prefix, expired, revoked] = [
    await mint(leader, { name: 'fz-read-only', readOnly: true }), await mint(leader, { name: 'fz-prefix', prefix: FUZZ_PREFIX }),
    await mint(leader, { name: 'fz-expired', ttlMs: 1000 }), await mint(leader, { name: 'fz-revoked' }),
  ];
  await call(leader, AUTH.revokeToken, { id: revoked.id }, { headers: bearer(ADMIN_TOKEN) });
  // Expired for real: the leader's clock passed the token's expiry.
  await waitFor(() => call(leader, AUTH.whoami, {}, { headers: bearer(expired.token) }).then(() => false, () => true), 10_000, 'the 1 s token to expire');
  const forged = signClientToken(bootstrapKey(OTHER_SECRET), { id: newTokenId(), name: 'forger', admin: true, readOnly: false, prefix: '/', issuedAtMs: Date.now() });
  const replayed = await capturedPeerHeader(masters, clusterId);
  const fixed = (name: ClassName, token: string | undefined, scope?: Credential['scope']): Credential => ({ name, scope, headers: () => (token === undefined ? {} : bearer(token)) });
  const classes: Credential[] = [
    fixed('none', undefined), { name: 'garbage', headers: (rng) => ({ authorization: garbage(rng) }) }, fixed('expired', expired.token), fixed('forged', forged),
    fixed('revoked', revoked.token), { name: 'peer-replayed', headers: () => ({ [PEER_AUTH_HEADER]: replayed, [CLUSTER_ID_HEADER]: clusterId }) },
    fixed('read-only', ro.token, { admin: false, readOnly: true, prefix: '/' }), fixed('prefix', prefix.token, { admin: false, readOnly: false, prefix: FUZZ_PREFIX }),
    fixed('admin', ADMIN_TOKEN, { admin: true, readOnly: false, prefix: '/' }),
  ];
  const secret = Buffer.from(TEST_SECRET);
  const peerHeaders = (rng: Rng, cid: string): Record<string, string> => {
    const now = Date.now();
    const forOther = signPeerRequest(secret, 'chunkserver', 'cs1', { method: 'POST', path: '/x', bodySha256: sha256Hex('{}'), clusterId: cid });
    const stale = signPeerRequest(secret, 'chunkserver', 'cs1', { method: 'POST', path: '/x', clusterId: cid }, now - 120_000);
    const stranger = signPeerRequest(OTHER_SECRET, 'chunkserver', 'cs1', { method: 'POST', path: '/x', clusterId: cid });
    return { [PEER_AUTH_HEADER]: pick(rng, [replayed, forOther, stale, stranger, 'v1 id=cs1,ts=1,nonce=AAAAAAAAAAAAAAAA,sig=x']), [CLUSTER_ID_HEADER]: cid };
  };
  return { byName: new Map(classes.map((c) => [c.name, c])), peerHeaders, secrets: [ADMIN_TOKEN, ro.token, prefix.token, TEST_SECRET], ids: [ro.id, prefix.id, revoked.id] };
}

/** What a chunk route is called with: real tokens of the cluster and tokens a stranger could make. */
export interface ChunkTokens {
  /** The read token the master handed out for each chunk (stat with chunks), by handle. */
  read: Map<number, string>;
  /** A write token for a chunk the admin allocated (and never wrote): handle, version, token, its pipeline's addresses. */
  write: { handle: number; version: number; token: string; addrs: string[] };
  /** The handles of the prefix token's own file. */
  ownHandles: Set<number>;
}

/**
 * The chunk access token a class sends for `handle` at `version`: a stranger's classes a missing,
 * garbage, expired, forged or other chunk's token; the token classes what the master would hand
 * them (a read token for what they may read, the admin a write token too).
 */
export function chunkTokenFor(cls: ClassName, method: string, handle: number, version: number, t: ChunkTokens, rng: Rng): string | undefined {
  const grant: ChunkGrant = { handle, version, mode: method === 'PUT' ? 'write' : 'read', expiresAtMs: Date.now() + 60_000 };
  const other = [...t.read.entries()].find(([h]) => h !== handle)?.[1];
  switch (cls) {
    case 'none': return undefined;
    case 'garbage': return pick(rng, ['x', '..', 'k1.a.b', `${t.write.token}x`, 'A'.repeat(5000), 'a.b.c.d']);
    case 'expired': return signChunkToken(Buffer.from(TEST_SECRET), { ...grant, expiresAtMs: Date.now() - 1000 });
    case 'forged': return signChunkToken(OTHER_SECRET, grant);
    case 'revoked': case 'peer-replayed': return other;
    case 'read-only': return method === 'PUT' ? t.read.get(handle) : t.read.get(handle) ?? other;
    case 'prefix': return t.read.get([...t.ownHandles][0]!);
    case 'admin': return method === 'PUT' ? (handle === t.write.handle ? t.write.token : pick(rng, [t.write.token, t.read.get(handle) ?? t.write.token])) : t.read.get(handle) ?? t.write.token;
  }
}
