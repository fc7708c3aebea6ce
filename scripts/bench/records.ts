// Record append and snapshot (issue 19), for `npm run bench` (section `records`) and
// scripts/recordbench.ts: records appended to one file by several clients with one record out
// each (each record an append of its own; appends to one file take turns on the leader), and by
// one client with many out (which it sends together: cli/record-batch.ts), for 4 KiB and 64 KiB
// records; then a snapshot of a tree of empty files, timed beside a mkdir's latency.
import { readFileSync } from 'node:fs';
import { Readable } from 'node:stream';
import { DfsClient } from '../../cli/client.js';
import type { ClusterContext } from './context.js';
import { figureFromRuns, type Figure } from './report.js';
import { timeOps } from './stats.js';

export const RECORD_SIZES = [4 * 1024, 64 * 1024] as const;
/** Records one client has out at once in the group-commit phase. */
export const ONE_CLIENT_IN_FLIGHT = 64;

export interface RecordPhase { recordBytes: number; records: number; seconds: number; recordsPerSec: number; mibPerSec: number; who: string }

/**
 * `records` records of `size` bytes appended to the new file `path`: by `clients` at once, each
 * with one record out; or, `inFlight` given, by the first client alone with that many out.
 */
export async function recordPhase(clients: DfsClient[], path: string, records: number, size: number, inFlight?: number): Promise<RecordPhase> {
  await clients[0]!.put(Readable.from([]), path, { parents: true });
  const data = Buffer.alloc(size, 0x61);
  let next = 0;
  const start = performance.now();
  const writers = inFlight ? Array.from({ length: inFlight }, () => clients[0]!) : clients;
  await Promise.all(writers.map(async (c) => {
    while (next < records) {
      next++;
      await c.recordAppend(path, data);
    }
  }));
  const seconds = (performance.now() - start) / 1000;
  const who = inFlight ? `1 client, ${inFlight} in flight` : `${clients.length} clients`;
  return { recordBytes: size, records, seconds, recordsPerSec: records / seconds, mibPerSec: (records * size) / seconds / 1024 / 1024, who };
}

export function describePhase(r: RecordPhase): string {
  return `record append, ${r.who}, ${String(r.recordBytes / 1024).padStart(2)} KiB records: ${r.records} in ${r.seconds.toFixed(2)} s, ${r.recordsPerSec.toFixed(1)} records/s, ${r.mibPerSec.toFixed(2)} MiB/s`;
}

/** A process's resident memory in MiB, from /proc (undefined where there is none). */
export function rssMiB(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : undefined;
  } catch {
    return undefined;
  }
}

export interface SnapshotPhase { files: number; filesPerSec: number; snapshotMs: number; mkdirP50Ms: number; mkdirP99Ms: number; masterRssBeforeMiB?: number; masterRssAfterMiB?: number }

/** A tree of `files` empty files (100 folders) under `base`, snapshotted once; a mkdir's latency beside it, and the leader's memory before and after when its pid is known. */
export async function snapshotPhase(client: DfsClient, base: string, files: number, masterPid?: number): Promise<SnapshotPhase> {
  const made = await timeOps(files, 64, (i) => client.put(Readable.from([]), `${base}/tree/d${i % 100}/f${i}`, { parents: true }));
  const mkdir = await timeOps(200, 1, (i) => client.mkdir(`${base}/mk/d${i}`, true));
  const masterRssBeforeMiB = rssMiB(masterPid);
  const start = performance.now();
  await client.snapshot(`${base}/tree`, `${base}/tree-snap`);
  const snapshotMs = performance.now() - start;
  return { files, filesPerSec: made.opsPerSec, snapshotMs, mkdirP50Ms: mkdir.p50Ms, mkdirP99Ms: mkdir.p99Ms, masterRssBeforeMiB, masterRssAfterMiB: rssMiB(masterPid) };
}

export interface RecordsOptions extends ClusterContext {
  masters: string[];
  records: number;
  clients: number;
  /** Files in the snapshotted tree. */
  files: number;
  /** The leader's pid, on a local cluster: its memory before and after the snapshot. */
  masterPid?: number;
}

/** The bench section: records/s of each phase, and the snapshot's time beside a mkdir's. */
export async function measureRecords(o: RecordsOptions): Promise<Figure[]> {
  const clients = Array.from({ length: o.clients }, () => new DfsClient(o.masters));
  const figures: Figure[] = [];
  for (const inFlight of [undefined, ONE_CLIENT_IN_FLIGHT]) {
    for (const size of RECORD_SIZES) {
      const r = await recordPhase(clients, `${o.root}/records/r${size}${inFlight ? '-batched' : ''}`, o.records, size, inFlight);
      o.log(describePhase(r));
      const id = `records.${inFlight ? `1client-${inFlight}` : `${o.clients}clients`}.${size / 1024}KiB`;
      figures.push(figureFromRuns(id, `record append, ${r.who}, ${size / 1024} KiB`, 'ops/s', [r.recordsPerSec], { details: { records: r.records, recordBytes: size, mibPerSec: r.mibPerSec } }));
    }
  }
  const s = await snapshotPhase(o.client, `${o.root}/snap`, o.files, o.masterPid);
  o.log(`snapshot of a ${s.files}-file tree: ${s.snapshotMs.toFixed(1)} ms; a mkdir: p50 ${s.mkdirP50Ms.toFixed(2)} ms`);
  const details: Record<string, number> = { files: s.files, mkdirP50Ms: s.mkdirP50Ms };
  if (s.masterRssBeforeMiB !== undefined && s.masterRssAfterMiB !== undefined) Object.assign(details, { masterRssBeforeMiB: s.masterRssBeforeMiB, masterRssAfterMiB: s.masterRssAfterMiB });
  figures.push(figureFromRuns('records.snapshot', `snapshot of a ${s.files}-file tree`, 'ms', [s.snapshotMs], { details }));
  return figures;
}
