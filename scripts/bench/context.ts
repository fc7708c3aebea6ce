import type { DfsClient } from '../../cli/client.js';
import type { Figure } from './report.js';

/** What every section that talks to the cluster is given. */
export interface ClusterContext {
  client: DfsClient;
  /** Replicas per chunk of every file the section writes. */
  replication: number;
  /** Folder in dfs that holds everything this benchmark writes (removed at the end). */
  root: string;
  /** The ceilings measured in this run (empty when not selected): ratios are taken against them. */
  ceilings: Figure[];
  log: (line: string) => void;
}
