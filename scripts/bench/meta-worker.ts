// One metadata client, as its own process (issue 20): a share of a phase's operations, with its
// share of the phase's operations in flight. It loads everything, says "ready", starts on "go",
// and prints its latencies, so the parent's clock covers the operations and not node's start-up,
// and the parent computes percentiles over every process's operations together. Several of these
// keep the client from being the bound: one node process tops out near one core of JSON and HTTP.
import { randomBytes } from 'node:crypto';
import { createInterface } from 'node:readline';
import { Readable } from 'node:stream';
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
}

export type MetaReply = { ok: true; latenciesMs: number[] } | { ok: false; error: string };

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
      return (p) => client.put(Readable.from([]), p, { parents: true });
    case 'put4k':
      return (p) => client.put(Readable.from([SMALL]), p, { parents: true });
  }
}

async function run(spec: MetaSpec, go: Promise<void>): Promise<MetaReply> {
  const client = new DfsClient(spec.masters);
  const op = operation(client, spec);
  // Calls before "go", as etcd's bench.js warms its one client: the leader's address, a
  // connection for each call in flight, and for mutations a session for each (a fresh client's
  // first 64 mutations at once open 64 sessions, each a Raft proposal: 100-150 ms here).
  await client.stat('/');
  const warm = Math.min(spec.inflight, spec.count);
  if (spec.op === 'stat') await Promise.all(Array.from({ length: warm }, () => client.stat('/')));
  else await Promise.all(Array.from({ length: warm }, () => client.mkdir(spec.base, true)));
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
