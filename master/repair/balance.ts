// Balancing: moves that bring servers whose use strays from the mean back toward it.
import type { PlannedCopy } from '../../common/protocol.js';
import { moveKeepsRule } from '../racks.js';
import { bump, type ScanContext } from './context.js';
import type { WantedChunks } from './wanted.js';

type MovableChunk = Omit<PlannedCopy, 'source' | 'timeoutMs'>;

/** The servers' use as this scan's moves change it: bytes held over capacity, and the mean. */
class Use {
  readonly mean: number;

  constructor(private readonly bytes: Map<string, number>, private readonly cap: Map<string, number>, private readonly threshold: number) {
    let totalBytes = 0, totalCap = 0;
    for (const [id, c] of cap) {
      totalBytes += bytes.get(id)!;
      totalCap += c;
    }
    this.mean = totalBytes / totalCap;
  }

  of(id: string): number {
    return this.bytes.get(id)! / this.cap.get(id)!;
  }

  over(id: string): boolean {
    return this.of(id) > this.mean * (1 + this.threshold);
  }

  under(id: string): boolean {
    return this.of(id) < this.mean * (1 - this.threshold);
  }

  /** Whether moving `len` bytes leaves the source at least as full as the target, so moves never oscillate. */
  improves(source: string, target: string, len: number): boolean {
    return (this.bytes.get(source)! - len) / this.cap.get(source)! >= (this.bytes.get(target)! + len) / this.cap.get(target)!;
  }

  move(source: string, target: string, len: number): void {
    this.bytes.set(source, this.bytes.get(source)! - len);
    this.bytes.set(target, this.bytes.get(target)! + len);
  }
}

/**
 * Balancing: while the fullest server is above the mean by more than the threshold (or the
 * emptiest below it), order a copy of one of its chunks to the emptiest, to be followed by a
 * delete of the original. Each move must leave the source at least as full as the target, so
 * moves never oscillate. Answers how many moves it ordered.
 */
export function* planMoves(ctx: ScanContext, wanted: WantedChunks): Generator<void, number> {
  const { registry, ledger, limits, load, util } = ctx;
  // Servers in service only: a suspect one (held restarting: down) can neither send nor take a move.
  const servers = registry.liveServers().filter((s) => util.has(s.id) && !registry.isSuspect(s.id));
  if (servers.length < 2 || limits.balanceThreshold <= 0) return 0;
  const cap = new Map(servers.map((s) => [s.id, s.capacityBytes]));
  const bytes = new Map(servers.map((s) => [s.id, util.get(s.id)! * s.capacityBytes]));
  for (const [h, list] of ledger.allFlights()) for (const f of list) {
    if (!f.moveFrom) continue;
    const len = wanted.get(h) ? ctx.state.chunks.lengthOf(h) ?? 0 : 0;
    if (bytes.has(f.target)) bytes.set(f.target, bytes.get(f.target)! + len);
    if (bytes.has(f.moveFrom)) bytes.set(f.moveFrom, bytes.get(f.moveFrom)! - len);
  }
  const use = new Use(bytes, cap, limits.balanceThreshold);
  if (use.mean <= 0) return 0;
  const free = (id: string) => (load.get(id) ?? 0) < limits.perServerCopies;
  let moves = 0;
  while (ledger.movesInFlight < limits.maxMovesInFlight && ledger.inFlightCount < limits.maxInFlight) {
    const byUse = servers.map((s) => s.id).filter(free).sort((a, b) => use.of(b) - use.of(a) || (a < b ? -1 : 1));
    const move = yield* pickMove(ctx, byUse, wanted, use);
    if (!move) break;
    const { source, target, chunk } = move;
    ledger.order(chunk.handle, { target, source, startedMs: ctx.now(), moveFrom: source }, { ...chunk, source: registry.addrOf(source)! });
    use.move(source, target, chunk.length);
    bump(load, source);
    bump(load, target);
    moves++;
  }
  return moves;
}

/**
 * The move that does the most good: from the fullest server that has a chunk some emptier
 * server lacks (and has room for), to the emptiest such server. One of the two must be past
 * the threshold, and the move must not leave the source emptier than the target. A pair
 * with nothing to move does not stop the search: the next pair is tried.
 */
function* pickMove(ctx: ScanContext, byUse: string[], wanted: WantedChunks, use: Use): Generator<void, { source: string; target: string; chunk: MovableChunk } | undefined> {
  for (let i = 0; i < byUse.length; i++) {
    const source = byUse[i]!;
    for (let j = byUse.length - 1; j > i; j--) {
      const target = byUse[j]!;
      if (!use.over(source) && !use.under(target)) continue;
      const fits = (len: number) => ctx.registry.freeBytes(target) >= len && use.improves(source, target, len);
      const chunk = yield* pickMovable(ctx, source, target, wanted, fits);
      if (chunk) return { source, target, chunk };
    }
  }
  return undefined;
}

/**
 * A healthy current-version chunk on `source` that `target` (alive) lacks, with nothing in
 * flight or queued for it. Its checks and the order that follows fall in one slice.
 */
function* pickMovable(ctx: ScanContext, source: string, target: string, wanted: WantedChunks, fits: (len: number) => boolean): Generator<void, MovableChunk | undefined> {
  const { state, registry, ledger } = ctx;
  for (const h of registry.handlesOn(source)) {
    if (ctx.work.due()) yield;
    const file = wanted.get(h);
    const version = state.chunks.versionOf(h);
    if (!file || version === undefined || ledger.flights(h) || ledger.deleteQueued(h) || !fits(state.chunks.lengthOf(h)!)) continue;
    if (!registry.isAlive(target) || registry.isSuspect(target)) continue; // it may have gone since the scan's list
    const live = registry.liveReplicas(h, version);
    // The source must hold the current version (an old one awaits garbage collection and cannot serve the copy).
    if (!live.some((r) => r.id === source) || live.some((r) => r.id === target)) continue;
    const good = live.filter((r) => !state.decommissioning.has(r.id));
    if (good.length < file.replication) continue;
    const rack = (id: string) => registry.rackOf(id); // rack rule: a move across racks must keep the spread
    if (!moveKeepsRule(good.map((r) => rack(r.id)), rack(source), rack(target), file.replication, ctx.rackSizes)) continue;
    return state.chunks.get(h)!;
  }
  return undefined;
}
