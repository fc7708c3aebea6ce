// The master's Prometheus metrics (docs/METRICS.md). Raft is watched through the observer hooks
// its driver and storage take (master/raft stays free of prom-client, and its core of clocks)
// and through status() read at scrape time; the leader's chunk health is what its last repair
// scan counted, so a scrape never walks the namespace.
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { RaftNodeObserver, StorageObserver } from './raft/index.js';
import type { RaftReplicator } from './raft-replicator.js';
import type { MasterService } from './service/index.js';

/** Seconds, for an fdatasync and for a proposal's trip through the log (both sub-millisecond to seconds). */
const SYNC_SECONDS_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** The hooks RaftReplicator passes to the Raft driver, its storage and its transport. */
export interface RaftHooks {
  node: RaftNodeObserver;
  storage: StorageObserver;
  onSent(peer: string, count: number): void;
  onDropped(peer: string, count: number): void;
}

/** Counters and histograms moved by Raft's events; `peers` are the other masters' ids (the label values). */
export function raftHooks(registry: Registry, peers: readonly string[]): RaftHooks {
  const registers = [registry];
  const proposals = new Counter({ name: 'dfs_master_raft_proposals_total', help: 'commands this master proposed as leader', registers });
  const commitSeconds = new Histogram({
    name: 'dfs_master_raft_proposal_commit_seconds', help: 'from a proposal to its commit and apply on this leader', buckets: SYNC_SECONDS_BUCKETS, registers,
  });
  const walSync = new Histogram({ name: 'dfs_master_raft_wal_fsync_seconds', help: 'one Raft WAL fdatasync', buckets: SYNC_SECONDS_BUCKETS, registers });
  const snapshots = new Counter({ name: 'dfs_master_raft_snapshots_total', help: 'Raft snapshots written (taken here or received from the leader)', registers });
  const sent = new Counter({ name: 'dfs_master_raft_messages_sent_total', help: 'Raft messages written to a peer\'s stream', labelNames: ['peer'], registers });
  const dropped = new Counter({ name: 'dfs_master_raft_messages_dropped_total', help: 'Raft messages dropped for a peer (queue full or stream failed)', labelNames: ['peer'], registers });
  // Every peer's series exists from the start, so rate() sees the first drop.
  for (const peer of peers) {
    sent.inc({ peer }, 0);
    dropped.inc({ peer }, 0);
  }
  return {
    node: { proposed: (n) => proposals.inc(n), committed: (s) => commitSeconds.observe(s) },
    storage: { walSynced: (s) => walSync.observe(s), snapshotWritten: () => snapshots.inc() },
    onSent: (peer, n) => sent.inc({ peer }, n),
    onDropped: (peer, n) => dropped.inc({ peer }, n),
  };
}

/** Gauges read from the Raft node at scrape time, and the leader changes it announces. */
export function watchRaft(registry: Registry, replicator: RaftReplicator): void {
  const registers = [registry];
  const status = () => replicator.status();
  new Gauge({ name: 'dfs_master_raft_term', help: 'current Raft term', registers, collect() { this.set(status().term); } });
  new Gauge({ name: 'dfs_master_raft_commit_index', help: 'highest log index known committed', registers, collect() { this.set(status().commitIndex); } });
  new Gauge({ name: 'dfs_master_raft_applied_index', help: 'highest log index applied to the namespace here', registers, collect() { this.set(status().appliedIndex); } });
  new Gauge({ name: 'dfs_master_raft_is_leader', help: '1 on the Raft leader, else 0', registers, collect() { this.set(status().role === 'leader' ? 1 : 0); } });
  new Gauge({ name: 'dfs_master_raft_snapshot_bytes', help: 'size of the latest Raft snapshot', registers, collect() { this.set(replicator.snapshotBytes); } });
  const changes = new Counter({ name: 'dfs_master_raft_leader_changes_total', help: 'times this master saw a new leader (a new term, or another node)', registers });
  const now = status();
  let last = now.leaderId === null ? undefined : { leaderId: now.leaderId, term: now.term };
  if (last) changes.inc(); // elected before this watch began (a group of one)
  replicator.raftNode.onLeaderChange((c) => {
    if (c.leaderId === null || (last?.leaderId === c.leaderId && last.term === c.term)) return;
    last = { leaderId: c.leaderId, term: c.term };
    changes.inc();
  });
}

/** A gauge set at scrape time: `read()` on the leader, 0 elsewhere (only the leader knows locations). */
function leaderGauge(registry: Registry, svc: MasterService, what: { name: string; help: string }, read: () => number): void {
  new Gauge({ ...what, help: `${what.help} (leader only; 0 on followers)`, registers: [registry], collect() { this.set(svc.replicator.isLeader() ? read() : 0); } });
}

/** A counter kept by the repair planner, exported as it stands at scrape time (it only grows). */
function plannerCounter(registry: Registry, what: { name: string; help: string }, read: () => number): void {
  new Counter({ ...what, registers: [registry], collect() { this.reset(); this.inc(read()); } });
}

/** The leader's view of chunk health, repair and chunkservers. */
export function watchLeader(registry: Registry, svc: MasterService): void {
  const repair = () => svc.repair;
  leaderGauge(registry, svc, { name: 'dfs_master_under_replicated_chunks', help: 'chunks of finished files short of their replication, at the last repair scan' }, () => repair().last.underReplicated);
  leaderGauge(registry, svc, { name: 'dfs_master_missing_chunks', help: 'chunks of finished files with no live replica, at the last repair scan' }, () => repair().last.missing);
  leaderGauge(registry, svc, { name: 'dfs_master_corrupt_chunks', help: 'chunks with a replica reported corrupt and not yet healthy again' }, () => svc.registry.corruptCount);
  leaderGauge(registry, svc, { name: 'dfs_master_repair_copies_queued', help: 'copy orders waiting for their target\'s heartbeat' }, () => repair().queuedCount);
  leaderGauge(registry, svc, { name: 'dfs_master_repair_copies_in_flight', help: 'copies their target has taken and not yet reported' }, () => repair().inFlightCount - repair().queuedCount);
  leaderGauge(registry, svc, { name: 'dfs_master_safe_mode', help: '1 while the leader waits for chunkserver reports before placing chunks' }, () => (svc.inSafeMode() ? 1 : 0));
  new Gauge({ name: 'dfs_master_chunkservers', help: 'chunkservers the leader knows, by state (live or dead) (leader only; 0 on followers)', labelNames: ['state'], registers: [registry], collect() {
    const leader = svc.replicator.isLeader();
    const live = leader ? svc.registry.liveCount() : 0;
    this.set({ state: 'live' }, live);
    this.set({ state: 'dead' }, leader ? svc.registry.list().length - live : 0);
  } });
  plannerCounter(registry, { name: 'dfs_master_repair_copies_ordered_total', help: 'copies (re-replication and balancing) ordered by this master as leader' }, () => repair().copiesOrdered);
  plannerCounter(registry, { name: 'dfs_master_repair_copies_done_total', help: 'copies reported done' }, () => repair().copiesDone);
  plannerCounter(registry, { name: 'dfs_master_repair_copies_failed_total', help: 'copies reported failed or timed out' }, () => repair().copiesFailed);
  plannerCounter(registry, { name: 'dfs_master_repair_copied_bytes_total', help: 'chunk bytes copied by finished copies' }, () => repair().bytesCopied);
}
