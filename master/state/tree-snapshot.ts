// Snapshots of files and trees (`dfs snapshot`, GFS §3.4): a copy made in one command, whatever
// the size, whose files share the originals' chunks. Each chunk counts its references (the chunk
// table's refsOf); deleting either side releases only what nobody else references, and the first
// append to a shared last chunk fills a copy of it instead (master/state/append.ts).
import { baseName, isWithin } from '../../common/paths.js';
import type { EntryInfo } from '../../common/protocol.js';
import type { Command } from '../commands.js';
import { newDir } from './capture.js';
import { fail } from './failure.js';
import type { MasterState } from './master-state.js';
import { FileNode, InlineFile, type DirNode, type Node } from './nodes.js';
import { entryInfo, lookup, parentDir, walk } from './tree.js';

/** A copy of `node` whose files reference the same chunks (each shared once more). */
function copyNode(s: MasterState, node: Node): Node {
  if (node.type === 'file') {
    if (node.inline) {
      // The bytes never change, so both files hold the one buffer; the cap counts them per file,
      // as a restore from a Raft snapshot makes two buffers of them (the cap is checked at create only).
      s.inlineBytes += node.size;
      return new InlineFile({ mtimeMs: node.mtimeMs, replication: node.replication, chunkSizeBytes: node.chunkSizeBytes }, node.inline);
    }
    for (const h of node.chunks) s.chunks.share(h);
    return new FileNode({ mtimeMs: node.mtimeMs, size: node.size, replication: node.replication, chunkSizeBytes: node.chunkSizeBytes, chunks: node.chunks });
  }
  const dir: DirNode = newDir(node.mtimeMs);
  for (const [name, child] of node.children) dir.children.set(name, copyNode(s, child));
  return dir;
}

/**
 * Copies the file or tree at `src` to `dst` (which must not exist; its parent must). Refused
 * (FILE_BUSY) while anything at or below `src` is being written, overwritten or appended to: a
 * snapshot holds complete files only.
 */
export function snapshotTree(s: MasterState, cmd: Extract<Command, { op: 'snapshot' }>): EntryInfo {
  const node = lookup(s.root, cmd.src);
  if (!node) fail('NOT_FOUND', `${cmd.src} does not exist`);
  if (cmd.dst === '/' || lookup(s.root, cmd.dst)) fail('EXISTS', `${cmd.dst} already exists; name a new path for the snapshot`);
  if (isWithin(cmd.dst, cmd.src)) fail('INVALID_ARGUMENT', `cannot snapshot ${cmd.src} into itself`);
  const dir = parentDir(s.root, cmd.dst);
  for (const w of s.writes.values()) {
    if (isWithin(w.path, cmd.src)) fail('FILE_BUSY', `${w.path} is being written; snapshot it once the write is done`);
  }
  for (const [p, n] of walk(cmd.src, node!)) {
    if (n.type === 'file' && n.writeId !== undefined) fail('FILE_BUSY', `${p} is being written; snapshot it once the write is done`);
  }
  const copy = copyNode(s, node!);
  dir.children.set(baseName(cmd.dst), copy);
  dir.mtimeMs = cmd.nowMs;
  return entryInfo(cmd.dst, copy);
}

/**
 * Counts every chunk's references afresh from the files and the pending writes, and the inline
 * bytes from the inline files: a restored state gets them so (the snapshot of the state carries
 * the tree, from which they follow).
 */
export function countReferences(s: MasterState): void {
  const seen = new Set<number>();
  const ref = (h: number): void => {
    if (!s.chunks.has(h)) return;
    if (seen.has(h)) s.chunks.share(h);
    else seen.add(h);
  };
  s.inlineBytes = 0;
  for (const [, n] of walk('/', s.root)) {
    if (n.type !== 'file') continue;
    for (const h of n.chunks) ref(h);
    if (n.inline) s.inlineBytes += n.size;
  }
  for (const w of s.writes.values()) {
    for (const h of w.chunks) ref(h);
    if (w.append?.fill?.copyTo !== undefined) ref(w.append.fill.copyTo);
  }
}
