// The namespace tree's nodes: directories, files and files being written.
import type { FileState } from '../../common/protocol.js';
import { beforeReplicationChange, capturing } from './capture.js';

export interface DirNode { type: 'dir'; mtimeMs: number; children: Map<string, Node> }
/** A file still being written has no chunks yet (they are its write's until complete); nor has an empty file. */
export const NO_CHUNKS: readonly number[] = Object.freeze([]);

export interface FileFields { mtimeMs: number; size: number; replication: number; chunkSizeBytes: number; chunks: readonly number[] }

/**
 * A file. A class, so that every file has one fixed shape, and with only the fields a file
 * needs: a master holds one per file, a million of them at 1 M files. `type`, `state`,
 * `writeId` and `chunks` are derived on the prototype rather than stored.
 */
export class FileNode {
  readonly mtimeMs: number;
  readonly size: number;
  private repl: number;
  readonly chunkSizeBytes: number;
  /** The chunk handles; a file of one chunk (most files) keeps its handle as a number, without an array. */
  private readonly handles: number | readonly number[];

  constructor(f: FileFields) {
    this.mtimeMs = f.mtimeMs;
    this.size = f.size;
    this.repl = f.replication;
    this.chunkSizeBytes = f.chunkSizeBytes;
    this.handles = f.chunks.length === 1 ? f.chunks[0]! : f.chunks.length === 0 ? NO_CHUNKS : [...f.chunks];
  }

  get replication(): number {
    return this.repl;
  }

  /** The one field a file changes in place (setrep): a snapshot being written keeps the old value. */
  set replication(value: number) {
    if (capturing()) beforeReplicationChange(this, this.repl);
    this.repl = value;
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

  /** An inline file's bytes (an InlineFile); other files have none, and spend no field on saying so. */
  get inline(): InlineBytes | undefined {
    return undefined;
  }
}

/** An inline file's bytes and their checksum (common/inline.ts). Never changed: a new file replaces them. */
export interface InlineBytes { readonly data: Buffer; readonly checksum: string }

/**
 * A complete file whose bytes are kept here, in the replicated state, instead of in chunks (a
 * small file, common/inline.ts). A subclass, so that the other files stay as small as they were.
 */
export class InlineFile extends FileNode {
  private readonly bytes: InlineBytes;

  constructor(f: Omit<FileFields, 'chunks' | 'size'>, bytes: InlineBytes) {
    super({ ...f, size: bytes.data.length, chunks: NO_CHUNKS });
    this.bytes = bytes;
  }

  override get inline(): InlineBytes {
    return this.bytes;
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
