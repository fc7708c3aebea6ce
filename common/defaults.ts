// The server roles' defaults, in one place: the roles start with them (master/main.ts,
// chunkserver/main.ts), their flags and config files default to them (common/server-settings.ts),
// and the CLI that starts the roles (cli/server-commands.ts) reads them here, so the client's
// folder needs neither role to know them.

export const MASTER_DEFAULTS = {
  chunkSizeBytes: 64 * 1024 * 1024,
  replication: 3,
  /** GFS/HDFS use tens of seconds; the local cluster passes a shorter value for quick demos. */
  deadTimeoutMs: 30_000,
  /**
   * A crash is seen at once (the connection drops); this long covers a link that reconnects (a
   * chunkserver redials at once after a link that lived, LINK_RETRY_MS after a failed try). A
   * clean restart says so first and is held for restartGraceMs instead, so this need not wait
   * for a process to start. MooseFS waits for nothing.
   */
  connectionGraceMs: 200,
  /** A chunkserver stopped cleanly (SIGTERM) is held this long before its copies start: a restart, an upgrade, a reboot (MooseFS holds 30 minutes). */
  restartGraceMs: 10 * 60_000,
  writeLeaseMs: 60_000,
  snapshotEveryEntries: 10_000,
  /** Raft log entries kept behind a snapshot: a follower that far behind catches up by appends, not a snapshot. */
  compactKeepEntries: 1_000,
  tickIntervalMs: 100,
  safeModeMs: 5_000,
  /** A minute: long enough to ride out a master that is briefly behind; the local cluster uses 10 s. */
  gcGraceMs: 60_000,
  /** HDFS allows 2 replication streams per DataNode (4 at most); small clusters want lost replicas back fast. */
  copiesPerServer: 4,
  balanceThreshold: 0.1,
  /** trash-quota: what dfs rm moved to /.trash is kept a day (HDFS's fs.trash.interval), then expunged. */
  trashIntervalMs: 24 * 3600_000,
  /** Files this small live in the masters' replicated state (common/inline.ts); 0 turns it off. */
  inlineMaxBytes: 4096,
};

export const CHUNKSERVER_DEFAULTS = {
  maxChunkBytes: MASTER_DEFAULTS.chunkSizeBytes,
  heartbeatIntervalMs: 1000,
  // HDFS's block scanner reads 1 MiB/s per volume and aims to cover every block in three weeks,
  // for DataNodes of many large disks. A dfs chunkserver is one folder on one disk; 16 MiB/s
  // verifies 1 TiB in about 18 hours, is about a tenth of one spinning disk's sequential
  // bandwidth (a small share of an SSD's), and xxHash64 at that rate costs well under 1% of a core.
  scrubRateMiBps: 16,
  // Continuous, as MooseFS checks a chunk every few seconds forever: a large store is read back to
  // back at the rate above (1 TiB in about 18 hours), and a small one again every 30 s, so damage
  // in a replica nobody reads is found within a minute rather than within a day. A pass over a
  // small store mostly hits the page cache, and the rate caps what any store costs.
  scrubIntervalMs: 30_000,
  // Uncapped: the master already bounds repair to a few copies per server, and a small cluster
  // wants its lost replicas back as soon as possible. Set it where repair traffic hurts clients.
  copyRateMiBps: 0,
};
