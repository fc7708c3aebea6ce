// The chunkserver's disk metrics (docs/METRICS.md); the route metrics live with the routes.
import { Gauge, Histogram, type Registry } from 'prom-client';
import type { ChunkStore } from './store/index.js';

/** Seconds: an fsync of a 64 MiB chunk file takes milliseconds on an SSD, up to seconds on a busy disk. */
const FSYNC_SECONDS_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** The store's onFsync hook, observing into `dfs_chunkserver_fsync_seconds{kind}`. */
export function fsyncHook(registry: Registry): (kind: 'file' | 'dir', seconds: number) => void {
  const fsync = new Histogram({
    name: 'dfs_chunkserver_fsync_seconds', help: 'fsyncs that make a chunk durable: the chunk file (kind=file) and the chunks/ folder after its rename (kind=dir)',
    labelNames: ['kind'], buckets: FSYNC_SECONDS_BUCKETS, registers: [registry],
  });
  return (kind, seconds) => fsync.observe({ kind }, seconds);
}

/** Capacity and free space of the data folder's file system, read at scrape time (one statfs). */
export function watchDisk(registry: Registry, store: ChunkStore): void {
  const registers = [registry];
  new Gauge({ name: 'dfs_chunkserver_disk_capacity_bytes', help: 'size of the file system holding the data folder', registers, async collect() {
    this.set((await store.diskStats()).capacityBytes);
  } });
  new Gauge({ name: 'dfs_chunkserver_disk_free_bytes', help: 'bytes free to this process on the file system holding the data folder', registers, async collect() {
    this.set((await store.diskStats()).freeBytes);
  } });
}
