// What one repair scan works with, and what it reports.
import type { Registry } from '../registry/index.js';
import type { MasterState } from '../state/index.js';
import type { RepairLedger } from './ledger.js';
import type { RepairLimits } from './limits.js';
import type { Work } from './steps.js';

export interface RepairScan {
  underReplicated: number;
  missing: number;
  /** Copies ordered in this scan. */
  ordered: number;
  /** Balancing moves ordered in this scan. */
  moves: number;
  inFlight: number;
  surplusDeletes: number;
  /** Per decommissioning server: its chunks that still lack their replication elsewhere. */
  decommissionRemaining: Record<string, number>;
}

export function emptyScan(): RepairScan {
  return { underReplicated: 0, missing: 0, ordered: 0, moves: 0, inFlight: 0, surplusDeletes: 0, decommissionRemaining: {} };
}

/** One scan's surroundings: the state it started on, the leader's knowledge, and its own counts. */
export interface ScanContext {
  readonly state: MasterState;
  readonly registry: Registry;
  readonly ledger: RepairLedger;
  readonly limits: RepairLimits;
  readonly now: () => number;
  /** Servers being drained: their replicas do not count, and nothing new goes there. */
  readonly decom: ReadonlySet<string>;
  readonly work: Work;
  /** Copies each server takes part in, as source or target, this scan's orders included. */
  readonly load: Map<string, number>;
  /** Live servers per rack outside decommissioning, as the scan started: the rack rule's denominator. */
  readonly rackSizes: ReadonlyMap<string, number>;
  /** Use of each live server outside decommissioning (bytes of finished files' replicas over capacity). */
  util: Map<string, number>;
  readonly scan: RepairScan;
}

/** One more copy for server `id`. */
export function bump(load: Map<string, number>, id: string): void {
  load.set(id, (load.get(id) ?? 0) + 1);
}
