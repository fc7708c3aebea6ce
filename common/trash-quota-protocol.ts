// Wire types of the trash and of directory quotas (docs/API.md): the request schemas, the replies,
// and the trash's layout, which the master, the CLI and the tests all read the same way.
import { z } from 'zod';
import { DfsError } from './errors.js';
import { isWithin } from './paths.js';

/** Where `dfs rm` moves things: `/.trash/<user>/<checkpoint>/<original path>`. */
export const TRASH_ROOT = '/.trash';
/** A trash user name, as the client claims it (DFS_USER, else the OS user) until credentials exist. */
export const TRASH_USER = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,63}$/;
/** Largest name or space quota: a safe integer (space quotas are bytes × replication). */
export const MAX_QUOTA = Number.MAX_SAFE_INTEGER;

const path = z.string().min(1).max(4096);
const user = z.string().regex(TRASH_USER, 'user: 1-64 of [A-Za-z0-9._-], not starting with . or -');
const limit = z.number().int().min(0).max(MAX_QUOTA);

/** Moves a path into its user's trash in one replicated rename (as `hdfs dfs -rm` does). */
export const TrashRequest = z.strictObject({ path, recursive: z.boolean().default(false), user });
/** Moves a path out of the trash: to `dst`, or by default back where it was deleted from. */
export const TrashRestoreRequest = z.strictObject({ src: path, dst: path.optional() });
/**
 * Sets a directory's quotas: a number sets that limit, null removes it, absent keeps it. A
 * directory with neither limit left has no quota.
 */
export const QuotaSetRequest = z.strictObject({ path, files: limit.nullable().optional(), bytes: limit.nullable().optional() });

export type TrashRequest = z.infer<typeof TrashRequest>;
export type TrashRestoreRequest = z.infer<typeof TrashRestoreRequest>;
export type QuotaSetRequest = z.infer<typeof QuotaSetRequest>;

export const TrashReply = z.object({ path: z.string(), trashPath: z.string(), files: z.number().int().min(0) });
export const TrashRestoreReply = z.object({ src: z.string(), dst: z.string() });
const use = z.object({ limit: z.number().int().min(0).nullable(), used: z.number().int().min(0) });
/**
 * A directory's quota and what its tree uses (HDFS's `count -q`): names are files plus
 * directories, the directory itself included; bytes are each file's size times its replication.
 */
export const QuotaReply = z.object({ path: z.string(), files: use, bytes: use });
export type TrashReply = z.infer<typeof TrashReply>;
export type TrashRestoreReply = z.infer<typeof TrashRestoreReply>;
export type QuotaReply = z.infer<typeof QuotaReply>;

/** A checkpoint folder's name: the deletion time to the second, UTC, e.g. 20261205-065540. */
export function checkpointName(nowMs: number): string {
  const iso = new Date(nowMs).toISOString(); // 2026-12-05T06:55:40.123Z
  return `${iso.slice(0, 4)}${iso.slice(5, 7)}${iso.slice(8, 10)}-${iso.slice(11, 13)}${iso.slice(14, 16)}${iso.slice(17, 19)}`;
}

/**
 * The time a checkpoint name stands for, or undefined for a name that is not one. A name may end
 * in -1 to -99: a second checkpoint of the same second, made when the first had something in the way.
 */
export function checkpointTimeMs(name: string): number | undefined {
  const m = /^((\d{4})(\d{2})(\d{2})-(\d{2})(\d{2})(\d{2}))(?:-[1-9]\d?)?$/.exec(name);
  if (!m) return undefined;
  const ms = Date.UTC(Number(m[2]), Number(m[3]) - 1, Number(m[4]), Number(m[5]), Number(m[6]), Number(m[7]));
  return checkpointName(ms) === m[1] ? ms : undefined;
}

export function userTrash(userName: string): string {
  if (!TRASH_USER.test(userName)) throw new DfsError('INVALID_ARGUMENT', `trash user ${JSON.stringify(userName).slice(0, 80)} must be 1-64 of [A-Za-z0-9._-], not starting with . or -`);
  return `${TRASH_ROOT}/${userName}`;
}

/** True for /.trash and everything in it: deleting there is for real. */
export function inTrash(p: string): boolean {
  return isWithin(p, TRASH_ROOT) && p !== '/';
}

/**
 * Where a path in the trash was deleted from, and when: `/.trash/u/20261205-065540/a/b` was `/a/b`.
 * Undefined for a path that is not inside a checkpoint.
 */
export function trashOrigin(p: string): { user: string; checkpoint: string; deletedAtMs: number; original: string } | undefined {
  const m = /^\/\.trash\/([^/]+)\/([^/]+)(\/.+)$/.exec(p);
  const deletedAtMs = m ? checkpointTimeMs(m[2]!) : undefined;
  if (!m || deletedAtMs === undefined) return undefined;
  return { user: m[1]!, checkpoint: m[2]!, deletedAtMs, original: m[3]! };
}
