import { pino, type Logger } from 'pino';

export type { Logger };

/** One logger for every role: one JSON object a line on stdout, level from DFS_LOG_LEVEL. */
export function createLogger(role: string, id: string): Logger {
  return pino({ level: process.env.DFS_LOG_LEVEL ?? 'info', base: { role, id, pid: process.pid } });
}
