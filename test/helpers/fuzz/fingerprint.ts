// What "nothing changed" means for the route fuzz (test/helpers/fuzz/route-fuzz.ts): the
// namespace (a recursive listing and each file's chunks, fetched with the admin token), the
// tokens and signing keys, the quotas of the fuzz's directories, the chunkservers' states, and
// every chunk file on every chunkserver's disk (its size and SHA-256). Compared before and after
// each batch of requests, over what the batch's credential may not change.
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { AUTH, CLUSTER, FS } from '../../../common/contract/index.js';
import { call } from '../../../common/contract/call.js';
import type { JsonRoute, ReplyOf, RequestOf } from '../../../common/contract/route.js';
import { ADMIN_TOKEN } from '../cluster.js';

export interface Fingerprint {
  /** path → what a listing says of it (a directory's mtime left out: a refused call may not change it, but a permitted one below changes it). */
  entries: Map<string, string>;
  /** file path → its chunks (handle, version, length, checksum, replica ids). */
  chunks: Map<string, string>;
  /** handle → the file it belongs to. */
  owners: Map<number, string>;
  /** Files whose every chunk has as many replicas (and chunk files on disk) as the file's replication: no copy or trim pending (a permitted setrep makes one). */
  settled: Set<string>;
  tokens: string;
  keys: string;
  /** directory → its quota limits ('none' when it is gone). */
  quotas: Map<string, string>;
  servers: string;
  /** `cs/handle` → size and SHA-256 of the chunk file on that server's disk. */
  disk: Map<string, string>;
}

/** Calls `route` on the leader with the admin token; `leader` names it (asked again after a leader change). */
export type AdminCall = <R extends JsonRoute>(route: R, input: RequestOf<R>) => Promise<ReplyOf<R>>;

export function adminCaller(leader: () => Promise<string>): AdminCall {
  return async (route, input) => {
    let last: unknown;
    for (let i = 0; i < 5; i++) {
      try {
        return await call(await leader(), route, input, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
      } catch (err) {
        last = err;
        if ((err as { code?: string }).code !== 'NOT_LEADER' && (err as { code?: string }).code !== 'UNAVAILABLE') throw err;
        await new Promise((r) => setTimeout(r, 300));
      }
    }
    throw last;
  };
}

/** Directories whose quotas are part of the fingerprint. */
const QUOTA_DIRS = ['/', '/fz', '/fz/open', '/fz/p'];

async function listAll(admin: AdminCall): Promise<ReplyOf<typeof FS.list>['entries']> {
  const out: ReplyOf<typeof FS.list>['entries'] = [];
  let after: string | undefined;
  for (let page = 0; page < 100; page++) {
    const r = await admin(FS.list, { path: '/', recursive: true, ...(after !== undefined ? { after } : {}) });
    out.push(...r.entries);
    if (r.next === undefined) return out;
    after = r.next;
  }
  throw new Error('the listing did not end within 100 pages');
}

function diskOf(chunkserverDirs: Map<string, string>): Map<string, string> {
  const disk = new Map<string, string>();
  for (const [id, dir] of chunkserverDirs) {
    let names: string[] = [];
    try {
      names = readdirSync(join(dir, 'chunks'));
    } catch {
      continue;
    }
    for (const name of names) {
      const m = /^(\d+)\.chunk$/.exec(name);
      if (!m) continue;
      try {
        const bytes = readFileSync(join(dir, 'chunks', name));
        disk.set(`${id}/${m[1]}`, `${bytes.length}:${createHash('sha256').update(bytes).digest('hex').slice(0, 16)}`);
      } catch {
        // deleted while we looked (garbage collection): absent
      }
    }
  }
  return disk;
}

/** The fingerprint now; `chunksOf` says which files' chunks to fetch (stat with chunks: one call each). */
export async function fingerprint(admin: AdminCall, chunkserverDirs: Map<string, string>, chunksOf: (path: string) => boolean): Promise<Fingerprint> {
  const disk = diskOf(chunkserverDirs);
  const copies = new Map<number, number>();
  for (const k of disk.keys()) copies.set(Number(k.split('/')[1]), (copies.get(Number(k.split('/')[1])) ?? 0) + 1);
  const listed = await listAll(admin);
  const entries = new Map<string, string>();
  const chunks = new Map<string, string>();
  const owners = new Map<number, string>();
  const settled = new Set<string>();
  for (const e of listed) {
    entries.set(e.path, JSON.stringify([e.type, e.size, e.replication, e.state, e.chunkCount, e.type === 'file' ? e.mtimeMs : 0]));
    if (e.type !== 'file' || !chunksOf(e.path)) continue;
    const st = await admin(FS.stat, { path: e.path, chunks: true }).catch(() => undefined);
    for (const ch of st?.chunks ?? []) owners.set(ch.handle, e.path);
    if (st && (st.chunks ?? []).every((ch) => ch.replicas.length === st.replication && copies.get(ch.handle) === st.replication)) settled.add(e.path);
    chunks.set(e.path, JSON.stringify((st?.chunks ?? []).map((ch) => [ch.handle, ch.version, ch.length, ch.checksum, ch.replicas.map((r) => r.id).sort()])));
  }
  const quotas = new Map(await Promise.all(QUOTA_DIRS.map(async (path) => [path, await admin(FS.quota, { path }).then((q) => `${q.files.limit}/${q.bytes.limit}`, () => 'none')] as const)));
  const tokens = (await admin(AUTH.listTokens, {})).tokens.map((t) => `${t.id}:${t.revoked ? 'revoked' : 'valid'}:${t.readOnly}:${t.admin}:${t.prefix}`).sort();
  const keys = (await admin(AUTH.keys, {})).keys.map((k) => `${k.id}:${k.signing}`);
  const status = await admin(CLUSTER.status, {});
  const servers = status.chunkservers.map((s) => `${s.id}:${s.addr}:${s.state}`).sort();
  return { entries, chunks, owners, settled, tokens: tokens.join(','), keys: keys.join(','), quotas, servers: servers.join(','), disk };
}

/** What a batch's credential may change: paths it may write, and whether it may change tokens or write chunks. */
export interface Allowed {
  path: (path: string) => boolean;
  tokens: boolean;
  newChunks: boolean;
}

function mapDiff(what: string, a: Map<string, string>, b: Map<string, string>, allowed: (key: string) => boolean): string[] {
  const out: string[] = [];
  for (const k of new Set([...a.keys(), ...b.keys()])) {
    if (allowed(k) || a.get(k) === b.get(k)) continue;
    out.push(`${what} ${k}: ${a.get(k) ?? 'absent'} → ${b.get(k) ?? 'absent'}`);
  }
  return out;
}

/** The changes from `a` to `b` that `allowed` does not permit, one line each. */
export function changes(a: Fingerprint, b: Fingerprint, allowed: Allowed): string[] {
  // A file's replicas may still move after a permitted change (a setrep trims or copies in the background): compared once settled.
  const unsettled = (p: string) => allowed.path(p) || !a.settled.has(p);
  const out = [...mapDiff('entry', a.entries, b.entries, allowed.path), ...mapDiff('chunks of', a.chunks, b.chunks, (p) => unsettled(p) || !a.chunks.has(p) || !b.chunks.has(p))];
  if (!allowed.tokens && a.tokens !== b.tokens) out.push(`tokens: ${a.tokens} → ${b.tokens}`);
  if (!allowed.tokens && a.keys !== b.keys) out.push(`signing keys: ${a.keys} → ${b.keys}`);
  out.push(...mapDiff('quota of', a.quotas, b.quotas, allowed.path));
  if (a.servers !== b.servers) out.push(`chunkservers: ${a.servers} → ${b.servers}`);
  // A protected file's chunk files stay as they were; a chunk on no disk before appears only through a valid write token.
  const onDiskBefore = new Set([...a.disk.keys()].map((k) => k.split('/')[1]!));
  for (const k of new Set([...a.disk.keys(), ...b.disk.keys()])) {
    const handle = Number(k.split('/')[1]);
    const owner = a.owners.get(handle);
    if (owner !== undefined && !unsettled(owner) && a.disk.get(k) !== b.disk.get(k) && b.disk.has(k)) out.push(`chunk file ${k} of ${owner}: ${a.disk.get(k) ?? 'absent'} → ${b.disk.get(k)}`);
    if (owner !== undefined && !unsettled(owner) && a.disk.has(k) && !b.disk.has(k) && a.entries.get(owner) === b.entries.get(owner)) out.push(`chunk file ${k} of ${owner} is gone`);
    if (!allowed.newChunks && !onDiskBefore.has(String(handle)) && b.disk.has(k)) out.push(`chunk file ${k} appeared (a chunk no server held before the batch)`);
  }
  return out;
}
