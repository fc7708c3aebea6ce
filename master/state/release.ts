// What turns chunks into garbage: a write dropped (abandoned, expired, deleted), a file replaced or deleted.
import { baseName, parentOf } from '../../common/paths.js';
import type { MasterState } from './master-state.js';
import type { FileNode } from './nodes.js';
import { lookup } from './tree.js';
import type { PendingWrite } from './writes.js';

/** Forgets a pending write, its chunks, and (for a new file) its 'writing' entry. */
export function dropWrite(s: MasterState, w: PendingWrite): void {
  for (const h of w.chunks) s.chunks.delete(h);
  const copy = w.append?.fill?.copyTo;
  if (copy !== undefined) s.chunks.delete(copy); // a shared last chunk's copy, never completed
  s.writes.delete(w.writeId);
  if (!w.replacing) {
    const parent = lookup(s.root, parentOf(w.path));
    if (parent?.type === 'dir') {
      const entry = parent.children.get(baseName(w.path));
      if (entry?.type === 'file' && entry.writeId === w.writeId) parent.children.delete(baseName(w.path));
    }
  }
}

/** A file goes (deleted, replaced): its chunks go too, but for those another file still shares; an inline file's bytes leave the cap. */
export function releaseChunks(s: MasterState, file: FileNode): void {
  for (const h of file.chunks) s.chunks.release(h);
  if (file.inline) s.inlineBytes -= file.inline.data.length;
}
