// The public surface of master/service: the master's operations behind its HTTP routes.
export { MasterService, type MasterServiceOptions } from './service.js';
export { inlineMaxBytes, type MasterConfig } from './config.js';
export { READ_TOKEN_TTL_MS } from './tokens.js';
export type { NamespaceCalls } from './namespace.js';
export type { Reports } from './reports.js';
export type { ChunkserverCalls } from './chunkservers.js';
export type { ChunkserverLinks } from './links.js';
export type { UnreachableProbes } from './probes.js';
