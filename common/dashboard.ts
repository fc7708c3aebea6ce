// The web dashboard's one JSON reply (GET /v1/ui/state, master/dashboard.ts), read by
// master/ui/dashboard.js in the browser.
import type { ChunkInfo, ClusterStatus, EntryInfo } from './protocol.js';

/** Chunks of complete files wanting `replication` replicas that have `live` good ones. */
export interface ChunkMatrixCell { replication: number; live: number; chunks: number }

/** MooseFS's chunk matrix (goal × live copies), with the counts fsck gives. */
export interface ChunkMatrix {
  /** Only the cells that hold chunks, sorted by replication, then live. */
  cells: ChunkMatrixCell[];
  /** Chunks of complete files (a chunk of a write in progress is not counted). */
  chunks: number;
  /** Bytes in complete files, one copy each. */
  bytes: number;
  underReplicated: number;
  overReplicated: number;
  /** No live replica, none reported corrupt: its servers are down. */
  missing: number;
  /** No good replica left, and at least one failed its checksum. */
  corrupt: number;
}

/** How many failures the cluster survives right now, in numbers and in words. */
export interface FailureTolerance {
  /** Chunkservers that may all fail at once with every chunk keeping a replica; null with no data or data already lost. */
  chunkserversLosable: number | null;
  chunkservers: string;
  /** Masters that may fail with a majority left to elect a leader and commit. */
  mastersLosable: number;
  masters: string;
  /** Racks in words: whether a whole rack can be lost, or which one holds every replica of some chunk. */
  racks: string;
}

/** A directory in the namespace browser: its first entries by name. */
export interface UiDirectory {
  path: string;
  entries: EntryInfo[];
  /** Entries in the directory, shown or not. */
  total: number;
  truncated: boolean;
}

/** A file opened in the namespace browser: its first chunks and their live replicas. */
export interface UiFile {
  path: string;
  size: number;
  replication: number;
  state: EntryInfo['state'];
  chunkSizeBytes: number;
  /** Without their read tokens: the dashboard is not a way to read chunks. */
  chunks: Omit<ChunkInfo, 'token'>[];
  /** Chunks in the file, shown or not. */
  totalChunks: number;
  truncated: boolean;
}

/** A part of the reply that failed on its own (a browsed path deleted meanwhile, say). */
export interface UiError { error: { code: string; message: string } }

export interface UiState {
  generatedAtMs: number;
  /** A chunkserver silent this long is dead: the page calls one silent for a third of it suspect. */
  deadTimeoutMs: number;
  status: ClusterStatus;
  matrix: ChunkMatrix;
  tolerance: FailureTolerance;
  /** Re-replication copies in flight per chunkserver id, into it and out of it (only servers with some). */
  copies: Record<string, { in: number; out: number }>;
  /** Copy orders waiting for their target's next heartbeat to collect them (counted in status.repair.copiesInFlight too). */
  repairQueued: number;
  /** With ?dir=: that directory. */
  dir?: UiDirectory | UiError;
  /** With ?file=: that file. */
  file?: UiFile | UiError;
}
