// The files, writes and tokens the route fuzz works on (test/helpers/fuzz/route-fuzz.ts), made
// through the real CLI and the contract with the admin token: files outside the prefix token's
// prefix (no class but admin and read-only may read them), one inside it, a sandbox the admin's
// requests are confined to, open writes of the admin and of the prefix token, a chunk allocated
// and never written (its write token), and every fixture chunk's read token.
import { createServer, type AddressInfo, type Server } from 'node:net';
import { CLUSTER, FS } from '../../../common/contract/index.js';
import { call } from '../../../common/contract/call.js';
import { ADMIN_TOKEN, randomBytesSeeded, type TestCluster } from '../cluster.js';
import { FUZZ_PREFIX, type ChunkTokens, type Credentials } from './credentials.js';
import type { AdminCall } from './fingerprint.js';
import type { Pools } from './inputs.js';

export const SANDBOX = '/fz/sandbox';

export interface Fixture { path: string; bytes: Buffer; tag: string }

export interface World {
  fixtures: Fixture[];
  /** Paths made in setup outside the sandbox: no request of any class may change them but through their own scope. */
  protectedPaths: Set<string>;
  chunkTokens: ChunkTokens;
  versions: Map<number, number>;
  pools: { admin: Pools; others: Pools };
  /** A listener no chunkserver may ever connect to, and how many did. */
  trap: { addr: string; connections: () => number; close: () => Promise<void> };
}

async function trapListener(): Promise<World['trap']> {
  let connections = 0;
  const server: Server = createServer((s) => {
    connections++;
    s.destroy();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return { addr: `127.0.0.1:${(server.address() as AddressInfo).port}`, connections: () => connections, close: () => new Promise((r) => server.close(() => r())) };
}

/** Makes the world on a fresh cluster; `tag` goes into every fixture's name (what the leak check looks for). */
export async function makeWorld(c: TestCluster, admin: AdminCall, leader: string, creds: Credentials, seed: number): Promise<World> {
  const tag = `fz${(seed >>> 0).toString(16).padStart(8, '0')}q`;
  const fixtures: Fixture[] = [
    { path: `/fz/open/s-${tag}.bin`, bytes: randomBytesSeeded(150 * 1024, seed + 1), tag: `s-${tag}` },
    { path: `/fz/open/d/t-${tag}.txt`, bytes: randomBytesSeeded(1024, seed + 2), tag: `t-${tag}` },
    { path: `/fz/top-${tag}.bin`, bytes: randomBytesSeeded(70 * 1024, seed + 3), tag: `top-${tag}` },
    { path: `${FUZZ_PREFIX}/own-${tag}.bin`, bytes: randomBytesSeeded(70 * 1024, seed + 4), tag: `own-${tag}` },
  ];
  for (const dir of [`${SANDBOX}/a/b`, `${FUZZ_PREFIX}/sub`, `/fz/empty-${tag}`]) await admin(FS.mkdir, { path: dir, parents: true });
  for (const f of fixtures) {
    const r = await c.dfs(['put', '-', f.path], { input: f.bytes, env: { DFS_TOKEN: ADMIN_TOKEN } });
    if (r.code !== 0) throw new Error(`dfs put ${f.path}: ${r.stderr}`);
  }
  const protectedPaths = new Set((await admin(FS.list, { path: '/', recursive: true })).entries.map((e) => e.path).filter((p) => !p.startsWith(SANDBOX)));
  const read = new Map<number, string>();
  const versions = new Map<number, number>();
  const ownHandles = new Set<number>();
  for (const f of fixtures) {
    for (const ch of (await admin(FS.stat, { path: f.path, chunks: true })).chunks ?? []) {
      read.set(ch.handle, ch.token);
      versions.set(ch.handle, ch.version);
      if (f.path.startsWith(`${FUZZ_PREFIX}/`)) ownHandles.add(ch.handle);
    }
  }
  const writeIds: string[] = [];
  for (const name of ['w0', 'w1', 'w2']) {
    const created = await admin(FS.create, { path: `${SANDBOX}/${name}` });
    if ('writeId' in created) writeIds.push(created.writeId);
  }
  const allocated = await admin(FS.allocate, { writeId: writeIds[0]!, index: 0 });
  versions.set(allocated.handle, allocated.version);
  const prefixToken = creds.byName.get('prefix')!.headers(() => 0);
  const own = await call(leader, FS.create, { path: `${FUZZ_PREFIX}/w-${tag}` }, { headers: prefixToken });
  if ('writeId' in own) writeIds.push(own.writeId);
  writeIds.push('AAAAAAAAAAAAAAAA');
  const status = await admin(CLUSTER.status, {});
  const trap = await trapListener();
  const handles = [...read.keys(), allocated.handle, 1, 999_999];
  const ids = [...status.chunkservers.map((s) => s.id), ...creds.ids, 'm1', 'm2', 'nope'];
  const addrs = [...status.chunkservers.map((s) => s.addr), trap.addr, ...c.masterAddresses];
  const others = [...protectedPaths, '/', '/fz/pp', '/fz/p2', '/.trash', `${FUZZ_PREFIX}/new-${tag}`, `/fz/open/new-${tag}`, `${SANDBOX}/a`];
  return {
    fixtures, protectedPaths, versions, trap,
    chunkTokens: { read, ownHandles, write: { handle: allocated.handle, version: allocated.version, token: allocated.token, addrs: allocated.replicas.map((r) => r.addr) } },
    pools: {
      admin: { paths: [`${SANDBOX}/a`, `${SANDBOX}/a/b`, `${SANDBOX}/a/new`, `${SANDBOX}/w1`, `${SANDBOX}/x/y`], writeIds, handles, ids: ['cs-none', 'm-none'], addrs },
      others: { paths: others, writeIds, handles, ids, addrs },
    },
  };
}
