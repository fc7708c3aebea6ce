// The replies of the wire contract as zod schemas, each with its type (`z.infer`), so the type a
// server returns and the check a client runs are one thing (common/contract/call.ts checks every
// JSON reply with its route's schema). Objects are not strict: a newer server may add a field and
// an older client passes it on untouched. No schema here transforms or defaults a value: a client
// keeps the reply as it came, once it has checked it.
import { z } from 'zod';

const int = z.number().int();
const count = z.number().int().min(0);

/** A replica's server; `rack` in stat's chunk lists (readers in that rack try it first). */
export const ReplicaInfo = z.object({
  id: z.string(),
  addr: z.string(),
  rack: z.string().optional(),
  /** In a write's reply: this server's signed receipt for what it stored (common/store-receipt.ts), for complete. */
  receipt: z.string().optional(),
});

export const ChunkInfo = z.object({
  index: count,
  handle: int,
  version: count,
  length: count,
  checksum: z.string(),
  /** Live replicas holding the current version, in no particular order. */
  replicas: z.array(ReplicaInfo),
  /** A read token for this chunk and version (common/auth.ts): send it as `x-dfs-token` to read from a replica. */
  token: z.string(),
  /** How many files share this chunk, when more than one (snapshots); absent: this file's alone. */
  shared: count.optional(),
});

export const FileState = z.enum(['writing', 'complete']);

export const EntryInfo = z.object({
  path: z.string(),
  name: z.string(),
  type: z.enum(['file', 'dir']),
  size: count,
  mtimeMs: z.number(),
  replication: count,
  state: FileState,
  chunkCount: count,
});

/** An inline file's bytes (common/inline.ts): base64, with their length and checksum, which every reader checks. */
export const InlineData = z.object({ data: z.string(), size: count, checksum: z.string() });

export const StatReply = EntryInfo.extend({
  chunkSizeBytes: count,
  chunks: z.array(ChunkInfo).optional(),
  /** With `chunks` asked for, an inline file's bytes: it has no chunks, and is read from here. */
  inline: InlineData.optional(),
});

/** A stat-many's answers, one per path asked, in order: null where there is nothing. */
export const StatManyReply = z.object({ entries: z.array(StatReply.nullable()) });

export const ListReply = z.object({
  path: z.string(),
  entries: z.array(EntryInfo),
  /** A paged listing with more entries after this page: pass it as `after` for the next (the last entry's name, a directory's with '/'). */
  next: z.string().optional(),
});

/** The health of one chunk, as fsck reports it. */
export const ChunkHealth = z.enum(['UNDER_REPLICATED', 'MISSING', 'CORRUPT']);
/**
 * A chunk of a finished file with fewer good replicas than its file's replication. MISSING: no
 * live replica and none reported corrupt (its servers are down); CORRUPT: no good replica left
 * and at least one failed its checksum.
 */
export const FsckProblem = z.object({ path: z.string(), index: count, handle: int, live: count, replication: count, status: ChunkHealth });
/** A file's health: its worst chunk's (CORRUPT, then MISSING, then UNDER_REPLICATED). */
export const FileHealth = z.enum(['HEALTHY', 'UNDER_REPLICATED', 'MISSING', 'CORRUPT']);
export const FsckFile = z.object({ path: z.string(), size: count, replication: count, chunks: count, status: FileHealth, badChunks: count });
/** A chunk whose replicas are not spread over racks as the rule wants (master/racks.ts). */
export const MisplacedReport = z.object({ path: z.string(), index: count, handle: int, racks: z.array(z.string()) });

/** GET /v1/fs/fsck: the health of every finished file's chunks below a path. */
export const FsckReply = z.object({
  path: z.string(),
  files: count,
  /** Files still being written (not checked). */
  openFiles: count,
  chunks: count,
  underReplicated: count,
  /** Chunks with more good replicas than wanted (trimmed by the leader, one replica a second). */
  overReplicated: count,
  /**
   * Chunks shared with a file of higher replication elsewhere (a snapshot's): they are kept, and
   * judged, at that file's replication. Absent when none.
   */
  keptHigher: count.optional(),
  missing: count,
  corrupt: count,
  /** Files by health. */
  filesHealthy: count,
  filesUnderReplicated: count,
  filesMissing: count,
  filesCorrupt: count,
  /** Files that are not healthy (every file with ?files=true), at most MAX_FSCK_PROBLEMS. */
  fileReports: z.array(FsckFile),
  /** The first problem chunks (at most MAX_FSCK_PROBLEMS), the fewest replicas first. */
  problems: z.array(FsckProblem),
  /** HEALTHY: every chunk has a good replica; CORRUPT: some chunk has none (missing or corrupt). */
  status: z.enum(['HEALTHY', 'CORRUPT']),
  /** Chunks with their replication whose replicas break the rack rule (too many in one rack; repair moves one). */
  misplaced: count,
  /** The first misplaced chunks (at most MAX_FSCK_PROBLEMS), with the racks their replicas are in. */
  misplacedChunks: z.array(MisplacedReport),
});

/** How much can be lost now without losing the last replica of a chunk (dfs status). */
export const ClusterTolerance = z.object({
  /** Any this many servers may fail at once (the fewest live replicas of a chunk, less one); null: no chunk has a replica. */
  servers: count.nullable(),
  /** Racks that may be lost whole, each alone: no chunk has all its live replicas there. */
  racksSafe: z.array(z.string()),
  /** Racks that hold every live replica of some chunk, with how many such chunks: losing one loses data. */
  racksAtRisk: z.array(z.object({ rack: z.string(), chunks: count })),
});

/**
 * `bytes`: the files' bytes, a chunk shared by several of them (snapshots) counted once, unless
 * asked per file (`perFile`): each file's whole size. `sharedBytes`: bytes of chunks that more
 * than one file references (each counted once).
 */
export const DuReply = z.object({
  path: z.string(), bytes: count, files: count, dirs: count, chunks: count, sharedBytes: count.optional(),
  entries: z.array(z.object({ path: z.string(), bytes: count })).optional(),
});

export const AllocateReply = z.object({ handle: int, version: count, replicas: z.array(ReplicaInfo), token: z.string(), underReplicated: z.boolean() });
/** An open write: what a create (or an append) answers. */
const OpenWrite = z.object({ writeId: z.string(), path: z.string(), chunkSizeBytes: count, replication: count, leaseMs: count });
/** A create's open write; `first`: its chunk 0, allocated with it when the create asked (`allocate`) and a place was found. */
export const CreateReply = OpenWrite.extend({ first: AllocateReply.optional() });
/** The reply to a create with `empty: true`: the file, complete already. */
export const CreateEmptyReply = z.object({ file: EntryInfo });
/** What a create answers: an open write, or (with `empty: true`) the file, complete already. */
export const CreateAnyReply = z.union([CreateReply, CreateEmptyReply]);
/** The reply to a renew: the writes the master no longer knows (abandoned, expired or finished); the rest were renewed. */
export const RenewReply = z.object({ unknown: z.array(z.string()) });
/**
 * An append opened: a write (renewed, completed or abandoned as a put's) and the file's size.
 * `fill`, when the last chunk has room: the appended bytes go there first, as an append write
 * (PUT /v1/chunks/:handle with `base` and `offset`) to the replicas named, at `newVersion`,
 * with the write token for it; then new chunks are allocated as a put's, index 0 first.
 */
export const AppendReply = OpenWrite.extend({
  size: count,
  fill: z.object({
    handle: int, version: count, offset: count, newVersion: count, replicas: z.array(ReplicaInfo), token: z.string(),
    /** The last chunk is shared (a snapshot): fill a copy under this handle, made by each replica from its own bytes; `token` is for it. */
    copyTo: int.optional(),
    /** With `copyTo`: a read token for `handle` at `version`, which the replicas need to copy it. */
    fromToken: z.string().optional(),
  }).optional(),
  /**
   * The file is inline (kept in the master's state): its bytes. The append writes them first, then
   * the appended bytes, as new chunks from index 0; complete makes it a file of chunks.
   */
  inline: InlineData.optional(),
  /**
   * A record append's place: the record goes at `offset`; `pad` zero bytes fill the last chunk first
   * (the record did not fit in its room), so the append adds exactly `pad` + the record.
   */
  record: z.object({ offset: z.number().int().nonnegative(), pad: z.number().int().nonnegative() }).optional(),
});

export const ChunkserverStatus = z.object({
  id: z.string(),
  addr: z.string(),
  alive: z.boolean(),
  /**
   * Alive, but kept out of new pipelines: its connection to the leader dropped (dead once the
   * grace passes without a new one), or a client could not reach it and neither could the leader.
   */
  suspect: z.boolean().optional(),
  /**
   * It stopped cleanly to restart (SIGTERM) and is held: suspect, its replicas still counted, no
   * copies for its absence; dead once this many ms pass without its coming back.
   */
  restartHeldMs: z.number().optional(),
  capacityBytes: count,
  freeBytes: count,
  usedBytes: count,
  chunkCount: count,
  activeWrites: count,
  activeReads: count,
  lastHeartbeatAgoMs: z.number(),
  /** The file system its data is on, as it reported it; servers with the same fsId share one disk. */
  fsId: z.string().optional(),
  /** Its failure domain (rack), as it registered ('default' when it named none); absent from a master from before racks. */
  rack: z.string().optional(),
  /**
   * in-service; decommissioning while some of its chunks lack their replication elsewhere;
   * decommissioned once none do (it may then be stopped and removed).
   */
  state: z.enum(['in-service', 'decommissioning', 'decommissioned']),
  /** While decommissioning: its chunks still to be copied elsewhere. */
  decommissionRemaining: count.optional(),
});

export const MasterStatus = z.object({
  id: z.string(),
  addr: z.string(),
  role: z.enum(['leader', 'follower', 'candidate', 'unknown']),
  term: count.optional(),
  commitIndex: count.optional(),
  appliedIndex: count.optional(),
  reachable: z.boolean(),
  error: z.string().optional(),
});

/** GET /v1/raft/status on any master: its own view of the group. */
export const RaftStatusReply = z.object({
  id: z.string(),
  addr: z.string(),
  clusterId: z.string(),
  role: z.enum(['leader', 'follower', 'candidate']),
  term: count,
  leader: z.string().nullable(),
  commitIndex: count,
  appliedIndex: count,
  /** The index of the latest snapshot here (taken or received), 0 before the first. */
  snapshotIndex: count,
  /** Snapshots installed from the leader since this master started: it was too far behind for appends. */
  snapshotsReceived: count,
});

export const ClusterStatus = z.object({
  /** The cluster the masters' data folders belong to (recorded in each one's membership.json). */
  clusterId: z.string(),
  /** The namespace's id, once the first leader drew it (chunkservers record it). */
  namespaceId: z.string().optional(),
  leader: z.string().nullable(),
  masters: z.array(MasterStatus),
  chunkservers: z.array(ChunkserverStatus),
  files: count,
  dirs: count,
  chunks: count,
  underReplicatedChunks: count,
  overReplicatedChunks: count,
  missingChunks: count,
  chunkSizeBytes: count,
  defaultReplication: count,
  /** A new leader waiting for chunkserver reports before it places chunks. */
  safeMode: z.boolean(),
  /** Re-replication since this master became leader. */
  repair: z.object({ copiesInFlight: count, copiesDone: count, copiesFailed: count, bytesCopied: count, movesInFlight: count, movesDone: count }),
  /** What the cluster can lose now, by servers and by racks. */
  tolerance: ClusterTolerance,
  /** trash-quota: what /.trash holds (bytes: the files' sizes; rawBytes: times replication) and how long it keeps it. */
  trash: z.object({ files: count, bytes: count, rawBytes: count, intervalMs: count }).optional(),
  /** Files kept inline in the masters' state (common/inline.ts), their bytes, and the namespace's cap on those. */
  inline: z.object({ files: count, bytes: count, capBytes: count, maxFileBytes: count }).optional(),
});

/** Make a replica of `handle` here: read it (verified) from `source`, check it, store it. */
export const CopyOrder = z.object({
  handle: int,
  version: count,
  length: count,
  checksum: z.string(),
  /** host:port of a chunkserver holding a good replica. */
  source: z.string(),
  /**
   * The copy's time, from the order's arrival (its wait in the queue included): past it the
   * target gives up and reports the copy failed. The master computes it once and waits this
   * plus its report slack (RepairLimits.copyReportSlackMs) before planning the copy again.
   */
  timeoutMs: count,
  /** A read token for this chunk and version, for the source (the master signs it, as HDFS does). */
  token: z.string(),
  /** The id of the leader's decision that ordered the copy: the target's and the source's log lines for it carry it as reqId. */
  reqId: z.string().optional(),
});

export const HeartbeatReply = z.object({
  /** The master does not know this server (e.g. it restarted): send a full report. */
  reregister: z.boolean(),
  /** Handles to delete: unknown to the master, deleted files' chunks, or surplus replicas. */
  deletes: z.array(int),
  /** Replicas to make here by copying from another chunkserver (re-replication). */
  copies: z.array(CopyOrder),
  /** The master's namespace: a chunkserver records it on first contact and refuses a master with another. */
  namespaceId: z.string().optional(),
  /** The chunk keys that verify now, sealed for this server (common/chunk-keys.ts). */
  chunkKeys: z.string().optional(),
});

/** What a chunkserver answers to a pipelined PUT: each replica that stored the chunk. */
export const WriteChunkReply = z.object({
  handle: int,
  version: count,
  length: count,
  checksum: z.string(),
  /** The replicas that stored it, this hop first. */
  replicas: z.array(ReplicaInfo),
});

/** What the leader made of a client's report: its own probe reached the server or not; unknown address; or checked just now already. */
export const UnreachableReply = z.object({ server: z.string().nullable(), verdict: z.enum(['reachable', 'unreachable', 'unknown', 'checked-recently']) });

export type ReplicaInfo = z.infer<typeof ReplicaInfo>;
export type ChunkInfo = z.infer<typeof ChunkInfo>;
export type FileState = z.infer<typeof FileState>;
export type EntryInfo = z.infer<typeof EntryInfo>;
export type StatReply = z.infer<typeof StatReply>;
export type StatManyReply = z.infer<typeof StatManyReply>;
export type InlineData = z.infer<typeof InlineData>;
export type ListReply = z.infer<typeof ListReply>;
export type ChunkHealth = z.infer<typeof ChunkHealth>;
export type FsckProblem = z.infer<typeof FsckProblem>;
export type FileHealth = z.infer<typeof FileHealth>;
export type FsckFile = z.infer<typeof FsckFile>;
export type MisplacedReport = z.infer<typeof MisplacedReport>;
export type FsckReply = z.infer<typeof FsckReply>;
export type ClusterTolerance = z.infer<typeof ClusterTolerance>;
export type DuReply = z.infer<typeof DuReply>;
export type CreateReply = z.infer<typeof CreateReply>;
export type CreateEmptyReply = z.infer<typeof CreateEmptyReply>;
export type RenewReply = z.infer<typeof RenewReply>;
export type AppendReply = z.infer<typeof AppendReply>;
export type AllocateReply = z.infer<typeof AllocateReply>;
export type ChunkserverStatus = z.infer<typeof ChunkserverStatus>;
export type MasterStatus = z.infer<typeof MasterStatus>;
export type RaftStatusReply = z.infer<typeof RaftStatusReply>;
export type ClusterStatus = z.infer<typeof ClusterStatus>;
export type CopyOrder = z.infer<typeof CopyOrder>;
/** A copy as the leader's repair planner makes it: the wire order adds the read token for its source. */
export type PlannedCopy = Omit<CopyOrder, 'token'>;
export type HeartbeatReply = z.infer<typeof HeartbeatReply>;
export type WriteChunkReply = z.infer<typeof WriteChunkReply>;
export type UnreachableReply = z.infer<typeof UnreachableReply>;
