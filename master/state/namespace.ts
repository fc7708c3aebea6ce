// Namespace commands: mkdir, delete, rename, setrep and concat.
import { baseName, isWithin, joinPath, parentOf, splitPath } from '../../common/paths.js';
import { MAX_REPLICATION, type EntryInfo } from '../../common/protocol.js';
import type { Command } from '../commands.js';
import { newDir } from './capture.js';
import { fail } from './failure.js';
import type { MasterState } from './master-state.js';
import { FileNode, type DirNode } from './nodes.js';
import { dropWrite, releaseChunks } from './release.js';
import { entryInfo, lookup, parentDir, walk } from './tree.js';
import { leaseHint } from './writes.js';

export function mkdir(s: MasterState, path: string, parents: boolean, nowMs: number): EntryInfo {
  if (path === '/') {
    if (parents) return entryInfo('/', s.root);
    fail('EXISTS', '/ already exists');
  }
  const existing = lookup(s.root, path);
  if (existing) {
    if (existing.type === 'dir' && parents) return entryInfo(path, existing);
    fail('EXISTS', `${path} already exists`);
  }
  let dir = s.root;
  const parts = splitPath(path);
  for (let i = 0; i < parts.length; i++) {
    const part = parts[i]!;
    const next = dir.children.get(part);
    if (next) {
      if (next.type !== 'dir') fail('NOT_A_DIRECTORY', `/${parts.slice(0, i + 1).join('/')} is a file, not a directory`);
      dir = next as DirNode;
      continue;
    }
    if (i < parts.length - 1 && !parents) fail('NOT_FOUND', `parent directory ${parentOf(path)} does not exist (mkdir -p creates it)`);
    const created = newDir(nowMs);
    dir.children.set(part, created);
    dir.mtimeMs = nowMs;
    dir = created;
  }
  return entryInfo(path, dir);
}

/** Removes `path` (a directory's tree with `recursive`); with `type`, only a path of that type. */
export function remove(s: MasterState, path: string, recursive: boolean, nowMs: number, type?: 'file' | 'dir'): { files: number } {
  if (path === '/') fail('INVALID_ARGUMENT', 'refusing to delete /');
  const dir = parentDir(s.root, path);
  const name = baseName(path);
  const node = dir.children.get(name);
  if (!node) fail('NOT_FOUND', `${path} does not exist`);
  if (type === 'dir' && node!.type !== 'dir') fail('NOT_A_DIRECTORY', `${path} is a file, not the directory asked to delete`);
  if (type === 'file' && node!.type !== 'file') fail('IS_A_DIRECTORY', `${path} is a directory, not the file asked to delete`);
  if (node!.type === 'dir' && node!.children.size > 0 && !recursive) fail('DIRECTORY_NOT_EMPTY', `${path} is a directory that is not empty (use -r)`);
  let files = 0;
  for (const [p, n] of walk(path, node!)) {
    if (n.type !== 'file') continue;
    files++;
    if (n.state === 'writing') {
      const w = s.writes.get(n.writeId!);
      if (w) dropWrite(s, w);
    } else releaseChunks(s, n);
    // Pending overwrites of files under a deleted path would otherwise resurrect them.
    for (const w of [...s.writes.values()]) if (w.replacing && w.path === p) dropWrite(s, w);
  }
  dir.children.delete(name);
  dir.mtimeMs = nowMs;
  return { files };
}

export function rename(s: MasterState, src: string, dst: string, nowMs: number, into: boolean): EntryInfo {
  if (src === '/') fail('INVALID_ARGUMENT', 'cannot move /');
  const srcDir = parentDir(s.root, src);
  const node = srcDir.children.get(baseName(src));
  if (!node) fail('NOT_FOUND', `${src} does not exist`);
  if (node!.type === 'file' && node!.state === 'writing') fail('FILE_BUSY', `${src} is still being written`);
  if (into) {
    const dir = lookup(s.root, dst);
    if (dir?.type !== 'dir') fail(dir ? 'NOT_A_DIRECTORY' : 'NOT_FOUND', dir ? `${dst} is not a directory` : `directory ${dst} does not exist`);
  }
  if (src === dst) return entryInfo(dst, node!);
  if (isWithin(dst, src)) fail('INVALID_ARGUMENT', `cannot move ${src} into itself`);
  for (const w of s.writes.values()) {
    if (isWithin(w.path, src)) fail('FILE_BUSY', `${w.path} is being written; try again when the write is done`);
  }
  let target = dst;
  let dstDir: DirNode;
  const existing = lookup(s.root, dst);
  if (existing?.type === 'dir') {
    // Like mv(1): moving into an existing directory keeps the name.
    dstDir = existing;
    target = joinPath(dst, baseName(src));
    if (dstDir.children.has(baseName(src))) fail('EXISTS', `${target} already exists`);
  } else {
    if (existing) fail('EXISTS', `${dst} already exists`);
    dstDir = parentDir(s.root, dst);
  }
  srcDir.children.delete(baseName(src));
  dstDir.children.set(baseName(target), node!);
  srcDir.mtimeMs = nowMs;
  dstDir.mtimeMs = nowMs;
  return entryInfo(target, node!);
}

/**
 * Changes the replication of a file, or with `recursive` of every file below a directory (as
 * HDFS's setrep). Writes in progress take it too, so chunks they allocate later follow it.
 * Repair then converges: copies when raised, surplus replicas dropped when lowered.
 */
export function setReplication(s: MasterState, cmd: Extract<Command, { op: 'setReplication' }>): { files: number } {
  if (!Number.isInteger(cmd.replication) || cmd.replication < 1 || cmd.replication > MAX_REPLICATION) fail('INVALID_ARGUMENT', `replication must be 1 to ${MAX_REPLICATION}`);
  const node = lookup(s.root, cmd.path);
  if (!node) fail('NOT_FOUND', `${cmd.path} does not exist`);
  if (node!.type === 'dir' && !cmd.recursive) fail('IS_A_DIRECTORY', `${cmd.path} is a directory; use -R to change every file below it`);
  let files = 0;
  for (const [, n] of walk(cmd.path, node!)) {
    if (n.type !== 'file') continue;
    files++;
    n.replication = cmd.replication;
    if (n.writeId) {
      const w = s.writes.get(n.writeId);
      if (w) w.replication = cmd.replication;
    }
  }
  // An overwrite in progress replaces the file: it keeps the replication asked for too.
  for (const w of s.writes.values()) if (w.replacing && isWithin(w.path, cmd.path)) w.replication = cmd.replication;
  return { files };
}


/**
 * FILE_BUSY when an append (a record append included) whose lease runs is open on one of `paths`:
 * its file stays at its path until the append completes, and a concat would only make that complete
 * fail later. Nothing is changed here; an expired append is dropped by the next open, not by a concat.
 */
function refuseOpenAppends(s: MasterState, paths: string[], nowMs: number): void {
  const named = new Set(paths);
  for (const w of s.writes.values()) {
    if (w.append && named.has(w.path) && w.leaseExpiresAtMs > nowMs) fail('FILE_BUSY', `${w.path} is being appended to; ${leaseHint(w, nowMs)}`);
  }
}

/**
 * Joins complete files into one without moving a byte (as HDFS's concat): the target's chunk
 * list is the sources' lists in order, and the sources are gone. Chunks may therefore be shorter
 * than the chunk size anywhere in a concatenated file; readers go by each chunk's own length.
 * The target replaces a complete file only with `overwrite`, and is made in one step, so a
 * reader sees the old file or the whole new one.
 */
export function concat(s: MasterState, cmd: Extract<Command, { op: 'concat' }>): EntryInfo {
  if (new Set(cmd.sources).size !== cmd.sources.length) fail('INVALID_ARGUMENT', 'concat names a source twice');
  if (cmd.sources.includes(cmd.target)) fail('INVALID_ARGUMENT', 'the concat target may not be one of its sources');
  const sources = cmd.sources.map((p) => {
    const node = lookup(s.root, p);
    if (!node) fail('NOT_FOUND', `${p} does not exist`);
    if (node!.type !== 'file') fail('IS_A_DIRECTORY', `${p} is a directory`);
    if ((node as FileNode).state !== 'complete') fail('FILE_BUSY', `${p} is still being written`);
    // Concat joins chunk lists; an inline file has none (DfsClient.concat rewrites such a source as chunks and tries again).
    if ((node as FileNode).inline) fail('INLINE_REFUSED', `${p} is an inline file (its bytes are in the master): concat joins files of chunks; write it again with inline files off`);
    return node as FileNode;
  });
  const dir = parentDir(s.root, cmd.target);
  const name = baseName(cmd.target);
  const existing = dir.children.get(name);
  if (existing?.type === 'dir') fail('IS_A_DIRECTORY', `${cmd.target} is a directory`);
  if (existing && (existing as FileNode).state === 'writing') fail('FILE_BUSY', `${cmd.target} is being written by another client`);
  if (existing && !cmd.overwrite) fail('EXISTS', `${cmd.target} already exists`);
  refuseOpenAppends(s, [...cmd.sources, cmd.target], cmd.nowMs);
  const file = new FileNode({
    mtimeMs: cmd.nowMs,
    size: sources.reduce((n, f) => n + f.size, 0),
    replication: Math.max(...sources.map((f) => f.replication)),
    chunkSizeBytes: Math.max(...sources.map((f) => f.chunkSizeBytes)),
    chunks: sources.flatMap((f) => f.chunks),
  });
  if (existing) releaseChunks(s, existing as FileNode);
  for (const p of cmd.sources) {
    const parent = lookup(s.root, parentOf(p)) as DirNode;
    parent.children.delete(baseName(p));
    parent.mtimeMs = cmd.nowMs;
  }
  dir.children.set(name, file);
  dir.mtimeMs = cmd.nowMs;
  return entryInfo(cmd.target, file);
}

