// The public surface of master/state: the replicated state and the nodes of its tree.
export { MasterState } from './master-state.js';
export type { DirNode, FileNode, InlineBytes, Node } from './nodes.js';
