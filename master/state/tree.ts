// Reading the namespace tree: finding a path, a directory's parent, an entry's public shape, a walk.
import { baseName, joinPath, parentOf, splitPath } from '../../common/paths.js';
import type { EntryInfo } from '../../common/protocol.js';
import { fail } from './failure.js';
import type { DirNode, Node } from './nodes.js';

export function lookup(root: DirNode, path: string): Node | undefined {
  let node: Node = root;
  for (const part of splitPath(path)) {
    if (node.type !== 'dir') return undefined;
    const next = node.children.get(part);
    if (!next) return undefined;
    node = next;
  }
  return node;
}

/** The directory that holds `path`; NOT_FOUND / NOT_A_DIRECTORY when a parent is missing or a file. */
export function parentDir(root: DirNode, path: string): DirNode {
  const parent = parentOf(path);
  const node = lookup(root, parent);
  if (!node) fail('NOT_FOUND', `parent directory ${parent} does not exist (mkdir -p creates it)`);
  if (node!.type !== 'dir') fail('NOT_A_DIRECTORY', `${parent} is a file, not a directory`);
  return node as DirNode;
}

export function entryInfo(path: string, node: Node): EntryInfo {
  if (node.type === 'dir') {
    return { path, name: path === '/' ? '/' : baseName(path), type: 'dir', size: 0, mtimeMs: node.mtimeMs, replication: 0, state: 'complete', chunkCount: 0 };
  }
  return { path, name: baseName(path), type: 'file', size: node.size, mtimeMs: node.mtimeMs, replication: node.replication, state: node.state, chunkCount: node.chunkCount };
}

/** Every file node below (and including) `path`, depth first, names sorted. */
export function* walk(path: string, node: Node): Generator<[string, Node]> {
  yield [path, node];
  if (node.type === 'dir') {
    for (const name of [...node.children.keys()].sort()) yield* walk(joinPath(path, name), node.children.get(name)!);
  }
}
