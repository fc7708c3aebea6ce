import { DfsError, type ErrorCode } from '../common/errors.js';
import { CredentialState } from './credentials/state.js'; // credentials hook
import { baseName, isWithin, joinPath, parentOf, splitPath } from '../common/paths.js';
import { MAX_REPLICATION, type EntryInfo, type FileState } from '../common/protocol.js';
import type { Command, CommandResult } from './commands.js';

/**
 * One chunk of the chunk table, as the table takes and gives it (a copy: the table keeps columns).
 * Version stays 1 while chunks are write-once; appends will bump it.
 */
export interface ChunkRecord { handle: number; version: number; length: number; checksum: string }

/** A checksum as chunkservers and clients compute it: xxHash64 in 16 hex digits (common/checksum.ts). */
const HEX64 = /^[0-9a-f]{16}$/;
const INITIAL_ROWS = 1024;

function grown<T extends Uint32Array | Float64Array>(column: T, rows: number): T {
  const wider = new (column.constructor as new (n: number) => T)(rows);
  wider.set(column);
  return wider;
}

/** Versions are kept in 32 bits: a chunk would need four billion appends to outgrow them. */
function checkVersion(handle: number, version: number): void {
  if (!Number.isInteger(version) || version < 0 || version > 0xffffffff) throw new RangeError(`chunk ${handle}: version ${version} is not a 32-bit unsigned integer`);
}

/**
 * The chunk table: handle → version, length, checksum. A master holds a row per chunk, so the rows
 * are typed-array columns (20 bytes a chunk, where a record object and its hex string took 88),
 * and a Map gives each handle its row. The Map keeps handles in the order they were added, the
 * order snapshots list them in. A checksum is kept as two 32-bit halves; a string that is not 16
 * hex digits (a chunk not yet complete has '') is kept aside, as it is.
 */
export class ChunkTable {
  private readonly rows = new Map<number, number>();
  /** Rows given back by delete(), used again before the columns grow. */
  private readonly freeRows: number[] = [];
  private rowsUsed = 0;
  private version = new Uint32Array(INITIAL_ROWS);
  private length = new Float64Array(INITIAL_ROWS);
  private checksumHigh = new Uint32Array(INITIAL_ROWS);
  private checksumLow = new Uint32Array(INITIAL_ROWS);
  private readonly otherChecksums = new Map<number, string>();

  get size(): number {
    return this.rows.size;
  }

  has(handle: number): boolean {
    return this.rows.has(handle);
  }

  /** Handles in the order they were added. */
  keys(): IterableIterator<number> {
    return this.rows.keys();
  }

  versionOf(handle: number): number | undefined {
    const row = this.rows.get(handle);
    return row === undefined ? undefined : this.version[row];
  }

  lengthOf(handle: number): number | undefined {
    const row = this.rows.get(handle);
    return row === undefined ? undefined : this.length[row];
  }

  get(handle: number): ChunkRecord | undefined {
    const row = this.rows.get(handle);
    return row === undefined ? undefined : this.record(handle, row);
  }

  /** Every chunk, in the order of keys(). */
  *records(): Generator<ChunkRecord> {
    for (const [handle, row] of this.rows) yield this.record(handle, row);
  }

  /** Adds a chunk, or replaces what the table has for its handle. */
  set(c: ChunkRecord): void {
    checkVersion(c.handle, c.version);
    if (!this.rows.has(c.handle)) this.rows.set(c.handle, this.freeRows.pop() ?? this.newRow());
    this.setVersion(c.handle, c.version);
    this.setContent(c.handle, c.length, c.checksum);
  }

  /** Records what a write stored in the chunk. */
  setContent(handle: number, length: number, checksum: string): void {
    const row = this.rowOf(handle);
    this.length[row] = length;
    if (HEX64.test(checksum)) {
      this.checksumHigh[row] = parseInt(checksum.slice(0, 8), 16);
      this.checksumLow[row] = parseInt(checksum.slice(8), 16);
      this.otherChecksums.delete(handle);
    } else this.otherChecksums.set(handle, checksum);
  }

  setVersion(handle: number, version: number): void {
    checkVersion(handle, version);
    this.version[this.rowOf(handle)] = version;
  }

  delete(handle: number): boolean {
    const row = this.rows.get(handle);
    if (row === undefined) return false;
    this.rows.delete(handle);
    this.otherChecksums.delete(handle);
    this.freeRows.push(row);
    return true;
  }

  private rowOf(handle: number): number {
    const row = this.rows.get(handle);
    if (row === undefined) throw new Error(`chunk ${handle} is not in the chunk table`);
    return row;
  }

  private record(handle: number, row: number): ChunkRecord {
    const checksum = this.otherChecksums.get(handle)
      ?? this.checksumHigh[row]!.toString(16).padStart(8, '0') + this.checksumLow[row]!.toString(16).padStart(8, '0');
    return { handle, version: this.version[row]!, length: this.length[row]!, checksum };
  }

  private newRow(): number {
    if (this.rowsUsed === this.version.length) {
      const rows = Math.ceil(this.version.length * 1.5);
      this.version = grown(this.version, rows);
      this.length = grown(this.length, rows);
      this.checksumHigh = grown(this.checksumHigh, rows);
      this.checksumLow = grown(this.checksumLow, rows);
    }
    return this.rowsUsed++;
  }
}

export interface DirNode { type: 'dir'; mtimeMs: number; children: Map<string, Node> }
/** A file still being written has no chunks yet (they are its write's until complete); nor has an empty file. */
const NO_CHUNKS: readonly number[] = Object.freeze([]);

interface FileFields { mtimeMs: number; size: number; replication: number; chunkSizeBytes: number; chunks: readonly number[] }

/**
 * A file. A class, so that every file has one fixed shape, and with only the fields a file
 * needs: a master holds one per file, a million of them at 1 M files. `type`, `state`,
 * `writeId` and `chunks` are derived on the prototype rather than stored.
 */
export class FileNode {
  readonly mtimeMs: number;
  readonly size: number;
  replication: number;
  readonly chunkSizeBytes: number;
  /** The chunk handles; a file of one chunk (most files) keeps its handle as a number, without an array. */
  private readonly handles: number | readonly number[];

  constructor(f: FileFields) {
    this.mtimeMs = f.mtimeMs;
    this.size = f.size;
    this.replication = f.replication;
    this.chunkSizeBytes = f.chunkSizeBytes;
    this.handles = f.chunks.length === 1 ? f.chunks[0]! : f.chunks.length === 0 ? NO_CHUNKS : [...f.chunks];
  }

  get type(): 'file' {
    return 'file';
  }

  /** Set while the file is being written (a WritingFile): the pending write that will complete this entry. */
  get writeId(): string | undefined {
    return undefined;
  }

  get state(): FileState {
    return this.writeId === undefined ? 'complete' : 'writing';
  }

  /** The ordered chunk handles (a new one-element array for a file of one chunk). */
  get chunks(): readonly number[] {
    return typeof this.handles === 'number' ? [this.handles] : this.handles;
  }

  get chunkCount(): number {
    return typeof this.handles === 'number' ? 1 : this.handles.length;
  }
}

/** A file being written: the one kind of file that names its write, so that complete files carry no empty field for it. */
export class WritingFile extends FileNode {
  private readonly pendingWriteId: string;

  constructor(f: FileFields, writeId: string) {
    super(f);
    this.pendingWriteId = writeId;
  }

  override get writeId(): string {
    return this.pendingWriteId;
  }
}
export type Node = DirNode | FileNode;

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
}

class Fail extends Error {
  constructor(readonly code: ErrorCode, message: string) {
    super(message);
  }
}

const fail = (code: ErrorCode, message: string): never => {
  throw new Fail(code, message);
};

/** How a path held by a write clears: its writer finishes, or goes silent and loses the lease. */
/** A namespace id: 64 random bits in hex. */
export const NAMESPACE_ID = /^[0-9a-f]{16}$/;

function leaseHint(w: PendingWrite, nowMs: number): string {
  const seconds = Math.max(1, Math.ceil((w.leaseExpiresAtMs - nowMs) / 1000));
  return `if that client is gone, its write lease expires in ${seconds} s (a writer that is still running keeps renewing it); try again then`;
}

/**
 * The master's replicated state: namespace tree, files and their chunk lists, chunk table,
 * pending writes and the handle counter. Deterministic: apply() depends only on the state and
 * the command. Chunk *locations* are not here: they are the chunkservers' truth.
 */
export class MasterState {
  root: DirNode = { type: 'dir', mtimeMs: 0, children: new Map() };
  chunks = new ChunkTable();
  writes = new Map<string, PendingWrite>();
  nextHandle = 1;
  /**
   * Chunkservers being drained (by id): no new replicas go there and theirs stop counting
   * toward replication, so repair copies them elsewhere. Replicated, so a new leader goes on.
   */
  decommissioning = new Set<string>();
  /**
   * This namespace's identity, as HDFS's namespaceID: drawn at random by the first leader and
   * replicated. Chunkservers record it on first contact and refuse a master with another one, so
   * a master whose data was lost (a new, empty namespace) cannot take their chunks for garbage.
   */
  namespaceId?: string;
  /** Client credentials: signing keys, recorded tokens, revocations (master/credentials/state.ts). */
  credentials = new CredentialState(); // credentials hook

  apply(cmd: Command): CommandResult {
    try {
      return { ok: true, value: this.dispatch(cmd) };
    } catch (err) {
      if (err instanceof Fail) return { ok: false, code: err.code, message: err.message };
      if (err instanceof DfsError) return { ok: false, code: err.code, message: err.message }; // credentials hook: their refusals
      throw err;
    }
  }

  private dispatch(cmd: Command): unknown {
    switch (cmd.op) {
      case 'mkdir': return this.mkdir(cmd.path, cmd.parents, cmd.nowMs);
      case 'create': return this.create(cmd);
      case 'allocate': return this.allocate(cmd.writeId, cmd.index, cmd.nowMs);
      case 'complete': return this.complete(cmd);
      case 'abandon': return this.abandon(cmd.writeId);
      case 'renew': return this.renew(cmd.writeIds, cmd.nowMs);
      case 'delete': return this.delete(cmd.path, cmd.recursive, cmd.nowMs);
      case 'rename': return this.rename(cmd.src, cmd.dst, cmd.nowMs, cmd.into === true);
      case 'expireLeases': return this.expireLeases(cmd.nowMs);
      case 'setReplication': return this.setReplication(cmd);
      case 'decommission': return this.decommission(cmd.server, cmd.cancel);
      case 'initNamespace': return this.initNamespace(cmd.namespaceId);
      case 'concat': return this.concat(cmd);
      case 'credentials': return this.credentials.apply(cmd.action, cmd.nowMs); // credentials hook
    }
  }

  // ---- lookups ----

  lookup(path: string): Node | undefined {
    let node: Node = this.root;
    for (const part of splitPath(path)) {
      if (node.type !== 'dir') return undefined;
      const next = node.children.get(part);
      if (!next) return undefined;
      node = next;
    }
    return node;
  }

  /** The directory that holds `path`; NOT_FOUND / NOT_A_DIRECTORY when a parent is missing or a file. */
  private parentDir(path: string): DirNode {
    const parent = parentOf(path);
    const node = this.lookup(parent);
    if (!node) fail('NOT_FOUND', `parent directory ${parent} does not exist (mkdir -p creates it)`);
    if (node!.type !== 'dir') fail('NOT_A_DIRECTORY', `${parent} is a file, not a directory`);
    return node as DirNode;
  }

  entryInfo(path: string, node: Node): EntryInfo {
    if (node.type === 'dir') {
      return { path, name: path === '/' ? '/' : baseName(path), type: 'dir', size: 0, mtimeMs: node.mtimeMs, replication: 0, state: 'complete', chunkCount: 0 };
    }
    return { path, name: baseName(path), type: 'file', size: node.size, mtimeMs: node.mtimeMs, replication: node.replication, state: node.state, chunkCount: node.chunkCount };
  }

  /** Every file node below (and including) `path`, depth first, names sorted. */
  *walk(path: string, node: Node): Generator<[string, Node]> {
    yield [path, node];
    if (node.type === 'dir') {
      for (const name of [...node.children.keys()].sort()) yield* this.walk(joinPath(path, name), node.children.get(name)!);
    }
  }

  // ---- commands ----

  private mkdir(path: string, parents: boolean, nowMs: number): EntryInfo {
    if (path === '/') {
      if (parents) return this.entryInfo('/', this.root);
      fail('EXISTS', '/ already exists');
    }
    const existing = this.lookup(path);
    if (existing) {
      if (existing.type === 'dir' && parents) return this.entryInfo(path, existing);
      fail('EXISTS', `${path} already exists`);
    }
    let dir = this.root;
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
      const created: DirNode = { type: 'dir', mtimeMs: nowMs, children: new Map() };
      dir.children.set(part, created);
      dir.mtimeMs = nowMs;
      dir = created;
    }
    return this.entryInfo(path, dir);
  }

  private create(cmd: Extract<Command, { op: 'create' }>): { writeId: string } | EntryInfo {
    if (cmd.path === '/') fail('IS_A_DIRECTORY', '/ is a directory');
    if (this.writes.has(cmd.writeId)) fail('EXISTS', 'write id already in use');
    // As HDFS's create does by default: missing parents are made (nothing below fails once they are).
    if (cmd.parents && !this.lookup(parentOf(cmd.path))) this.mkdir(parentOf(cmd.path), true, cmd.nowMs);
    const dir = this.parentDir(cmd.path);
    const name = baseName(cmd.path);
    const existing = dir.children.get(name);
    let replacing = false;
    if (existing) {
      if (existing.type === 'dir') fail('IS_A_DIRECTORY', `${cmd.path} is a directory`);
      const file = existing as FileNode;
      if (file.state === 'writing') {
        const w = this.writes.get(file.writeId!);
        if (w && w.leaseExpiresAtMs > cmd.nowMs) fail('FILE_BUSY', `${cmd.path} is being written by another client; ${leaseHint(w, cmd.nowMs)}`);
        if (!cmd.overwrite) fail('EXISTS', `${cmd.path} exists (an abandoned write); overwrite it with put -f`);
        if (w) this.dropWrite(w);
        dir.children.delete(name);
      } else {
        if (!cmd.overwrite) fail('EXISTS', `${cmd.path} already exists; overwrite it with put -f`);
        // Only one replacing write at a time, so the last to complete cannot silently lose to an older one.
        for (const w of this.writes.values()) {
          if (w.path === cmd.path && w.replacing) {
            if (w.leaseExpiresAtMs > cmd.nowMs) fail('FILE_BUSY', `${cmd.path} is being overwritten by another client; ${leaseHint(w, cmd.nowMs)}`);
            this.dropWrite(w);
          }
        }
        replacing = true;
      }
    }
    if (cmd.empty) return this.createEmpty(cmd, dir, name);
    const write: PendingWrite = {
      writeId: cmd.writeId,
      path: cmd.path,
      replication: cmd.replication,
      chunkSizeBytes: cmd.chunkSizeBytes,
      chunks: [],
      leaseExpiresAtMs: cmd.nowMs + cmd.leaseMs,
      leaseMs: cmd.leaseMs,
      replacing,
    };
    this.writes.set(cmd.writeId, write);
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
  private createEmpty(cmd: Extract<Command, { op: 'create' }>, dir: DirNode, name: string): EntryInfo {
    const existing = dir.children.get(name);
    if (existing?.type === 'file') this.releaseChunks(existing);
    const file = new FileNode({ mtimeMs: cmd.nowMs, size: 0, replication: cmd.replication, chunkSizeBytes: cmd.chunkSizeBytes, chunks: [] });
    dir.children.set(name, file);
    dir.mtimeMs = cmd.nowMs;
    return this.entryInfo(cmd.path, file);
  }

  private liveWrite(writeId: string): PendingWrite {
    const w = this.writes.get(writeId);
    if (!w) fail('WRITE_NOT_FOUND', 'this write is unknown or was abandoned (its lease expired?); start the upload again');
    return w!;
  }

  private allocate(writeId: string, index: number, nowMs: number): ChunkRecord {
    const w = this.liveWrite(writeId);
    if (index > w.chunks.length) fail('INVALID_ARGUMENT', `chunk ${index} allocated before chunk ${w.chunks.length}`);
    w.leaseExpiresAtMs = nowMs + w.leaseMs; // progress renews the lease (a refused call changes nothing)
    const previous = w.chunks[index];
    if (previous !== undefined) this.chunks.delete(previous); // a retried chunk: the old handle becomes garbage
    const record: ChunkRecord = { handle: this.nextHandle++, version: 1, length: 0, checksum: '' };
    this.chunks.set(record);
    w.chunks[index] = record.handle;
    return record;
  }

  private complete(cmd: Extract<Command, { op: 'complete' }>): EntryInfo {
    const w = this.liveWrite(cmd.writeId);
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

    const dir = this.parentDir(w.path);
    const name = baseName(w.path);
    const existing = dir.children.get(name);
    if (w.replacing) {
      if (existing?.type === 'dir') fail('IS_A_DIRECTORY', `${w.path} became a directory during the write`);
      if (existing) this.releaseChunks(existing as FileNode);
    } else if (!existing || existing.type !== 'file' || existing.writeId !== w.writeId) {
      fail('WRITE_NOT_FOUND', `${w.path} was removed or replaced during the write`);
    }
    for (const c of cmd.chunks) this.chunks.setContent(c.handle, c.length, c.checksum);
    const file = new FileNode({ mtimeMs: cmd.nowMs, size: cmd.length, replication: w.replication, chunkSizeBytes: w.chunkSizeBytes, chunks: w.chunks });
    dir.children.set(name, file);
    dir.mtimeMs = cmd.nowMs;
    this.writes.delete(w.writeId);
    return this.entryInfo(w.path, file);
  }

  private abandon(writeId: string): null {
    const w = this.writes.get(writeId);
    if (!w) fail('WRITE_NOT_FOUND', 'this write is unknown or already finished');
    this.dropWrite(w!);
    return null;
  }

  /**
   * Extends the lease of each named write that is still open; answers the ones that are not.
   * When none is, nothing changed and the writer is told so (WRITE_NOT_FOUND), so it stops.
   */
  private initNamespace(namespaceId: string): { namespaceId: string } {
    if (!NAMESPACE_ID.test(namespaceId)) fail('INVALID_ARGUMENT', `a namespace id is 16 hex digits, not ${JSON.stringify(namespaceId)}`);
    this.namespaceId ??= namespaceId;
    return { namespaceId: this.namespaceId };
  }

  private renew(writeIds: string[], nowMs: number): { unknown: string[] } {
    const unknown = writeIds.filter((id) => !this.writes.has(id));
    if (unknown.length === writeIds.length) fail('WRITE_NOT_FOUND', 'this write is unknown: it finished, was abandoned, or its lease expired; start the upload again');
    for (const id of writeIds) {
      const w = this.writes.get(id);
      // max: a renew stamped by a leader whose clock lags never shortens a lease.
      if (w) w.leaseExpiresAtMs = Math.max(w.leaseExpiresAtMs, nowMs + w.leaseMs);
    }
    return { unknown };
  }

  /** Forgets a pending write, its chunks, and (for a new file) its 'writing' entry. */
  private dropWrite(w: PendingWrite): void {
    for (const h of w.chunks) this.chunks.delete(h);
    this.writes.delete(w.writeId);
    if (!w.replacing) {
      const parent = this.lookup(parentOf(w.path));
      if (parent?.type === 'dir') {
        const entry = parent.children.get(baseName(w.path));
        if (entry?.type === 'file' && entry.writeId === w.writeId) parent.children.delete(baseName(w.path));
      }
    }
  }

  private releaseChunks(file: FileNode): void {
    for (const h of file.chunks) this.chunks.delete(h);
  }

  private expireLeases(nowMs: number): { abandoned: string[] } {
    const abandoned: string[] = [];
    for (const w of [...this.writes.values()]) {
      if (w.leaseExpiresAtMs <= nowMs) {
        this.dropWrite(w);
        abandoned.push(w.path);
      }
    }
    return { abandoned };
  }

  private delete(path: string, recursive: boolean, nowMs: number): { files: number } {
    if (path === '/') fail('INVALID_ARGUMENT', 'refusing to delete /');
    const dir = this.parentDir(path);
    const name = baseName(path);
    const node = dir.children.get(name);
    if (!node) fail('NOT_FOUND', `${path} does not exist`);
    if (node!.type === 'dir' && node!.children.size > 0 && !recursive) fail('DIRECTORY_NOT_EMPTY', `${path} is a directory that is not empty (use -r)`);
    let files = 0;
    for (const [p, n] of this.walk(path, node!)) {
      if (n.type !== 'file') continue;
      files++;
      if (n.state === 'writing') {
        const w = this.writes.get(n.writeId!);
        if (w) this.dropWrite(w);
      } else this.releaseChunks(n);
      // Pending overwrites of files under a deleted path would otherwise resurrect them.
      for (const w of [...this.writes.values()]) if (w.replacing && w.path === p) this.dropWrite(w);
    }
    dir.children.delete(name);
    dir.mtimeMs = nowMs;
    return { files };
  }

  private rename(src: string, dst: string, nowMs: number, into: boolean): EntryInfo {
    if (src === '/') fail('INVALID_ARGUMENT', 'cannot move /');
    const srcDir = this.parentDir(src);
    const node = srcDir.children.get(baseName(src));
    if (!node) fail('NOT_FOUND', `${src} does not exist`);
    if (node!.type === 'file' && node!.state === 'writing') fail('FILE_BUSY', `${src} is still being written`);
    if (into) {
      const dir = this.lookup(dst);
      if (dir?.type !== 'dir') fail(dir ? 'NOT_A_DIRECTORY' : 'NOT_FOUND', dir ? `${dst} is not a directory` : `directory ${dst} does not exist`);
    }
    if (src === dst) return this.entryInfo(dst, node!);
    if (isWithin(dst, src)) fail('INVALID_ARGUMENT', `cannot move ${src} into itself`);
    for (const w of this.writes.values()) {
      if (isWithin(w.path, src)) fail('FILE_BUSY', `${w.path} is being written; try again when the write is done`);
    }
    let target = dst;
    let dstDir: DirNode;
    const existing = this.lookup(dst);
    if (existing?.type === 'dir') {
      // Like mv(1): moving into an existing directory keeps the name.
      dstDir = existing;
      target = joinPath(dst, baseName(src));
      if (dstDir.children.has(baseName(src))) fail('EXISTS', `${target} already exists`);
    } else {
      if (existing) fail('EXISTS', `${dst} already exists`);
      dstDir = this.parentDir(dst);
    }
    srcDir.children.delete(baseName(src));
    dstDir.children.set(baseName(target), node!);
    srcDir.mtimeMs = nowMs;
    dstDir.mtimeMs = nowMs;
    return this.entryInfo(target, node!);
  }

  /**
   * Changes the replication of a file, or with `recursive` of every file below a directory (as
   * HDFS's setrep). Writes in progress take it too, so chunks they allocate later follow it.
   * Repair then converges: copies when raised, surplus replicas dropped when lowered.
   */
  private setReplication(cmd: Extract<Command, { op: 'setReplication' }>): { files: number } {
    if (!Number.isInteger(cmd.replication) || cmd.replication < 1 || cmd.replication > MAX_REPLICATION) fail('INVALID_ARGUMENT', `replication must be 1 to ${MAX_REPLICATION}`);
    const node = this.lookup(cmd.path);
    if (!node) fail('NOT_FOUND', `${cmd.path} does not exist`);
    if (node!.type === 'dir' && !cmd.recursive) fail('IS_A_DIRECTORY', `${cmd.path} is a directory; use -R to change every file below it`);
    let files = 0;
    for (const [, n] of this.walk(cmd.path, node!)) {
      if (n.type !== 'file') continue;
      files++;
      n.replication = cmd.replication;
      if (n.writeId) {
        const w = this.writes.get(n.writeId);
        if (w) w.replication = cmd.replication;
      }
    }
    // An overwrite in progress replaces the file: it keeps the replication asked for too.
    for (const w of this.writes.values()) if (w.replacing && isWithin(w.path, cmd.path)) w.replication = cmd.replication;
    return { files };
  }

  private decommission(server: string, cancel: boolean): { decommissioning: string[] } {
    if (cancel) this.decommissioning.delete(server);
    else this.decommissioning.add(server);
    return { decommissioning: [...this.decommissioning].sort() };
  }

  /**
   * Joins complete files into one without moving a byte (as HDFS's concat): the target's chunk
   * list is the sources' lists in order, and the sources are gone. Chunks may therefore be shorter
   * than the chunk size anywhere in a concatenated file; readers go by each chunk's own length.
   * The target replaces a complete file only with `overwrite`, and is made in one step, so a
   * reader sees the old file or the whole new one.
   */
  private concat(cmd: Extract<Command, { op: 'concat' }>): EntryInfo {
    if (new Set(cmd.sources).size !== cmd.sources.length) fail('INVALID_ARGUMENT', 'concat names a source twice');
    if (cmd.sources.includes(cmd.target)) fail('INVALID_ARGUMENT', 'the concat target may not be one of its sources');
    const sources = cmd.sources.map((p) => {
      const node = this.lookup(p);
      if (!node) fail('NOT_FOUND', `${p} does not exist`);
      if (node!.type !== 'file') fail('IS_A_DIRECTORY', `${p} is a directory`);
      if ((node as FileNode).state !== 'complete') fail('FILE_BUSY', `${p} is still being written`);
      return node as FileNode;
    });
    const dir = this.parentDir(cmd.target);
    const name = baseName(cmd.target);
    const existing = dir.children.get(name);
    if (existing?.type === 'dir') fail('IS_A_DIRECTORY', `${cmd.target} is a directory`);
    if (existing && (existing as FileNode).state === 'writing') fail('FILE_BUSY', `${cmd.target} is being written by another client`);
    if (existing && !cmd.overwrite) fail('EXISTS', `${cmd.target} already exists`);
    const file = new FileNode({
      mtimeMs: cmd.nowMs,
      size: sources.reduce((n, f) => n + f.size, 0),
      replication: Math.max(...sources.map((f) => f.replication)),
      chunkSizeBytes: Math.max(...sources.map((f) => f.chunkSizeBytes)),
      chunks: sources.flatMap((f) => f.chunks),
    });
    if (existing) this.releaseChunks(existing as FileNode);
    for (const p of cmd.sources) {
      const parent = this.lookup(parentOf(p)) as DirNode;
      parent.children.delete(baseName(p));
      parent.mtimeMs = cmd.nowMs;
    }
    dir.children.set(name, file);
    dir.mtimeMs = cmd.nowMs;
    return this.entryInfo(cmd.target, file);
  }

  // ---- snapshot ----

  snapshot(): Buffer {
    const enc = (node: Node): unknown =>
      node.type === 'dir'
        ? { t: 'd', m: node.mtimeMs, c: [...node.children].map(([k, v]) => [k, enc(v)]) }
        : { t: 'f', m: node.mtimeMs, s: node.size, r: node.replication, z: node.chunkSizeBytes, h: node.chunks, st: node.state, w: node.writeId };
    return Buffer.from(JSON.stringify({
      v: 1,
      nextHandle: this.nextHandle,
      root: enc(this.root),
      chunks: Array.from(this.chunks.records(), (c) => [c.handle, c.version, c.length, c.checksum]),
      writes: [...this.writes.values()],
      decommissioning: [...this.decommissioning],
      ...(this.namespaceId !== undefined ? { ns: this.namespaceId } : {}),
      ...(this.credentials.isEmpty() ? {} : { cred: this.credentials.toJSON() }), // credentials hook
    }));
  }

  static restore(data: Uint8Array): MasterState {
    type Enc = { t: 'd'; m: number; c: [string, Enc][] } | { t: 'f'; m: number; s: number; r: number; z: number; h: number[]; st: FileState; w?: string };
    const raw = JSON.parse(Buffer.from(data).toString('utf8')) as { v: number; nextHandle: number; root: Enc; chunks: [number, number, number, string][]; writes: PendingWrite[]; decommissioning?: string[]; ns?: string; cred?: unknown };
    if (raw.v !== 1) throw new Error(`unknown master snapshot format ${raw.v}`);
    const dec = (e: Enc): Node => {
      if (e.t === 'd') return { type: 'dir', mtimeMs: e.m, children: new Map(e.c.map(([k, v]) => [k, dec(v)])) };
      // A file's state is whether it has a write id: the two must agree.
      if ((e.st === 'writing') !== (e.w !== undefined)) throw new Error(`master snapshot: a ${e.st} file ${e.w === undefined ? 'without' : 'with'} a write id`);
      const fields = { mtimeMs: e.m, size: e.s, replication: e.r, chunkSizeBytes: e.z, chunks: e.h };
      return e.w === undefined ? new FileNode(fields) : new WritingFile(fields, e.w);
    };
    const s = new MasterState();
    s.nextHandle = raw.nextHandle;
    s.root = dec(raw.root) as DirNode;
    for (const [handle, version, length, checksum] of raw.chunks) s.chunks.set({ handle, version, length, checksum });
    for (const w of raw.writes) s.writes.set(w.writeId, w);
    // Snapshots written before decommissioning existed have no such field.
    for (const id of raw.decommissioning ?? []) s.decommissioning.add(id);
    // Snapshots written before namespace ids existed have none: the next leader draws one.
    if (raw.ns !== undefined) s.namespaceId = raw.ns;
    if (raw.cred !== undefined) s.credentials = CredentialState.fromJSON(raw.cred); // credentials hook
    return s;
  }
}
