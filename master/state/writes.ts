// Writes and their leases: create, chunk allocation, complete, abandon, renew and lease expiry.
import { baseName, parentOf } from '../../common/paths.js';
import type { EntryInfo } from '../../common/protocol.js';
import type { Command } from '../commands.js';
import type { ChunkRecord } from './chunk-table.js';
import { completeAppend, type AppendBase } from './append.js';
import { fail } from './failure.js';
import type { MasterState } from './master-state.js';
import { mkdir } from './namespace.js';
import { FileNode, InlineFile, NO_CHUNKS, WritingFile, type DirNode } from './nodes.js';
import { INLINE_MAX_BYTES_LIMIT, INLINE_TOTAL_MAX_BYTES, type InlineBody } from '../../common/inline.js';
import { dropWrite, releaseChunks } from './release.js';
import { entryInfo, lookup, parentDir } from './tree.js';


/** A write in progress. Its chunks live in the chunk table, owned by the write until complete. */
export interface PendingWrite {
  writeId: string;
  path: string;
  replication: number;
  chunkSizeBytes: number;
  /** Allocated handle per chunk index; a re-allocation replaces the handle at its index. */
  chunks: number[];
  leaseExpiresAtMs: number;
  leaseMs: number;
  /** True when an existing complete file stays readable at `path` until this write completes. */
  replacing: boolean;
  /** trash-quota: the size the writer announced at create, counted in quotas until complete (master/quotas.ts). */
  expectedBytes?: number;
  /** Set for an append (master/state/append.ts): the file as the append found it; `chunks` are then the new chunks only. */
  append?: AppendBase;
}

/** How a path held by a write clears: its writer finishes, or goes silent and loses the lease. */
export function leaseHint(w: PendingWrite, nowMs: number): string {
  const seconds = Math.max(1, Math.ceil((w.leaseExpiresAtMs - nowMs) / 1000));
  return `if that client is gone, its write lease expires in ${seconds} s (a writer that is still running keeps renewing it); try again then`;
}

export function create(s: MasterState, cmd: Extract<Command, { op: 'create' }>): { writeId: string } | EntryInfo {
  if (cmd.path === '/') fail('IS_A_DIRECTORY', '/ is a directory');
  if (s.writes.has(cmd.writeId)) fail('EXISTS', 'write id already in use');
  const inline = cmd.inline ? inlineBytesOf(s, cmd, cmd.inline) : undefined; // checked before anything changes
  // As HDFS's create does by default: missing parents are made (nothing below fails once they are).
  if (cmd.parents && !lookup(s.root, parentOf(cmd.path))) mkdir(s, parentOf(cmd.path), true, cmd.nowMs);
  const dir = parentDir(s.root, cmd.path);
  const name = baseName(cmd.path);
  const existing = dir.children.get(name);
  let replacing = false;
  if (existing) {
    if (existing.type === 'dir') fail('IS_A_DIRECTORY', `${cmd.path} is a directory`);
    const file = existing as FileNode;
    if (file.state === 'writing') {
      const w = s.writes.get(file.writeId!);
      if (w && w.leaseExpiresAtMs > cmd.nowMs) fail('FILE_BUSY', `${cmd.path} is being written by another client; ${leaseHint(w, cmd.nowMs)}`);
      if (!cmd.overwrite) fail('EXISTS', `${cmd.path} exists (an abandoned write); overwrite it with put -f`);
      if (w) dropWrite(s, w);
      dir.children.delete(name);
    } else {
      if (!cmd.overwrite) fail('EXISTS', `${cmd.path} already exists; overwrite it with put -f`);
      // Only one replacing write at a time, so the last to complete cannot silently lose to an older one.
      for (const w of s.writes.values()) {
        if (w.path === cmd.path && w.replacing) {
          if (w.leaseExpiresAtMs > cmd.nowMs) fail('FILE_BUSY', `${cmd.path} is being overwritten by another client; ${leaseHint(w, cmd.nowMs)}`);
          dropWrite(s, w);
        }
      }
      replacing = true;
    }
  }
  if (cmd.empty) return createEmpty(s, cmd, dir, name);
  if (inline) return createInline(s, cmd, dir, name, inline);
  const write: PendingWrite = {
    writeId: cmd.writeId,
    path: cmd.path,
    replication: cmd.replication,
    chunkSizeBytes: cmd.chunkSizeBytes,
    chunks: [],
    leaseExpiresAtMs: cmd.nowMs + cmd.leaseMs,
    leaseMs: cmd.leaseMs,
    replacing,
    ...(cmd.expectedBytes !== undefined ? { expectedBytes: cmd.expectedBytes } : {}), // trash-quota
  };
  s.writes.set(cmd.writeId, write);
  if (!replacing) {
    dir.children.set(name, new WritingFile({ mtimeMs: cmd.nowMs, size: 0, replication: cmd.replication, chunkSizeBytes: cmd.chunkSizeBytes, chunks: NO_CHUNKS }, cmd.writeId));
    dir.mtimeMs = cmd.nowMs;
  }
  return { writeId: cmd.writeId };
}

/**
 * An empty file is complete as soon as it exists: one command instead of create + complete.
 * It replaces a complete file at once (its chunks become garbage), as a finished overwrite would.
 */
function createEmpty(s: MasterState, cmd: Extract<Command, { op: 'create' }>, dir: DirNode, name: string): EntryInfo {
  const existing = dir.children.get(name);
  if (existing?.type === 'file') releaseChunks(s, existing);
  const file = new FileNode({ mtimeMs: cmd.nowMs, size: 0, replication: cmd.replication, chunkSizeBytes: cmd.chunkSizeBytes, chunks: [] });
  dir.children.set(name, file);
  dir.mtimeMs = cmd.nowMs;
  return entryInfo(cmd.path, file);
}

/**
 * A create's inline bytes, decoded, once it is sure they can be kept: the leader checked their
 * checksum before proposing (master/service/namespace.ts); this checks what every master must
 * agree on, the length and the namespace's cap on inline bytes (INLINE_REFUSED: the client then
 * writes chunks). The bytes are decoded into a buffer of their own (not the pool's), so a file holds only its own.
 */
function inlineBytesOf(s: MasterState, cmd: Extract<Command, { op: 'create' }>, body: InlineBody): Buffer {
  if (cmd.empty) fail('INVALID_ARGUMENT', 'a create is either empty or inline, not both');
  // Decoded straight into a buffer of its own (Buffer.byteLength is the most the decoder gives;
  // `write` answers what it gave, as many bytes as Buffer.from would), not through the pool and a copy.
  let bytes = Buffer.allocUnsafeSlow(Buffer.byteLength(body.data, 'base64'));
  const decoded = bytes.write(body.data, 'base64');
  if (decoded !== body.size || body.size < 1 || body.size > INLINE_MAX_BYTES_LIMIT) fail('INLINE_CHECKSUM_MISMATCH', `inline data of ${decoded} bytes, not the ${body.size} announced (1 to ${INLINE_MAX_BYTES_LIMIT})`);
  const existing = lookup(s.root, cmd.path);
  const freed = cmd.overwrite && existing?.type === 'file' ? existing.inline?.data.length ?? 0 : 0;
  if (s.inlineBytes - freed + body.size > INLINE_TOTAL_MAX_BYTES) fail('INLINE_REFUSED', `the namespace keeps at most ${INLINE_TOTAL_MAX_BYTES} bytes inline, and ${s.inlineBytes} are used; write the file as chunks`);
  if (bytes.length !== decoded) {
    // The decoder skipped characters (a leader never proposes such data: it checks it strictly).
    const exact = Buffer.allocUnsafeSlow(decoded);
    bytes.copy(exact, 0, 0, decoded);
    bytes = exact;
  }
  return bytes;
}

/** A small file complete in one command, its bytes in the state (common/inline.ts); it replaces a complete file at once, as createEmpty. */
function createInline(s: MasterState, cmd: Extract<Command, { op: 'create' }>, dir: DirNode, name: string, data: Buffer): EntryInfo {
  const existing = dir.children.get(name);
  if (existing?.type === 'file') releaseChunks(s, existing);
  const file = new InlineFile({ mtimeMs: cmd.nowMs, replication: cmd.replication, chunkSizeBytes: cmd.chunkSizeBytes }, { data, checksum: cmd.inline!.checksum });
  s.inlineBytes += data.length;
  dir.children.set(name, file);
  dir.mtimeMs = cmd.nowMs;
  return entryInfo(cmd.path, file);
}

export function liveWrite(s: MasterState, writeId: string): PendingWrite {
  const w = s.writes.get(writeId);
  if (!w) fail('WRITE_NOT_FOUND', 'this write is unknown or was abandoned (its lease expired?); start the upload again');
  return w!;
}

export function allocate(s: MasterState, writeId: string, index: number, nowMs: number): ChunkRecord {
  const w = liveWrite(s, writeId);
  if (index > w.chunks.length) fail('INVALID_ARGUMENT', `chunk ${index} allocated before chunk ${w.chunks.length}`);
  w.leaseExpiresAtMs = nowMs + w.leaseMs; // progress renews the lease (a refused call changes nothing)
  const previous = w.chunks[index];
  if (previous !== undefined) s.chunks.delete(previous); // a retried chunk: the old handle becomes garbage
  const record: ChunkRecord = { handle: s.nextHandle++, version: 1, length: 0, checksum: '' };
  s.chunks.set(record);
  w.chunks[index] = record.handle;
  return record;
}

export function complete(s: MasterState, cmd: Extract<Command, { op: 'complete' }>): EntryInfo {
  const w = liveWrite(s, cmd.writeId);
  if (w.append) return completeAppend(s, cmd, w, w.append);
  if (cmd.last) fail('INVALID_ARGUMENT', 'only an append fills a last chunk');
  if (cmd.chunks.length !== w.chunks.length) fail('INVALID_ARGUMENT', `write has ${w.chunks.length} chunks allocated, complete names ${cmd.chunks.length}`);
  let total = 0;
  cmd.chunks.forEach((c, i) => {
    if (c.handle !== w.chunks[i]) fail('INVALID_ARGUMENT', `chunk ${i} is handle ${w.chunks[i]}, not ${c.handle}`);
    const last = i === cmd.chunks.length - 1;
    if (c.length > w.chunkSizeBytes || (!last && c.length !== w.chunkSizeBytes) || (last && c.length === 0)) {
      fail('INVALID_ARGUMENT', `chunk ${i} has length ${c.length}; all but the last must be ${w.chunkSizeBytes} and the last 1..${w.chunkSizeBytes}`);
    }
    total += c.length;
  });
  if (total !== cmd.length) fail('INVALID_ARGUMENT', `chunk lengths add up to ${total}, not ${cmd.length}`);

  const dir = parentDir(s.root, w.path);
  const name = baseName(w.path);
  const existing = dir.children.get(name);
  if (w.replacing) {
    if (existing?.type === 'dir') fail('IS_A_DIRECTORY', `${w.path} became a directory during the write`);
    if (existing) releaseChunks(s, existing as FileNode);
  } else if (!existing || existing.type !== 'file' || existing.writeId !== w.writeId) {
    fail('WRITE_NOT_FOUND', `${w.path} was removed or replaced during the write`);
  }
  for (const c of cmd.chunks) s.chunks.setContent(c.handle, c.length, c.checksum);
  const file = new FileNode({ mtimeMs: cmd.nowMs, size: cmd.length, replication: w.replication, chunkSizeBytes: w.chunkSizeBytes, chunks: w.chunks });
  dir.children.set(name, file);
  dir.mtimeMs = cmd.nowMs;
  s.writes.delete(w.writeId);
  return entryInfo(w.path, file);
}

export function abandon(s: MasterState, writeId: string): null {
  const w = s.writes.get(writeId);
  if (!w) fail('WRITE_NOT_FOUND', 'this write is unknown or already finished');
  dropWrite(s, w!);
  return null;
}

/**
 * Extends the lease of each named write that is still open; answers the ones that are not.
 * When none is, nothing changed and the writer is told so (WRITE_NOT_FOUND), so it stops.
 */
export function renew(s: MasterState, writeIds: string[], nowMs: number): { unknown: string[] } {
  const unknown = writeIds.filter((id) => !s.writes.has(id));
  if (unknown.length === writeIds.length) fail('WRITE_NOT_FOUND', 'this write is unknown: it finished, was abandoned, or its lease expired; start the upload again');
  for (const id of writeIds) {
    const w = s.writes.get(id);
    // max: a renew stamped by a leader whose clock lags never shortens a lease.
    if (w) w.leaseExpiresAtMs = Math.max(w.leaseExpiresAtMs, nowMs + w.leaseMs);
  }
  return { unknown };
}


export function expireLeases(s: MasterState, nowMs: number): { abandoned: string[] } {
  const abandoned: string[] = [];
  for (const w of [...s.writes.values()]) {
    if (w.leaseExpiresAtMs <= nowMs) {
      dropWrite(s, w);
      abandoned.push(w.path);
    }
  }
  return { abandoned };
}

