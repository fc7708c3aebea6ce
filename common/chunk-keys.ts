import { createCipheriv, createDecipheriv, createHmac, randomBytes } from 'node:crypto';

/**
 * The keys chunk access tokens are signed with, from the masters' replicated key set (the one
 * client tokens use: master/credentials/, rotated by `dfs admin rotate-keys`). Key `k0`, the
 * bootstrap key, signs chunk tokens with the cluster secret itself (tokens `payload.sig`, as
 * before rotation existed); a key `kN` made by rotation signs them with a key derived from it
 * (tokens `kN.payload.sig`), so a chunkserver never holds a key that could sign a client token.
 *
 * Chunkservers learn the derived keys from their heartbeat replies, sealed (AES-256-GCM under a key
 * derived from the cluster secret, bound to the receiving server's id), so that on a network
 * without TLS no listener learns them and no one but a master can hand a chunkserver a key. Each
 * heartbeat says which keys the server holds; the leader signs with the newest key every live
 * server holds, so a token is never signed with a key a server has not learned yet.
 */
export interface ChunkKey { id: string; secret: Buffer }
/** Looks up the secret of a chunk key by id; undefined: not held (dropped, or not learned yet). */
export type ChunkKeyLookup = (id: string) => Buffer | undefined;

export const BOOTSTRAP_CHUNK_KEY_ID = 'k0';
/** The id of a key made by rotation, as a chunk token carries it. */
export const ROTATED_KEY_ID = /^k[1-9][0-9]{0,8}$/;
const DERIVE_LABEL = 'dfs chunk access tokens v1';
const SEAL_LABEL = 'dfs chunk key transport v1';

/** The chunk key of a rotated signing key (its secret is never the signing key's own). */
export function chunkKeyOf(id: string, signingSecret: Buffer): ChunkKey {
  return { id, secret: createHmac('sha256', signingSecret).update(DERIVE_LABEL).digest() };
}

/** The key number of a key id (k0 is 0). */
export function keyNumber(id: string): number {
  return Number(id.slice(1));
}

/** What a master seals for one chunkserver: whether k0 still verifies, and the rotated keys' chunk keys. */
export interface ChunkKeySet { bootstrap: boolean; keys: ChunkKey[] }

function sealKey(clusterSecret: Buffer): Buffer {
  return createHmac('sha256', clusterSecret).update(SEAL_LABEL).digest();
}

export function sealChunkKeys(clusterSecret: Buffer, serverId: string, set: ChunkKeySet): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', sealKey(clusterSecret), iv);
  cipher.setAAD(Buffer.from(serverId));
  const plain = JSON.stringify({ bootstrap: set.bootstrap, keys: set.keys.map((k) => ({ id: k.id, hex: k.secret.toString('hex') })) });
  const data = Buffer.concat([cipher.update(plain, 'utf8'), cipher.final()]);
  return [iv, data, cipher.getAuthTag()].map((b) => b.toString('base64url')).join('.');
}

/** The set a master sealed for `serverId`; undefined when it was not sealed under this secret for this server, or is malformed. */
export function openChunkKeys(clusterSecret: Buffer, serverId: string, sealed: unknown): ChunkKeySet | undefined {
  if (typeof sealed !== 'string' || sealed.length > 16_384) return undefined;
  const parts = sealed.split('.');
  if (parts.length !== 3) return undefined;
  try {
    const [iv, data, tag] = parts.map((p) => Buffer.from(p, 'base64url')) as [Buffer, Buffer, Buffer];
    const decipher = createDecipheriv('aes-256-gcm', sealKey(clusterSecret), iv);
    decipher.setAAD(Buffer.from(serverId));
    decipher.setAuthTag(tag);
    const plain = Buffer.concat([decipher.update(data), decipher.final()]).toString('utf8');
    const raw = JSON.parse(plain) as { bootstrap: unknown; keys: { id: unknown; hex: unknown }[] };
    if (typeof raw.bootstrap !== 'boolean' || !Array.isArray(raw.keys)) return undefined;
    const keys: ChunkKey[] = [];
    for (const k of raw.keys) {
      if (typeof k.id !== 'string' || !ROTATED_KEY_ID.test(k.id) || typeof k.hex !== 'string' || !/^[0-9a-f]{64}$/.test(k.hex)) return undefined;
      keys.push({ id: k.id, secret: Buffer.from(k.hex, 'hex') });
    }
    return { bootstrap: raw.bootstrap, keys };
  } catch {
    return undefined;
  }
}

/**
 * A chunkserver's chunk keys: k0 (the cluster secret) at start, then what the masters' heartbeat
 * replies say. Keys only move forward: a set whose keys are all older than a key already dropped
 * (a replayed old reply) is ignored, and k0 once dropped stays dropped for this process.
 */
export class ChunkKeyRing {
  private bootstrap = true;
  private keys = new Map<string, Buffer>();
  /** Keys numbered below this were dropped: never taken back. */
  private floor = 0;

  constructor(private readonly clusterSecret: Buffer, private readonly serverId: string) {}

  readonly lookup: ChunkKeyLookup = (id) => {
    if (id === BOOTSTRAP_CHUNK_KEY_ID) return this.bootstrap ? this.clusterSecret : undefined;
    return this.keys.get(id);
  };

  /** The ids held, for the heartbeat. */
  ids(): string[] {
    return [...(this.bootstrap ? [BOOTSTRAP_CHUNK_KEY_ID] : []), ...this.keys.keys()];
  }

  /** Takes the set sealed in a heartbeat reply; answers whether it was taken. */
  update(sealed: unknown): boolean {
    const set = openChunkKeys(this.clusterSecret, this.serverId, sealed);
    if (!set) return false;
    const numbers = [...(set.bootstrap ? [0] : []), ...set.keys.map((k) => keyNumber(k.id))];
    if (numbers.length === 0) return false;
    const lowest = Math.min(...numbers);
    if (lowest < this.floor) return false;
    this.floor = lowest;
    this.bootstrap = set.bootstrap;
    this.keys = new Map(set.keys.map((k) => [k.id, k.secret]));
    return true;
  }
}
