// The master's settings, as main.ts builds them from flags and the config file.
import { MASTER_DEFAULTS } from '../../common/defaults.js';
import type { RepairLimits } from '../repair/index.js';

export interface MasterConfig {
  id: string;
  addr: string;
  /** The cluster this master's data folder belongs to (master/membership.ts). */
  clusterId: string;
  chunkSizeBytes: number;
  defaultReplication: number;
  /** A writer silent this long loses its file: the write is abandoned and its chunks are garbage. */
  writeLeaseMs: number;
  /** A chunkserver silent this long is dead and its replicas stop counting. */
  deadTimeoutMs: number;
  /** A chunkserver whose connection dropped is suspect at once, dead after this unless it connects again (undefined: ignored). */
  connectionGraceMs?: number;
  /** A chunkserver that stopped cleanly to restart is held this long, no copies for its absence (undefined: its notice is ignored). */
  restartGraceMs?: number;
  /** How long a write token stays valid: long enough to stream one chunk on a slow link. */
  writeTokenTtlMs: number;
  /** How long a read token (stat's chunks, copy orders) stays valid: see READ_TOKEN_TTL_MS. */
  readTokenTtlMs: number;
  secret: Buffer;
  /** Every master of the group: id → host:port (this one included). */
  peers: Record<string, string>;
  /**
   * After becoming leader, placement waits this long at most for chunkservers to report
   * (a short safe mode, as HDFS's): until then an unknown location is not a missing one.
   */
  safeModeMs: number;
  /**
   * A replica no file references (deleted file, abandoned write) or of an old version is
   * deleted once it has been garbage this long: a deleted file's space returns within about
   * this plus one heartbeat.
   */
  gcGraceMs: number;
  /** Re-replication and balancing limits (master/repair/limits.ts); defaults where not given. */
  repair?: Partial<RepairLimits>;
  /** trash-quota: trash checkpoints older than this are expunged (default a day). */
  trashIntervalMs?: number;
  /**
   * A file of at most this many bytes is kept inline in the replicated state (common/inline.ts):
   * one command instead of create, allocate, three chunk replicas and complete, paid for in Raft log,
   * snapshot and master memory. 0: no inline files. Only the leader's setting counts.
   */
  inlineMaxBytes?: number;
}

/**
 * The largest file a leader with `c` keeps inline (0: none): its setting, and never more than a
 * chunk, so an append that turns an inline file into chunks starts with one chunk of its bytes.
 */
export function inlineMaxBytes(c: MasterConfig): number {
  return Math.min(c.inlineMaxBytes ?? MASTER_DEFAULTS.inlineMaxBytes, c.chunkSizeBytes);
}
