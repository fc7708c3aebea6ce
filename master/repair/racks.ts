// The rack rule in a repair scan: one move for each misplaced chunk that limits allow
// (master/racks.ts decides which replica and where), ordered as balancing's moves are: copy
// first, and the replica in the overfull rack deleted once the copy is reported.
import { planRackFixes, type MisplacedChunk } from '../racks.js';
import { bump, type ScanContext } from './context.js';

/** Orders moves for misplaced chunks, within the moves' and copies' limits; answers how many. */
export function orderRackMoves(ctx: ScanContext, chunks: readonly MisplacedChunk[]): number {
  const { state, registry, ledger, limits, load, decom } = ctx;
  const busy = (id: string) => (load.get(id) ?? 0) >= limits.perServerCopies;
  return planRackFixes(chunks, {
    replicas: (h) => {
      const version = state.chunks.versionOf(h);
      if (version === undefined || ledger.flights(h) || ledger.deleteQueued(h)) return [];
      return registry.liveReplicas(h, version).filter((r) => !decom.has(r.id)).map((r) => ({ id: r.id, rack: registry.rackOf(r.id) }));
    },
    canStart: () => ledger.movesInFlight < limits.maxMovesInFlight && ledger.inFlightCount < limits.maxInFlight,
    free: (id) => !busy(id),
    place: (c, holders, exclude) => registry.place(1, [...exclude, ...decom, ...[...load.keys()].filter(busy)], c.chunkSizeBytes, {
      holders: holders.map((r) => r.id), replication: c.replication, strict: true,
    })[0]?.id,
    order: (h, source, target) => {
      ledger.order(h, { target, source, startedMs: ctx.now(), moveFrom: source }, { ...state.chunks.get(h)!, source: registry.addrOf(source)! });
      bump(load, source);
      bump(load, target);
    },
  });
}
