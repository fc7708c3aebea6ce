// The replicated commands of the trash and of quotas (master/trash.ts, master/quotas.ts); part of
// the Command union in master/commands.ts, plain JSON as every command.
import { setQuota } from './quotas.js';
import type { MasterState } from './state/index.js';
import { expungeTrash, moveToTrash, restoreFromTrash } from './trash.js';

export type TrashQuotaCommand =
  /** Moves `path` to `/.trash/<user>/<checkpoint of nowMs>/<path>` (made as needed), in one step. */
  | { op: 'trash'; path: string; recursive: boolean; user: string; nowMs: number }
  /** Moves a path out of a trash checkpoint to `dst` (default: where it was deleted from), making missing parents. */
  | { op: 'restoreTrash'; src: string; dst?: string; nowMs: number }
  /** Deletes for good at most `max` checkpoints older than `intervalMs` at `nowMs` (the leader's tick proposes it). */
  | { op: 'expungeTrash'; nowMs: number; intervalMs: number; max: number }
  /** Sets a directory's limits: a number sets, null removes, absent keeps. */
  | { op: 'setQuota'; path: string; files?: number | null; bytes?: number | null };


/** MasterState's dispatch for these commands. */
export function applyTrashQuota(state: MasterState, cmd: TrashQuotaCommand): unknown {
  switch (cmd.op) {
    case 'trash': return moveToTrash(state, cmd);
    case 'restoreTrash': return restoreFromTrash(state, cmd);
    case 'expungeTrash': return expungeTrash(state, cmd);
    case 'setQuota': return setQuota(state, cmd);
  }
}
