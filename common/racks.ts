// Racks (failure domains) as every role sees them: a chunkserver names its rack (`--rack`), a
// writer may name its own (`DFS_RACK`), and the master places replicas across racks
// (master/racks.ts holds its rules). A rack is a name and nothing more: no topology, no
// distances, as HDFS's flat `/rack` script output and MooseFS's labels are used in practice.
import { DfsError } from './errors.js';

/** The rack of a server that names none: one rack for the whole cluster, as before racks existed. */
export const DEFAULT_RACK = 'default';
/** Letters, digits, '.', '_' and '-': no spaces, no slashes, safe in a log line and a file name. */
export const RACK_PATTERN = /^[A-Za-z0-9._-]{1,64}$/;

/** A rack name from a flag, a config file or the environment; `what` names where it came from. */
export function parseRack(raw: unknown, what: string): string {
  if (typeof raw !== 'string' || !RACK_PATTERN.test(raw)) {
    throw new DfsError('INVALID_ARGUMENT', `${what} must be a rack name of 1-64 letters, digits, '.', '_' or '-' (no spaces), not ${JSON.stringify(raw)}`);
  }
  return raw;
}

/**
 * Replicas in `rack` first, the others after, each group in the order given (a reader's rotation
 * spreads load within them): a reader that names its rack reads inside it, as HDFS sorts by
 * network distance, and a rack cut off costs it nothing while its own rack holds a replica.
 */
export function localFirst<T extends { rack?: string }>(replicas: readonly T[], rack: string | undefined): T[] {
  if (rack === undefined) return [...replicas];
  return [...replicas.filter((r) => r.rack === rack), ...replicas.filter((r) => r.rack !== rack)];
}

/** The writer's rack from $DFS_RACK, if set (an empty value counts as unset). */
export function rackFromEnv(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const raw = env.DFS_RACK;
  return raw === undefined || raw === '' ? undefined : parseRack(raw, 'DFS_RACK');
}
