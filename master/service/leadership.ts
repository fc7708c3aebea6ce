// The leader's driver: the thin async half around the deterministic leader core
// (master/leader/core.ts). It owns the clock, the timer and the Replicator: it hands the core the
// time and the replicated state, proposes the commands the core asks for, runs repair scans in
// slices, and is the one gate every leader-only call passes (requireLeader, commit, read).
import { systemClock, type Clock } from '../../common/clock.js';
import { DfsError } from '../../common/errors.js';
import type { Logger } from '../../common/log.js';
import type { Command } from '../commands.js';
import { LeaderCore } from '../leader/core.js';
import { runInSlices } from '../leader/slices.js';
import type { Registry } from '../registry/index.js';
import type { RepairScheduler } from '../repair/index.js';
import type { Replicator, SessionRef } from '../replicator.js';
import type { MasterState } from '../state/index.js';
import { TrashQuotaService } from '../trash-quota-service.js'; // trash-quota
import type { MasterConfig } from './config.js';

/**
 * How often the driver ticks the leader core: it then proposes what the core asks (expired
 * leases) and starts a repair scan when the core says one is due (every second, or 100 ms after
 * a copy's news). Short enough that a scan asked for by a heartbeat starts within about this.
 */
const LEADER_TICK_MS = 100;

export interface LeadershipOptions {
  config: MasterConfig;
  /** The replicated state as it is now (a snapshot may replace the object). */
  getState: () => MasterState;
  replicator: Replicator;
  log: Logger;
  /** The clock; the system's unless a test gives another. */
  clock?: Clock;
  /** The placement jitter's source; Math.random unless a test gives another. */
  random?: () => number;
}

export class Leadership {
  readonly core: LeaderCore;
  readonly config: MasterConfig;
  readonly replicator: Replicator;
  readonly log: Logger;
  readonly clock: Clock;
  /** trash-quota: the trash's and quotas' calls, and the trash's expiry on this driver's tick. */
  readonly trashQuota: TrashQuotaService;
  private readonly getState: () => MasterState;
  private tickTimer?: NodeJS.Timeout;
  /** A scan is under way or waiting for its read barrier: the tick does not start another. */
  private scanning = false;
  /**
   * Told, after each scan, the servers with copy orders waiting for their heartbeat: the driver
   * asks them to beat now (master/service/links.ts) rather than at their next beat, up to a
   * heartbeat interval later for each wave of copies.
   */
  ordersWaiting: (servers: string[]) => void = () => undefined;
  /** An expireLeases proposal is in flight: the tick does not send another meanwhile. */
  private proposing = false;

  constructor(opts: LeadershipOptions) {
    const { config, replicator } = opts;
    this.config = config;
    this.replicator = replicator;
    this.log = opts.log;
    this.getState = opts.getState;
    this.clock = opts.clock ?? systemClock;
    this.trashQuota = new TrashQuotaService({ // trash-quota
      commit: (cmd, session) => this.commit(cmd, session), read: () => this.read(), state: () => this.state,
      isLeader: () => replicator.isLeader(), nowMs: () => this.clock.nowMs(), log: this.log,
    }, config.trashIntervalMs);
    this.core = new LeaderCore({
      deadTimeoutMs: config.deadTimeoutMs, connectionGraceMs: config.connectionGraceMs, restartGraceMs: config.restartGraceMs, safeModeMs: config.safeModeMs, gcGraceMs: config.gcGraceMs,
      leaseCheckIntervalMs: Math.max(250, Math.floor(config.writeLeaseMs / 4)), repair: config.repair, random: opts.random ?? Math.random,
    }, opts.getState(), this.clock.nowMs());
    // Already leading (a group of one elected before this service existed): no change will say so.
    if (replicator.isLeader()) this.core.becomeLeader(this.clock.nowMs(), replicator.status().term);
    replicator.onLeaderChange((isLeader) => {
      const now = this.now();
      if (isLeader) this.core.becomeLeader(now, replicator.status().term);
      else this.core.loseLeadership(now, replicator.leaderAddr());
      this.flushLog();
    });
  }

  /** The core's registry (read by reports: fsck, status, stat's locations). */
  get registry(): Registry {
    return this.core.registry;
  }

  /** The core's repair planner (read by status for its counters). */
  get repair(): RepairScheduler {
    return this.core.repair;
  }

  get state(): MasterState {
    return this.getState();
  }

  /** Starts the leader's timer: lease expiry and repair scans. */
  start(): void {
    this.tickTimer ??= setInterval(() => this.tick(), LEADER_TICK_MS);
  }

  stop(): void {
    clearInterval(this.tickTimer);
    this.tickTimer = undefined;
  }

  /** Reads the clock and brings the core up to date with it and with the replicated state. */
  now(): number {
    const now = this.clock.nowMs();
    this.core.stateChanged(this.state);
    this.core.advanceTo(now);
    return now;
  }

  /** Hands the core's log events to the logger. */
  flushLog(): void {
    for (const e of this.core.drainLog()) this.log[e.level](e.fields, e.msg);
  }

  /** One tick of the leader core: propose what it asks, start a scan when one is due. */
  tick(): void {
    const now = this.now();
    const commands = this.proposing ? [] : this.core.tick(now);
    for (const cmd of commands) this.proposeTimed(cmd);
    this.trashQuota.tick(now); // trash-quota: expunges expired trash checkpoints
    this.runScan().catch((err: Error) => this.log.warn({ err: err.message }, 'repair scan failed'));
    this.flushLog();
  }

  private proposeTimed(cmd: Command): void {
    this.proposing = true;
    this.commit(cmd)
      .then((r) => {
        const abandoned = (r as { abandoned?: string[] } | undefined)?.abandoned ?? [];
        if (abandoned.length > 0) this.log.info({ abandoned }, 'abandoned writes whose lease expired');
      })
      .catch((err) => this.log.warn({ err }, 'lease expiry failed'))
      .finally(() => (this.proposing = false));
  }

  /** Safe mode (see LeaderCore.inSafeMode). */
  inSafeMode(): boolean {
    return this.core.inSafeMode(this.now());
  }

  /** NOT_LEADER, with the leader's address and the group's, unless this master leads. */
  requireLeader(): void {
    if (!this.replicator.isLeader()) {
      const leader = this.replicator.leaderAddr();
      // The whole group rides along: a client given one master's address finds the others.
      throw new DfsError('NOT_LEADER', leader ? `not the leader; the leader is ${leader}` : 'not the leader, and no leader is known yet; retry shortly', {
        leader: leader ?? null, masters: this.config.peers,
      });
    }
  }

  /** Proposes `cmd` and answers its result once applied; a refused command throws its error. */
  async commit(cmd: Command, session?: SessionRef): Promise<unknown> {
    this.requireLeader();
    const result = await this.replicator.propose(cmd, session);
    if (!result.ok) throw new DfsError(result.code, result.message);
    return result.value;
  }

  /** The state for a read, after the read barrier: everything committed before the read is in it. */
  async read(): Promise<MasterState> {
    this.requireLeader();
    await this.replicator.readBarrier();
    this.now(); // liveness in what the read reports is judged at the time of the read
    return this.state;
  }

  /**
   * A repair scan, when the core says one is due (see LeaderCore.startScan): after a read
   * barrier (the state caught up, leadership confirmed), in slices of a few milliseconds.
   */
  async runScan(): Promise<void> {
    if (this.scanning || !this.replicator.isLeader() || !this.core.scanDue(this.now())) return;
    this.scanning = true;
    try {
      await this.read();
      const steps = this.core.startScan(this.now());
      if (!steps) return;
      let scan;
      try {
        scan = await runInSlices(steps, { pause: async () => {
          await new Promise((resolve) => setImmediate(resolve));
          this.now(); // the core sees a snapshot installed meanwhile, and the time
        } });
      } finally {
        this.core.finishScan(this.now(), scan);
      }
      const waiting = this.core.repair.serversWithOrders();
      if (waiting.length > 0) this.ordersWaiting(waiting);
    } finally {
      this.scanning = false;
      this.flushLog();
    }
  }
}
