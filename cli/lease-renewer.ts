import { DfsError, toDfsError } from '../common/errors.js';
import { MAX_RENEW_WRITES, type RenewReply } from '../common/protocol.js';

/**
 * Renewals are at least this far apart, whatever lease the master names: a master configured
 * with a tiny lease must not turn its clients into a flood of Raft commands.
 */
export const MIN_RENEW_INTERVAL_MS = 250;

export interface LeaseRenewerOptions {
  /**
   * Renews these writes' leases on the master (POST /v1/fs/renew); answers the ones it no longer
   * knows, or rejects with WRITE_NOT_FOUND when it knows none of them.
   */
  renew(writeIds: string[]): Promise<RenewReply>;
}

interface OpenWrite {
  leaseMs: number;
  /** The master dropped the write (its lease expired, or it was abandoned): the upload cannot finish. */
  onLost(err: DfsError): void;
  /** A renewal failed for a reason that may pass (no leader for a moment); it is tried again soon. */
  onTrouble?(message: string): void;
}

/**
 * Keeps the leases of a client's open writes alive while their bytes are slow to come, as HDFS's
 * LeaseRenewer does: one background loop per client renews every open write in one call, three
 * times per lease. Only a live client renews, so the lease of a client that died still expires
 * and frees its path. The loop runs only while some write is open, one renewal at a time, and
 * its timer never keeps the process alive on its own.
 */
export class LeaseRenewer {
  private readonly open = new Map<string, OpenWrite>();
  private timer: NodeJS.Timeout | undefined;
  private renewing = false;

  constructor(private readonly opts: LeaseRenewerOptions) {}

  /** Starts renewing a write's lease (of `leaseMs`, as its create reply said). */
  add(writeId: string, write: OpenWrite): void {
    this.open.set(writeId, write);
    // A loop already running renews it on its next beat (writes share one lease length).
    if (this.timer === undefined && !this.renewing) this.schedule(this.intervalMs());
  }

  /** Stops renewing a write: it is being completed or abandoned, or failed. */
  remove(writeId: string): void {
    this.open.delete(writeId);
    if (this.open.size === 0) this.cancel();
  }

  get size(): number {
    return this.open.size;
  }

  /** A third of the shortest open lease: two renewals may fail before it expires. */
  private intervalMs(): number {
    let shortest = Infinity;
    for (const w of this.open.values()) shortest = Math.min(shortest, w.leaseMs);
    return Math.max(MIN_RENEW_INTERVAL_MS, Math.floor(shortest / 3));
  }

  private cancel(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private schedule(delayMs: number): void {
    this.cancel();
    if (this.open.size === 0) return;
    this.timer = setTimeout(() => void this.beat(), delayMs);
    this.timer.unref();
  }

  /** The loop reschedules itself whatever a caller's callback does. */
  private async beat(): Promise<void> {
    this.timer = undefined;
    this.renewing = true;
    let troubled = false;
    try {
      const ids = [...this.open.keys()];
      for (let i = 0; i < ids.length; i += MAX_RENEW_WRITES) {
        if (!(await this.renewBatch(ids.slice(i, i + MAX_RENEW_WRITES)))) troubled = true;
      }
    } finally {
      this.renewing = false;
    }
    // After a failure, try again sooner: the lease is still running down.
    const interval = this.intervalMs();
    this.schedule(troubled ? Math.max(MIN_RENEW_INTERVAL_MS, Math.floor(interval / 4)) : interval);
  }

  /** Renews one batch; false when it failed for a reason that may pass. Never throws. */
  private async renewBatch(ids: string[]): Promise<boolean> {
    let unknown: string[];
    try {
      unknown = (await this.opts.renew(ids)).unknown;
    } catch (err) {
      const e = toDfsError(err, 'renewing the write lease');
      if (e.code !== 'WRITE_NOT_FOUND') {
        for (const id of ids) tell(() => this.open.get(id)?.onTrouble?.(`renewing the write lease failed (${e.message}); trying again`));
        return false;
      }
      unknown = ids;
    }
    for (const id of unknown) {
      // A write removed meanwhile finished (or was abandoned) by its own call: nothing was lost.
      const w = this.open.get(id);
      if (!w) continue;
      this.open.delete(id);
      tell(() => w.onLost(new DfsError('WRITE_NOT_FOUND', 'the master dropped this upload (its write lease expired, or the write was abandoned); nothing was stored; start the upload again')));
    }
    return true;
  }
}

/** Runs a caller's callback; one that throws must not stop the renewals of every other write. */
function tell(fn: () => void): void {
  try {
    fn();
  } catch {
    /* the caller's own failure; the lease loop goes on */
  }
}
