// The public surface of master/state: the replicated state and the shapes it holds.
export { MasterState } from './master-state.js';
export { ChunkTable, type ChunkRecord } from './chunk-table.js';
export { FileNode, WritingFile, type DirNode, type Node } from './nodes.js';
export type { PendingWrite } from './writes.js';
