// What a benchmark run reports: every measured figure, the same shape in the printed table and in
// the JSON file, with its ratio to the machine's own ceiling so that machines can be compared.
import type { CacheState } from './source.js';
import { summarize, type OpsPhase } from './stats.js';

export type Unit = 'MiB/s' | 'ops/s' | 'ms' | 'bytes/file' | 'files/s';

export interface Figure {
  /** Stable across runs and machines, e.g. `upload.4x256MiB`: what two JSON files are joined on. */
  id: string;
  label: string;
  unit: Unit;
  /** The median of `runs`; min and max show the spread. */
  median: number;
  min: number;
  max: number;
  runs: number[];
  /** Per-operation latency, for operation rates. */
  p50Ms?: number;
  p99Ms?: number;
  /** Reads: whether the page cache was emptied first ('warm' when the machine did not allow it). */
  cache?: CacheState;
  /** Ceiling id → this figure's median divided by that ceiling's median. */
  ratios: Record<string, number>;
  /** Anything else worth keeping: sizes, counts, how it was measured. */
  details?: Record<string, number | string | boolean>;
}

export type SectionName = 'ceilings' | 'upload' | 'download' | 'metadata' | 'records' | 'faults' | 'scale';
export const SECTIONS: SectionName[] = ['ceilings', 'upload', 'download', 'metadata', 'records', 'faults', 'scale'];

export function figureFromRuns(id: string, label: string, unit: Unit, runs: number[], extra: Partial<Figure> = {}): Figure {
  const { median, min, max } = summarize(runs);
  return { id, label, unit, median, min, max, runs, ratios: {}, ...extra };
}

export function figureFromOps(id: string, label: string, phase: OpsPhase, extra: Partial<Figure> = {}): Figure {
  return figureFromRuns(id, label, 'ops/s', [phase.opsPerSec], {
    p50Ms: phase.p50Ms, p99Ms: phase.p99Ms, ...extra,
    details: { ops: phase.ops, inflight: phase.inflight, elapsedMs: Math.round(phase.elapsedMs), maxMs: phase.maxMs, ...extra.details },
  });
}

/** Adds `figure.median / ceiling.median` for each named ceiling that was measured. */
export function addRatios(figure: Figure, ceilings: Figure[], ids: string[]): Figure {
  for (const id of ids) {
    const c = ceilings.find((x) => x.id === id);
    if (c && c.median > 0) figure.ratios[id] = figure.median / c.median;
  }
  return figure;
}

// ---- the printed table ----

function num(v: number): string {
  if (v >= 100) return v.toFixed(0);
  if (v >= 10) return v.toFixed(1);
  return v.toFixed(2);
}

function ratioText(f: Figure): string {
  // Two significant digits below 0.1, so a small ratio does not print as 0.00.
  return Object.entries(f.ratios).map(([id, r]) => `${r >= 0.1 ? r.toFixed(2) : r.toPrecision(2)}× ${id.replace(/^ceiling\./, '')}`).join(', ');
}

function row(f: Figure): string[] {
  const spread = f.runs.length > 1 ? `${num(f.min)}–${num(f.max)}` : '';
  const latency = f.p50Ms !== undefined ? `${num(f.p50Ms)} / ${num(f.p99Ms!)}` : '';
  return [f.label + (f.cache === 'warm' ? ' (warm)' : ''), num(f.median), spread, f.unit, latency, ratioText(f)];
}

const HEADER = ['measurement', 'median', 'min–max', 'unit', 'p50 / p99 ms', 'ratio of ceiling'];

/** Plain text, one block per section, columns aligned. */
export function renderTable(sections: Partial<Record<SectionName, Figure[]>>): string {
  const blocks: { title: string; rows: string[][] }[] = SECTIONS.filter((s) => sections[s]?.length).map((s) => ({ title: s, rows: sections[s]!.map(row) }));
  const all = [HEADER, ...blocks.flatMap((b) => b.rows)];
  const widths = HEADER.map((_, c) => Math.max(...all.map((r) => r[c]!.length)));
  const line = (r: string[]) => r.map((cell, c) => (c === 0 || c >= 3 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join('  ').trimEnd();
  const out = [line(HEADER), widths.map((w) => '-'.repeat(w)).join('  ')];
  for (const b of blocks) out.push(`[${b.title}]`, ...b.rows.map(line));
  return out.join('\n');
}
