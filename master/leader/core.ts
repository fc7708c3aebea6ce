// The leader's volatile half as a deterministic state machine: chunkserver registry and
// liveness, chunk locations, repair and balancing plans, garbage with its grace period,
// corrupt-replica memory, safe mode and lease expiry. Events go in (register, heartbeat, corrupt
// report, tick, the replicated state, leadership gained or lost), each with the time it happened
// at; actions come out (heartbeat replies with copy orders and deletes, commands to propose, log
// events). No clock, timer, socket or Math.random here: the driver (master/service/leadership.ts) reads the
// clock and passes `nowMs`, and the placement jitter comes from the `random` it is given. That is
// what lets test/master/leader-sim.ts run thousands of seeded histories through this very code.
import type { CorruptReport, PlannedCopy, HeartbeatReply, HeartbeatRequest, RegisterRequest } from '../../common/protocol.js';
import type { Command } from '../commands.js';
import { Registry } from '../registry/index.js';
import { REPAIR_DEFAULTS, RepairScheduler, type RepairLimits, type RepairScan } from '../repair/index.js';
import type { MasterState } from '../state/index.js';
import { ReportAssembler, type PageOutcome } from './reports.js';

/** How often a server's garbage is looked for at most (see LeaderCore.takeGarbage); garbage waits a grace period of a minute by default anyway. */
export const GARBAGE_TAKE_EVERY_MS = 1000;
/** Deletions sent in one heartbeat reply; the rest go in later ones. */
const MAX_DELETES_PER_REPLY = 10_000;
/** Scans asked for by a copy's news are at least this far apart: a scan walks the namespace. */
const MIN_EVENT_SCAN_INTERVAL_MS = 100;
/** The periodic scan: a chunk that lost a replica waits at most about this long for its copy to be planned. */
const SCAN_INTERVAL_MS = 1000;
/** Log events kept for the driver between two drains; past this they are counted, not kept. */
const MAX_PENDING_LOG_EVENTS = 1000;

export interface LeaderCoreOptions {
  /** A chunkserver silent this long is dead and its replicas stop counting. */
  deadTimeoutMs: number;
  /**
   * A chunkserver whose connection to the leader dropped is suspect at once and dead after this
   * long unless it connects again (see registry/liveness.ts); undefined: connections are ignored.
   */
  connectionGraceMs?: number;
  /** A chunkserver stopping cleanly is held restarting this long (serverStopping); undefined: such notices are ignored. */
  restartGraceMs?: number;
  /** After becoming leader, placement waits this long at most for chunkservers to report. */
  safeModeMs: number;
  /** A garbage replica is deleted once it has been garbage this long. */
  gcGraceMs: number;
  /** Writes are checked for an expired lease this often (a quarter of the lease, at least 250 ms). */
  leaseCheckIntervalMs: number;
  /** Re-replication and balancing limits; defaults where not given. */
  repair?: Partial<RepairLimits>;
  /** The placement jitter's source: Math.random in the driver, seeded in tests. */
  random: () => number;
  /**
   * Test only, the simulator's planted bug: garbage is deleted at once, without its grace
   * period. test/master/leader-sim.test.ts checks that the simulator catches it.
   */
  unsafeNoGarbageGrace?: boolean;
}

export interface LeaderLogEvent {
  level: 'info' | 'warn';
  msg: string;
  fields: Record<string, unknown>;
}

/** What a chunkserver is told to do, by kind: the wire reply (toReply) merges the deletes. */
export interface ServerWork {
  copies: PlannedCopy[];
  /** Surplus replicas (over-replicated chunks, finished balancing moves). */
  surplusDeletes: number[];
  /** Replicas nothing references, or of an old version, garbage for at least the grace period. */
  garbageDeletes: number[];
}

/** Why placement for a new chunk must wait, when it must. */
export type PlacementRefusal = 'safe-mode' | 'short-after-election' | 'no-servers' | 'no-room';

export class LeaderCore {
  readonly registry: Registry;
  readonly repair: RepairScheduler;
  /** Paged registration reports being assembled (see reports.ts). */
  readonly reports: ReportAssembler;
  private state: MasterState;
  private nowMs: number;
  private leader = false;
  /** Counts leadership changes: a scan that resumes after one (either way) stops. */
  private epoch = 0;
  /** Set on becoming leader, cleared once safe mode is over. */
  private safeModeSinceMs?: number;
  private leaderSinceMs?: number;
  private scanRunning = false;
  private scanAsked = false;
  private lastScanStartMs = -Infinity;
  /** How long the last scan took, slices and the work between them included. */
  private lastScanDurationMs = 0;
  private nextLeaseCheckMs = 0;
  private logEvents: LeaderLogEvent[] = [];
  /** Servers said dead (a line each), until they are back. */
  private readonly deadNoted = new Set<string>();
  /** server id → when its garbage was last taken, and whether that take filled its room (takeWork). */
  private readonly garbageTaken = new Map<string, { atMs: number; full: boolean }>();
  private droppedLogEvents = 0;

  constructor(private readonly opts: LeaderCoreOptions, state: MasterState, nowMs: number) {
    this.state = state;
    this.nowMs = nowMs;
    this.registry = new Registry(opts.deadTimeoutMs, () => this.nowMs, opts.random, opts.connectionGraceMs);
    this.repair = new RepairScheduler(this.registry, { ...REPAIR_DEFAULTS, copyReportSlackMs: opts.deadTimeoutMs, ...opts.repair }, () => this.nowMs, (level, msg, fields) => this.emit(level, msg, fields));
    this.reports = new ReportAssembler(opts.deadTimeoutMs);
  }

  get isLeader(): boolean {
    return this.leader;
  }

  // ---- time and the replicated state ----

  /** Moves the core's clock to `nowMs` (never back: a clock step backwards must not revive the dead). */
  advanceTo(nowMs: number): void {
    if (nowMs > this.nowMs) this.nowMs = nowMs;
  }

  /** Time passed: answers the commands due (expiring abandoned writes). Scans are asked for with startScan. */
  tick(nowMs: number): Command[] {
    this.advanceTo(nowMs);
    this.noteConnectionsExpired();
    this.noteDeaths();
    if (!this.leader || this.nowMs < this.nextLeaseCheckMs) return [];
    this.nextLeaseCheckMs = this.nowMs + this.opts.leaseCheckIntervalMs;
    for (const w of this.state.writes.values()) {
      if (w.leaseExpiresAtMs <= this.nowMs) return [{ op: 'expireLeases', nowMs: this.nowMs }];
    }
    return [];
  }

  /**
   * The replicated state this core reads (the same object unless a snapshot replaced it). A scan
   * that started on another state stops at its next step.
   */
  stateChanged(state: MasterState): void {
    this.state = state;
  }

  // ---- leadership ----

  becomeLeader(nowMs: number, term?: number): void {
    this.advanceTo(nowMs);
    this.resetVolatile();
    this.leader = true;
    this.safeModeSinceMs = this.nowMs;
    this.leaderSinceMs = this.nowMs;
    this.nextLeaseCheckMs = 0;
    // The term names this leadership's decisions: only one master ever leads a term.
    this.repair.nameDecisions(term === undefined ? `e${this.epoch}` : `t${term}`);
    this.emit('info', 'became leader; safe mode entered, waiting for chunkserver reports', { ...(term === undefined ? {} : { term }), safeModeMs: this.opts.safeModeMs });
  }

  loseLeadership(nowMs: number, leader?: string): void {
    this.advanceTo(nowMs);
    const was = this.leader;
    this.resetVolatile();
    this.leader = false;
    this.safeModeSinceMs = undefined;
    this.leaderSinceMs = undefined;
    // A follower hears of every change of leader or term too: only a leader steps down.
    this.emit('info', was ? 'stepped down: not the leader any more' : 'leader changed', { leader: leader ?? null });
  }

  /** Locations and liveness are volatile: a new leader learns them afresh from reports. */
  private resetVolatile(): void {
    this.registry.clear();
    this.repair.clear();
    this.reports.clear();
    this.deadNoted.clear();
    this.epoch++;
    this.scanAsked = false;
  }

  /**
   * Safe mode: just after becoming leader, until every chunk of a finished file has a reported
   * replica or safeModeMs passed. Placement waits, so that a chunk nobody has reported yet is not
   * taken for lost, and a server not yet registered is not taken for absent.
   */
  inSafeMode(nowMs: number): boolean {
    this.advanceTo(nowMs);
    if (this.safeModeSinceMs === undefined) return false;
    if (this.nowMs - this.safeModeSinceMs >= this.opts.safeModeMs) {
      this.leaveSafeMode('its time passed');
      return false;
    }
    if (this.registry.liveCount() === 0) return true;
    // Chunks of writes in progress may not be stored anywhere yet: only finished files count.
    const pending = new Set<number>();
    for (const w of this.state.writes.values()) for (const h of w.chunks) pending.add(h);
    for (const h of this.state.chunks.keys()) if (!pending.has(h) && !this.registry.hasAnyReplica(h)) return true;
    this.leaveSafeMode('every chunk has a reported replica');
    return false;
  }

  private leaveSafeMode(why: string): void {
    this.emit('info', `safe mode left: ${why}`, { ms: this.nowMs - this.safeModeSinceMs!, servers: this.registry.liveCount() });
    this.safeModeSinceMs = undefined;
  }

  // ---- chunkserver protocol ----

  /**
   * One page of a registration report: the whole report is applied (as register) when its final
   * page is in, never a part of it. Meanwhile a server the leader knows at that address stays
   * alive (its pages are its heartbeats), with the replicas it had.
   */
  registerPage(req: RegisterRequest, nowMs: number): PageOutcome {
    this.advanceTo(nowMs);
    const outcome = this.reports.add(req, this.nowMs);
    if (outcome.kind === 'complete') this.register(outcome.report, this.nowMs);
    else if (outcome.kind === 'more') this.registry.touch(req.id, req.addr);
    else if (outcome.kind === 'restart') this.emit('warn', 'chunkserver report restarted', { server: req.id, why: outcome.why });
    return outcome;
  }

  /** A full report: the server's replicas are what it says, and whatever was queued for it is void. */
  register(req: RegisterRequest, nowMs: number): void {
    this.advanceTo(nowMs);
    const restarted = this.registry.liveness.restarting(req.id, this.nowMs);
    this.registry.register(req);
    this.repair.forgetServer(req.id);
    const back = this.deadNoted.delete(req.id);
    this.emit('info', back ? 'chunkserver back: registered again' : restarted ? 'chunkserver back from its restart: registered again' : 'chunkserver registered', { server: req.id, addr: req.addr, rack: this.registry.rackOf(req.id), chunks: req.chunks.length });
  }

  /**
   * Applies a heartbeat's report; false when the server is unknown and must register again.
   * A copy it reports finished or failed asks for a scan soon, so the next copies are planned
   * without waiting a whole scan interval; the heartbeat itself never waits for one.
   */
  heartbeat(req: HeartbeatRequest, nowMs: number): boolean {
    this.advanceTo(nowMs);
    // Whether a copy is settled must be asked before the report lands (it adds the replica).
    const copyDone = req.added.some((c) => this.repair.awaits(req.id, c.handle));
    if (!this.registry.heartbeat(req)) return false;
    this.repair.onReplicasGone(req.id, req.removed);
    this.repair.onCopyFailed(req.id, req.copyFailed);
    if (copyDone || req.copyFailed.length > 0) this.scanAsked = true;
    return true;
  }

  /**
   * What a server should do now, collected by its heartbeat (or registration) reply: every copy
   * ordered for it, then surplus deletes, then garbage past its grace, MAX_DELETES_PER_REPLY
   * deletes at most (the rest wait for the next reply).
   */
  takeWork(serverId: string, nowMs: number): ServerWork {
    this.advanceTo(nowMs);
    const work = this.repair.takeFor(serverId, MAX_DELETES_PER_REPLY, this.state);
    return { copies: work.copies, surplusDeletes: work.deletes, garbageDeletes: this.takeGarbage(serverId, MAX_DELETES_PER_REPLY - work.deletes.length) };
  }

  /**
   * The server's garbage past its grace, taken at most every GARBAGE_TAKE_EVERY_MS unless the last
   * take filled its room: a chunkserver beats after every chunk it stores, so under writes its
   * heartbeats come back to back, and a sweep of its replicas on each one was 6 % of a busy
   * leader's CPU and halved the stat rate right after a burst of writes.
   */
  private takeGarbage(serverId: string, room: number): number[] {
    const last = this.garbageTaken.get(serverId);
    if (last !== undefined && !last.full && this.nowMs - last.atMs < GARBAGE_TAKE_EVERY_MS) return [];
    const graceMs = this.opts.unsafeNoGarbageGrace ? 0 : this.opts.gcGraceMs;
    const garbage = this.registry.takeGarbage(serverId, (h) => this.state.chunks.versionOf(h), graceMs, room, this.state.nextHandle);
    // One entry per server the registry knows: bounded as it is (a server forgotten and back starts afresh).
    if (!this.registry.isKnown(serverId)) this.garbageTaken.delete(serverId);
    else this.garbageTaken.set(serverId, { atMs: this.nowMs, full: garbage.length >= room });
    return garbage;
  }

  /** A replica failed its checksum on a server (which dropped it): forget it, remember why. */
  reportCorrupt(req: CorruptReport, nowMs: number): void {
    this.advanceTo(nowMs);
    this.emit('warn', 'replica reported corrupt', { server: req.id, handle: req.handle, reason: req.reason });
    this.registry.markCorrupt(req.id, req.handle);
    this.repair.onReplicasGone(req.id, [req.handle]);
  }

  // ---- connections (registry/liveness.ts) ----

  /** Stream `stream` from chunkserver `serverId` opened: it is no longer suspect for its connection. */
  connectionOpened(serverId: string, stream: number, nowMs: number): void {
    this.advanceTo(nowMs);
    const wasSuspect = this.registry.liveness.suspect(serverId, this.nowMs);
    this.registry.liveness.opened(serverId, stream);
    if (wasSuspect) this.emit('info', 'chunkserver connected again', { server: serverId });
  }

  /** Stream `stream` closed: suspect now; dead once connectionGraceMs passed without a new one (tick notices). */
  connectionDropped(serverId: string, stream: number, nowMs: number): void {
    this.advanceTo(nowMs);
    if (this.registry.liveness.dropped(serverId, stream, this.nowMs)) this.emit('warn', 'chunkserver suspect: its connection dropped', { server: serverId, graceMs: this.opts.connectionGraceMs ?? null });
  }

  /**
   * `serverId` stops cleanly to come back (its SIGTERM; MooseFS's temporary maintenance): held,
   * suspect with its replicas counted, for restartGraceMs. False, nothing changed: unknown here or
   * dead already (a notice must not bring back what the dead timeout took), decommissioning (it
   * leaves for good: its copies must not wait), or notices are off.
   */
  serverStopping(serverId: string, nowMs: number): boolean {
    this.advanceTo(nowMs);
    const graceMs = this.opts.restartGraceMs;
    if (graceMs === undefined || !this.leader || !this.registry.isAlive(serverId) || this.state.decommissioning.has(serverId)) return false;
    this.registry.liveness.stopping(serverId, this.nowMs, this.nowMs + graceMs);
    this.emit('info', 'chunkserver stopping to restart: held, no copies for its absence within the restart grace', { server: serverId, restartGraceMs: graceMs });
    return true;
  }

  /**
   * A client could not reach `serverId` and the leader's probe could not either: kept out of new
   * pipelines until `untilMs` or a probe that reaches it. Never dead on this alone: a client's
   * word (or a probe across a flaky link) must not cost copies; the heartbeat timeout decides.
   */
  probeResult(serverId: string, reached: boolean, nowMs: number, holdMs: number): void {
    this.advanceTo(nowMs);
    if (reached) this.registry.liveness.probeSucceeded(serverId);
    else {
      this.registry.liveness.probeFailed(serverId, this.nowMs + holdMs);
      this.emit('warn', 'chunkserver suspect: unreachable by a client and by the leader', { server: serverId });
    }
  }

  /** Servers whose grace (or restart hold) ran out are dead now: a scan soon plans their replicas' copies. */
  private noteConnectionsExpired(): void {
    for (const { id, afterHold } of this.registry.liveness.takeExpired(this.nowMs)) {
      this.emit('warn', afterHold ? 'chunkserver dead: it said it would restart and was not back within the restart grace' : 'chunkserver dead: its connection did not come back within the grace', { server: id });
      this.deadNoted.add(id);
      this.scanAsked = true;
    }
  }

  /** Says once when a server goes dead by the heartbeat timeout, and when one dead comes back by heartbeats alone. */
  private noteDeaths(): void {
    for (const id of this.registry.serverIds()) {
      const alive = this.registry.isAlive(id);
      if (!alive && !this.deadNoted.has(id)) {
        this.deadNoted.add(id);
        this.emit('warn', 'chunkserver dead: no heartbeat within the dead timeout', { server: id, deadTimeoutMs: this.opts.deadTimeoutMs });
      } else if (alive && this.deadNoted.delete(id)) {
        this.emit('info', 'chunkserver back: heartbeats again', { server: id });
      }
    }
  }

  // ---- placement of new chunks ----

  /**
   * Servers for a new chunk of a write, or why it must wait. Short of servers right after
   * becoming leader, more may still be re-registering: that is safe mode too.
   */
  place(nowMs: number, replication: number, exclude: string[], chunkSizeBytes: number, writerRack?: string): { id: string; addr: string }[] | PlacementRefusal {
    if (this.inSafeMode(nowMs)) return 'safe-mode';
    const replicas = this.registry.place(replication, [...exclude, ...this.state.decommissioning], chunkSizeBytes, { writerRack }); // rack rule
    if (replicas.length < replication && this.justElected(nowMs)) return 'short-after-election';
    if (replicas.length === 0) return this.registry.liveCount() === 0 ? 'no-servers' : 'no-room';
    return replicas;
  }

  /**
   * Within safe mode's length of becoming leader: servers may still be re-registering, so a
   * server or replica not known yet is no verdict (placement waits, a minimum-replica check too).
   */
  justElected(nowMs: number): boolean {
    this.advanceTo(nowMs);
    return this.leaderSinceMs !== undefined && this.nowMs - this.leaderSinceMs < this.opts.safeModeMs;
  }

  /** Replicas the write's pipeline stored (reported by the client's complete), before those servers' next heartbeats say so. */
  addWrittenReplicas(nowMs: number, chunks: { handle: number; replicas: string[] }[]): void {
    this.advanceTo(nowMs);
    for (const c of chunks) {
      const version = this.state.chunks.versionOf(c.handle);
      if (version !== undefined) for (const id of c.replicas) this.registry.addKnownReplica(id, c.handle, version);
    }
  }

  // ---- repair scans ----

  /**
   * A repair scan, if one is due at `nowMs`: every SCAN_INTERVAL_MS, or MIN_EVENT_SCAN_INTERVAL_MS
   * after the last when a copy's news asked for one. Not before a dead timeout has passed since
   * becoming leader (a server that has not reported yet may simply not have found us: copying
   * its chunks now would only make surplus replicas), nor in safe mode. Whatever asks for one,
   * 4 scan durations pass between the starts of two scans, so scanning takes at most about a
   * quarter of the leader's time however large the namespace; one runs at a time.
   *
   * The answer is the scan's steps: the driver runs them in slices of a few milliseconds (see
   * master/leader/slices.ts) and then calls finishScan. Undefined when no scan is due.
   */
  startScan(nowMs: number): Generator<void, RepairScan | undefined> | undefined {
    if (!this.scanDue(nowMs)) return undefined;
    this.scanRunning = true;
    this.scanAsked = false;
    this.lastScanStartMs = this.nowMs;
    const epoch = this.epoch;
    // Between steps this master may lose leadership (and perhaps win it again, with locations to
    // relearn), or get a snapshot: the scan then stops, ordering nothing more.
    return this.repair.scanSteps(() => this.state, { proceed: () => this.leader && this.epoch === epoch });
  }

  /**
   * Asks for a scan soon (MIN_EVENT_SCAN_INTERVAL_MS after the last one started), as a copy's
   * news does: an append waiting for its last chunk's copy (master/service/namespace.ts, healTail).
   */
  askScan(): void {
    this.scanAsked = true;
  }

  /** Whether startScan would start one now (the driver asks before it waits for a read barrier). */
  scanDue(nowMs: number): boolean {
    this.advanceTo(nowMs);
    if (!this.leader || this.scanRunning || this.leaderSinceMs === undefined) return false;
    const sinceLast = this.nowMs - this.lastScanStartMs;
    if (sinceLast < (this.scanAsked ? MIN_EVENT_SCAN_INTERVAL_MS : SCAN_INTERVAL_MS)) return false;
    if (this.nowMs - this.leaderSinceMs < this.opts.deadTimeoutMs) return false;
    if (sinceLast < 4 * this.lastScanDurationMs) return false;
    return !this.inSafeMode(this.nowMs);
  }

  /** The scan started last is over (finished, or stopped early: `scan` undefined). */
  finishScan(nowMs: number, scan: RepairScan | undefined): void {
    this.advanceTo(nowMs);
    this.scanRunning = false;
    if (!scan) return;
    this.lastScanDurationMs = this.nowMs - this.lastScanStartMs;
    if (scan.ordered > 0 || scan.surplusDeletes > 0) this.emit('info', 'repair: copies ordered, surplus replicas dropped', { ...scan });
  }

  // ---- log events ----

  /** Log events since the last drain, oldest first (with a count of those dropped past the bound). */
  drainLog(): LeaderLogEvent[] {
    const out = this.logEvents;
    if (this.droppedLogEvents > 0) out.push({ level: 'warn', msg: 'leader log events dropped', fields: { dropped: this.droppedLogEvents } });
    this.logEvents = [];
    this.droppedLogEvents = 0;
    return out;
  }

  private emit(level: LeaderLogEvent['level'], msg: string, fields: Record<string, unknown>): void {
    if (this.logEvents.length < MAX_PENDING_LOG_EVENTS) this.logEvents.push({ level, msg, fields });
    else this.droppedLogEvents++;
  }
}

/** A server's work as the wire reply, less the copies' tokens (the service signs them): surplus deletes first, then garbage. */
export function toReply(work: ServerWork): Omit<HeartbeatReply, 'copies'> & { copies: PlannedCopy[] } {
  return { reregister: false, deletes: [...work.surplusDeletes, ...work.garbageDeletes], copies: work.copies };
}
