import { pino, type Logger } from 'pino';

export type { Logger };

/**
 * One logger for every role: one JSON object a line on stdout, level from DFS_LOG_LEVEL.
 * Written asynchronously: lines written while a write is under way go out together in the next
 * one (a busy leader logs a line per change, and a write call per line cost it more CPU than its
 * Raft log), and pino flushes what is left when the process exits. A kill -9 can lose the last
 * lines not yet written, never a line of a later request.
 */
export function createLogger(role: string, id: string): Logger {
  return pino({ level: process.env.DFS_LOG_LEVEL ?? 'info', base: { role, id, pid: process.pid } }, pino.destination({ dest: 1, sync: false }));
}
