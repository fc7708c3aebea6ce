// A server's data folder is its own: chunk files, the Raft log and snapshots, the cluster secret's
// neighbours. Everything a master or chunkserver creates is for its user only (files 0600, folders
// 0700, whatever the umask said), and a folder found open to others at start is closed and said so.
import { chmodSync, mkdirSync, statSync } from 'node:fs';
import type { Logger } from './log.js';

/** What a server's process creates: no bits for group or others. */
export const SERVER_UMASK = 0o077;

/**
 * Makes `dir` (0700) and sets the process umask so that what the server creates after is its
 * user's alone; a folder from before that group or others could enter is made 0700. Answers
 * whether it had to.
 */
export function secureDataDir(dir: string, log?: Pick<Logger, 'warn'>): boolean {
  process.umask(SERVER_UMASK);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const mode = statSync(dir).mode & 0o777;
  if ((mode & 0o077) === 0) return false;
  chmodSync(dir, 0o700);
  log?.warn({ dir, was: mode.toString(8) }, 'data folder was open to other users; it is 0700 now (its files are reached only through it)');
  return true;
}
