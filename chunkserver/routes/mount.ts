import type { Express } from 'express';
import { Counter, Gauge, Histogram, type Registry as MetricsRegistry } from 'prom-client';
import { CHUNKS, CLUSTER } from '../../common/contract/index.js';
import type { Logger } from '../../common/log.js';
import { serve, serveRaw } from '../../common/serve.js';
import type { ChunkStore } from '../store/index.js';
import type { Activity, ChunkRouteConfig, ChunkRouteHooks } from './context.js';
import { readRoute } from './read.js';
import { writeRoute } from './write.js';

/** Seconds: a small chunk crosses a hop in milliseconds, a 64 MiB one in about a second, a slow disk or link in minutes. */
const HOP_SECONDS_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300];

/** The chunkserver's routes (health, chunk write, chunk read: common/contract/) and their metrics. */
export function mountChunkRoutes(app: Express, cfg: ChunkRouteConfig, store: ChunkStore, activity: Activity, hooks: ChunkRouteHooks, log: Logger, metrics: MetricsRegistry): void {
  const bytesIn = new Counter({ name: 'dfs_chunkserver_write_bytes_total', help: 'chunk bytes stored', registers: [metrics] });
  const bytesOut = new Counter({ name: 'dfs_chunkserver_read_bytes_total', help: 'chunk bytes served', registers: [metrics] });
  const checksumFailures = new Counter({ name: 'dfs_chunkserver_checksum_failures_total', help: 'blocks that failed verification on read', registers: [metrics] });
  new Gauge({ name: 'dfs_chunkserver_chunks', help: 'chunks stored', registers: [metrics], collect() { this.set(store.count); } });
  const hopSeconds = new Histogram({
    name: 'dfs_chunkserver_pipeline_hop_seconds',
    help: 'a chunk write at this hop, from its request to its answer (this replica durable, every later hop answered), by whether it forwarded and how it ended',
    labelNames: ['forwarded', 'outcome'] as const, buckets: HOP_SECONDS_BUCKETS, registers: [metrics],
  });
  const ctx = { cfg, store, activity, hooks, log };

  serve(app, CLUSTER.health, () => ({ ok: true as const, id: cfg.id }));
  serveRaw(app, CHUNKS.write, writeRoute(ctx, { bytesIn, hopSeconds }));
  serveRaw(app, CHUNKS.read, readRoute(ctx, { bytesOut, checksumFailures }));
}
