// Wire types and request schemas shared by the master, the chunkservers and the client.
// Every body that crosses the network is parsed with one of these schemas at the edge.
import { z } from 'zod';
import { RACK_PATTERN } from './racks.js';
import { base64Length, INLINE_MAX_BYTES_LIMIT } from './inline.js';
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
  /**
   * The whole file, kept in the master's replicated state (common/inline.ts): base64 bytes, their
   * length and xxHash64 checksum. The file is complete in this one call; INLINE_REFUSED when the
   * master will not keep it inline (the client then writes chunks).
   */
  inline: z.strictObject({
    data: z.string().max(base64Length(INLINE_MAX_BYTES_LIMIT)),
    size: z.number().int().min(1).max(INLINE_MAX_BYTES_LIMIT),
    checksum,
  }).optional(),
  /**
   * Allocate the write's chunk 0 as well, as POST /v1/fs/allocate of index 0 with this rack
   * would, in the same Raft round: the reply's `first` says where its bytes go. A round trip
   * fewer for every file written as chunks. Not for an empty or inline file.
   */
  allocate: z.strictObject({ rack: rack.optional() }).optional(),
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
  /**
   * A record append (GFS §3.3): the framed record's length (common/record-format.ts). The master
   * picks its offset, waits its turn behind other appends to the file, and answers `record`.
   */
  record: z.number().int().min(1).max(0xffffffff).optional(),
});
export const AbandonRequest = z.strictObject({ writeId });
/** Extends the leases of a client's open writes (as HDFS's renewLease), however slowly their bytes arrive. */
export const RenewRequest = z.strictObject({ writeIds: z.array(writeId).min(1).max(MAX_RENEW_WRITES) });
export const DeleteRequest = z.strictObject({
  path,
  recursive: z.boolean().default(false),
  /** Only a path of this type: another is left as it is (NOT_A_DIRECTORY, IS_A_DIRECTORY). A caller that stat'ed first knows what it removes. */
  type: z.enum(['file', 'dir']).optional(),
});
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
/** Paths one stat-many call may name (a page of an S3 listing is 1000 keys). */
export const MAX_STAT_MANY_PATHS = 1000;
/**
 * Several stats in one call, each answered as stat answers it (without chunks), or null where
 * nothing is; with `inline`, an inline file's bytes too, up to a budget per reply (the rest come
 * without them: read those as usual). The S3 gateway fills a listing page's ETags with one.
 */
export const StatManyRequest = z.strictObject({ paths: z.array(path).min(1).max(MAX_STAT_MANY_PATHS), inline: z.boolean().default(false) });
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

/** A chunkserver stops cleanly (SIGTERM) and means to come back: the leader holds it restarting. */
export const StoppingNotice = z.strictObject({ id: serverId });

/** A client could not reach a chunkserver (connect refused or timed out): a hint, which the leader checks. */
export const UnreachableReport = z.strictObject({ addr: z.string().min(1).max(300) });

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
export type StatManyRequest = z.infer<typeof StatManyRequest>;
export type DecommissionRequest = z.infer<typeof DecommissionRequest>;
export type ReportedChunk = z.infer<typeof ReportedChunk>;
export type ReportPage = z.infer<typeof ReportPage>;
export type RegisterRequest = z.infer<typeof RegisterRequest>;
export type HeartbeatRequest = z.infer<typeof HeartbeatRequest>;
export type CorruptReport = z.infer<typeof CorruptReport>;
export type StoppingNotice = z.infer<typeof StoppingNotice>;

// ---- replies: zod schemas with their types, in common/replies.ts ----
export * from './replies.js';
