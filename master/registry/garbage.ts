// Garbage collection's memory: per server, where its sweep stands and since when each garbage replica is known.
import type { LocationTable } from './location-table.js';

/** Replicas a garbage check looks at per heartbeat; a larger server is swept over several. */
export const GARBAGE_CHECKS_PER_CALL = 32_768;

/** A server's garbage sweep: where it stands, and when each garbage replica was first seen. */
interface GarbageSweep { cursor: number; earlier: Map<number, number>; current: Map<number, number> }

/** What one garbage check needs to know besides the server. */
export interface GarbageCheck {
  nowMs: number;
  /** The chunk table's version of a handle (undefined: no file or write references it). */
  versionOf: (handle: number) => number | undefined;
  graceMs: number;
  /** At most this many replicas are answered. */
  limit: number;
  /** Handles at or above this were never issued by this namespace. */
  issuedBelow: number;
}

export class GarbageSweeps {
  /** server id → where its garbage sweep stands, and when each garbage replica was first seen. */
  private readonly sweeps = new Map<string, GarbageSweep>();

  constructor(private readonly locations: LocationTable) {}

  /**
   * The next part of `serverId`'s sweep: replicas garbage for at least the grace period. The
   * caller forgets them from the locations. See Registry.takeGarbage.
   */
  take(serverId: string, serverIndex: number, check: GarbageCheck): number[] {
    const { nowMs: now, versionOf, graceMs, limit, issuedBelow } = check;
    let sweep = this.sweeps.get(serverId);
    if (!sweep) this.sweeps.set(serverId, (sweep = { cursor: 0, earlier: new Map(), current: new Map() }));
    const { earlier, current } = sweep;
    const ready: number[] = [];
    // A call looks at the next GARBAGE_CHECKS_PER_CALL replicas, not all of them: a server with
    // a million replicas took 0.1 s of the leader's loop per heartbeat. Garbage seen in this
    // sweep is in `current`; what the sweep has not reached yet keeps its time from `earlier`.
    sweep.cursor = this.locations.forEachOnFrom(serverIndex, sweep.cursor, GARBAGE_CHECKS_PER_CALL, (h, have) => {
      const want = versionOf(h);
      if (want !== undefined && have >= want) return; // referenced (perhaps again, as a reinstated write): not garbage
      // A handle this namespace never issued is not its garbage: another cluster's chunk, or a
      // master that lost its data. Deleting it would destroy what this master cannot know.
      if (h >= issuedBelow) return;
      const since = current.get(h) ?? earlier.get(h) ?? now;
      if (now - since >= graceMs && ready.length < limit) ready.push(h);
      else current.set(h, since);
    });
    for (const h of ready) current.delete(h);
    // At the end of a sweep, what it did not see again (no longer held, referenced again) drops out.
    if (sweep.cursor === 0) this.sweeps.set(serverId, { cursor: 0, earlier: current, current: new Map() });
    return ready;
  }

  /** The server's replicas were forgotten (it re-registered, or is gone): its sweep starts over. */
  forget(serverId: string): void {
    this.sweeps.delete(serverId);
  }

  clear(): void {
    this.sweeps.clear();
  }
}
