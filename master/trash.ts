// The trash, as HDFS's and MooseFS's: `dfs rm` moves a path to
// `/.trash/<user>/<checkpoint>/<original path>` in one replicated command, restore moves it back,
// and the leader expunges checkpoints older than the trash interval. Deleting inside /.trash is
// for real. Each command here is made of the state's own mkdir, rename and delete, applied within
// the one log entry, after checks that leave them nothing to refuse, so a refused command changes
// nothing and quotas are kept by the same plans as any other rename or delete.
import { isWithin, joinPath, parentOf, splitPath } from '../common/paths.js';
import { checkpointName, checkpointTimeMs, inTrash, TRASH_ROOT, trashOrigin, userTrash } from '../common/trash-quota-protocol.js';
import type { TrashReply, TrashRestoreReply } from '../common/trash-quota-protocol.js';
import type { Command } from './commands.js';
import { missingDirs, planMove, QuotaPlan } from './quotas.js';
import { fail } from './state/failure.js';
import type { MasterState, Node } from './state/index.js';

/** Checkpoints of one second tried before a trash move gives up (each further one ends in -1, -2, ...). */
const MAX_CHECKPOINTS_PER_SECOND = 100;

/** Applies a command of the state within this one; a refusal is this command's refusal. */
function applyInner(state: MasterState, cmd: Command): unknown {
  const result = state.apply(cmd);
  if (!result.ok) fail(result.code, result.message);
  return (result as { value?: unknown }).value;
}

function countFiles(node: Node): number {
  if (node.type === 'file') return 1;
  let n = 0;
  for (const child of node.children.values()) n += countFiles(child);
  return n;
}

/** True when mkdir -p of `dir` would succeed: nothing on the way to it is a file. */
function canMakeDirs(state: MasterState, dir: string): boolean {
  let node: Node | undefined = state.root;
  for (const part of splitPath(dir)) {
    node = node.children.get(part);
    if (!node) return true;
    if (node.type !== 'dir') return false;
  }
  return true;
}

export function moveToTrash(state: MasterState, cmd: Extract<Command, { op: 'trash' }>): TrashReply {
  const base = userTrash(cmd.user);
  if (cmd.path === '/') fail('INVALID_ARGUMENT', 'refusing to delete /');
  if (inTrash(cmd.path)) fail('INVALID_ARGUMENT', `${cmd.path} is in the trash already; rm deletes there at once`);
  const node = state.lookup(cmd.path);
  if (!node) fail('NOT_FOUND', `${cmd.path} does not exist`);
  if (node!.type === 'dir' && node!.children.size > 0 && !cmd.recursive) fail('DIRECTORY_NOT_EMPTY', `${cmd.path} is a directory that is not empty (use -r)`);
  for (const w of state.writes.values()) {
    if (isWithin(w.path, cmd.path)) fail('FILE_BUSY', `${w.path} is being written; rm --skip-trash deletes it now and ends the write`);
  }
  if (!canMakeDirs(state, base)) fail('NOT_A_DIRECTORY', `a file is in the way of ${base}; move it away, or delete with rm --skip-trash`);
  const stamp = checkpointName(cmd.nowMs);
  let target: string | undefined;
  for (let i = 0; i < MAX_CHECKPOINTS_PER_SECOND && target === undefined; i++) {
    const candidate = `${base}/${i === 0 ? stamp : `${stamp}-${i}`}${cmd.path}`;
    if (!state.lookup(candidate) && canMakeDirs(state, parentOf(candidate))) target = candidate;
  }
  if (target === undefined) fail('EXISTS', `the trash has ${MAX_CHECKPOINTS_PER_SECOND} checkpoints this second holding ${cmd.path}; try again in a second`);
  const files = countFiles(node!);
  applyInner(state, { op: 'mkdir', path: parentOf(target!), parents: true, nowMs: cmd.nowMs });
  applyInner(state, { op: 'rename', src: cmd.path, dst: target!, nowMs: cmd.nowMs });
  return { path: cmd.path, trashPath: target!, files };
}

export function restoreFromTrash(state: MasterState, cmd: Extract<Command, { op: 'restoreTrash' }>): TrashRestoreReply {
  const origin = trashOrigin(cmd.src);
  if (!origin) fail('INVALID_ARGUMENT', `${cmd.src} is not in a trash checkpoint (${TRASH_ROOT}/<user>/<checkpoint>/...); see dfs trash list`);
  const node = state.lookup(cmd.src);
  if (!node) fail('NOT_FOUND', `${cmd.src} does not exist`);
  const dst = cmd.dst ?? origin!.original;
  if (inTrash(dst) || dst === '/') fail('INVALID_ARGUMENT', `cannot restore into ${dst}`);
  if (state.lookup(dst)) fail('EXISTS', `${dst} exists; restore to another path: dfs trash restore ${cmd.src} <path>`);
  for (const w of state.writes.values()) if (isWithin(w.path, cmd.src)) fail('FILE_BUSY', `${w.path} is being written`);
  const missing = missingDirs(state, parentOf(dst));
  if (!missing) fail('NOT_A_DIRECTORY', `a file is in the way of ${parentOf(dst)}; restore to another path: dfs trash restore ${cmd.src} <path>`);
  const newDirs = missing!.count;
  // The whole move is checked first, so that a refusal leaves no parents made.
  const plan = new QuotaPlan(state);
  planMove(state, plan, node!, cmd.src, dst, newDirs);
  plan.check();
  if (newDirs > 0) applyInner(state, { op: 'mkdir', path: parentOf(dst), parents: true, nowMs: cmd.nowMs });
  applyInner(state, { op: 'rename', src: cmd.src, dst, nowMs: cmd.nowMs });
  pruneEmpty(state, parentOf(cmd.src), `${TRASH_ROOT}/${origin!.user}`, cmd.nowMs);
  return { src: cmd.src, dst };
}

/** Removes the folders a restore left empty, up to (not including) `stop`. */
function pruneEmpty(state: MasterState, dir: string, stop: string, nowMs: number): void {
  for (let p = dir; p !== stop && isWithin(p, stop); p = parentOf(p)) {
    const node = state.lookup(p);
    if (node?.type !== 'dir' || node.children.size > 0) return;
    applyInner(state, { op: 'delete', path: p, recursive: false, nowMs });
  }
}

/** Checkpoints older than the interval at `nowMs`, oldest first, at most `max`. */
export function expiredCheckpoints(state: MasterState, nowMs: number, intervalMs: number, max: number): string[] {
  const trash = state.lookup(TRASH_ROOT);
  if (trash?.type !== 'dir') return [];
  const expired: { path: string; atMs: number }[] = [];
  for (const [user, dir] of trash.children) {
    if (dir.type !== 'dir') continue;
    for (const name of dir.children.keys()) {
      const atMs = checkpointTimeMs(name);
      if (atMs !== undefined && atMs + intervalMs <= nowMs) expired.push({ path: joinPath(joinPath(TRASH_ROOT, user), name), atMs });
    }
  }
  return expired.sort((a, b) => a.atMs - b.atMs || (a.path < b.path ? -1 : 1)).slice(0, max).map((e) => e.path);
}

export function expungeTrash(state: MasterState, cmd: Extract<Command, { op: 'expungeTrash' }>): { expunged: string[]; files: number } {
  let files = 0;
  const expunged = expiredCheckpoints(state, cmd.nowMs, cmd.intervalMs, cmd.max);
  for (const p of expunged) files += (applyInner(state, { op: 'delete', path: p, recursive: true, nowMs: cmd.nowMs }) as { files: number }).files;
  return { expunged, files };
}
