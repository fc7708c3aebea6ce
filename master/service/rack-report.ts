// What fsck and status say about racks: misplaced chunks and the cluster's failure tolerance,
// from the registry's live replicas and the rules in master/racks.ts.
import type { ClusterTolerance, FsckReply } from '../../common/protocol.js';
import { isMisplaced, ToleranceCounter } from '../racks.js';
import type { Registry } from '../registry/index.js';
import type { MasterState } from '../state/index.js';

/** One report's view of racks: the live servers per rack taken once, then chunk by chunk. */
export class RackReport {
  private readonly sizes: Map<string, number>;
  private readonly counter = new ToleranceCounter();

  /** `maxListed`: misplaced chunks an fsck reply lists at most (all are counted). */
  constructor(private readonly registry: Registry, private readonly state: MasterState, private readonly maxListed = 0) {
    this.sizes = registry.rackSizes(state.decommissioning);
  }

  /** Racks of the chunk's live replicas; `good`: outside decommissioning only. */
  private racksOf(handle: number, good: boolean): string[] {
    const version = this.state.chunks.versionOf(handle);
    if (version === undefined) return [];
    const live = this.registry.liveReplicas(handle, version);
    return (good ? live.filter((r) => !this.state.decommissioning.has(r.id)) : live).map((r) => this.registry.rackOf(r.id));
  }

  /** fsck: a chunk with its replication is checked against the rule, and counted (and listed) when it breaks it. */
  checkPlacement(reply: FsckReply, path: string, index: number, handle: number, replication: number): void {
    if (this.sizes.size < 2) return;
    const racks = this.racksOf(handle, true);
    if (!isMisplaced(racks, replication, this.sizes)) return;
    reply.misplaced++;
    if (reply.misplacedChunks.length < this.maxListed) reply.misplacedChunks.push({ path, index, handle, racks: racks.sort() });
  }

  /**
   * status: one chunk's live replicas (a draining server's too: they still hold the data) count
   * toward the tolerance, but not a suspect server's: one held restarting is down now, and one
   * whose link dropped may be.
   */
  count(handle: number): void {
    const version = this.state.chunks.versionOf(handle);
    if (version === undefined) return this.counter.add([]);
    this.counter.add(this.registry.liveReplicas(handle, version).filter((r) => !this.registry.isSuspect(r.id)).map((r) => this.registry.rackOf(r.id)));
  }

  tolerance(): ClusterTolerance {
    return this.counter.result(this.registry.rackSizes().keys());
  }
}
