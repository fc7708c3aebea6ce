// The framing of a record file's records (dfs append --record, DfsClient.recordAppend), read back
// by dfs cat --records / DfsClient.readRecords. As GFS's applications do (§3.3), each record says
// where it starts (a magic), how long it is, who it is (a unique id, so a retried record that
// landed twice is read once) and what it holds (a checksum). Records never straddle chunks: the
// master pads a chunk's rest with zeros when a record does not fit, so a reader that meets
// padding or damage skips to the next chunk boundary, or to the next frame that checks out.
import { randomBytes } from 'node:crypto';
import { hashBlock } from './checksum.js';

/** "DFSR" */
export const RECORD_MAGIC = 0x44465352;
/** magic (4) | payload length (4) | record id (16) | payload xxHash64 (8) | header check (4): all big-endian. */
export const RECORD_HEADER_BYTES = 36;
export const RECORD_ID_BYTES = 16;

/** One record as a reader yields it. */
export interface RecordEntry {
  /** Where its frame starts in the file (what recordAppend answered). */
  offset: number;
  /** Its unique id, hex. */
  id: string;
  data: Buffer;
}

/** What a scan left out: zero padding, and bytes that are no valid frame (a damaged record, or garbage). */
export interface ScanSkips { paddingBytes: number; corruptBytes: number; corruptRecords: number }

/** A record framed for recordAppend, with a fresh id unless one is given (a retry keeps its id). */
export function frameRecord(data: Uint8Array, id: Buffer = randomBytes(RECORD_ID_BYTES)): { frame: Buffer; id: string } {
  if (id.length !== RECORD_ID_BYTES) throw new Error(`a record id is ${RECORD_ID_BYTES} bytes`);
  const frame = Buffer.allocUnsafe(RECORD_HEADER_BYTES + data.length);
  frame.writeUInt32BE(RECORD_MAGIC, 0);
  frame.writeUInt32BE(data.length, 4);
  id.copy(frame, 8);
  frame.writeBigUInt64BE(hashBlock(data), 24);
  frame.writeUInt32BE(headerCheck(frame, 0), 32);
  frame.set(data, RECORD_HEADER_BYTES);
  return { frame, id: id.toString('hex') };
}

function headerCheck(buf: Buffer, at: number): number {
  return Number(hashBlock(buf.subarray(at, at + 32)) & 0xffffffffn);
}

/** Whether a valid header starts at `at` (its own check passes): then its length can be trusted. */
function headerAt(buf: Buffer, at: number): { length: number } | undefined {
  if (buf.length - at < RECORD_HEADER_BYTES || buf.readUInt32BE(at) !== RECORD_MAGIC) return undefined;
  if (buf.readUInt32BE(at + 32) !== headerCheck(buf, at)) return undefined;
  return { length: buf.readUInt32BE(at + 4) };
}

function allZero(buf: Buffer, from: number): boolean {
  for (let i = from; i < buf.length; i++) if (buf[i] !== 0) return false;
  return true;
}

/**
 * The records of one chunk's bytes (`chunk`, which starts at file offset `start`), in order.
 * Zeros after the last record are padding. Anything else that is no valid frame is counted as
 * corrupt and skipped up to the next valid header (or the chunk's end); a frame whose header is
 * valid but whose payload fails its checksum is skipped whole. Pure: no I/O.
 */
export function scanChunk(chunk: Buffer, start: number, skips: ScanSkips): RecordEntry[] {
  const out: RecordEntry[] = [];
  let at = 0;
  while (at < chunk.length) {
    const h = headerAt(chunk, at);
    if (h && at + RECORD_HEADER_BYTES + h.length <= chunk.length) {
      const data = chunk.subarray(at + RECORD_HEADER_BYTES, at + RECORD_HEADER_BYTES + h.length);
      if (hashBlock(data) === chunk.readBigUInt64BE(at + 24)) {
        out.push({ offset: start + at, id: chunk.toString('hex', at + 8, at + 24), data: Buffer.from(data) });
      } else {
        skips.corruptRecords++;
        skips.corruptBytes += RECORD_HEADER_BYTES + h.length;
      }
      at += RECORD_HEADER_BYTES + h.length;
      continue;
    }
    if (allZero(chunk, at)) {
      skips.paddingBytes += chunk.length - at;
      break;
    }
    const next = nextHeader(chunk, at + 1);
    skips.corruptRecords++;
    skips.corruptBytes += next - at;
    at = next;
  }
  return out;
}

/** The next offset from `from` where a valid header starts, or the chunk's end. */
function nextHeader(chunk: Buffer, from: number): number {
  const magic = Buffer.from('DFSR', 'latin1');
  for (let i = chunk.indexOf(magic, from); i >= 0; i = chunk.indexOf(magic, i + 1)) if (headerAt(chunk, i)) return i;
  return chunk.length;
}

/** Remembers the last `capacity` record ids, to skip a record read before (a retried append's second copy). */
export class SeenIds {
  private readonly ids = new Set<string>();
  constructor(private readonly capacity: number) {}

  /** True when `id` was seen within the window; remembers it either way. */
  seen(id: string): boolean {
    if (this.ids.has(id)) return true;
    this.ids.add(id);
    if (this.ids.size > this.capacity) this.ids.delete(this.ids.values().next().value!);
    return false;
  }
}
