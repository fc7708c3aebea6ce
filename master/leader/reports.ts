// Paged chunk reports, assembled until complete. A chunkserver with more chunks than one body
// holds registers in pages (as HDFS and QFS split block reports); the leader applies the report
// only once its final page is in. Until then the server's replicas are what they were before
// (none, for a server the leader does not know): a partial report never tells repair a replica
// is missing or garbage collection that one is unreferenced, since it tells them nothing at all.
import { MAX_PENDING_REPORTS, MAX_REPORT_CHUNKS, assert } from '../../common/limits.js';
import type { RegisterRequest, ReportedChunk } from '../../common/protocol.js';

interface PendingReport {
  id: string;
  addr: string;
  /** The page expected next. */
  nextPage: number;
  chunks: ReportedChunk[];
  lastPageMs: number;
}

/**
 * What a page did: `more` (kept, send the next), `complete` (the whole report, to apply),
 * `restart` (unknown report, a page out of order, or too many chunks: send the report again
 * from page 0), `busy` (too many reports being assembled: try again later).
 */
export type PageOutcome =
  | { kind: 'more' }
  | { kind: 'complete'; report: RegisterRequest }
  | { kind: 'restart'; why: string }
  | { kind: 'busy' };

export class ReportAssembler {
  private readonly pending = new Map<string, PendingReport>();

  /** `staleMs`: a report with no page for this long is dropped (its server died or gave up). */
  constructor(private readonly staleMs: number) {}

  get size(): number {
    return this.pending.size;
  }

  /** Takes one page of a server's report at `nowMs`. */
  add(req: RegisterRequest, nowMs: number): PageOutcome {
    this.dropStale(nowMs);
    const page = req.report;
    if (!page) {
      this.pending.delete(req.id);
      return { kind: 'complete', report: req };
    }
    if (page.page === 0) return this.start(req, nowMs);
    const p = this.pending.get(req.id);
    if (!p || p.id !== page.id || p.addr !== req.addr) return { kind: 'restart', why: 'no such report being assembled' };
    // The page before again: a call retried after the leader took it. Taken once only.
    if (page.page === p.nextPage - 1 && !page.final) return { kind: 'more' };
    if (page.page !== p.nextPage) {
      this.pending.delete(req.id);
      return { kind: 'restart', why: `page ${page.page} arrived where page ${p.nextPage} was expected` };
    }
    return this.append(p, req, nowMs);
  }

  private start(req: RegisterRequest, nowMs: number): PageOutcome {
    this.pending.delete(req.id);
    if (this.pending.size >= MAX_PENDING_REPORTS) return { kind: 'busy' };
    const p: PendingReport = { id: req.report!.id, addr: req.addr, nextPage: 0, chunks: [], lastPageMs: nowMs };
    this.pending.set(req.id, p);
    return this.append(p, req, nowMs);
  }

  private append(p: PendingReport, req: RegisterRequest, nowMs: number): PageOutcome {
    if (p.chunks.length + req.chunks.length > MAX_REPORT_CHUNKS) {
      this.pending.delete(req.id);
      return { kind: 'restart', why: `a report holds at most ${MAX_REPORT_CHUNKS} chunks` };
    }
    for (const c of req.chunks) p.chunks.push(c);
    p.nextPage++;
    p.lastPageMs = nowMs;
    if (!req.report!.final) return { kind: 'more' };
    this.pending.delete(req.id);
    assert(p.chunks.length <= MAX_REPORT_CHUNKS, 'an assembled report is within MAX_REPORT_CHUNKS');
    // The final page's stats are the newest; the chunks are every page's.
    return { kind: 'complete', report: { ...req, chunks: p.chunks } };
  }

  private dropStale(nowMs: number): void {
    for (const [id, p] of this.pending) if (nowMs - p.lastPageMs > this.staleMs) this.pending.delete(id);
  }

  /** Whether `serverId` has a report being assembled. */
  assembling(serverId: string): boolean {
    return this.pending.has(serverId);
  }

  clear(): void {
    this.pending.clear();
  }
}
