// The MasterService facade: the leader's driver and the calls the routes make, grouped by whom they serve.
import type { LeaderCore } from '../leader/core.js';
import type { Registry } from '../registry/index.js';
import type { RepairScheduler } from '../repair/index.js';
import type { Replicator } from '../replicator.js';
import type { TrashQuotaService } from '../trash-quota-service.js';
import { ChunkserverCalls } from './chunkservers.js';
import type { MasterConfig } from './config.js';
import { Leadership, type LeadershipOptions } from './leadership.js';
import { ChunkserverLinks } from './links.js';
import { UnreachableProbes } from './probes.js';
import { NamespaceCalls } from './namespace.js';
import { Reports } from './reports.js';
import { ChunkTokens } from './tokens.js';

export type MasterServiceOptions = LeadershipOptions;

/**
 * The master's operations, between the HTTP routes and the replicated state. Mutations go
 * through the Replicator; reads wait for its read barrier; chunk placement uses the volatile
 * registry and never enters the log. For the leader's volatile half it is the thin async driver
 * (service/leadership.ts) of a deterministic core (master/leader/core.ts): it reads the clock,
 * hands the core each chunkserver call with the time, runs its repair scans in slices on a timer
 * of its own, and proposes the commands the core asks for. The routes call the parts:
 * `namespace` (clients' file system calls), `reports` (fsck, du, status) and `chunkservers`
 * (register, heartbeat, corrupt reports).
 */
export class MasterService {
  readonly namespace: NamespaceCalls;
  readonly reports: Reports;
  readonly chunkservers: ChunkserverCalls;
  /** Chunkservers' long-lived connections (links.ts) and clients' reports of unreachable ones (probes.ts). */
  readonly links: ChunkserverLinks;
  readonly probes: UnreachableProbes;
  private readonly lead: Leadership;

  constructor(opts: MasterServiceOptions) {
    this.lead = new Leadership(opts);
    const tokens = new ChunkTokens(opts.config, this.lead.clock, {
      credentials: () => this.lead.state.credentials, liveServers: () => this.lead.registry.liveServers().map((s) => s.id),
    });
    this.namespace = new NamespaceCalls(this.lead, tokens);
    this.reports = new Reports(this.lead);
    this.chunkservers = new ChunkserverCalls(this.lead, tokens);
    this.links = new ChunkserverLinks(this.lead);
    this.lead.ordersWaiting = (servers) => this.links.askToBeat(servers);
    this.probes = new UnreachableProbes(this.lead);
  }

  get config(): MasterConfig {
    return this.lead.config;
  }

  get replicator(): Replicator {
    return this.lead.replicator;
  }

  /** The leader's gate (requireLeader, commit) and the replicated state, for master/credentials/. */
  get leadership(): Leadership {
    return this.lead;
  }

  /** trash-quota: the trash's and quotas' calls (master/trash-quota-service.ts). */
  get trashQuota(): TrashQuotaService {
    return this.lead.trashQuota;
  }

  get core(): LeaderCore {
    return this.lead.core;
  }

  /** The core's registry (read by status and metrics). */
  get registry(): Registry {
    return this.lead.registry;
  }

  /** The core's repair planner (read by status and metrics for its counters). */
  get repair(): RepairScheduler {
    return this.lead.repair;
  }

  /** Starts the leader's timer: lease expiry and repair scans. */
  start(): void {
    this.lead.start();
  }

  stop(): void {
    this.lead.stop();
    this.links.closeAll();
  }

  /** One tick of the leader core: propose what it asks, start a scan when one is due. */
  tick(): void {
    this.lead.tick();
  }

  /** Safe mode (see LeaderCore.inSafeMode). */
  inSafeMode(): boolean {
    return this.lead.inSafeMode();
  }
}
