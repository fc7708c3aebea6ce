// Repair's limits: how much copying and balancing may run at once, and for how long.
import type { FileNode } from '../state/index.js';

export interface RepairLimits {
  /** Copies one server takes part in at once, as source or target: repair must not starve clients. */
  perServerCopies: number;
  /** Copies in flight across the cluster. */
  maxInFlight: number;
  /**
   * A copy's own time: the target gets it in the order (CopyOrder.timeoutMs, plus what its rate
   * cap costs) and gives up once it has passed since the order arrived.
   */
  copyTimeoutMs: number;
  /**
   * How much longer than the copy's own time the master waits for its news before taking it as
   * failed and planning it again: a heartbeat to collect the order and one to report the replica
   * (the core passes its dead timeout, at least three heartbeat intervals).
   */
  copyReportSlackMs: number;
  /**
   * Balancing starts when a server's use (bytes held / capacity) differs from the cluster's
   * mean by more than this share of the mean (HDFS's balancer uses 10 points of capacity; a
   * share of the mean also works for small clusters on one shared disk). 0 turns balancing off.
   */
  balanceThreshold: number;
  /** Balancing moves in flight at once: low, so moving data never competes much with clients or repair. */
  maxMovesInFlight: number;
  /**
   * Test only, the leader simulator's planted bug: surplus trimming counts one replica too many
   * as surplus, so it takes chunks below their replication. test/master/leader-sim.test.ts
   * checks that the simulator catches it.
   */
  unsafeSurplusOffByOne?: boolean;
}

export const REPAIR_DEFAULTS: RepairLimits = { perServerCopies: 2, maxInFlight: 64, copyTimeoutMs: 120_000, copyReportSlackMs: 0, balanceThreshold: 0.1, maxMovesInFlight: 4 };

/** Good replicas a chunk keeps when its surplus is trimmed: its file's replication. */
export function keepOf(limits: RepairLimits, file: FileNode): number {
  return limits.unsafeSurplusOffByOne ? file.replication - 1 : file.replication;
}
