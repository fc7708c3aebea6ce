// The repair scheduler's facade: scans (whole or in steps) over the ledger, re-replication and balancing.
import type { PlannedCopy } from '../../common/protocol.js';
import type { Registry } from '../registry/index.js';
import type { MasterState } from '../state/index.js';
import { planMoves } from './balance.js';
import { emptyScan, type RepairScan, type ScanContext } from './context.js';
import { RepairLedger, type RepairEvent } from './ledger.js';
import type { RepairLimits } from './limits.js';
import { orderRackMoves } from './racks.js';
import { census, orderCopies, trimSurplus } from './replicate.js';
import { SCAN_STEP, Work } from './steps.js';
import { finishedChunks, WantedChunks } from './wanted.js';

/**
 * The leader's re-replication planner (volatile, like the registry). Each scan finds chunks of
 * finished files with fewer good replicas than their file's replication (replicas on a
 * decommissioning server do not count), most urgent (fewest replicas) first, and orders copies
 * from a live replica to a new server, within per-server and cluster-wide limits. Orders wait
 * here until the target's next heartbeat collects them. Chunks with more good replicas than
 * wanted (a dead server came back, replication lowered) lose one replica per scan, from the
 * fullest server. When nothing needs repair, servers whose use strays from the mean exchange
 * replicas: copy to the emptier one first, delete from the fuller one only once the copy is
 * confirmed, so no chunk ever has fewer replicas than it should. The master scans in slices of a
 * few milliseconds (scanSteps, run by master/leader/slices.ts), so that a large namespace does not stall its event loop.
 */
export class RepairScheduler {
  /** Copies and deletes ordered and not yet settled. */
  private readonly ledger: RepairLedger;
  /** A scan is under way (scans in slices take a while): another is not started meanwhile. */
  private scanning = false;
  last: RepairScan = emptyScan();

  /** `emit`: where copies ordered, done and failed, and chunks lost, are told (the leader core's log events). */
  constructor(private readonly registry: Registry, private readonly limits: RepairLimits, private readonly now: () => number, emit?: RepairEvent) {
    this.ledger = new RepairLedger(registry, limits, emit);
  }

  /** Names the copies this leadership orders (`copy-<prefix>-<n>`): the id their log lines and the target's carry. */
  nameDecisions(prefix: string): void {
    this.ledger.nameDecisions(prefix);
  }

  get copiesOrdered(): number {
    return this.ledger.copiesOrdered;
  }

  get copiesDone(): number {
    return this.ledger.copiesDone;
  }

  get copiesFailed(): number {
    return this.ledger.copiesFailed;
  }

  get bytesCopied(): number {
    return this.ledger.bytesCopied;
  }

  get movesDone(): number {
    return this.ledger.movesDone;
  }

  get inFlightCount(): number {
    return this.ledger.inFlightCount;
  }

  /** Copy orders waiting for their target's next heartbeat to collect them. */
  get queuedCount(): number {
    return this.ledger.queuedCount;
  }

  /** Servers with copy orders waiting for their heartbeat to collect them. */
  serversWithOrders(): string[] {
    return this.ledger.serversWithOrders();
  }

  get movesInFlight(): number {
    return this.ledger.movesInFlight;
  }

  /** Copies in flight per server, in and out (the dashboard's copy traffic). */
  copiesByServer(): Map<string, { in: number; out: number }> {
    return this.ledger.copiesByServer();
  }

  /** Whether `handle` has a copy in flight to `serverId` (its report settles it). */
  awaits(serverId: string, handle: number): boolean {
    return this.ledger.awaits(serverId, handle);
  }

  /** Forgets everything (leadership lost or gained: locations are relearned from reports). */
  clear(): void {
    this.ledger.clear();
  }

  /** The server re-registered: what was queued for it and not collected is void (see RepairLedger.forgetServer). */
  forgetServer(serverId: string): void {
    this.ledger.forgetServer(serverId);
  }

  /** What the server should do now, collected by its heartbeat reply (see RepairLedger.takeFor). */
  takeFor(serverId: string, maxDeletes = Infinity, state?: MasterState): { copies: PlannedCopy[]; deletes: number[] } {
    return this.ledger.takeFor(serverId, maxDeletes, state);
  }

  /** The server no longer holds these replicas: deletes queued for them are moot. */
  onReplicasGone(serverId: string, handles: Iterable<number>): void {
    this.ledger.onReplicasGone(serverId, handles);
  }

  /** The target reported these copies failed: plan them again on the next scan. */
  onCopyFailed(serverId: string, handles: number[]): void {
    this.ledger.onCopyFailed(serverId, handles);
  }

  /** One scan in a single synchronous pass, for tests and measurements: the master scans in slices. */
  scan(state: MasterState): RepairScan {
    if (this.scanning) throw new Error('a repair scan is already running');
    this.scanning = true;
    try {
      const plan = this.plan(state, new Work(SCAN_STEP));
      for (;;) {
        const r = plan.next();
        if (r.done) return r.value;
      }
    } finally {
      this.scanning = false;
    }
  }

  /**
   * One scan as a generator: each yield is a point where the driver may let other work in
   * (master/leader/slices.ts runs it in slices of a few milliseconds; at a million files a scan
   * takes seconds). The namespace and the registry may change between steps, so every copy and
   * delete is checked against them as they are when it is ordered. The scan ends, ordering
   * nothing more, if the state was replaced (a snapshot installed) or `proceed` says so when it
   * resumes. Returns undefined when it ended so, or when another scan was running (one at a
   * time: the running one covers what the other would have found).
   */
  *scanSteps(getState: () => MasterState, opts: { step?: number; proceed?: () => boolean } = {}): Generator<void, RepairScan | undefined> {
    if (this.scanning) return undefined;
    this.scanning = true;
    const state = getState();
    const plan = this.plan(state, new Work(opts.step ?? SCAN_STEP));
    try {
      for (;;) {
        const r = plan.next();
        if (r.done) return r.value;
        yield;
        // The plan holds the state it started with: it may only go on while that is still the state.
        if (getState() !== state || !(opts.proceed?.() ?? true)) return undefined;
      }
    } finally {
      this.scanning = false;
    }
  }

  /** The scan itself; each yield is a point where a sliced scan may pause, never between a check and what it guards. */
  private *plan(state: MasterState, work: Work): Generator<void, RepairScan> {
    const wanted = new WantedChunks();
    yield* finishedChunks(state, wanted, work);
    this.ledger.settle(state, wanted, this.now(), state.decommissioning);
    this.ledger.voidDeletesOnDeadServers();
    const ctx: ScanContext = {
      state, registry: this.registry, ledger: this.ledger, limits: this.limits, now: this.now,
      decom: state.decommissioning, work, load: this.ledger.load(), util: new Map(), scan: emptyScan(),
      rackSizes: this.registry.rackSizes(state.decommissioning), // rack rule
    };
    const { candidates, surplus, misplaced } = yield* census(ctx, wanted);
    this.ledger.forgetLostOutside(state);
    yield* trimSurplus(ctx, surplus);
    const backlog = yield* orderCopies(ctx, candidates);
    if (backlog.waitingForSlots === 0) ctx.scan.moves += orderRackMoves(ctx, misplaced); // rack rule
    // Balancing only when repair has nothing left to plan: a missing replica matters more than an even disk.
    if (this.limits.balanceThreshold > 0 && backlog.waitingForSlots === 0 && backlog.repairing === 0) ctx.scan.moves += yield* planMoves(ctx, wanted);
    ctx.scan.inFlight = this.ledger.inFlightCount;
    this.last = ctx.scan;
    return ctx.scan;
  }
}
