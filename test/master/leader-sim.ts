// A deterministic simulator for the leader core (master/leader/core.ts), as sim.ts is for Raft.
// Chunkservers of different sizes store replicas in memory, heartbeat on a simulated clock and
// carry out the copies and deletes the core hands them; files are written, overwritten, removed
// and re-replicated through the real MasterState's apply (no Raft: the sim is the one master
// whose log it is). A seeded random source decides everything: faults (kills, restarts with and
// without data, slow and lost heartbeats, connections to the leader that drop (with a kill, or
// alone) and open again, corrupt replicas, leader changes) and the workload
// (writes, overwrites, rm, setrep, decommission). The checks run on the ground truth (what the
// servers hold), not on the core's beliefs, each time an order reaches a server:
//   - no delete takes a chunk below its replication, and none deletes its last good replica;
//   - no copy targets a server that holds the chunk or is being drained;
//   - a garbage delete comes only after the chunk was garbage for the grace period;
// and once faults stop, every chunk that still has a good replica converges to its replication,
// no garbage is left, use is even (no move the balancer's rule allows is left undone), and with
// servers in two or three racks every chunk keeps the rack rule (master/racks.ts): two racks at
// least, and no rack above its share while another could take a replica.
import type { HeartbeatRequest, PlannedCopy, RegisterRequest, ReportedChunk } from '../../common/protocol.js';
import type { Command } from '../../master/commands.js';
import { LeaderCore, type LeaderCoreOptions, type ServerWork } from '../../master/leader/core.js';
import { isMisplaced } from '../../master/racks.js';
import { MasterState } from '../../master/state/index.js';
import { mulberry32 } from '../helpers/rng.js';

export interface LeaderSimOptions {
  /** Planted bug: surplus trimming keeps one replica too few (see RepairLimits.unsafeSurplusOffByOne). */
  unsafeSurplusOffByOne?: boolean;
  /** Planted bug: garbage goes without its grace period (see LeaderCoreOptions.unsafeNoGarbageGrace). */
  unsafeNoGarbageGrace?: boolean;
  /** Planted bug: servers register without their racks, so the core places as if all were in one (the rack check must catch it). */
  unsafeRacksUnreported?: boolean;
  /** Simulated time with faults and workload; then faults stop and the cluster must converge. */
  faultMs?: number;
  /** The longest the quiet phase may take to converge. */
  quietMaxMs?: number;
}

export interface LeaderSimStats {
  steps: number;
  files: number;
  kills: number;
  wipes: number;
  leaderChanges: number;
  corrupt: number;
  copiesDone: number;
  surplusDeletes: number;
  garbageDeletes: number;
  decommissions: number;
  lostChunks: number;
  quietMs: number;
  /** Connections to the leader that dropped (with a kill or alone), as connectionDropped events. */
  linkDrops: number;
  /** Kills that were clean stops: the server said it restarts first (serverStopping), and was held. */
  cleanStops: number;
}

const STEP_MS = 250;
const HEARTBEAT_MS = 1000;
const DEAD_MS = 5000;
/**
 * Not the real 400 ms default: a simulated server opens its link again with its next beat (up to
 * HEARTBEAT_MS later), where a real one redials LINK_RETRY_MS after a close.
 */
const CONNECTION_GRACE_MS = 1500;
/** Longer than the dead timeout: a held server outlives its silence. */
const RESTART_GRACE_MS = 12_000;
const GRACE_MS = 8000;
const SAFE_MODE_MS = 2000;
const LEASE_MS = 15_000;
const CHUNK_BYTES = 100;
const BALANCE_THRESHOLD = 0.1;
const MAX_FILES = 24;

interface Copying { order: PlannedCopy; doneAtMs: number }
/** A replica a simulated server holds. */
interface Replica { version: number; length: number }

/** A chunkserver as the master sees it through its calls: an in-memory store, a report backlog, copies under way. */
class SimServer {
  id: string;
  up = true;
  /** Must send a full report (just started, or the master asked). */
  needsRegister = true;
  generation = 0;
  store = new Map<number, Replica>();
  added: ReportedChunk[] = [];
  removed: number[] = [];
  copyFailed: number[] = [];
  copying: Copying[] = [];
  nextBeatMs: number;
  /** Down after a stop the leader took as a restart (held): its replicas count, but it cannot serve them. */
  held = false;
  /** Its connection to the leader is open (opened with its next beat when not). */
  linkOpen = false;
  stream = 0;

  /** Its rack (failure domain), set when the cluster is made. */
  rack = 'r1';

  constructor(readonly base: string, readonly addr: string, readonly capacityBytes: number, firstBeatMs: number) {
    this.id = base;
    this.nextBeatMs = firstBeatMs;
  }

  usedBytes(): number {
    let n = 0;
    for (const r of this.store.values()) n += r.length;
    for (const c of this.copying) n += c.order.length;
    return n;
  }

  stats() {
    const used = this.usedBytes();
    return { id: this.id, addr: this.addr, capacityBytes: this.capacityBytes, freeBytes: Math.max(0, this.capacityBytes - used), usedBytes: used, activeWrites: 0, activeReads: 0, copyRateBytesPerSec: 0 };
  }

  put(handle: number, r: Replica): void {
    this.store.set(handle, r);
    this.added.push({ handle, version: r.version, length: r.length });
  }

  drop(handle: number): void {
    if (this.store.delete(handle)) this.removed.push(handle);
  }
}

export class LeaderSim {
  readonly random: () => number;
  /** Whether a kill is a clean stop: a source of its own, so the main source's draws stay where they were (until a hold changes what the core draws). */
  private readonly stopRandom: () => number;
  readonly state = new MasterState();
  readonly stats: LeaderSimStats = { steps: 0, files: 0, kills: 0, wipes: 0, leaderChanges: 0, corrupt: 0, copiesDone: 0, surplusDeletes: 0, garbageDeletes: 0, decommissions: 0, lostChunks: 0, quietMs: 0, linkDrops: 0, cleanStops: 0 };
  private streams = 0;
  private nowMs = 1_000_000;
  private readonly servers: SimServer[] = [];
  private core: LeaderCore;
  /** When no master leads (an election), until this time. */
  private leaderlessUntilMs = 0;
  private scan?: Generator<void, unknown>;
  /** The core the running scan belongs to: a scan of a master that is no longer in the picture is dropped. */
  private scanCore?: LeaderCore;
  /** handle → when it became garbage (no file or write references it), for the grace check. */
  private readonly garbageSince = new Map<number, number>();
  private readonly everAllocated = new Set<number>();
  private readonly paths: string[] = [];
  private seq = 0;
  private readonly trace: string[] = [];

  constructor(readonly seed: number, private readonly opts: LeaderSimOptions = {}) {
    this.random = mulberry32(seed);
    this.stopRandom = mulberry32(seed ^ 0x5e1f5);
    const n = 4 + Math.floor(this.random() * 4);
    for (let i = 0; i < n; i++) {
      // Capacities from 40 to 160 chunks: uneven, so balancing and placement by free share matter.
      const capacity = CHUNK_BYTES * (40 + Math.floor(this.random() * 121));
      this.servers.push(new SimServer(`cs${i}`, `cs${i}.sim:7000`, capacity, this.nowMs + Math.floor(this.random() * HEARTBEAT_MS)));
    }
    // Racks, dealt in turn: two for 4 or 5 servers, three for 6 or 7 (no random draw, so seeds replay as before).
    const racks = n >= 6 ? 3 : 2;
    this.servers.forEach((s, i) => (s.rack = `r${(i % racks) + 1}`));
    this.core = this.newCore();
    this.core.becomeLeader(this.nowMs);
  }

  private newCore(): LeaderCore {
    const opts: LeaderCoreOptions = {
      deadTimeoutMs: DEAD_MS, connectionGraceMs: CONNECTION_GRACE_MS, restartGraceMs: RESTART_GRACE_MS, safeModeMs: SAFE_MODE_MS, gcGraceMs: GRACE_MS, leaseCheckIntervalMs: 1000,
      repair: { perServerCopies: 2, maxInFlight: 16, copyTimeoutMs: 20_000, balanceThreshold: BALANCE_THRESHOLD, maxMovesInFlight: 4, unsafeSurplusOffByOne: this.opts.unsafeSurplusOffByOne },
      random: this.random, unsafeNoGarbageGrace: this.opts.unsafeNoGarbageGrace,
    };
    return new LeaderCore(opts, this.state, this.nowMs);
  }

  private fail(msg: string): never {
    throw new Error(`at ${this.nowMs - 1_000_000} ms: ${msg}\n  last events: ${this.trace.slice(-12).join(' | ')}`);
  }

  private note(event: string): void {
    this.trace.push(`${this.nowMs - 1_000_000}ms ${event}`);
    if (this.trace.length > 64) this.trace.splice(0, 32);
  }

  run(): LeaderSimStats {
    const faultMs = this.opts.faultMs ?? 40_000;
    const end = this.nowMs + faultMs;
    while (this.nowMs < end) {
      this.faultsAndWorkload();
      this.step();
    }
    this.heal();
    const quietStart = this.nowMs;
    const quietEnd = quietStart + (this.opts.quietMaxMs ?? 400_000);
    let why: string | undefined = 'not checked yet';
    while (this.nowMs < quietEnd) {
      this.step();
      if ((this.nowMs - quietStart) % 2000 === 0 && (why = this.unconverged()) === undefined) break;
    }
    if (why !== undefined) this.fail(`no convergence ${quietEnd - quietStart} ms after faults stopped: ${why}; the leader's last scan: ${JSON.stringify(this.core.repair.last)}, copies in flight ${this.core.repair.inFlightCount}`);
    this.stats.quietMs = this.nowMs - quietStart;
    return this.stats;
  }

  // ---- one step of simulated time ----

  private step(): void {
    this.nowMs += STEP_MS;
    this.stats.steps++;
    if (this.leaderlessUntilMs !== 0 && this.nowMs >= this.leaderlessUntilMs) this.electLeader();
    if (this.core.isLeader) for (const cmd of this.core.tick(this.nowMs)) this.apply(cmd);
    this.runScan();
    for (const s of this.servers) {
      this.finishCopies(s);
      if (s.up && this.nowMs >= s.nextBeatMs) this.beat(s);
    }
  }

  /** Runs the scan a few steps at a time, so state changes and heartbeats land between its slices. */
  private runScan(): void {
    if (this.scanCore !== this.core) this.scan = undefined;
    if (!this.scan) {
      this.scan = this.core.startScan(this.nowMs);
      this.scanCore = this.core;
    }
    if (!this.scan) return;
    const slices = 1 + Math.floor(this.random() * 40);
    for (let i = 0; i < slices; i++) {
      const r = this.scan.next();
      if (r.done) {
        this.core.finishScan(this.nowMs, r.value as Parameters<LeaderCore['finishScan']>[1]);
        this.scan = undefined;
        return;
      }
    }
  }

  private beat(s: SimServer): void {
    s.nextBeatMs = this.nowMs + HEARTBEAT_MS;
    if (!this.core.isLeader) return; // no leader to answer: the server tries again next time
    if (!s.linkOpen) {
      s.linkOpen = true;
      s.stream = ++this.streams;
      this.core.connectionOpened(s.id, s.stream, this.nowMs);
    }
    if (s.needsRegister) {
      const req: RegisterRequest = {
        ...s.stats(), ...(this.opts.unsafeRacksUnreported ? {} : { rack: s.rack }), chunks: [...s.store].map(([handle, r]) => ({ handle, version: r.version, length: r.length })),
      };
      this.core.register(req, this.nowMs);
      s.needsRegister = false;
      s.added = [];
      s.removed = [];
      this.deliver(s, this.core.takeWork(s.id, this.nowMs));
      return;
    }
    const req: HeartbeatRequest = { ...s.stats(), added: s.added, removed: s.removed, copyFailed: s.copyFailed };
    if (!this.core.heartbeat(req, this.nowMs)) {
      s.needsRegister = true;
      s.nextBeatMs = this.nowMs; // the real chunkserver registers at once
      return;
    }
    s.added = [];
    s.removed = [];
    s.copyFailed = [];
    this.deliver(s, this.core.takeWork(s.id, this.nowMs));
  }

  // ---- what a server does with its orders, and the checks on them ----

  private deliver(s: SimServer, work: ServerWork): void {
    for (const h of work.surplusDeletes) this.checkDelete(s, h, 'surplus');
    for (const h of work.garbageDeletes) this.checkDelete(s, h, 'garbage');
    for (const h of [...work.surplusDeletes, ...work.garbageDeletes]) s.drop(h);
    this.stats.surplusDeletes += work.surplusDeletes.length;
    this.stats.garbageDeletes += work.garbageDeletes.length;
    for (const order of work.copies) {
      if (this.state.decommissioning.has(s.id)) this.fail(`copy of chunk ${order.handle} ordered to ${s.id}, which is being drained`);
      if (s.store.get(order.handle)?.version === order.version) this.fail(`copy of chunk ${order.handle} ordered to ${s.id}, which holds it`);
      if (s.copying.some((c) => c.order.handle === order.handle)) this.fail(`copy of chunk ${order.handle} ordered to ${s.id}, which is copying it already`);
      s.copying.push({ order, doneAtMs: this.nowMs + 200 + Math.floor(this.random() * 3000) });
      this.note(`copy ${order.handle} → ${s.id}`);
    }
  }

  /** Good replicas of `handle`: at its current version, on servers not being drained, up or down (a down server keeps its disk). */
  private goodHolders(handle: number, version: number): SimServer[] {
    return this.servers.filter((o) => o.store.get(handle)?.version === version && !this.state.decommissioning.has(o.id));
  }

  private checkDelete(s: SimServer, handle: number, kind: 'surplus' | 'garbage'): void {
    const held = s.store.get(handle);
    if (!held) return;
    this.note(`${kind} delete ${handle} on ${s.id}`);
    const version = this.state.chunks.versionOf(handle);
    if (kind === 'garbage') {
      const since = this.garbageSince.get(handle);
      const isGarbage = version === undefined || held.version < version;
      if (!isGarbage) this.fail(`garbage delete of chunk ${handle} on ${s.id}, which a file or write references`);
      if (version === undefined && (since === undefined || this.nowMs - since < GRACE_MS)) {
        this.fail(`garbage delete of chunk ${handle} on ${s.id} ${since === undefined ? '(never garbage)' : `${this.nowMs - since} ms after it became garbage`}, before the ${GRACE_MS} ms grace`);
      }
    }
    if (version === undefined || held.version !== version) return;
    const replication = this.replicationOf(handle);
    const others = this.goodHolders(handle, version).filter((o) => o !== s).length;
    if (others === 0) this.fail(`${kind} delete of chunk ${handle} on ${s.id} deletes its last good replica`);
    if (replication !== undefined && others < replication) this.fail(`${kind} delete of chunk ${handle} on ${s.id} leaves ${others} good replicas, below its replication ${replication}`);
    // A held server's replica counts against copies, never for a trim: it is down.
    const inService = this.goodHolders(handle, version).filter((o) => o !== s && !(o.held && !o.up)).length;
    if (kind === 'surplus' && replication !== undefined && inService < replication) {
      this.fail(`surplus delete of chunk ${handle} on ${s.id} leaves ${inService} good replicas in service (a server held restarting is down), below its replication ${replication}`);
    }
  }

  private finishCopies(s: SimServer): void {
    if (s.copying.length === 0 || !s.up) return;
    const due = s.copying.filter((c) => c.doneAtMs <= this.nowMs);
    if (due.length === 0) return;
    s.copying = s.copying.filter((c) => c.doneAtMs > this.nowMs);
    for (const { order } of due) {
      const source = this.servers.find((o) => o.addr === order.source);
      const ok = source?.up && source.store.get(order.handle)?.version === order.version && s.usedBytes() + order.length <= s.capacityBytes;
      if (!ok) {
        s.copyFailed.push(order.handle);
        continue;
      }
      if (!s.store.has(order.handle)) s.put(order.handle, { version: order.version, length: order.length });
      this.stats.copiesDone++;
    }
  }

  // ---- the replicated state ----

  private apply(cmd: Command): ReturnType<MasterState['apply']> {
    const r = this.state.apply(cmd);
    this.core.stateChanged(this.state);
    // Chunks no file or write references any more start their grace period now.
    for (const h of this.everAllocated) {
      if (!this.state.chunks.has(h) && !this.garbageSince.has(h)) this.garbageSince.set(h, this.nowMs);
    }
    return r;
  }

  private replicationOf(handle: number): number | undefined {
    for (const p of this.paths) {
      const n = this.state.lookup(p);
      if (n?.type === 'file' && n.state === 'complete' && n.chunks.includes(handle)) return n.replication;
    }
    return undefined;
  }

  /** A client writes a file: create, then per chunk allocate, place and store on the pipeline, then complete. */
  private write(path: string, overwrite: boolean): void {
    const replication = 1 + Math.floor(this.random() * 3);
    const writeId = `w${++this.seq}`;
    const created = this.apply({ op: 'create', path, overwrite, parents: true, replication, chunkSizeBytes: CHUNK_BYTES, writeId, leaseMs: LEASE_MS, nowMs: this.nowMs });
    if (!created.ok) return;
    if (!this.paths.includes(path)) this.paths.push(path);
    const chunks = 1 + Math.floor(this.random() * 3);
    const done: { handle: number; length: number; checksum: string; replicas: string[] }[] = [];
    for (let i = 0; i < chunks; i++) {
      const length = i === chunks - 1 ? 1 + Math.floor(this.random() * CHUNK_BYTES) : CHUNK_BYTES;
      const stored = this.writeChunk(writeId, i, length, replication);
      if (!stored) return; // the writer gives up: its lease expires and the chunks become garbage
      done.push(stored);
    }
    // A writer that dies before complete leaves its write to the lease expiry.
    if (this.random() < 0.05) return;
    const total = done.reduce((n, c) => n + c.length, 0);
    const r = this.apply({ op: 'complete', writeId, length: total, chunks: done.map(({ handle, length, checksum }) => ({ handle, length, checksum })), nowMs: this.nowMs });
    if (r.ok) {
      this.core.addWrittenReplicas(this.nowMs, done);
      this.stats.files++;
    }
  }

  /** One chunk through a pipeline; a down server on it fails the pipeline there, and the client retries without it. */
  private writeChunk(writeId: string, index: number, length: number, replication: number) {
    const exclude: string[] = [];
    for (let attempt = 0; attempt < 5; attempt++) {
      const placed = this.core.place(this.nowMs, replication, exclude, CHUNK_BYTES);
      if (typeof placed === 'string') return undefined;
      // A retried chunk's old handle is garbage from here on (apply notes when).
      const rec = this.apply({ op: 'allocate', writeId, index, nowMs: this.nowMs });
      if (!rec.ok) return undefined;
      const { handle, version } = rec.value as { handle: number; version: number };
      this.everAllocated.add(handle);
      const replicas: string[] = [];
      let failed: SimServer | undefined;
      for (const p of placed) {
        // By address: a server wiped and restarted answers there under a new id.
        const s = this.servers.find((o) => o.addr === p.addr)!;
        if (!s.up || s.usedBytes() + length > s.capacityBytes) {
          failed = s;
          break;
        }
        s.put(handle, { version, length });
        replicas.push(s.id);
      }
      if (!failed) return { handle, length, checksum: `c${handle}`, replicas };
      exclude.push(failed.id);
    }
    return undefined;
  }

  // ---- faults and workload ----

  private faultsAndWorkload(): void {
    const r = this.random();
    if (r < 0.06) this.write(this.pickPath(), false);
    else if (r < 0.08) this.overwrite();
    else if (r < 0.09) this.remove();
    else if (r < 0.10) this.setrep();
    else if (r < 0.105) this.decommission();
    else if (r < 0.115) this.kill();
    else if (r < 0.13) this.restart();
    else if (r < 0.14) this.corrupt();
    else if (r < 0.143) this.changeLeader();
    else if (r < 0.16) this.slowOrLostHeartbeat();
    else if (r < 0.165) this.linkBlip();
  }

  /** The leader hears that `s`'s connection closed. */
  private dropLink(s: SimServer): void {
    if (!s.linkOpen) return;
    s.linkOpen = false;
    if (!this.core.isLeader) return;
    this.core.connectionDropped(s.id, s.stream, this.nowMs);
    this.stats.linkDrops++;
    this.note(`link of ${s.id} dropped`);
  }

  /** A live server's connection drops alone (a reset on the way); it opens a new one with its next beat. */
  private linkBlip(): void {
    const up = this.servers.filter((s) => s.up && s.linkOpen);
    if (up.length > 0) this.dropLink(up[Math.floor(this.random() * up.length)]!);
  }

  private pickPath(): string {
    return `/d${Math.floor(this.random() * 3)}/f${Math.floor(this.random() * MAX_FILES)}`;
  }

  private completeFiles(): string[] {
    return this.paths.filter((p) => {
      const n = this.state.lookup(p);
      return n?.type === 'file' && n.state === 'complete';
    });
  }

  private pickFile(): string | undefined {
    const files = this.completeFiles();
    return files.length === 0 ? undefined : files[Math.floor(this.random() * files.length)];
  }

  private overwrite(): void {
    const p = this.pickFile();
    if (p) this.write(p, true);
  }

  private remove(): void {
    const p = this.pickFile();
    if (!p) return;
    this.apply({ op: 'delete', path: p, recursive: false, nowMs: this.nowMs });
    this.note(`rm ${p}`);
  }

  private setrep(): void {
    const p = this.pickFile();
    if (!p) return;
    const replication = 1 + Math.floor(this.random() * 3);
    this.apply({ op: 'setReplication', path: p, replication, recursive: false });
    this.note(`setrep ${replication} ${p}`);
  }

  /** Drains one server at a time, leaving at least 3 others; sometimes cancels instead. */
  private decommission(): void {
    const draining = [...this.state.decommissioning];
    if (draining.length > 0) {
      if (this.random() < 0.5) this.apply({ op: 'decommission', server: draining[0]!, cancel: true });
      return;
    }
    if (this.servers.length < 4) return;
    const s = this.servers[Math.floor(this.random() * this.servers.length)]!;
    this.apply({ op: 'decommission', server: s.id, cancel: false });
    this.stats.decommissions++;
    this.note(`decommission ${s.id}`);
  }

  /** Kills a server (at most all but two are down): its disk stays, its copies under way are lost. */
  private kill(): void {
    const up = this.servers.filter((s) => s.up);
    if (up.length <= 2) return;
    const s = up[Math.floor(this.random() * up.length)]!;
    s.up = false;
    // A third of them are clean stops (SIGTERM): the server tells the leader it restarts, then
    // its link closes; the leader holds it, its replicas counted, for the restart grace.
    if (this.stopRandom() < 0.3 && this.core.isLeader && this.core.serverStopping(s.id, this.nowMs)) {
      s.held = true;
      this.stats.cleanStops++;
      this.note(`${s.id} says it stops to restart`);
    }
    // The kernel closes a dead process's socket: the leader hears of it, unless the host is gone.
    if (this.random() < 0.8) this.dropLink(s);
    s.copying = [];
    s.added = [];
    s.removed = [];
    s.copyFailed = [];
    this.stats.kills++;
    this.note(`kill ${s.id}`);
  }

  /** Restarts a down server, with its data (a full report) or wiped (a new id at the same address). */
  private restart(): void {
    const down = this.servers.filter((s) => !s.up);
    if (down.length === 0) return;
    const s = down[Math.floor(this.random() * down.length)]!;
    if (this.random() < 0.3) {
      s.store.clear();
      s.generation++;
      s.id = `${s.base}.${s.generation}`;
      this.stats.wipes++;
    }
    s.up = true;
    s.held = false;
    s.needsRegister = true;
    s.nextBeatMs = this.nowMs + Math.floor(this.random() * HEARTBEAT_MS);
    this.note(`restart ${s.id}`);
    // A wiped server registers at once: until it does, the leader cannot know its disk is gone,
    // and a delete it orders meanwhile, counting on those replicas, would be no fault of its own.
    if (s.generation > 0 && s.store.size === 0) this.beat(s);
  }

  /** The scrubber finds a replica damaged: the server drops it and tells the leader at once. */
  private corrupt(): void {
    const holders = this.servers.filter((s) => s.up && s.store.size > 0);
    if (holders.length === 0) return;
    const s = holders[Math.floor(this.random() * holders.length)]!;
    const handles = [...s.store.keys()];
    const h = handles[Math.floor(this.random() * handles.length)]!;
    s.drop(h);
    this.stats.corrupt++;
    this.note(`corrupt ${h} on ${s.id}`);
    if (this.core.isLeader) this.core.reportCorrupt({ id: s.id, handle: h, reason: 'sim' }, this.nowMs);
  }

  /** The leader steps down; after an election, the same master or another (a fresh core) leads. */
  private changeLeader(): void {
    if (!this.core.isLeader) return;
    // A scan under way goes on stepping, as the driver's would, and stops itself at its next step.
    this.core.loseLeadership(this.nowMs);
    for (const s of this.servers) s.linkOpen = false; // the old leader ends every link
    this.leaderlessUntilMs = this.nowMs + Math.floor(this.random() * 3000);
    this.stats.leaderChanges++;
    this.note('leader lost');
  }

  private electLeader(): void {
    this.leaderlessUntilMs = 0;
    if (this.random() < 0.5) this.core = this.newCore();
    this.core.becomeLeader(this.nowMs);
    this.note('leader elected');
  }

  /** A heartbeat that is late (sometimes past the dead timeout) or lost on the way (its report is sent again next time). */
  private slowOrLostHeartbeat(): void {
    const s = this.servers[Math.floor(this.random() * this.servers.length)]!;
    s.nextBeatMs += this.random() < 0.5 ? HEARTBEAT_MS : Math.floor(this.random() * 2 * DEAD_MS);
  }

  /** Faults stop: every server comes back with its data, and a leader is in place. */
  private heal(): void {
    for (const s of this.servers) {
      if (!s.up) {
        s.up = true;
        s.needsRegister = true;
      }
      s.nextBeatMs = Math.min(s.nextBeatMs, this.nowMs + HEARTBEAT_MS);
    }
    if (!this.core.isLeader) this.electLeader();
    this.note('healed');
  }

  // ---- convergence ----

  /** Why the cluster is not settled yet, or undefined when it is. */
  private unconverged(): string | undefined {
    if (this.servers.some((s) => s.copying.length > 0)) return 'copies under way';
    let lost = 0;
    for (const p of this.completeFiles()) {
      const file = this.state.lookup(p);
      if (file?.type !== 'file') continue;
      for (const h of file.chunks) {
        const version = this.state.chunks.versionOf(h)!;
        const good = this.goodHolders(h, version).length;
        const anywhere = this.servers.some((s) => s.store.get(h)?.version === version);
        if (!anywhere) {
          lost++;
          continue;
        }
        if (good !== file.replication) return `chunk ${h} of ${p} has ${good} good replicas, not ${file.replication}`;
        const spread = this.rackRuleBroken(h, version, file.replication);
        if (spread) return `chunk ${h} of ${p}: ${spread}`;
      }
    }
    for (const s of this.servers) {
      for (const h of s.store.keys()) if (!this.state.chunks.has(h)) return `garbage chunk ${h} still on ${s.id}`;
    }
    this.stats.lostChunks = lost;
    return this.imbalance();
  }

  /**
   * Why a chunk's good replicas break the rack rule, judged on what the servers hold: with
   * replication 2 or more and servers (up, not draining) in two racks or more, the chunk must
   * span two racks, and must not be misplaced (isMisplaced: a rack above its share while another
   * rack has a server to spare).
   */
  private rackRuleBroken(handle: number, version: number, replication: number): string | undefined {
    const sizes = new Map<string, number>();
    for (const s of this.servers) if (s.up && !this.state.decommissioning.has(s.id)) sizes.set(s.rack, (sizes.get(s.rack) ?? 0) + 1);
    const racks = this.goodHolders(handle, version).map((s) => s.rack).sort();
    if (replication >= 2 && sizes.size >= 2 && new Set(racks).size < 2) return `every replica in rack ${racks[0]} (${racks.length} replicas)`;
    if (isMisplaced(racks, replication, sizes)) return `replicas in racks ${racks.join(', ')} break the rack rule (servers per rack: ${JSON.stringify(Object.fromEntries(sizes))})`;
    return undefined;
  }

  /** Whether moving `h` from `src` to `dst` leaves it within the rack rule (balancing moves only such). */
  private moveKeepsRackRule(h: number, replication: number, src: SimServer, dst: SimServer): boolean {
    if (src.rack === dst.rack) return true;
    const version = this.state.chunks.versionOf(h)!;
    const sizes = new Map<string, number>();
    for (const s of this.servers) if (s.up && !this.state.decommissioning.has(s.id)) sizes.set(s.rack, (sizes.get(s.rack) ?? 0) + 1);
    const after = this.goodHolders(h, version).filter((s) => s !== src).map((s) => s.rack);
    return !isMisplaced([...after, dst.rack], replication, sizes);
  }

  /**
   * Use is even when no move the balancer's rule allows is left: from a server above the mean by
   * more than the threshold (or to one below it), a chunk the emptier server lacks and has room
   * for, that leaves the source at least as full as the target. Judged on what servers hold.
   */
  private imbalance(): string | undefined {
    const wanted = new Map<number, number>();
    const replication = new Map<number, number>();
    for (const p of this.completeFiles()) {
      const f = this.state.lookup(p);
      if (f?.type === 'file') for (const h of f.chunks) {
        wanted.set(h, this.state.chunks.lengthOf(h)!);
        replication.set(h, f.replication);
      }
    }
    const servers = this.servers.filter((s) => !this.state.decommissioning.has(s.id));
    const bytes = new Map(servers.map((s) => [s, [...s.store.keys()].reduce((n, h) => n + (wanted.get(h) ?? 0), 0)]));
    const mean = [...bytes.values()].reduce((a, b) => a + b, 0) / servers.reduce((n, s) => n + s.capacityBytes, 0);
    if (mean <= 0) return undefined;
    const u = (s: SimServer) => bytes.get(s)! / s.capacityBytes;
    for (const src of servers) {
      for (const dst of servers) {
        if (u(src) <= u(dst) || (u(src) <= mean * (1 + BALANCE_THRESHOLD) && u(dst) >= mean * (1 - BALANCE_THRESHOLD))) continue;
        for (const [h, len] of wanted) {
          if (!src.store.has(h) || dst.store.has(h) || dst.capacityBytes - dst.usedBytes() < len) continue;
          if (!this.moveKeepsRackRule(h, replication.get(h)!, src, dst)) continue;
          if ((bytes.get(src)! - len) / src.capacityBytes >= (bytes.get(dst)! + len) / dst.capacityBytes) {
            return `uneven: ${src.id} at ${u(src).toFixed(3)} could move chunk ${h} to ${dst.id} at ${u(dst).toFixed(3)} (mean ${mean.toFixed(3)})`;
          }
        }
      }
    }
    return undefined;
  }
}

export function runLeaderSeed(seed: number, opts: LeaderSimOptions = {}): LeaderSimStats {
  return new LeaderSim(seed, opts).run();
}
