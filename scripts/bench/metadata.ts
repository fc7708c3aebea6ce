// Small files and metadata: create, stat, list and delete N empty and N 4 KiB files, one at a time
// and with many in flight, through the client library in this process (as scripts/metabench.ts
// does: one DfsClient, a session per call in flight). An empty file is one create on the master;
// a 4 KiB one too, its bytes inline in the masters' state (common/inline.ts) where the leader
// keeps files inline; `4KiB-chunks` writes it as chunks (inline: false, as `--inline-max-bytes 0`
// does): create, an allocation, a three-way pipelined chunk write and complete.
import { Readable } from 'node:stream';
import { randomBytes } from 'node:crypto';
import type { ClusterContext } from './context.js';
import { addRatios, figureFromOps, type Figure } from './report.js';
import { timeOps } from './stats.js';

export interface MetadataOptions extends ClusterContext {
  files: number;
  inflight: number;
}

/** Files per directory: lists return this many entries, and no directory grows huge. */
export const FILES_PER_DIR = 100;
export const SMALL_FILE_BYTES = 4096;

type Op = 'create' | 'stat' | 'list' | 'delete';

interface Variant { tag: 'empty' | '4KiB' | '4KiB-chunks'; sizeBytes: number; inline?: false }

function dirOf(base: string, i: number): string {
  return `${base}/d${Math.floor(i / FILES_PER_DIR)}`;
}

function fileOf(base: string, i: number): string {
  return `${dirOf(base, i)}/f${i}`;
}

/** One operation on file i; each checks its answer, so a wrong reply fails the benchmark. */
function operation(o: MetadataOptions, v: Variant, base: string, op: Op, content: Buffer): (i: number) => Promise<unknown> {
  switch (op) {
    case 'create':
      return (i) => o.client.put(Readable.from(v.sizeBytes > 0 ? [content] : []), fileOf(base, i), { parents: true, replication: o.replication, ...(v.inline === false ? { inline: false } : {}) });
    case 'stat':
      return async (i) => {
        const s = await o.client.stat(fileOf(base, i));
        if (s.size !== v.sizeBytes || s.state !== 'complete') throw new Error(`stat ${s.path}: size ${s.size}, ${s.state}; expected ${v.sizeBytes}, complete`);
      };
    case 'list':
      return async (i) => {
        const l = await o.client.list(dirOf(base, i));
        if (l.entries.length === 0) throw new Error(`list ${l.path}: empty`);
      };
    case 'delete':
      return (i) => o.client.remove(fileOf(base, i));
  }
}

/** Create, stat, list and delete, for each kind of file, sequentially and with `inflight` at once. */
export async function measureMetadata(o: MetadataOptions): Promise<Figure[]> {
  const figures: Figure[] = [];
  const content = randomBytes(SMALL_FILE_BYTES);
  const variants: Variant[] = [{ tag: 'empty', sizeBytes: 0 }, { tag: '4KiB', sizeBytes: SMALL_FILE_BYTES }, { tag: '4KiB-chunks', sizeBytes: SMALL_FILE_BYTES, inline: false }];
  for (const v of variants) {
    for (const inflight of [...new Set([1, o.inflight])]) {
      const base = `${o.root}/meta/${v.tag}-${inflight}`;
      const mode = inflight === 1 ? 'sequential' : `${inflight} in flight`;
      for (const op of ['create', 'stat', 'list', 'delete'] as const) {
        const phase = await timeOps(o.files, inflight, operation(o, v, base, op, content));
        const fig = figureFromOps(`meta.${op}.${v.tag}.${inflight}`, `${op} ${v.tag} files, ${mode}`, phase, {
          details: { fileBytes: v.sizeBytes, filesPerDir: FILES_PER_DIR },
        });
        figures.push(addRatios(fig, o.ceilings, [`ceiling.http-rtt-${inflight}`]));
        o.log(`${fig.label}: ${phase.opsPerSec.toFixed(0)} ops/s, p50 ${phase.p50Ms.toFixed(1)} ms, p99 ${phase.p99Ms.toFixed(1)} ms`);
      }
      await o.client.remove(base, true);
    }
  }
  return figures;
}
