// The chunks repair looks after: every chunk of a finished file, with its file, walked in steps.
import type { FileNode, MasterState, Node } from '../state/index.js';
import type { Work } from './steps.js';

/**
 * handle → the finished file it belongs to, for every chunk repair looks after. The file, not
 * its replication, as setrep changes a file in place, and a sliced scan decides slices after it
 * walked past the file; version and length are read from the chunk table when they are used.
 * Kept as one small Map per span of handles: one Map of a million chunks rehashes all of them
 * at once whenever it grows, tens of milliseconds in the middle of a slice. A span holds at most
 * SPAN handles, so no Map grows past that, whatever order files are walked in.
 */
export class WantedChunks {
  private static readonly SPAN = 16_384;
  private readonly spans = new Map<number, Map<number, FileNode>>();

  get(handle: number): FileNode | undefined {
    return this.spans.get(Math.floor(handle / WantedChunks.SPAN))?.get(handle);
  }

  set(handle: number, file: FileNode): void {
    const k = Math.floor(handle / WantedChunks.SPAN);
    let span = this.spans.get(k);
    if (!span) this.spans.set(k, (span = new Map()));
    span.set(handle, file);
  }

  /** The Maps themselves: a scan pauses between entries, and a generator per entry would cost more than the Maps. */
  parts(): IterableIterator<Map<number, FileNode>> {
    return this.spans.values();
  }
}

/**
 * Every chunk of a finished file, with its file: the chunks repair and balancing look after.
 * Directories are walked through their Maps' own iterators, which stay valid while entries come
 * and go between slices (an entry added meanwhile may be seen or not; the next scan sees it).
 * Repair does not depend on the order, so names are not sorted: sorting a huge directory's names
 * would be one long stretch.
 */
export function* finishedChunks(state: MasterState, wanted: WantedChunks, work: Work): Generator<void> {
  const dirs: Iterator<Node>[] = [state.root.children.values()];
  while (dirs.length > 0) {
    if (work.due()) yield;
    const next = dirs[dirs.length - 1]!.next();
    if (next.done) {
      dirs.pop();
      continue;
    }
    const node = next.value;
    if (node.type === 'dir') dirs.push(node.children.values());
    else if (node.state === 'complete') {
      for (const h of node.chunks) {
        if (work.due()) yield;
        // A chunk shared by snapshots is kept at the highest replication of the files that hold it.
        if (state.chunks.has(h) && !((wanted.get(h)?.replication ?? 0) > node.replication)) wanted.set(h, node);
      }
    }
  }
}
