// One benchmark client, as its own process: a put of a slice of the source file, or a get whose
// bytes are hashed and dropped. It loads everything, says "ready", and starts on "go", so that
// the clock the parent holds covers the transfer and not node's start-up. Every real user of dfs
// is a process of its own, with its own event loop, HTTP connections and checksum work: four
// clients in one process would share one core's worth of JavaScript and measure that instead.
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { Writable } from 'node:stream';
import { DfsClient } from '../../cli/client.js';
import { initChecksums, streamHash } from '../../common/checksum.js';
import { closeHttpAgent } from '../../common/http.js';

export interface TransferSpec {
  op: 'put' | 'get';
  masters: string[];
  dfsPath: string;
  /** put: the local file and the byte range of it to upload. */
  localFile?: string;
  offsetBytes?: number;
  lengthBytes: number;
  replication?: number;
}

export type TransferReply = { ok: true; elapsedMs: number; bytes: number; hash?: string } | { ok: false; error: string };

/** A sink that keeps nothing: the xxHash64 of what passed and how much. */
function hashingSink(): { sink: Writable; digest(): { bytes: number; hash: string } } {
  const hash = streamHash();
  let bytes = 0;
  const sink = new Writable({
    highWaterMark: 1024 * 1024,
    write(chunk: Buffer, _enc, done) {
      hash.update(chunk);
      bytes += chunk.length;
      done();
    },
  });
  return { sink, digest: () => ({ bytes, hash: hash.digest() }) };
}

async function run(spec: TransferSpec): Promise<TransferReply> {
  const client = new DfsClient(spec.masters);
  const start = performance.now();
  if (spec.op === 'put') {
    const offset = spec.offsetBytes ?? 0;
    const source = createReadStream(spec.localFile!, { start: offset, end: offset + spec.lengthBytes - 1, highWaterMark: 1024 * 1024 });
    const info = await client.put(source, spec.dfsPath, { parents: true, replication: spec.replication });
    return { ok: true, elapsedMs: performance.now() - start, bytes: info.size };
  }
  const { sink, digest } = hashingSink();
  await client.get(spec.dfsPath, sink);
  const elapsedMs = performance.now() - start;
  return { ok: true, elapsedMs, ...digest() };
}

async function main(): Promise<void> {
  const spec = JSON.parse(process.argv[2] ?? '') as TransferSpec;
  await initChecksums();
  const lines = createInterface({ input: process.stdin });
  const go = new Promise<void>((resolve, reject) => {
    lines.once('line', () => resolve());
    lines.once('close', () => reject(new Error('the benchmark went away before saying go')));
  });
  process.stdout.write('ready\n');
  await go;
  let reply: TransferReply;
  try {
    reply = await run(spec);
  } catch (err) {
    reply = { ok: false, error: (err as Error).message };
  }
  await closeHttpAgent();
  process.stdout.write(JSON.stringify(reply) + '\n');
  process.exit(reply.ok ? 0 : 1);
}

void main().catch((err: unknown) => {
  process.stdout.write(JSON.stringify({ ok: false, error: (err as Error).message }) + '\n');
  process.exit(1);
});
