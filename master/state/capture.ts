// Copy-on-write for snapshots: while a snapshot of the state is being written in the background,
// the first change to any part of the state it has not written yet keeps that part's old value
// aside, so the writer sees the state as it was at the capture, however long it takes.
import { pathOrderKey, PathOrderIndex } from '../../common/list-order.js';
import type { DirNode, Node } from './nodes.js';

/** What a directory's name held at the capture: a node, or nothing (the name was added since). */
export const ABSENT = Symbol('absent');
export type Kept = Node | typeof ABSENT;

/**
 * The old values of one directory, kept at its first change: its mtime, its names in their order
 * (the one copy that grows with a directory), and the old value of each name changed since.
 */
export interface DirUndo { mtimeMs: number; order: string[]; names: Map<string, Kept> }

/** One capture's memory of old values (see snapshot.ts for the writer that reads it). */
export class CaptureUndo {
  readonly dirs = new Map<DirNode, DirUndo>();
  /** Files whose replication changed since the capture, with the old value. */
  readonly replication = new Map<object, number>();
}

/** Captures being written now (most often none, at times one; tests may hold several). */
const active = new Set<CaptureUndo>();

export function beginCapture(): CaptureUndo {
  const undo = new CaptureUndo();
  active.add(undo);
  return undo;
}

export function endCapture(undo: CaptureUndo): void {
  active.delete(undo);
}

/** Before a directory's name changes: keeps the name's value and the directory's mtime. */
function beforeChildChange(dir: DirNode, name: string, old: Node | undefined): void {
  for (const undo of active) {
    let kept = undo.dirs.get(dir);
    if (kept === undefined) undo.dirs.set(dir, (kept = { mtimeMs: dir.mtimeMs, order: [...dir.children.keys()], names: new Map() }));
    if (!kept.names.has(name)) kept.names.set(name, old ?? ABSENT);
  }
}

/** Before a file's replication changes. */
export function beforeReplicationChange(file: object, old: number): void {
  for (const undo of active) if (!undo.replication.has(file)) undo.replication.set(file, old);
}

export function capturing(): boolean {
  return active.size !== 0;
}

/**
 * A directory's children. A Map that tells the captures being written about each change first;
 * a directory's mtime changes only together with its children (checked when a snapshot is written).
 * A directory that has been listed in pages also keeps its names in path order from then on, so
 * that a page is a seek and a slice, not a pass over the whole directory (`pathOrderPage`).
 */
export class ChildMap extends Map<string, Node> {
  owner: DirNode | undefined;
  /** The names in path order (a directory's as name/); made at the first paged listing, kept in step after it. */
  private order: PathOrderIndex | undefined;

  override set(name: string, node: Node): this {
    const old = this.get(name);
    if (active.size !== 0 && this.owner !== undefined) beforeChildChange(this.owner, name, old);
    if (this.order !== undefined && (old === undefined || old.type !== node.type)) {
      if (old !== undefined) this.order.remove(pathOrderKey(name, old.type === 'dir'));
      this.order.add(pathOrderKey(name, node.type === 'dir'));
    }
    return super.set(name, node);
  }

  override delete(name: string): boolean {
    const old = this.get(name);
    if (old === undefined) return false;
    if (active.size !== 0 && this.owner !== undefined) beforeChildChange(this.owner, name, old);
    this.order?.remove(pathOrderKey(name, old.type === 'dir'));
    return super.delete(name);
  }

  override clear(): void {
    for (const name of [...this.keys()]) this.delete(name);
  }

  /** At most `limit` names after `after` (a path-order key), in path order: O(log n + limit) once the order is made. */
  pathOrderPage(after: string | undefined, limit: number): { names: string[]; more: boolean } {
    this.order ??= new PathOrderIndex([...this.entries()].map(([name, node]) => pathOrderKey(name, node.type === 'dir')));
    const { keys, more } = this.order.page(after, limit);
    return { names: keys.map((k) => (k.endsWith('/') ? k.slice(0, -1) : k)), more };
  }
}

/** A new, empty directory whose changes captures see. */
export function newDir(mtimeMs: number): DirNode {
  const children = new ChildMap();
  const dir: DirNode = { type: 'dir', mtimeMs, children };
  children.owner = dir;
  return dir;
}
