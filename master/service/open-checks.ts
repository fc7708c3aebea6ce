// What the leader checks and places on its own state before it proposes a create with its first
// chunk (CreateRequest.allocate) or a typed delete (DeleteRequest.type): master/service/namespace.ts
// calls these.
import { DfsError } from '../../common/errors.js';
import { parentOf } from '../../common/paths.js';
import type { AllocateReply, CreateRequest } from '../../common/protocol.js';
import type { MasterState } from '../state/index.js';
import type { Leadership } from './leadership.js';
import type { ChunkTokens } from './tokens.js';

/**
 * Whether the leader's state already refuses this create (a directory there, a file without
 * `overwrite`, or one being written; no parent without `parents`): then no chunk 0 is placed
 * for it, since a placement counts against its servers' room until their next heartbeat (a put
 * run again over files it made would otherwise reserve room for nothing, hundreds a second).
 */
export function createRefusedNow(state: MasterState, path: string, req: CreateRequest): boolean {
  const node = state.lookup(path);
  if (node !== undefined) return node.type === 'dir' || !req.overwrite || node.state === 'writing';
  return !req.parents && state.lookup(parentOf(path))?.type !== 'dir';
}

/**
 * A create's chunk 0 (`allocate`), as allocate places and proposes it, but proposed in the same
 * turn as the create (so right after it, in one log append): undefined when it could not be (safe
 * mode, no place for it, the create refused), and the client then allocates it as any chunk,
 * with that call's errors.
 */
export function allocateFirst(lead: Leadership, tokens: ChunkTokens, writeId: string, replication: number, rack: string | undefined, nowMs: number): Promise<AllocateReply | undefined> | undefined {
  if (lead.inSafeMode()) return undefined;
  const replicas = lead.core.place(lead.now(), replication, [], lead.config.chunkSizeBytes, rack); // rack rule
  if (typeof replicas === 'string') return undefined;
  return lead.commit({ op: 'allocate', writeId, index: 0, nowMs }).then((r) => {
    const rec = r as { handle: number; version: number };
    return { handle: rec.handle, version: rec.version, replicas, token: tokens.sign(rec.handle, rec.version, 'write', replicas), underReplicated: replicas.length < replication };
  }, () => undefined);
}

/**
 * A typed delete (`type`) checked on the leader's state before it is proposed, as well as in the
 * command: what it refuses then never reaches a master that does not know `type` (a group
 * mid-upgrade, against docs/DEPLOY.md), which would remove it. The command carries it for a change
 * that lands in between.
 */
export function refuseOtherType(state: MasterState, path: string, type: 'file' | 'dir'): void {
  const node = state.lookup(path);
  if (node?.type === 'file' && type === 'dir') throw new DfsError('NOT_A_DIRECTORY', `${path} is a file, not the directory asked to delete`);
  if (node?.type === 'dir' && type === 'file') throw new DfsError('IS_A_DIRECTORY', `${path} is a directory, not the file asked to delete`);
}
