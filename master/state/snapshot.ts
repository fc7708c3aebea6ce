// The snapshot codec. Format v2 (written): newline-delimited JSON records, produced from a capture
// in pieces of about SNAPSHOT_PIECE_BYTES and read back piece by piece, so that no string or buffer
// ever grows with the namespace. Format v1 (read only): the whole state as one JSON document.
//
// v2, one record a line:
//   {"v":2,"nextHandle":N,"rootMtimeMs":M,"ns":"…","decommissioning":[…]}   the header: small fields
//   ["d",name,mtimeMs]                    enters a new directory of the current one
//   ["f",name,mtimeMs,size,replication,chunkSizeBytes,[handles],writeId?]   a file of the current one
//   ["i",name,mtimeMs,replication,chunkSizeBytes,base64,checksum]   an inline file (common/inline.ts)
//   ["u"]                                 back to the parent directory
//   ["c",[[handle,version,length,checksum],…]]   chunk table rows
//   ["w",{…PendingWrite}]                 a pending write
//   ["end",records,crc32]                 records before it, and the CRC-32 of every byte before it
// The tree starts at the root; a directory's entries keep their order. A reader refuses a record
// kind it does not know, so a field added to the state comes with a new kind or a header field.
import { crc32 } from 'node:zlib';
import { CredentialState } from '../credentials/state.js';
import { quotaList, restoreQuotas } from '../quotas.js';
import type { SnapshotData } from '../raft/types.js';
import { ABSENT, beginCapture, ChildMap, endCapture, newDir, type CaptureUndo } from './capture.js';
import type { CapturedChunks, ChunkRecord } from './chunk-table.js';
import type { MasterState } from './master-state.js';
import { FileNode, InlineFile, WritingFile, type DirNode, type Node } from './nodes.js';
import type { PendingWrite } from './writes.js';
import { decodeSnapshotV1 } from './snapshot-v1.js';
import { countReferences } from './tree-snapshot.js';

/**
 * A piece of a snapshot as it is produced and read: a bounded slice of event-loop time. About
 * 1 ms of CPU here: every call a master serves while it writes a snapshot waits for at most the
 * piece under way (256 KiB pieces took 9 ms each, and a call that crossed three masters' loops
 * waited for several).
 */
export const SNAPSHOT_PIECE_BYTES = 32 * 1024;
const CHUNK_ROWS_PER_RECORD = 1024;
const NEWLINE = 0x0a;
const NEWLINE_BYTES = Buffer.of(NEWLINE);

interface Header {
  v: 2; nextHandle: number; rootMtimeMs: number; ns?: string; decommissioning: string[];
  /** Client credentials (master/credentials/state.ts), when any. */
  cred?: unknown;
  /** Directory quotas: [path, files, bytes]; usage is counted afresh on restore (master/quotas.ts). */
  quotas?: [string, number | null, number | null][];
  /** MasterState.nextVersion, once an append issued one (absent: 2). */
  nextVersion?: number;
}

/** The state at one moment, written later while the state changes (copy-on-write, see capture.ts). */
export interface StateCapture {
  /** The snapshot's bytes, a piece at a time; releases the capture when it ends. */
  pieces(): Generator<Buffer>;
  /** Drops the capture without writing it all (the old values it kept go too). */
  release(): void;
}

/** Captures `s` now: O(pending writes + decommissioning servers), whatever the namespace's size. */
export function captureState(s: MasterState, pieceBytes = SNAPSHOT_PIECE_BYTES): StateCapture {
  const header: Header = { v: 2, nextHandle: s.nextHandle, rootMtimeMs: s.root.mtimeMs, decommissioning: [...s.decommissioning], ...(s.namespaceId !== undefined ? { ns: s.namespaceId } : {}),
    ...(s.credentials.isEmpty() ? {} : { cred: s.credentials.toJSON() }), quotas: quotaList(s), ...(s.nextVersion !== 2 ? { nextVersion: s.nextVersion } : {}) };
  const writes = [...s.writes.values()].map((w) => structuredClone(w));
  const undo = beginCapture();
  const chunks = s.chunks.capture();
  const release = (): void => {
    endCapture(undo);
    chunks.release();
  };
  return { pieces: () => pieces({ header, writes, root: s.root, undo, chunks, pieceBytes }, release), release };
}

interface Captured { header: Header; writes: PendingWrite[]; root: DirNode; undo: CaptureUndo; chunks: CapturedChunks; pieceBytes: number }

function* pieces(c: Captured, release: () => void): Generator<Buffer> {
  try {
    const out = new PieceWriter(c.pieceBytes);
    out.line(JSON.stringify(c.header));
    for (const line of treeLines(c.root, c.undo)) if (out.line(line)) yield out.take();
    let rows: (string | number)[][] = [];
    for (const r of c.chunks.records()) {
      rows.push([r.handle, r.version, r.length, r.checksum]);
      if (rows.length === CHUNK_ROWS_PER_RECORD) {
        if (out.line(JSON.stringify(['c', rows]))) yield out.take();
        rows = [];
      }
    }
    if (rows.length > 0) out.line(JSON.stringify(['c', rows]));
    for (const w of c.writes) out.line(JSON.stringify(['w', w]));
    yield out.finish();
  } finally {
    release();
  }
}

/** Gathers lines into pieces, with the running count and CRC-32 the end record carries. */
class PieceWriter {
  private parts: string[] = [];
  private bytes = 0;
  private records = 0;
  private crc = 0;

  constructor(private readonly pieceBytes: number) {}

  /** Adds a line; true when the piece is full. */
  line(text: string): boolean {
    this.parts.push(text, '\n');
    this.bytes += text.length + 1;
    this.records++;
    return this.bytes >= this.pieceBytes;
  }

  take(): Buffer {
    const piece = Buffer.from(this.parts.join(''), 'utf8');
    this.crc = crc32(piece, this.crc);
    this.parts = [];
    this.bytes = 0;
    return piece;
  }

  /** The last piece, with the end record. */
  finish(): Buffer {
    const body = this.take();
    return Buffer.concat([body, Buffer.from(`${JSON.stringify(['end', this.records, this.crc])}\n`, 'utf8')]);
  }
}

/** The tree as it was at the capture, depth first, each directory's entries in their order. */
function* treeLines(root: DirNode, undo: CaptureUndo): Generator<string> {
  const stack: { dir: DirNode; names: string[]; at: number }[] = [{ dir: root, names: namesAtCapture(root, undo), at: 0 }];
  while (stack.length > 0) {
    const top = stack[stack.length - 1]!;
    if (top.at === top.names.length) {
      stack.pop();
      if (stack.length > 0) yield '["u"]';
      continue;
    }
    const name = top.names[top.at++]!;
    const node = nodeAtCapture(top.dir, name, undo)!;
    if (node.type === 'dir') {
      yield JSON.stringify(['d', name, undo.dirs.get(node)?.mtimeMs ?? node.mtimeMs]);
      stack.push({ dir: node, names: namesAtCapture(node, undo), at: 0 });
    } else {
      const replication = undo.replication.get(node) ?? node.replication;
      if (node.inline) {
        yield JSON.stringify(['i', name, node.mtimeMs, replication, node.chunkSizeBytes, node.inline.data.toString('base64'), node.inline.checksum]);
        continue;
      }
      const f: unknown[] = ['f', name, node.mtimeMs, node.size, replication, node.chunkSizeBytes, node.chunks];
      if (node.writeId !== undefined) f.push(node.writeId);
      yield JSON.stringify(f);
    }
  }
}

/** A directory's names at the capture, in their order: copied when the writer reaches it, or at its first change. */
function namesAtCapture(dir: DirNode, undo: CaptureUndo): string[] {
  if (!(dir.children instanceof ChildMap)) throw new Error('snapshot: a directory not made by newDir() (its changes would escape the capture)');
  return undo.dirs.get(dir)?.order ?? [...dir.children.keys()];
}

function nodeAtCapture(dir: DirNode, name: string, undo: CaptureUndo): Node | undefined {
  const kept = undo.dirs.get(dir)?.names;
  if (kept?.has(name)) {
    const old = kept.get(name)!;
    return old === ABSENT ? undefined : old;
  }
  return dir.children.get(name);
}

/** Fills `s`, a new and empty state, from a snapshot of either format, reading it piece by piece. */
export function decodeSnapshotInto(s: MasterState, data: SnapshotData): void {
  const head = Buffer.from(data.subarray(0, Math.min(data.byteLength, 8))).toString('latin1');
  if (head.startsWith('{"v":1,')) {
    decodeSnapshotV1(s, data.subarray(0, data.byteLength));
    return;
  }
  if (!head.startsWith('{"v":2,')) throw new Error(`unknown master snapshot format (it starts ${JSON.stringify(head)})`);
  const reader = new RecordReader(s);
  for (const line of lines(data)) reader.record(line);
  reader.finish();
}

/** The lines of `data` (without their newline), read a piece at a time. */
function* lines(data: SnapshotData): Generator<Buffer> {
  let carry: Buffer | null = null;
  for (let at = 0; at < data.byteLength; at += SNAPSHOT_PIECE_BYTES) {
    let piece = Buffer.from(data.subarray(at, Math.min(data.byteLength, at + SNAPSHOT_PIECE_BYTES)));
    if (carry !== null) piece = Buffer.concat([carry, piece]);
    let start = 0;
    for (let nl = piece.indexOf(NEWLINE); nl !== -1; nl = piece.indexOf(NEWLINE, start)) {
      yield piece.subarray(start, nl);
      start = nl + 1;
    }
    carry = start < piece.byteLength ? Buffer.from(piece.subarray(start)) : null;
  }
  if (carry !== null) throw new Error('master snapshot: it ends inside a record (truncated)');
}

type FileRecord = [string, string, number, number, number, number, number[], string?];

/** Builds the state from v2 records, checking the count and CRC-32 of the end record. */
class RecordReader {
  private readonly dirs: DirNode[] = [];
  private records = 0;
  private crc = 0;
  private ended = false;
  private quotas: Header['quotas'];

  constructor(private readonly s: MasterState) {}

  record(line: Buffer): void {
    if (this.ended) throw new Error('master snapshot: records after its end');
    const value = JSON.parse(line.toString('utf8')) as unknown;
    if (this.records === 0) this.header(value as Header);
    else if (!Array.isArray(value)) throw new Error('master snapshot: a record that is not an array');
    else if (value[0] === 'end') this.end(value as [string, number, number]);
    else this.body(value);
    if (!this.ended) {
      this.crc = crc32(NEWLINE_BYTES, crc32(line, this.crc));
      this.records++;
    }
  }

  finish(): void {
    if (!this.ended) throw new Error('master snapshot: no end record (truncated)');
    if (this.dirs.length !== 1) throw new Error('master snapshot: the tree does not close');
    restoreQuotas(this.s, this.quotas);
    countReferences(this.s); // shared chunks: derived from the tree, which the snapshot carries
  }

  private header(h: Header): void {
    if (h === null || typeof h !== 'object' || h.v !== 2) throw new Error(`unknown master snapshot format ${JSON.stringify((h as { v?: unknown } | null)?.v)}`);
    this.s.nextHandle = h.nextHandle;
    this.s.root = newDir(h.rootMtimeMs);
    this.dirs.push(this.s.root);
    for (const id of h.decommissioning) this.s.decommissioning.add(id);
    if (h.ns !== undefined) this.s.namespaceId = h.ns;
    if (h.cred !== undefined) this.s.credentials = CredentialState.fromJSON(h.cred);
    this.quotas = h.quotas;
    if (h.nextVersion !== undefined) this.s.nextVersion = h.nextVersion;
  }

  private body(r: unknown[]): void {
    const here = this.dirs[this.dirs.length - 1]!;
    switch (r[0]) {
      case 'd': {
        const dir = newDir(r[2] as number);
        here.children.set(r[1] as string, dir);
        this.dirs.push(dir);
        return;
      }
      case 'f': return void here.children.set(r[1] as string, fileOf(r as FileRecord));
      case 'i': return void here.children.set(r[1] as string, inlineFileOf(r as InlineRecord));
      case 'u':
        if (this.dirs.length === 1) throw new Error('master snapshot: ["u"] at the root');
        return void this.dirs.pop();
      case 'c':
        for (const [handle, version, length, checksum] of r[1] as [number, number, number, string][]) this.s.chunks.set({ handle, version, length, checksum } satisfies ChunkRecord);
        return;
      case 'w': {
        const w = r[1] as PendingWrite;
        return void this.s.writes.set(w.writeId, w);
      }
      default: throw new Error(`master snapshot: unknown record kind ${JSON.stringify(r[0])}`);
    }
  }

  private end([, records, crc]: [string, number, number]): void {
    if (records !== this.records || crc !== this.crc) throw new Error(`master snapshot is corrupt: ${this.records} records with CRC ${this.crc}, its end says ${records} with ${crc}`);
    this.ended = true;
  }
}

type InlineRecord = [string, string, number, number, number, string, string];

function inlineFileOf([, , mtimeMs, replication, chunkSizeBytes, data, checksum]: InlineRecord): InlineFile {
  const bytes = Buffer.from(data, 'base64');
  if (bytes.length === 0) throw new Error('master snapshot: an inline file without bytes');
  return new InlineFile({ mtimeMs, replication, chunkSizeBytes }, { data: bytes, checksum });
}

function fileOf([, , mtimeMs, size, replication, chunkSizeBytes, chunks, writeId]: FileRecord): FileNode {
  const fields = { mtimeMs, size, replication, chunkSizeBytes, chunks };
  return writeId === undefined ? new FileNode(fields) : new WritingFile(fields, writeId);
}
