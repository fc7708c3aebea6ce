// Re-replication: a scan's census of the chunks it looks after, the trimming of surplus
// replicas, and copies ordered for under-replicated chunks, most urgent first.
import { inFullestRacks, isMisplaced, type MisplacedChunk } from '../racks.js';
import type { FileNode } from '../state/index.js';
import { bump, type ScanContext } from './context.js';
import { keepOf } from './limits.js';
import { sortInSteps } from './steps.js';
import type { WantedChunks } from './wanted.js';

/** An under-replicated chunk, as classified; what it needs is worked out again when it is ordered. */
interface Candidate { handle: number; version: number; good: number; file: FileNode }

/** What a census found: chunks short of replicas, chunks with more than they keep, and chunks that break the rack rule. */
export interface Census { candidates: Candidate[]; surplus: Candidate[]; misplaced: MisplacedChunk[] }

/**
 * Counts every wanted chunk's good replicas against its file's replication, and each live
 * server's use (ctx.util): bytes of finished files' replicas held over capacity (trimming and
 * balancing go by it). Bytes held come from the chunk table, not from reported disk use: servers
 * sharing one disk (a local cluster) still differ. Summed here, where each chunk's live replicas
 * are at hand anyway.
 */
export function* census(ctx: ScanContext, wanted: WantedChunks): Generator<void, Census> {
  const { state, registry, decom, scan } = ctx;
  for (const id of decom) scan.decommissionRemaining[id] = 0;
  const candidates: Candidate[] = [];
  const surplus: Candidate[] = [];
  const misplaced: MisplacedChunk[] = []; // rack rule
  const measured = registry.liveServers().filter((s) => !decom.has(s.id) && s.capacityBytes > 0);
  const held = new Map(measured.map((s) => [s.id, 0]));
  for (const part of wanted.parts()) for (const [h, file] of part) {
    if (ctx.work.due()) yield;
    const version = state.chunks.versionOf(h);
    if (version === undefined) continue; // its file was deleted since the walk
    const live = registry.liveReplicas(h, version);
    const good = live.filter((r) => !decom.has(r.id));
    const length = state.chunks.lengthOf(h)!;
    for (const r of live) {
      const bytes = held.get(r.id);
      if (bytes !== undefined) held.set(r.id, bytes + length);
    }
    const pending = ctx.ledger.flights(h)?.length ?? 0;
    if (good.length < file.replication) {
      // A draining server that died still counts its replicas: it is not safe to remove.
      for (const id of registry.holders(h, version)) if (decom.has(id)) scan.decommissionRemaining[id]!++;
    } else registry.clearCorrupt(h);
    if (live.length === 0) {
      ctx.ledger.noteLost(h, version);
      scan.missing++;
      continue;
    }
    ctx.ledger.noteFound(h, live.length);
    if (good.length < file.replication) {
      scan.underReplicated++;
      if (file.replication - good.length - pending > 0) candidates.push({ handle: h, version, good: good.length, file });
    } else if (settled(registry, good) > keepOf(ctx.limits, file) && pending === 0 && !ctx.ledger.deleteQueued(h)) {
      surplus.push({ handle: h, version, good: good.length, file });
    } else if (pending === 0 && !ctx.ledger.deleteQueued(h) && ctx.rackSizes.size > 1 && isMisplaced(good.map((r) => registry.rackOf(r.id)), file.replication, ctx.rackSizes)) {
      misplaced.push({ handle: h, replication: file.replication, chunkSizeBytes: file.chunkSizeBytes }); // rack rule
    }
  }
  ctx.util = new Map(measured.map((s) => [s.id, held.get(s.id)! / s.capacityBytes]));
  // Corrupt reports of chunks that no longer exist (their file was deleted) are history.
  for (const h of registry.corruptHandles()) if (!state.chunks.has(h)) registry.clearCorrupt(h);
  return { candidates, surplus, misplaced };
}

/**
 * Replicas on servers not suspect. A suspect server's replica counts against copies (a server held
 * restarting may be down for minutes, and its return must cost none) but never makes a chunk
 * surplus: trimming a replica elsewhere would leave fewer in service than its replication until
 * that server is back, or for good if it never comes.
 */
function settled(registry: ScanContext['registry'], replicas: readonly { id: string }[]): number {
  let n = 0;
  for (const r of replicas) if (!registry.isSuspect(r.id)) n++;
  return n;
}

/** Queues the delete of one surplus replica per chunk, from the fullest server. */
export function* trimSurplus(ctx: ScanContext, surplus: Candidate[]): Generator<void> {
  const { state, registry, ledger, decom, util } = ctx;
  for (const c of surplus) {
    if (ctx.work.due()) yield;
    // As things are now: since it was counted, the chunk may have lost a replica or its file gained replication.
    if (state.chunks.versionOf(c.handle) !== c.version || ledger.flights(c.handle) || ledger.deleteQueued(c.handle)) continue;
    const good = registry.liveReplicas(c.handle, c.version).filter((r) => !decom.has(r.id));
    if (settled(registry, good) <= keepOf(ctx.limits, c.file)) continue;
    // One surplus replica per scan and chunk, from the fullest disk (then the server holding the
    // most, as servers sharing a disk report the same free space), in the racks holding the most of
    // it (rack rule): reports confirm it before the next.
    const trimmable = good.filter((r) => !registry.isSuspect(r.id)); // a held server's delete could not run, and would block the chunk's trim
    const fullest = inFullestRacks(trimmable.map((r) => ({ ...r, rack: registry.rackOf(r.id) }))).sort((a, b) => registry.freeRatio(a.id) - registry.freeRatio(b.id)
      || (util.get(b.id) ?? 0) - (util.get(a.id) ?? 0) || (a.id < b.id ? -1 : 1))[0];
    if (!fullest) continue;
    ledger.queueDelete(fullest.id, c.handle, { server: fullest.id, version: c.version, file: c.file });
    ctx.scan.surplusDeletes++;
  }
}

/** Whether repair still has work: copies waiting for a free slot, or chunks being repaired. */
export interface Backlog { waitingForSlots: number; repairing: number }

/**
 * Orders copies for under-replicated chunks, most urgent (fewest good replicas) first, within
 * the per-server and cluster-wide limits. Balancing waits while repair has work under way or
 * waiting for a free slot: moves would take disk and network from the copies that matter. (A
 * chunk that cannot be placed at all, say replication above the live server count, does not
 * hold balancing back.)
 */
export function* orderCopies(ctx: ScanContext, candidates: Candidate[]): Generator<void, Backlog> {
  const urgent = yield* sortInSteps(candidates, (a, b) => a.good - b.good || a.handle - b.handle, ctx.work.step);
  const backlog: Backlog = { waitingForSlots: 0, repairing: ctx.ledger.repairingCount() };
  // With every live server busy, no chunk left can have a source: the rest all wait.
  const someFree = () => ctx.registry.liveServers().some((s) => (ctx.load.get(s.id) ?? 0) < ctx.limits.perServerCopies);
  let free = someFree();
  for (const c of urgent) {
    if (ctx.work.due()) {
      yield;
      free = someFree();
    }
    if (ctx.ledger.inFlightCount >= ctx.limits.maxInFlight || !free) {
      backlog.waitingForSlots++;
      break;
    }
    if (orderChunk(ctx, c, backlog) > 0) free = someFree();
  }
  return backlog;
}

/** Orders the copies one chunk still needs, as things are now; answers how many it ordered. */
function orderChunk(ctx: ScanContext, c: Candidate, backlog: Backlog): number {
  const { state, registry, ledger, limits, load, decom } = ctx;
  // As things are now: the chunk may be gone, re-versioned or repaired since it was counted.
  if (state.chunks.versionOf(c.handle) !== c.version) return 0;
  const live = registry.liveReplicas(c.handle, c.version);
  const need = c.file.replication - live.filter((r) => !decom.has(r.id)).length - (ledger.flights(c.handle)?.length ?? 0);
  if (live.length === 0 || need <= 0) return 0;
  const chunk = state.chunks.get(c.handle)!;
  let ordered = 0;
  for (let k = 0; k < need; k++) {
    if (ledger.inFlightCount >= limits.maxInFlight) {
      backlog.waitingForSlots++;
      break;
    }
    // Any live replica in service can be the source, a decommissioning one included (HDFS
    // prefers those); not a suspect server's: one held restarting is down.
    const source = live
      .filter((r) => (load.get(r.id) ?? 0) < limits.perServerCopies && !registry.isSuspect(r.id))
      .sort((a, b) => (load.get(a.id) ?? 0) - (load.get(b.id) ?? 0))[0];
    if (!source) {
      backlog.waitingForSlots++;
      break;
    }
    const busy = [...load].filter(([, n]) => n >= limits.perServerCopies).map(([id]) => id);
    // Not a server about to delete this very chunk (a surplus delete queued before it fell short).
    const deleting = ledger.deleteQueued(c.handle) ? [ledger.deletingOn(c.handle)!] : [];
    const exclude = [...live.map((r) => r.id), ...(ledger.flights(c.handle) ?? []).map((f) => f.target), ...busy, ...deleting, ...decom];
    const holders = [...live.filter((r) => !decom.has(r.id)).map((r) => r.id), ...(ledger.flights(c.handle) ?? []).map((f) => f.target)]; // rack rule
    const [target] = registry.place(1, exclude, c.file.chunkSizeBytes, { holders, replication: c.file.replication });
    if (!target) {
      if (busy.length > 0) backlog.waitingForSlots++;
      break;
    }
    ledger.order(c.handle, { target: target.id, source: source.id, startedMs: ctx.now() }, { ...chunk, source: source.addr });
    bump(load, source.id);
    bump(load, target.id);
    ctx.scan.ordered++;
    backlog.repairing++;
    ordered++;
  }
  return ordered;
}
