// Appends to a complete file: the open (a write holding the file's lease) and its complete.
// The file stays as it was until complete records its new length and chunks in one command, so
// readers never see part of an append, and a failed append leaves the file as it was.
import { baseName } from '../../common/paths.js';
import type { EntryInfo } from '../../common/protocol.js';
import type { Command } from '../commands.js';
import { fail } from './failure.js';
import type { MasterState } from './master-state.js';
import { FileNode } from './nodes.js';
import type { InlineBody } from '../../common/inline.js';
import { dropWrite } from './release.js';
import { entryInfo, lookup, parentDir } from './tree.js';
import { placeRecord, type RecordPlace } from './record-append.js';
import { leaseHint, type PendingWrite } from './writes.js';

/** The last chunk of a file when it has room: the append fills it first, as a new version of it. */
export interface AppendFill {
  handle: number;
  /** Its version in the chunk table when the append opened: the replicas that hold it take part. */
  version: number;
  /** Its length then: the appended bytes start there. */
  length: number;
  /** The version the filled chunk gets (reserved at open, never issued again: MasterState.nextVersion). */
  newVersion: number;
  /**
   * Set when another file shares the last chunk (a snapshot's): the append fills a copy under this
   * new handle instead, made by each replica from its own bytes (GFS §3.4's copy-on-write), and
   * the file lets go of the shared one at complete.
   */
  copyTo?: number;
}

/** The file as the append found it. */
export interface AppendBase {
  size: number;
  chunkCount: number;
  /** Absent when the file has no chunk or its last one is full: the append starts a new chunk. */
  fill?: AppendFill;
  /** A record append's record: complete must add exactly its padding and the record. */
  record?: RecordPlace;
  /**
   * The file was inline (common/inline.ts), with this checksum: the writer sends its bytes again,
   * then the appended ones, as new chunks from index 0, and complete makes it a file of chunks.
   */
  inline?: { checksum: string };
}

/** What an open answers: the write, and where its bytes go first. */
export interface AppendOpened {
  writeId: string; size: number; replication: number; chunkSizeBytes: number; fill?: AppendFill; record?: RecordPlace;
  /** An inline file's bytes, as the reply carries them (a result is JSON: the session table keeps it for a retry). */
  inline?: InlineBody;
}

/**
 * Opens an append: one appender at a time (as HDFS's lease on a file), so a file being written,
 * overwritten or appended to by a client whose lease runs is FILE_BUSY; an expired one's write
 * is dropped. The file itself does not change here.
 */
export function openAppend(s: MasterState, cmd: Extract<Command, { op: 'append' }>): AppendOpened {
  if (s.writes.has(cmd.writeId)) fail('EXISTS', 'write id already in use');
  const node = lookup(s.root, cmd.path);
  if (!node) fail('NOT_FOUND', `${cmd.path} does not exist; dfs put makes a new file`);
  if (node!.type === 'dir') fail('IS_A_DIRECTORY', `${cmd.path} is a directory; append to a file`);
  const file = node as FileNode;
  if (file.writeId !== undefined) {
    const w = s.writes.get(file.writeId);
    fail('FILE_BUSY', `${cmd.path} is still being written; ${w ? leaseHint(w, cmd.nowMs) : 'try again once its writer completes it'}`);
  }
  // Checked before anything changes: a refused record leaves the state as it was.
  const record = cmd.record !== undefined ? placeRecord(s, cmd.path, file, cmd.record) : undefined;
  for (const w of [...s.writes.values()]) {
    if (w.path !== cmd.path || !w.replacing) continue;
    if (w.leaseExpiresAtMs > cmd.nowMs) fail('FILE_BUSY', `${cmd.path} is being ${w.append ? 'appended to' : 'overwritten'} by another client; ${leaseHint(w, cmd.nowMs)}`);
    dropWrite(s, w);
  }
  const base: AppendBase = { size: file.size, chunkCount: file.chunkCount, ...(record ? { record } : {}), ...(file.inline ? { inline: { checksum: file.inline.checksum } } : {}) };
  const chunks = file.chunks;
  const last = chunks[chunks.length - 1];
  if (last !== undefined) {
    const rec = s.chunks.get(last);
    if (!rec) fail('INTERNAL', `chunk ${last} of ${cmd.path} is not in the chunk table`);
    if (rec!.length < file.chunkSizeBytes) base.fill = { handle: last, version: rec!.version, length: rec!.length, newVersion: s.nextVersion++ };
    if (base.fill && s.chunks.refsOf(last) > 1) {
      base.fill.copyTo = s.nextHandle++;
      // In the table from now on, so no garbage sweep takes the copies the replicas make meanwhile.
      s.chunks.set({ handle: base.fill.copyTo, version: base.fill.newVersion, length: 0, checksum: '' });
    }
  }
  const write: PendingWrite = {
    writeId: cmd.writeId,
    path: cmd.path,
    replication: file.replication,
    chunkSizeBytes: file.chunkSizeBytes,
    chunks: [],
    leaseExpiresAtMs: cmd.nowMs + cmd.leaseMs,
    leaseMs: cmd.leaseMs,
    // The file stays readable at its path until the append completes, as under an overwrite.
    replacing: true,
    ...(cmd.expectedBytes !== undefined ? { expectedBytes: cmd.expectedBytes } : {}),
    append: base,
  };
  s.writes.set(cmd.writeId, write);
  return {
    writeId: cmd.writeId, size: base.size, replication: file.replication, chunkSizeBytes: file.chunkSizeBytes,
    ...(base.fill ? { fill: { ...base.fill } } : {}), ...(record ? { record: { ...record } } : {}),
    ...(file.inline ? { inline: { data: file.inline.data.toString('base64'), size: file.size, checksum: file.inline.checksum } } : {}),
  };
}

/** Checks an append's complete against what was opened and allocated; answers the bytes it adds. */
export function checkAppend(cmd: Extract<Command, { op: 'complete' }>, w: PendingWrite, base: AppendBase): number {
  // An inline file's bytes come again at the start of the new chunks: they are not added.
  let added = base.inline ? -base.size : 0;
  const { last } = cmd;
  if (last) {
    if (!base.fill || last.handle !== (base.fill.copyTo ?? base.fill.handle)) fail('INVALID_ARGUMENT', `chunk ${last.handle} is not the last chunk this append fills`);
    if (last.length <= base.fill!.length || last.length > w.chunkSizeBytes) fail('INVALID_ARGUMENT', `the filled last chunk has length ${last.length}; it must be ${base.fill!.length + 1}..${w.chunkSizeBytes}`);
    if (cmd.chunks.length > 0 && last.length !== w.chunkSizeBytes) fail('INVALID_ARGUMENT', `the last chunk must be filled to ${w.chunkSizeBytes} bytes before new chunks follow`);
    added += last.length - base.fill!.length;
  } else if (base.fill && cmd.chunks.length > 0) {
    fail('INVALID_ARGUMENT', 'the last chunk has room: an append fills it before new chunks follow');
  }
  if (cmd.chunks.length !== w.chunks.length) fail('INVALID_ARGUMENT', `append has ${w.chunks.length} new chunks allocated, complete names ${cmd.chunks.length}`);
  cmd.chunks.forEach((c, i) => {
    if (c.handle !== w.chunks[i]) fail('INVALID_ARGUMENT', `new chunk ${i} is handle ${w.chunks[i]}, not ${c.handle}`);
    const end = i === cmd.chunks.length - 1;
    if (c.length > w.chunkSizeBytes || (!end && c.length !== w.chunkSizeBytes) || (end && c.length === 0)) {
      fail('INVALID_ARGUMENT', `new chunk ${i} has length ${c.length}; all but the last must be ${w.chunkSizeBytes} and the last 1..${w.chunkSizeBytes}`);
    }
    added += c.length;
  });
  if (added < 0) fail('INVALID_ARGUMENT', `an append to an inline file writes its ${base.size} bytes again first, then the appended ones; the new chunks hold ${added + base.size}`);
  if (base.size + added !== cmd.length) fail('INVALID_ARGUMENT', `the file would have ${base.size + added} bytes, not ${cmd.length}`);
  const rec = base.record;
  if (rec && added !== rec.pad + rec.length) fail('INVALID_ARGUMENT', `a record append adds its ${rec.pad} bytes of padding and its ${rec.length}-byte record, not ${added} bytes`);
  return added;
}

/**
 * Completes an append in one command: the filled last chunk takes its new version, length and
 * checksum, the new chunks join the file, and the file gets its new length. The file must be the
 * one the append opened on (same chunks and size): one removed or replaced meanwhile fails it.
 */
export function completeAppend(s: MasterState, cmd: Extract<Command, { op: 'complete' }>, w: PendingWrite, base: AppendBase): EntryInfo {
  checkAppend(cmd, w, base);
  const dir = parentDir(s.root, w.path);
  const name = baseName(w.path);
  const file = dir.children.get(name);
  const chunks = file?.type === 'file' ? file.chunks : [];
  const same = file?.type === 'file' && file.writeId === undefined && file.size === base.size && chunks.length === base.chunkCount
    && (!base.fill || chunks[chunks.length - 1] === base.fill.handle) && file.inline?.checksum === base.inline?.checksum;
  if (!same) fail('WRITE_NOT_FOUND', `${w.path} was removed or replaced during the append`);
  const old = file as FileNode;
  const kept = [...chunks];
  const copy = base.fill?.copyTo;
  if (cmd.last) {
    s.chunks.setVersion(cmd.last.handle, base.fill!.newVersion);
    s.chunks.setContent(cmd.last.handle, cmd.last.length, cmd.last.checksum);
    if (copy !== undefined) {
      kept[kept.length - 1] = copy;
      s.chunks.release(base.fill!.handle); // the other files keep the shared one
    }
  } else if (copy !== undefined) s.chunks.delete(copy); // nothing was appended: the copy is not needed
  for (const c of cmd.chunks) s.chunks.setContent(c.handle, c.length, c.checksum);
  if (old.inline) s.inlineBytes -= old.size; // its bytes are in the new chunks now
  const appended = new FileNode({ mtimeMs: cmd.nowMs, size: cmd.length, replication: old.replication, chunkSizeBytes: old.chunkSizeBytes, chunks: [...kept, ...w.chunks] });
  dir.children.set(name, appended);
  s.writes.delete(w.writeId);
  return entryInfo(w.path, appended);
}
