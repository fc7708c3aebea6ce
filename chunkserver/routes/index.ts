/** The chunkserver's HTTP routes: mounting, the pipelined write, the verified read. */
export { Activity, type ChunkRouteConfig, type ChunkRouteHooks } from './context.js';
export { mountChunkRoutes } from './mount.js';
