// One metadata client, as its own process (issue 20): a share of a phase's operations, with its
// share of the phase's operations in flight. It loads everything, warms up, says "ready", starts
// on "go", and prints its latencies, so the parent's clock covers the operations and not node's
// start-up, and the parent computes percentiles over every process's operations together. Several
// of these keep the client from being the bound: one node process tops out near one core of JSON
// and HTTP.
//
// The warm-up is etcd's benchmark's (../shared/peers/etcd/bench.js): 300 sequential calls, then
// 2,000 with 64 in flight, in the process that then measures. Without it a fresh process measured
// its own JIT: 4 KiB files from a cold client took 0.32 ms of its CPU each, from a warm one 0.12,
// and went 1,629/s against 2,365/s on the same cluster.
import { randomBytes } from 'node:crypto';
import { createInterface } from 'node:readline';
import { DfsClient } from '../../cli/client.js';
import { initChecksums } from '../../common/checksum.js';
import { closeHttpAgent } from '../../common/http.js';

export type MetaOp = 'mkdir' | 'stat' | 'create' | 'put4k';

export interface MetaSpec {
  op: MetaOp;
  masters: string[];
  /** Paths are `${base}/d${i}` for i in [from, from + count). */
  base: string;
  from: number;
  count: number;
  inflight: number;
  /** Calls before "ready", not timed: `sequential` one at a time, then `count` with `inflight` in flight. */
  warm: { sequential: number; count: number; inflight: number };
}

export type MetaReply = { ok: true; latenciesMs: number[] } | { ok: false; error: string };

// Bytes in memory, as etcd's bench puts a value from memory (DfsClient.put takes them as they are).
const EMPTY = Buffer.alloc(0);
const SMALL = randomBytes(4096);

function operation(client: DfsClient, spec: MetaSpec): (path: string) => Promise<unknown> {
  switch (spec.op) {
    case 'mkdir':
      return (p) => client.mkdir(p, true);
    case 'stat':
      return async (p) => {
        const s = await client.stat(p);
        if (s.path !== p) throw new Error(`stat ${p} answered for ${s.path}`);
      };
    case 'create':
      return (p) => client.put(EMPTY, p, { parents: true });
    case 'put4k':
      return (p) => client.put(SMALL, p, { parents: true });
  }
}

async function run(spec: MetaSpec, go: Promise<void>): Promise<MetaReply> {
  const client = new DfsClient(spec.masters);
  const op = operation(client, spec);
  // Calls before "go", as etcd's bench.js warms its one client: the leader's address, a
  // connection for each call in flight, and for mutations a session for each (a fresh client's
  // first 64 mutations at once open 64 sessions, each a Raft proposal: 100-150 ms here).
  await client.stat('/');
  const connections = Math.max(spec.inflight, spec.warm.inflight);
  if (spec.op === 'stat') await Promise.all(Array.from({ length: connections }, () => client.stat('/')));
  else await Promise.all(Array.from({ length: connections }, () => client.mkdir(spec.base, true)));
  // Mutations warm up on paths of their own; stats read the phase's own paths (made before it).
  const warmPath = spec.op === 'stat' ? (i: number) => `${spec.base}/d${spec.from + (i % spec.count)}` : (i: number) => `${spec.base}-warm/p${spec.from}-${i}`;
  if (spec.op !== 'stat') await client.mkdir(`${spec.base}-warm`, true);
  for (let i = 0; i < spec.warm.sequential; i++) await op(warmPath(i));
  let w = spec.warm.sequential;
  const warmEnd = w + spec.warm.count;
  await Promise.all(Array.from({ length: Math.min(spec.warm.inflight, spec.warm.count) }, async () => {
    while (w < warmEnd) await op(warmPath(w++));
  }));
  process.stdout.write('ready\n');
  await go;
  const latenciesMs: number[] = [];
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(spec.inflight, spec.count) }, async () => {
    while (next < spec.count) {
      const i = spec.from + next++;
      const t0 = performance.now();
      await op(`${spec.base}/d${i}`);
      latenciesMs.push(Math.round((performance.now() - t0) * 100) / 100);
    }
  }));
  return { ok: true, latenciesMs };
}

async function main(): Promise<void> {
  const spec = JSON.parse(process.argv[2] ?? '') as MetaSpec;
  await initChecksums();
  const lines = createInterface({ input: process.stdin });
  const go = new Promise<void>((resolve) => lines.once('line', () => resolve()));
  const reply = await run(spec, go).catch((err: unknown): MetaReply => ({ ok: false, error: (err as Error).message }));
  process.stdout.write(`${JSON.stringify(reply)}\n`);
  await closeHttpAgent();
  process.exit(reply.ok ? 0 : 1);
}

await main();
