// Directory quotas, as HDFS's: a name quota (files plus directories in the tree, the directory
// itself included) and a space quota (each file's bytes times its replication). Usage is kept
// per quota directory and changed incrementally: before a command is applied, planQuota works out
// what it will add to or take from each quota directory above the paths it touches, refuses it
// (QUOTA_EXCEEDED) when an increase would pass a limit, and the plan is committed only once the
// command succeeded. The check is inside the replicated apply, so it holds for writers racing on
// different masters' clients alike: the log orders them, and the second is refused.
import { baseName, isWithin, joinPath, parentOf, splitPath } from '../common/paths.js';
import { inTrash } from '../common/trash-quota-protocol.js';
import type { Command } from './commands.js';
import { fail } from './state/failure.js';
import type { DirNode, FileNode, MasterState, Node } from './state/index.js';
import type { PendingWrite } from './state/writes.js';

/** A directory's limits (null: none) and what its tree uses now. */
export interface DirQuota { files: number | null; bytes: number | null; usedFiles: number; usedBytes: number }
export interface Usage { files: number; bytes: number }

/** Quotas live beside the directory nodes they belong to, so a rename carries them along. */
const quotas = new WeakMap<DirNode, DirQuota>();
/** States that have (or had) a quota: the others skip all of this at the cost of one lookup. */
const withQuotas = new WeakSet<MasterState>();

export function quotaOf(dir: DirNode): DirQuota | undefined {
  return quotas.get(dir);
}

/**
 * What a pending write counts for: its replication times the size it announced at create, or the
 * least it can hold with the chunks it has allocated (all full but the last, which has a byte at
 * least) when that is more. Complete then counts the real length, and is refused if that passes a
 * limit, so a quota is never exceeded by a file.
 */
export function writeCharge(w: PendingWrite): number {
  const allocated = w.chunks.length === 0 ? 0 : (w.chunks.length - 1) * w.chunkSizeBytes + 1;
  return w.replication * Math.max(w.expectedBytes ?? 0, allocated);
}

const fileBytes = (f: FileNode): number => f.size * f.replication;

/** Names and bytes of a tree as quotas count them: pending writes by writeCharge, complete files by size × replication. */
export function treeUsage(state: MasterState, node: Node, path: string): Usage {
  const usage: Usage = { files: 0, bytes: 0 };
  const replacing = new Map<string, PendingWrite[]>();
  for (const w of state.writes.values()) if (w.replacing && isWithin(w.path, path)) replacing.set(w.path, [...replacing.get(w.path) ?? [], w]);
  const visit = (n: Node, p: string): void => {
    usage.files++;
    if (n.type === 'dir') {
      for (const [name, child] of n.children) visit(child, joinPath(p, name));
      return;
    }
    const w = n.writeId === undefined ? undefined : state.writes.get(n.writeId);
    usage.bytes += n.writeId === undefined ? fileBytes(n) : w ? writeCharge(w) : 0;
    for (const r of replacing.get(p) ?? []) usage.bytes += writeCharge(r);
  };
  visit(node, path);
  return usage;
}

interface Holder { quota: DirQuota; path: string }

/** The quota directories that count a node at `path`: those strictly above it (missing parts have none). */
function chainAbove(state: MasterState, path: string): Holder[] {
  const chain: Holder[] = [];
  let dir: DirNode = state.root;
  let at = '/';
  for (const part of splitPath(path).slice(0, -1)) {
    const q = quotas.get(dir);
    if (q) chain.push({ quota: q, path: at });
    const next = dir.children.get(part);
    if (!next || next.type !== 'dir') return chain;
    dir = next;
    at = joinPath(at, part);
  }
  const q = quotas.get(dir);
  if (q && path !== '/') chain.push({ quota: q, path: at });
  return chain;
}

/** A command's effect on quota usage, checked before it is applied and committed after. */
export class QuotaPlan {
  private readonly deltas = new Map<DirQuota, { path: string; files: number; bytes: number }>();

  constructor(private readonly state: MasterState) {}

  /** A node at `path` gains (or, negative, loses) this many names and bytes. */
  add(path: string, files: number, bytes: number, chain = chainAbove(this.state, path)): void {
    if (files === 0 && bytes === 0) return;
    for (const h of chain) {
      const d = this.deltas.get(h.quota) ?? { path: h.path, files: 0, bytes: 0 };
      d.files += files;
      d.bytes += bytes;
      this.deltas.set(h.quota, d);
    }
  }

  /** QUOTA_EXCEEDED when an increase passes a limit; a decrease is never refused (a quota may be set below the usage). */
  check(): this {
    for (const [q, d] of this.deltas) {
      if (d.files > 0 && q.files !== null && q.usedFiles + d.files > q.files) {
        fail('QUOTA_EXCEEDED', `the name quota of ${d.path} is ${q.files} files and directories; ${q.usedFiles} are used and this needs ${d.files} more`);
      }
      if (d.bytes > 0 && q.bytes !== null && q.usedBytes + d.bytes > q.bytes) {
        fail('QUOTA_EXCEEDED', `the space quota of ${d.path} is ${q.bytes} bytes (size × replication); ${q.usedBytes} are used and this needs ${d.bytes} more`);
      }
    }
    return this;
  }

  commit(): void {
    for (const [q, d] of this.deltas) {
      q.usedFiles += d.files;
      q.usedBytes += d.bytes;
    }
  }
}

/** The number of directories mkdir -p would make for `path` (0 when it exists; undefined when it would fail). */
export function missingDirs(state: MasterState, path: string): { first: string; count: number } | undefined {
  let node: Node = state.root;
  const parts = splitPath(path);
  for (let i = 0; i < parts.length; i++) {
    if (node.type !== 'dir') return undefined;
    const next = node.children.get(parts[i]!);
    if (!next) return { first: '/' + parts.slice(0, i + 1).join('/'), count: parts.length - i };
    node = next;
  }
  return node.type === 'dir' ? { first: path, count: 0 } : undefined;
}

/**
 * What `cmd` will change, checked against every quota above what it touches (QUOTA_EXCEEDED
 * before anything changes); undefined when no quota exists or the command changes no usage.
 * It is worked out on the state before the command, as the command itself will find it: a
 * command that then fails commits nothing.
 */
export function planQuota(state: MasterState, cmd: Command): QuotaPlan | undefined {
  if (!withQuotas.has(state)) return undefined;
  const plan = new QuotaPlan(state);
  switch (cmd.op) {
    case 'mkdir': planMkdir(state, plan, cmd.path, cmd.parents); break;
    case 'create': planCreate(state, plan, cmd); break;
    case 'allocate': planAllocate(state, plan, cmd.writeId, cmd.index); break;
    case 'complete': planComplete(state, plan, cmd); break;
    case 'abandon': planDrop(state, plan, state.writes.get(cmd.writeId)); break;
    case 'expireLeases': for (const w of state.writes.values()) if (w.leaseExpiresAtMs <= cmd.nowMs) planDrop(state, plan, w); break;
    case 'delete': planDelete(state, plan, cmd.path, cmd.recursive); break;
    case 'rename': planRename(state, plan, cmd.src, cmd.dst); break;
    case 'setReplication': planSetReplication(state, plan, cmd.path, cmd.replication); break;
    case 'concat': planConcat(state, plan, cmd); break;
    case 'append': planAppend(state, plan, cmd); break;
    case 'snapshot': planSnapshot(state, plan, cmd); break;
    default: return undefined;
  }
  return plan.check();
}

function planMkdir(state: MasterState, plan: QuotaPlan, path: string, parents: boolean): void {
  const missing = missingDirs(state, path);
  if (!missing || missing.count === 0 || (!parents && missing.count > 1)) return;
  plan.add(missing.first, missing.count, 0);
}

function planCreate(state: MasterState, plan: QuotaPlan, cmd: Extract<Command, { op: 'create' }>): void {
  if (cmd.path === '/' || state.writes.has(cmd.writeId)) return;
  if (cmd.parents) planMkdir(state, plan, parentOf(cmd.path), true);
  const existing = state.lookup(cmd.path);
  if (existing?.type === 'dir' || (existing && !cmd.overwrite)) return;
  // The new write counts for the size it announced (a put of a local file), so a file too large is refused before a chunk is written.
  // An inline file is complete at once, as an empty one: it counts its size from now on.
  const complete = cmd.empty === true || cmd.inline !== undefined;
  plan.add(cmd.path, existing ? 0 : 1, cmd.replication * (cmd.inline ? cmd.inline.size : cmd.empty ? 0 : cmd.expectedBytes ?? 0));
  if (!existing) return;
  if (existing.writeId !== undefined) {
    // An abandoned write's entry is replaced: its charge goes, the name stays counted.
    const w = state.writes.get(existing.writeId);
    if (w) plan.add(cmd.path, 0, -writeCharge(w));
    return;
  }
  for (const w of state.writes.values()) if (w.path === cmd.path && w.replacing && w.leaseExpiresAtMs <= cmd.nowMs) plan.add(cmd.path, 0, -writeCharge(w));
  if (complete) plan.add(cmd.path, 0, -fileBytes(existing));
}

function planAllocate(state: MasterState, plan: QuotaPlan, writeId: string, index: number): void {
  const w = state.writes.get(writeId);
  if (!w || index > w.chunks.length) return;
  const after = writeCharge({ ...w, chunks: index < w.chunks.length ? w.chunks : [...w.chunks, 0] });
  plan.add(w.path, 0, after - writeCharge(w));
}

function planComplete(state: MasterState, plan: QuotaPlan, cmd: Extract<Command, { op: 'complete' }>): void {
  const w = state.writes.get(cmd.writeId);
  if (!w) return;
  const existing = state.lookup(w.path);
  let files = 0;
  let bytes = cmd.length * w.replication - writeCharge(w);
  if (w.replacing) {
    if (existing?.type === 'file') bytes -= fileBytes(existing);
    else if (!existing) files = 1; // the file it replaces went meanwhile: complete makes the entry
  }
  plan.add(w.path, files, bytes);
}

/** An append counts for the size its writer announced from its open, as a create does. */
function planAppend(state: MasterState, plan: QuotaPlan, cmd: Extract<Command, { op: 'append' }>): void {
  const file = state.lookup(cmd.path);
  if (file?.type !== 'file' || file.writeId !== undefined || state.writes.has(cmd.writeId)) return;
  plan.add(cmd.path, 0, file.replication * (cmd.expectedBytes ?? 0));
}

/** A snapshot's files count where it is made, as new files would (shared chunks are counted per file here). */
function planSnapshot(state: MasterState, plan: QuotaPlan, cmd: Extract<Command, { op: 'snapshot' }>): void {
  const node = state.lookup(cmd.src);
  if (!node || state.lookup(cmd.dst) || isWithin(cmd.dst, cmd.src)) return;
  const usage = treeUsage(state, node, cmd.src);
  plan.add(cmd.dst, usage.files, usage.bytes);
}

/** A write abandoned (by its client, or its lease expired): its charge goes, and a new file's entry. */
function planDrop(state: MasterState, plan: QuotaPlan, w: PendingWrite | undefined): void {
  if (!w) return;
  const entry = state.lookup(w.path);
  const entryGoes = !w.replacing && entry?.type === 'file' && entry.writeId === w.writeId;
  plan.add(w.path, entryGoes ? -1 : 0, -writeCharge(w));
}

function planDelete(state: MasterState, plan: QuotaPlan, path: string, recursive: boolean): void {
  const node = state.lookup(path);
  if (!node || path === '/' || (node.type === 'dir' && node.children.size > 0 && !recursive)) return;
  const usage = treeUsage(state, node, path);
  plan.add(path, -usage.files, -usage.bytes);
}

/** Where a rename puts `src`, as MasterState.rename decides it; undefined when it will fail. */
function renameTarget(state: MasterState, src: string, dst: string): string | undefined {
  if (src === '/' || src === dst || isWithin(dst, src)) return undefined;
  const existing = state.lookup(dst);
  if (existing?.type === 'dir') return joinPath(dst, baseName(src));
  return existing || state.lookup(parentOf(dst))?.type !== 'dir' ? undefined : dst;
}

function planRename(state: MasterState, plan: QuotaPlan, src: string, dst: string): void {
  const node = state.lookup(src);
  const target = renameTarget(state, src, dst);
  if (!node || target === undefined || state.lookup(target)) return;
  planMove(state, plan, node, src, target);
}

/** A tree moves from `src` to `dst`: it leaves the quotas above src and joins those above dst (those above both see no change). */
export function planMove(state: MasterState, plan: QuotaPlan, node: Node, src: string, dst: string, newDirs = 0): void {
  const usage = treeUsage(state, node, src);
  plan.add(src, -usage.files, -usage.bytes);
  plan.add(dst, usage.files + newDirs, usage.bytes);
}

function planSetReplication(state: MasterState, plan: QuotaPlan, path: string, replication: number): void {
  const node = state.lookup(path);
  if (!node) return;
  const visit = (n: Node, p: string, chain: Holder[]): void => {
    if (n.type === 'dir') {
      const q = quotas.get(n);
      const inner = q ? [...chain, { quota: q, path: p }] : chain;
      for (const [name, child] of n.children) visit(child, joinPath(p, name), inner);
      return;
    }
    const w = n.writeId === undefined ? undefined : state.writes.get(n.writeId);
    const before = n.writeId === undefined ? fileBytes(n) : w ? writeCharge(w) : 0;
    const after = n.writeId === undefined ? n.size * replication : w ? writeCharge({ ...w, replication }) : 0;
    plan.add(p, 0, after - before, chain);
  };
  visit(node, path, chainAbove(state, path));
  for (const w of state.writes.values()) if (w.replacing && isWithin(w.path, path)) plan.add(w.path, 0, writeCharge({ ...w, replication }) - writeCharge(w));
}

function planConcat(state: MasterState, plan: QuotaPlan, cmd: Extract<Command, { op: 'concat' }>): void {
  const sources = cmd.sources.map((p) => state.lookup(p));
  if (sources.some((s) => s?.type !== 'file' || s.writeId !== undefined) || new Set(cmd.sources).size !== cmd.sources.length) return;
  const files = sources as FileNode[];
  cmd.sources.forEach((p, i) => plan.add(p, -1, -fileBytes(files[i]!)));
  const existing = state.lookup(cmd.target);
  const size = files.reduce((n, f) => n + f.size, 0);
  const bytes = size * Math.max(...files.map((f) => f.replication));
  plan.add(cmd.target, existing ? 0 : 1, bytes - (existing?.type === 'file' ? fileBytes(existing) : 0));
}

/**
 * Sets or clears a directory's limits (the setQuota command). A new quota's usage is counted
 * once, by walking its tree; from then on it is kept up to date by the plans above.
 */
export function setQuota(state: MasterState, cmd: Extract<Command, { op: 'setQuota' }>): { quota: DirQuota | null } {
  if (inTrash(cmd.path)) fail('INVALID_ARGUMENT', 'the trash has no quotas (it counts toward nothing; dfs trash empty frees it)');
  const node = state.lookup(cmd.path);
  if (!node) fail('NOT_FOUND', `${cmd.path} does not exist`);
  if (node!.type !== 'dir') fail('NOT_A_DIRECTORY', `${cmd.path} is a file; quotas are set on directories`);
  const dir = node as DirNode;
  const old = quotas.get(dir);
  const files = cmd.files === undefined ? old?.files ?? null : cmd.files;
  const bytes = cmd.bytes === undefined ? old?.bytes ?? null : cmd.bytes;
  if (files === null && bytes === null) {
    quotas.delete(dir);
    return { quota: null };
  }
  const usage = old ? { files: old.usedFiles, bytes: old.usedBytes } : treeUsage(state, dir, cmd.path);
  const quota: DirQuota = { files, bytes, usedFiles: usage.files, usedBytes: usage.bytes };
  quotas.set(dir, quota);
  withQuotas.add(state);
  return { quota };
}

/** Every quota with its directory's path, for snapshots: [path, files limit, bytes limit]. */
export function quotaList(state: MasterState): [string, number | null, number | null][] {
  if (!withQuotas.has(state)) return [];
  const out: [string, number | null, number | null][] = [];
  const visit = (dir: DirNode, p: string): void => {
    const q = quotas.get(dir);
    if (q) out.push([p, q.files, q.bytes]);
    for (const [name, child] of dir.children) if (child.type === 'dir') visit(child, joinPath(p, name));
  };
  visit(state.root, '/');
  return out;
}

/** Puts a snapshot's quotas back; their usage is counted afresh from the restored tree. */
export function restoreQuotas(state: MasterState, list: [string, number | null, number | null][] | undefined): void {
  for (const [path, files, bytes] of list ?? []) {
    const node = state.lookup(path);
    if (node?.type !== 'dir') throw new Error(`master snapshot: a quota on ${path}, which is not a directory`);
    const usage = treeUsage(state, node, path);
    quotas.set(node, { files, bytes, usedFiles: usage.files, usedBytes: usage.bytes });
    withQuotas.add(state);
  }
}
