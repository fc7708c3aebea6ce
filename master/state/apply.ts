// A command's dispatch to what carries it out, and the two small cluster-wide commands.
import type { Command } from '../commands.js';
import { applyTrashQuota } from '../trash-quota-commands.js'; // trash-quota
import { openAppend } from './append.js';
import { snapshotTree } from './tree-snapshot.js';
import { fail } from './failure.js';
import type { MasterState } from './master-state.js';
import { concat, mkdir, remove, rename, setReplication } from './namespace.js';
import { abandon, allocate, complete, create, expireLeases, renew } from './writes.js';

/** A namespace id: 64 random bits in hex. */
const NAMESPACE_ID = /^[0-9a-f]{16}$/;

/** Carries out `cmd` on `s`; a refusal is thrown as a Fail (see failure.ts). */
export function dispatch(s: MasterState, cmd: Command): unknown {
  switch (cmd.op) {
    case 'mkdir': return mkdir(s, cmd.path, cmd.parents, cmd.nowMs);
    case 'create': return create(s, cmd);
    case 'allocate': return allocate(s, cmd.writeId, cmd.index, cmd.nowMs);
    case 'complete': return complete(s, cmd);
    case 'abandon': return abandon(s, cmd.writeId);
    case 'renew': return renew(s, cmd.writeIds, cmd.nowMs);
    case 'delete': return remove(s, cmd.path, cmd.recursive, cmd.nowMs, cmd.type);
    case 'rename': return rename(s, cmd.src, cmd.dst, cmd.nowMs, cmd.into === true);
    case 'expireLeases': return expireLeases(s, cmd.nowMs);
    case 'setReplication': return setReplication(s, cmd);
    case 'decommission': return decommission(s, cmd.server, cmd.cancel);
    case 'initNamespace': return initNamespace(s, cmd.namespaceId);
    case 'concat': return concat(s, cmd);
    case 'append': return openAppend(s, cmd);
    case 'snapshot': return snapshotTree(s, cmd);
    case 'credentials': return s.credentials.apply(cmd.action, cmd.nowMs); // credentials hook
    case 'trash': case 'restoreTrash': case 'expungeTrash': case 'setQuota': return applyTrashQuota(s, cmd); // trash-quota
  }
}

function initNamespace(s: MasterState, namespaceId: string): { namespaceId: string } {
  if (!NAMESPACE_ID.test(namespaceId)) fail('INVALID_ARGUMENT', `a namespace id is 16 hex digits, not ${JSON.stringify(namespaceId)}`);
  s.namespaceId ??= namespaceId;
  return { namespaceId: s.namespaceId };
}

function decommission(s: MasterState, server: string, cancel: boolean): { decommissioning: string[] } {
  if (cancel) s.decommissioning.delete(server);
  else s.decommissioning.add(server);
  return { decommissioning: [...s.decommissioning].sort() };
}
