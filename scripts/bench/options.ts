// The command line of scripts/bench.ts.
import { parseArgs } from 'node:util';
import { parseAddrList, parseSize } from '../../common/config.js';
import { SECTIONS, type SectionName } from './report.js';

export const USAGE = `usage: npm run bench -- [options]   (or: node dist/scripts/bench.js [options])

  --size 1GiB          bytes per upload/download run, and for every ceiling
  --clients 4          concurrent clients of the second transfer case; each moves size/clients
  --runs 3             runs per transfer and ceiling (the median is reported, with min and max)
  --replication 3      replicas per chunk of every file written
  --chunk-size 64MiB   chunk size of the fresh local cluster
  --files 10000        files per metadata phase (create, stat, list, delete)
  --inflight 64        operations in flight in the concurrent metadata phases
  --records 400        records per record-append phase (8 clients, then 1 client with 64 out; 4 KiB and 64 KiB);
                       the snapshotted tree has --files files
  --scale [1000000]    files for the master memory measurement; 0 skips it
  --faults             also kill -9 the master leader and a chunkserver (local cluster only)
  --only a,b           sections to run: ${SECTIONS.join(', ')}
  --masters h:p,...    measure a running cluster instead of a fresh local one
  --warm               do not drop the page cache before reads
  --keep               if the run fails, keep its folder (the cluster's data and logs)
  --base-port P        ports of the fresh cluster: masters on P+i, chunkservers on P+100+i (default: free ones)
  --json FILE          where the results go (default: bench-results/bench-<time>.json)`;

export interface BenchOptions {
  sizeBytes: number;
  clients: number;
  runs: number;
  replication: number;
  /** Undefined with --masters: the running cluster's own chunk size applies. */
  chunkSizeBytes?: number;
  files: number;
  inflight: number;
  records: number;
  scaleFiles: number;
  sections: Set<SectionName>;
  masters?: string[];
  dropCaches: boolean;
  /** Keep the work folder when the run fails. */
  keep: boolean;
  basePort?: number;
  jsonFile?: string;
}

export class UsageError extends Error {}

const DEFAULT_SCALE_FILES = 1_000_000;

function wholeNumber(raw: string, flag: string, min: number): number {
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < min) throw new UsageError(`${flag} must be a whole number ≥ ${min}`);
  return n;
}

function size(raw: string, flag: string): number {
  try {
    const n = parseSize(raw, flag);
    if (n < 1) throw new Error(`${flag} must be at least 1 byte`);
    return n;
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

/** `--scale` may stand alone (the default count): give it its value so parseArgs accepts it. */
function withScaleValue(argv: string[]): string[] {
  return argv.flatMap((a, i) => (a === '--scale' && !/^\d+$/.test(argv[i + 1] ?? '') ? [`--scale=${DEFAULT_SCALE_FILES}`] : [a]));
}

function sectionsFrom(only: string | undefined, faults: boolean, scaleFiles: number): Set<SectionName> {
  if (only === undefined) return new Set(SECTIONS.filter((s) => (s !== 'faults' || faults) && (s !== 'scale' || scaleFiles > 0)));
  const picked = only.split(',').map((s) => s.trim()).filter(Boolean);
  for (const s of picked) if (!(SECTIONS as string[]).includes(s)) throw new UsageError(`--only: unknown section '${s}' (sections: ${SECTIONS.join(', ')})`);
  return new Set(picked as SectionName[]);
}

export function parseOptions(argv: string[]): BenchOptions | 'help' {
  let parsed;
  try {
    parsed = parseArgs({
      args: withScaleValue(argv),
      options: {
        size: { type: 'string', default: '1GiB' },
        clients: { type: 'string', default: '4' },
        runs: { type: 'string', default: '3' },
        replication: { type: 'string', default: '3' },
        'chunk-size': { type: 'string' },
        files: { type: 'string', default: '10000' },
        inflight: { type: 'string', default: '64' },
        records: { type: 'string', default: '400' },
        scale: { type: 'string', default: String(DEFAULT_SCALE_FILES) },
        faults: { type: 'boolean', default: false },
        only: { type: 'string' },
        masters: { type: 'string' },
        warm: { type: 'boolean', default: false },
        keep: { type: 'boolean', default: false },
        'base-port': { type: 'string' },
        json: { type: 'string' },
        help: { type: 'boolean', short: 'h', default: false },
      },
    });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const a = parsed.values;
  if (a.help) return 'help';
  const scaleFiles = wholeNumber(a.scale, '--scale', 0);
  const o: BenchOptions = {
    sizeBytes: size(a.size, '--size'),
    clients: wholeNumber(a.clients, '--clients', 1),
    runs: wholeNumber(a.runs, '--runs', 1),
    replication: wholeNumber(a.replication, '--replication', 1),
    chunkSizeBytes: a['chunk-size'] === undefined ? undefined : size(a['chunk-size'], '--chunk-size'),
    files: wholeNumber(a.files, '--files', 1),
    inflight: wholeNumber(a.inflight, '--inflight', 1),
    records: wholeNumber(a.records, '--records', 1),
    scaleFiles,
    sections: sectionsFrom(a.only, a.faults, scaleFiles),
    dropCaches: !a.warm,
    keep: a.keep,
    basePort: a['base-port'] === undefined ? undefined : wholeNumber(a['base-port'], '--base-port', 1024),
    jsonFile: a.json,
  };
  if (a.masters !== undefined) {
    try {
      o.masters = parseAddrList(a.masters, '--masters');
    } catch (err) {
      throw new UsageError((err as Error).message);
    }
    if (o.sections.has('faults')) throw new UsageError('--faults kills processes, so it needs the fresh local cluster the benchmark starts itself: drop --masters');
    if (o.chunkSizeBytes !== undefined) throw new UsageError('--chunk-size sets up a fresh cluster; a running one (--masters) has its own');
    if (o.basePort !== undefined) throw new UsageError('--base-port is for the fresh local cluster, not with --masters');
  } else {
    o.chunkSizeBytes ??= 64 * 1024 * 1024;
  }
  if (o.sizeBytes < o.clients) throw new UsageError('--size must be at least one byte per client');
  if (o.replication > 4 && !o.masters) throw new UsageError('--replication: the fresh local cluster has 4 chunkservers');
  return o;
}
