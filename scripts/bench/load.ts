// A put/get load for changes made under load (a master added or removed, a chunkserver added or
// drained, every process restarted one at a time): one writer puts small files of seeded random
// bytes one after another, one reader reads back files already acknowledged and compares their
// bytes. Every acknowledged write is remembered with its hash, so `verifyAll` can prove at the
// end that nothing acknowledged was lost or changed. What a client saw is kept too: failed
// operations and the longest stretch without a successful one, for each kind (the
// unavailability a change costs). Used by the integration tests and by scripts/side-by-side.ts.
import { createHash } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import type { DfsClient } from '../../cli/client.js';

export interface LoadOptions {
  /** Folder in dfs that every file goes under. */
  root: string;
  /** Bytes of each file (a few chunks' worth makes every put a pipeline of several chunks). */
  fileBytes: number;
  replication?: number;
  /** Pause after each operation, so the load leaves the machine some room. */
  pauseMs?: number;
  /** At most this many files are written (a bound on the load's size). */
  maxFiles?: number;
  seed?: number;
}

export interface KindStats {
  ok: number;
  failed: number;
  /** The longest time between two successful operations of this kind (or from the start to the first). */
  longestGapMs: number;
  /** The first few errors, for messages. */
  errors: string[];
}

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
const MAX_ERRORS_KEPT = 10;

/** Deterministic bytes for file i (a small LCG: reproducible, never all zero). */
export function fileBytesFor(seed: number, i: number, n: number): Buffer {
  const b = Buffer.allocUnsafe(Math.ceil(n / 4) * 4);
  let x = (Math.imul(seed, 2654435761) + Math.imul(i, 40503) + 1) >>> 0;
  for (let j = 0; j < b.length; j += 4) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    b.writeUInt32LE(x, j);
  }
  return b.subarray(0, n);
}

async function readAll(client: DfsClient, path: string): Promise<Buffer> {
  const parts: Buffer[] = [];
  await client.get(path, new Writable({ write: (c: Buffer, _e, done) => { parts.push(c); done(); } }));
  return Buffer.concat(parts);
}

class Kind {
  readonly stats: KindStats = { ok: 0, failed: 0, longestGapMs: 0, errors: [] };
  private lastOk: number;
  constructor(startedAt: number) {
    this.lastOk = startedAt;
  }
  ok(at: number): void {
    this.stats.ok++;
    this.stats.longestGapMs = Math.max(this.stats.longestGapMs, at - this.lastOk);
    this.lastOk = at;
  }
  failed(err: unknown): void {
    this.stats.failed++;
    if (this.stats.errors.length < MAX_ERRORS_KEPT) this.stats.errors.push(`${(err as { code?: string }).code ?? ''} ${(err as Error).message}`.trim().slice(0, 300));
  }
}

export class PutGetLoad {
  /** path → sha256 of what was acknowledged. */
  readonly acknowledged = new Map<string, string>();
  /** Bytes the reader got that were not what was acknowledged: must stay empty. */
  readonly wrongReads: string[] = [];
  private writes!: Kind;
  private reads!: Kind;
  private running = false;
  private loops: Promise<void>[] = [];
  private next = 0;
  private readonly seed: number;

  constructor(private readonly client: DfsClient, private readonly o: LoadOptions) {
    this.seed = o.seed ?? 1;
  }

  start(): void {
    const at = performance.now();
    this.writes = new Kind(at);
    this.reads = new Kind(at);
    this.running = true;
    this.loops = [this.writer(), this.reader()];
  }

  get stats(): { writes: KindStats; reads: KindStats } {
    return { writes: this.writes.stats, reads: this.reads.stats };
  }

  /**
   * Waits until `n` more writes are acknowledged (bounded by `timeoutMs`): the load is making
   * progress, or it has put its maxFiles and has no more to make.
   */
  async progress(n: number, timeoutMs: number): Promise<void> {
    const want = this.writes.stats.ok + n;
    const deadline = performance.now() + timeoutMs;
    while (this.writes.stats.ok < want && this.next < (this.o.maxFiles ?? 10_000)) {
      if (performance.now() > deadline) throw new Error(`the load did not get ${n} more writes acknowledged within ${timeoutMs} ms (${JSON.stringify(this.stats.writes)})`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  private async writer(): Promise<void> {
    const max = this.o.maxFiles ?? 10_000;
    while (this.running && this.next < max) {
      const i = this.next++;
      const path = `${this.o.root}/f${i}`;
      const data = fileBytesFor(this.seed, i, this.o.fileBytes);
      try {
        await this.client.put(Readable.from([data]), path, { parents: true, replication: this.o.replication });
        this.acknowledged.set(path, sha(data));
        this.writes.ok(performance.now());
      } catch (err) {
        this.writes.failed(err);
      }
      await new Promise((r) => setTimeout(r, this.o.pauseMs ?? 20));
    }
  }

  private async reader(): Promise<void> {
    while (this.running) {
      const paths = [...this.acknowledged.keys()];
      if (paths.length > 0) {
        const path = paths[Math.floor(Math.random() * paths.length)]!;
        try {
          const got = sha(await readAll(this.client, path));
          if (got !== this.acknowledged.get(path)) this.wrongReads.push(path);
          this.reads.ok(performance.now());
        } catch (err) {
          this.reads.failed(err);
        }
      }
      await new Promise((r) => setTimeout(r, this.o.pauseMs ?? 20));
    }
  }

  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.loops);
  }

  /** Reads every acknowledged file back: the paths that are missing or not byte-exact (must be none). */
  async verifyAll(): Promise<{ checked: number; bad: string[] }> {
    const bad: string[] = [];
    for (const [path, hash] of this.acknowledged) {
      const got = await readAll(this.client, path).then(sha, (err: Error) => `error: ${err.message}`);
      if (got !== hash) bad.push(`${path}: ${got.startsWith('error') ? got : 'wrong bytes'}`);
    }
    return { checked: this.acknowledged.size, bad };
  }
}
