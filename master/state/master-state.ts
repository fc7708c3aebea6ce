// The replicated state's facade: its fields, apply(), the lookups, and the snapshot.
import { DfsError } from '../../common/errors.js';
import type { EntryInfo } from '../../common/protocol.js';
import { CredentialState } from '../credentials/state.js'; // credentials hook
import type { Command, CommandResult } from '../commands.js';
import { planQuota } from '../quotas.js'; // trash-quota
import { dispatch } from './apply.js';
import { newDir } from './capture.js';
import { ChunkTable } from './chunk-table.js';
import { Fail } from './failure.js';
import type { DirNode, Node } from './nodes.js';
import type { SnapshotData } from '../raft/types.js';
import { captureState, decodeSnapshotInto, type StateCapture } from './snapshot.js';
import { entryInfo, lookup, walk } from './tree.js';
import type { PendingWrite } from './writes.js';

/**
 * The master's replicated state: namespace tree, files and their chunk lists, chunk table,
 * pending writes and the handle counter. Deterministic: apply() depends only on the state and
 * the command. Chunk *locations* are not here: they are the chunkservers' truth.
 */
export class MasterState {
  root: DirNode = newDir(0);
  chunks = new ChunkTable();
  writes = new Map<string, PendingWrite>();
  nextHandle = 1;
  /**
   * The version the next append gives the chunk it fills: one counter for every chunk, so a
   * version is never issued twice (a failed append's replicas can never pass for a later one's).
   * Chunks are written at version 1, so 2 is the first an append issues.
   */
  nextVersion = 2;
  /**
   * Chunkservers being drained (by id): no new replicas go there and theirs stop counting
   * toward replication, so repair copies them elsewhere. Replicated, so a new leader goes on.
   */
  decommissioning = new Set<string>();
  /**
   * This namespace's identity, as HDFS's namespaceID: drawn at random by the first leader and
   * replicated. Chunkservers record it on first contact and refuse a master with another one, so
   * a master whose data was lost (a new, empty namespace) cannot take their chunks for garbage.
   */
  namespaceId?: string;
  /**
   * Bytes of every inline file together (common/inline.ts), held under INLINE_TOTAL_MAX_BYTES.
   * Derived from the tree: a restore counts it afresh.
   */
  inlineBytes = 0;
  /** Client credentials: signing keys, recorded tokens, revocations (master/credentials/state.ts). */
  credentials = new CredentialState(); // credentials hook

  apply(cmd: Command): CommandResult {
    try {
      const quota = planQuota(this, cmd); // trash-quota: QUOTA_EXCEEDED before anything changes
      const value = dispatch(this, cmd);
      quota?.commit(); // trash-quota
      return { ok: true, value };
    } catch (err) {
      if (err instanceof Fail) return { ok: false, code: err.code, message: err.message };
      if (err instanceof DfsError) return { ok: false, code: err.code, message: err.message }; // credentials hook: their refusals
      throw err;
    }
  }

  lookup(path: string): Node | undefined {
    return lookup(this.root, path);
  }

  entryInfo(path: string, node: Node): EntryInfo {
    return entryInfo(path, node);
  }

  /** Every file node below (and including) `path`, depth first, names sorted. */
  walk(path: string, node: Node): Generator<[string, Node]> {
    return walk(path, node);
  }

  /** The state now, to be written piece by piece while it goes on changing (snapshot.ts). */
  capture(pieceBytes?: number): StateCapture {
    return captureState(this, pieceBytes);
  }

  /** The whole snapshot in one buffer: for small states (tests); a master writes capture()'s pieces. */
  snapshot(): Buffer {
    return Buffer.concat([...this.capture().pieces()]);
  }

  static restore(data: SnapshotData): MasterState {
    const s = new MasterState();
    decodeSnapshotInto(s, data);
    return s;
  }
}
