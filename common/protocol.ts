// Wire types and request schemas shared by the master, the chunkservers and the client.
// Every body that crosses the network is parsed with one of these schemas at the edge.
import { z } from 'zod';
import { RACK_PATTERN } from './racks.js';
import { MAX_COPY_FAILED, MAX_HEARTBEAT_LIST, MAX_JSON_BODY_BYTES, MAX_REPORT_PAGE_CHUNKS, MAX_REPORT_PAGES } from './limits.js';

export const API = 'v1';

/** Largest JSON body any route accepts; a chunk report comes in pages that fit (see common/limits.ts). */
export { MAX_JSON_BODY_BYTES };
export const MAX_REPLICATION = 16;
export const MAX_CHUNKS_PER_FILE = 1_000_000;
export const MAX_EXCLUDED_SERVERS = 64;
/** Writes one renew call may name: a client with more open writes renews them in several calls. */
export const MAX_RENEW_WRITES = 1000;

const handle = z.number().int().min(1).max(Number.MAX_SAFE_INTEGER);
const nonNegInt = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);
const path = z.string().min(1).max(4096);
const serverId = z.string().regex(/^[A-Za-z0-9._-]{1,64}$/, 'server id: 1-64 of [A-Za-z0-9._-]');
const addr = z.string().regex(/^[A-Za-z0-9.-]{1,253}:\d{1,5}$/, 'address must be host:port')
  .refine((a) => { const port = Number(a.slice(a.lastIndexOf(':') + 1)); return port >= 1 && port <= 65535; }, 'port must be from 1 to 65535');
const checksum = z.string().regex(/^[0-9a-f]{16}$/);
const writeId = z.string().regex(/^[A-Za-z0-9_-]{8,64}$/);
const rack = z.string().regex(RACK_PATTERN, "rack: 1-64 of [A-Za-z0-9._-]");

export const MkdirRequest = z.strictObject({ path, parents: z.boolean().default(false) });
export const CreateRequest = z.strictObject({
  path,
  overwrite: z.boolean().default(false),
  /** Create missing parent directories (as mkdir -p). */
  parents: z.boolean().default(false),
  replication: z.number().int().min(1).max(MAX_REPLICATION).optional(),
  /** The file has no bytes: it is made complete at once, with no write to allocate into or complete. */
  empty: z.boolean().default(false),
  /** trash-quota: the writer's size when it knows it (a local file): quotas are checked against it here, before a chunk is written. */
  expectedBytes: nonNegInt.optional(),
});
export const AllocateRequest = z.strictObject({
  writeId,
  index: z.number().int().min(0).max(MAX_CHUNKS_PER_FILE - 1),
  exclude: z.array(serverId).max(MAX_EXCLUDED_SERVERS).default([]),
  /** The writer's rack: the chunk's first replica goes there when a server of it can take one. */
  rack: rack.optional(),
});
export const CompletedChunk = z.strictObject({
  handle,
  length: nonNegInt,
  checksum,
  /** Servers the pipeline says stored it: a hint only (locations come from the chunkservers' reports and receipts). */
  replicas: z.array(serverId).max(MAX_REPLICATION).default([]),
  /**
   * The write receipts of the replicas that stored it (WriteChunkReply's replicas[].receipt,
   * common/store-receipt.ts): the master completes the chunk only with a length and checksum a
   * receipt vouches for.
   */
  receipts: z.array(z.string().max(1024)).max(MAX_REPLICATION).default([]),
});
export const CompleteRequest = z.strictObject({
  writeId,
  length: nonNegInt,
  chunks: z.array(CompletedChunk).max(MAX_CHUNKS_PER_FILE),
  /**
   * Refuse to complete (TOO_FEW_REPLICAS) when a chunk has fewer live replicas than this, as
   * HDFS's NameNode refuses below dfs.namenode.replication.min; absent: no check.
   */
  minReplicas: z.number().int().min(1).max(MAX_REPLICATION).optional(),
  /** An append's filled last chunk: its whole new length and checksum, and the servers that stored it at the new version. */
  last: CompletedChunk.optional(),
});
/** Copies a file or tree in one command (POST /v1/fs/snapshot): the copy shares the chunks. */
export const SnapshotRequest = z.strictObject({ src: path, dst: path });
/** Opens an append to a complete file (POST /v1/fs/append): the writer then holds the file's lease. */
export const AppendRequest = z.strictObject({
  path,
  /** The bytes the writer will add, when it knows (a local file): quotas are checked against it here. */
  expectedBytes: nonNegInt.optional(),
});
export const AbandonRequest = z.strictObject({ writeId });
/** Extends the leases of a client's open writes (as HDFS's renewLease), however slowly their bytes arrive. */
export const RenewRequest = z.strictObject({ writeIds: z.array(writeId).min(1).max(MAX_RENEW_WRITES) });
export const DeleteRequest = z.strictObject({ path, recursive: z.boolean().default(false) });
export const RenameRequest = z.strictObject({ src: path, dst: path });
/** At most this many files are joined by one concat: S3's part limit. */
export const MAX_CONCAT_SOURCES = 10_000;
export const ConcatRequest = z.strictObject({ sources: z.array(path).min(1).max(MAX_CONCAT_SOURCES), target: path, overwrite: z.boolean().default(false) });
export const SetReplicationRequest = z.strictObject({
  path,
  replication: z.number().int().min(1).max(MAX_REPLICATION),
  /** Required for a directory: every file below it changes (as HDFS's setrep). */
  recursive: z.boolean().default(false),
});
/** Drain a chunkserver (by id or host:port) before it is removed; `cancel` puts it back in service. */
export const DecommissionRequest = z.strictObject({
  server: z.string().min(1).max(300),
  cancel: z.boolean().default(false),
});

export const ReportedChunk = z.strictObject({ handle, version: nonNegInt, length: nonNegInt });
const ServerStats = {
  capacityBytes: nonNegInt,
  freeBytes: nonNegInt,
  usedBytes: nonNegInt,
  activeWrites: nonNegInt,
  activeReads: nonNegInt,
  /** The server's cap on incoming re-replication copies, bytes a second (0: none): the master allows capped copies longer. */
  copyRateBytesPerSec: nonNegInt.default(0),
  /** The file system its data folder is on (host and device number): servers sharing one count its capacity once. */
  fsId: z.string().min(1).max(300).optional(),
  /** The chunk keys the server holds (common/chunk-keys.ts): the leader signs chunk tokens with the newest every live server holds. */
  chunkKeys: z.array(z.string().regex(/^k[0-9]{1,9}$/)).max(32).optional(),
};
/** The namespace a chunkserver's chunks belong to, recorded on its first registration (see MasterState.namespaceId). */
const namespaceId = z.string().regex(/^[0-9a-f]{16}$/).optional();

/**
 * Which page of a paged report this is: page 0 starts report `id` (any report of the server's
 * being assembled is dropped), pages follow in order, and the master applies the whole report
 * when the `final` one arrives. A register without `report` is a whole report in one page.
 */
export const ReportPage = z.strictObject({
  id: z.string().regex(/^[0-9a-f]{16}$/, 'report id: 16 hex digits'),
  page: z.number().int().min(0).max(MAX_REPORT_PAGES - 1),
  final: z.boolean(),
});
export const RegisterRequest = z.strictObject({
  id: serverId,
  addr,
  namespaceId,
  ...ServerStats,
  /** The server's failure domain (absent: the default rack); replicas of a chunk are spread over racks. */
  rack: rack.optional(),
  report: ReportPage.optional(),
  chunks: z.array(ReportedChunk).max(MAX_REPORT_PAGE_CHUNKS),
});
export const HeartbeatRequest = z.strictObject({
  id: serverId,
  addr,
  namespaceId,
  ...ServerStats,
  added: z.array(ReportedChunk).max(MAX_HEARTBEAT_LIST).default([]),
  removed: z.array(handle).max(MAX_HEARTBEAT_LIST).default([]),
  /** Copies the master ordered that failed here since the last heartbeat (the master re-plans them). */
  copyFailed: z.array(handle).max(MAX_COPY_FAILED).default([]),
});
export const CorruptReport = z.strictObject({ id: serverId, handle, reason: z.string().max(500).default('') });

/** A client could not reach a chunkserver (connect refused or timed out): a hint, which the leader checks. */
export const UnreachableReport = z.strictObject({ addr: z.string().min(1).max(300) });
/** What the leader made of a client's report: its own probe reached the server or not; unknown address; or checked just now already. */
export interface UnreachableReply { server: string | null; verdict: 'reachable' | 'unreachable' | 'unknown' | 'checked-recently' }

export type MkdirRequest = z.infer<typeof MkdirRequest>;
export type CreateRequest = z.infer<typeof CreateRequest>;
export type AllocateRequest = z.infer<typeof AllocateRequest>;
export type CompletedChunk = z.infer<typeof CompletedChunk>;
export type CompleteRequest = z.infer<typeof CompleteRequest>;
export type AppendRequest = z.infer<typeof AppendRequest>;
export type SnapshotRequest = z.infer<typeof SnapshotRequest>;
export type RenewRequest = z.infer<typeof RenewRequest>;
export type DeleteRequest = z.infer<typeof DeleteRequest>;
export type RenameRequest = z.infer<typeof RenameRequest>;
export type ConcatRequest = z.infer<typeof ConcatRequest>;
export type SetReplicationRequest = z.infer<typeof SetReplicationRequest>;
export type DecommissionRequest = z.infer<typeof DecommissionRequest>;
export type ReportedChunk = z.infer<typeof ReportedChunk>;
export type ReportPage = z.infer<typeof ReportPage>;
export type RegisterRequest = z.infer<typeof RegisterRequest>;
export type HeartbeatRequest = z.infer<typeof HeartbeatRequest>;
export type CorruptReport = z.infer<typeof CorruptReport>;

// ---- replies ----

/** A replica's server; `rack` in stat's chunk lists (readers in that rack try it first). */
export interface ReplicaInfo {
  id: string;
  addr: string;
  rack?: string;
  /** In a write's reply: this server's signed receipt for what it stored (common/store-receipt.ts), for complete. */
  receipt?: string;
}

export interface ChunkInfo {
  index: number;
  handle: number;
  version: number;
  length: number;
  checksum: string;
  /** Live replicas holding the current version, in no particular order. */
  replicas: ReplicaInfo[];
  /** A read token for this chunk and version (common/auth.ts): send it as `x-dfs-token` to read from a replica. */
  token: string;
  /** How many files share this chunk, when more than one (snapshots); absent: this file's alone. */
  shared?: number;
}

export type FileState = 'writing' | 'complete';

export interface EntryInfo {
  path: string;
  name: string;
  type: 'file' | 'dir';
  size: number;
  mtimeMs: number;
  replication: number;
  state: FileState;
  chunkCount: number;
}

export interface StatReply extends EntryInfo {
  chunkSizeBytes: number;
  chunks?: ChunkInfo[];
}

export interface ListReply {
  path: string;
  entries: EntryInfo[];
  /** A paged listing with more entries after this page: pass it as `after` for the next (the last entry's name, a directory's with '/'). */
  next?: string;
}
/** The health of one chunk, as fsck reports it. */
export type ChunkHealth = 'UNDER_REPLICATED' | 'MISSING' | 'CORRUPT';
/**
 * A chunk of a finished file with fewer good replicas than its file's replication. MISSING: no
 * live replica and none reported corrupt (its servers are down); CORRUPT: no good replica left
 * and at least one failed its checksum.
 */
export interface FsckProblem { path: string; index: number; handle: number; live: number; replication: number; status: ChunkHealth }

/** A file's health: its worst chunk's (CORRUPT, then MISSING, then UNDER_REPLICATED). */
export type FileHealth = 'HEALTHY' | ChunkHealth;
export interface FsckFile { path: string; size: number; replication: number; chunks: number; status: FileHealth; badChunks: number }

/** GET /v1/fs/fsck: the health of every finished file's chunks below a path. */
export interface FsckReply {
  path: string;
  files: number;
  /** Files still being written (not checked). */
  openFiles: number;
  chunks: number;
  underReplicated: number;
  /** Chunks with more good replicas than wanted (trimmed by the leader, one replica a second). */
  overReplicated: number;
  missing: number;
  corrupt: number;
  /** Files by health. */
  filesHealthy: number;
  filesUnderReplicated: number;
  filesMissing: number;
  filesCorrupt: number;
  /** Files that are not healthy (every file with ?files=true), at most MAX_FSCK_PROBLEMS. */
  fileReports: FsckFile[];
  /** The first problem chunks (at most MAX_FSCK_PROBLEMS), the fewest replicas first. */
  problems: FsckProblem[];
  /** HEALTHY: every chunk has a good replica; CORRUPT: some chunk has none (missing or corrupt). */
  status: 'HEALTHY' | 'CORRUPT';
  /** Chunks with their replication whose replicas break the rack rule (too many in one rack; repair moves one). */
  misplaced: number;
  /** The first misplaced chunks (at most MAX_FSCK_PROBLEMS), with the racks their replicas are in. */
  misplacedChunks: MisplacedReport[];
}

/** A chunk whose replicas are not spread over racks as the rule wants (master/racks.ts). */
export interface MisplacedReport { path: string; index: number; handle: number; racks: string[] }

/** How much can be lost now without losing the last replica of a chunk (dfs status). */
export interface ClusterTolerance {
  /** Any this many servers may fail at once (the fewest live replicas of a chunk, less one); null: no chunk has a replica. */
  servers: number | null;
  /** Racks that may be lost whole, each alone: no chunk has all its live replicas there. */
  racksSafe: string[];
  /** Racks that hold every live replica of some chunk, with how many such chunks: losing one loses data. */
  racksAtRisk: { rack: string; chunks: number }[];
}

/**
 * `bytes`: the files' bytes, a chunk shared by several of them (snapshots) counted once, unless
 * asked per file (`perFile`): each file's whole size. `sharedBytes`: bytes of chunks that more
 * than one file references (each counted once).
 */
export interface DuReply { path: string; bytes: number; files: number; dirs: number; chunks: number; sharedBytes?: number; entries?: { path: string; bytes: number }[] }

export interface CreateReply { writeId: string; path: string; chunkSizeBytes: number; replication: number; leaseMs: number }
/** The reply to a create with `empty: true`: the file, complete already. */
export interface CreateEmptyReply { file: EntryInfo }
/** The reply to a renew: the writes the master no longer knows (abandoned, expired or finished); the rest were renewed. */
export interface RenewReply { unknown: string[] }
/**
 * An append opened: a write (renewed, completed or abandoned as a put's) and the file's size.
 * `fill`, when the last chunk has room: the appended bytes go there first, as an append write
 * (PUT /v1/chunks/:handle with `base` and `offset`) to the replicas named, at `newVersion`,
 * with the write token for it; then new chunks are allocated as a put's, index 0 first.
 */
export interface AppendReply {
  writeId: string; path: string; chunkSizeBytes: number; replication: number; leaseMs: number; size: number;
  fill?: {
    handle: number; version: number; offset: number; newVersion: number; replicas: ReplicaInfo[]; token: string;
    /** The last chunk is shared (a snapshot): fill a copy under this handle, made by each replica from its own bytes; `token` is for it. */
    copyTo?: number;
    /** With `copyTo`: a read token for `handle` at `version`, which the replicas need to copy it. */
    fromToken?: string;
  };
}
export interface AllocateReply { handle: number; version: number; replicas: ReplicaInfo[]; token: string; underReplicated: boolean }

export interface ChunkserverStatus {
  id: string;
  addr: string;
  alive: boolean;
  /**
   * Alive, but kept out of new pipelines: its connection to the leader dropped (dead once the
   * grace passes without a new one), or a client could not reach it and neither could the leader.
   */
  suspect?: boolean;
  capacityBytes: number;
  freeBytes: number;
  usedBytes: number;
  chunkCount: number;
  activeWrites: number;
  activeReads: number;
  lastHeartbeatAgoMs: number;
  /** The file system its data is on, as it reported it; servers with the same fsId share one disk. */
  fsId?: string;
  /** Its failure domain (rack), as it registered ('default' when it named none); absent from a master from before racks. */
  rack?: string;
  /**
   * in-service; decommissioning while some of its chunks lack their replication elsewhere;
   * decommissioned once none do (it may then be stopped and removed).
   */
  state: 'in-service' | 'decommissioning' | 'decommissioned';
  /** While decommissioning: its chunks still to be copied elsewhere. */
  decommissionRemaining?: number;
}

export interface MasterStatus {
  id: string;
  addr: string;
  role: 'leader' | 'follower' | 'candidate' | 'unknown';
  term?: number;
  commitIndex?: number;
  appliedIndex?: number;
  reachable: boolean;
  error?: string;
}

/** GET /v1/raft/status on any master: its own view of the group. */
export interface RaftStatusReply {
  id: string;
  addr: string;
  clusterId: string;
  role: 'leader' | 'follower' | 'candidate';
  term: number;
  leader: string | null;
  commitIndex: number;
  appliedIndex: number;
}

export interface ClusterStatus {
  /** The cluster the masters' data folders belong to (recorded in each one's membership.json). */
  clusterId: string;
  /** The namespace's id, once the first leader drew it (chunkservers record it). */
  namespaceId?: string;
  leader: string | null;
  masters: MasterStatus[];
  chunkservers: ChunkserverStatus[];
  files: number;
  dirs: number;
  chunks: number;
  underReplicatedChunks: number;
  overReplicatedChunks: number;
  missingChunks: number;
  chunkSizeBytes: number;
  defaultReplication: number;
  /** A new leader waiting for chunkserver reports before it places chunks. */
  safeMode: boolean;
  /** Re-replication since this master became leader. */
  repair: { copiesInFlight: number; copiesDone: number; copiesFailed: number; bytesCopied: number; movesInFlight: number; movesDone: number };
  /** What the cluster can lose now, by servers and by racks. */
  tolerance: ClusterTolerance;
  /** trash-quota: what /.trash holds (bytes: the files' sizes; rawBytes: times replication) and how long it keeps it. */
  trash?: { files: number; bytes: number; rawBytes: number; intervalMs: number };
}

export interface HeartbeatReply {
  /** The master does not know this server (e.g. it restarted): send a full report. */
  reregister: boolean;
  /** Handles to delete: unknown to the master, deleted files' chunks, or surplus replicas. */
  deletes: number[];
  /** Replicas to make here by copying from another chunkserver (re-replication). */
  copies: CopyOrder[];
  /** The master's namespace: a chunkserver records it on first contact and refuses a master with another. */
  namespaceId?: string;
  /** The chunk keys that verify now, sealed for this server (common/chunk-keys.ts). */
  chunkKeys?: string;
}

/** Make a replica of `handle` here: read it (verified) from `source`, check it, store it. */
export interface CopyOrder {
  handle: number;
  version: number;
  length: number;
  checksum: string;
  /** host:port of a chunkserver holding a good replica. */
  source: string;
  /**
   * The copy's time, from the order's arrival (its wait in the queue included): past it the
   * target gives up and reports the copy failed. The master computes it once and waits this
   * plus its report slack (RepairLimits.copyReportSlackMs) before planning the copy again.
   */
  timeoutMs: number;
  /** A read token for this chunk and version, for the source (the master signs it, as HDFS does). */
  token: string;
  /** The id of the leader's decision that ordered the copy: the target's and the source's log lines for it carry it as reqId. */
  reqId?: string;
}

/** A copy as the leader's repair planner makes it: the wire order adds the read token for its source. */
export type PlannedCopy = Omit<CopyOrder, 'token'>;

/** What a chunkserver answers to a pipelined PUT: each replica that stored the chunk. */
export interface WriteChunkReply {
  handle: number;
  version: number;
  length: number;
  checksum: string;
  /** The replicas that stored it, this hop first. */
  replicas: ReplicaInfo[];
}
