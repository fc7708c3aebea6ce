// Snapshot bytes without one buffer of their size: received pieces kept as they came, a view from
// an offset, and reading any SnapshotData a bounded piece at a time.
import type { SnapshotData } from './types.js';

/** Bytes read or written at a time when a snapshot is streamed. */
export const SNAPSHOT_IO_BYTES = 1024 * 1024;

/** A snapshot received in pieces (an InstallSnapshot stream): kept as the pieces, never joined. */
export class ChunkedSnapshotData implements SnapshotData {
  readonly byteLength: number;
  private readonly starts: number[] = [];

  constructor(private readonly pieces: readonly Uint8Array[]) {
    let at = 0;
    for (const p of pieces) {
      this.starts.push(at);
      at += p.byteLength;
    }
    this.byteLength = at;
  }

  subarray(start: number, end: number): Uint8Array {
    const from = Math.max(0, start);
    const to = Math.min(end, this.byteLength);
    if (to <= from) return new Uint8Array(0);
    let i = this.pieceAt(from);
    const first = this.pieces[i]!;
    const offset = from - this.starts[i]!;
    if (offset + (to - from) <= first.byteLength) return first.subarray(offset, offset + (to - from));
    const out = new Uint8Array(to - from);
    for (let written = 0; written < out.byteLength; i++) {
      const p = this.pieces[i]!;
      const skip = written === 0 ? offset : 0;
      const n = Math.min(p.byteLength - skip, out.byteLength - written);
      out.set(p.subarray(skip, skip + n), written);
      written += n;
    }
    return out;
  }

  private pieceAt(offset: number): number {
    let lo = 0;
    let hi = this.starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.starts[mid]! <= offset) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }
}

/** `data` from byte `offset` on. */
export function dataFrom(data: SnapshotData, offset: number): SnapshotData {
  if (data instanceof Uint8Array) return data.subarray(offset);
  return { byteLength: Math.max(0, data.byteLength - offset), subarray: (start, end) => data.subarray(offset + start, offset + Math.min(end, data.byteLength - offset)) };
}

/** The bytes of `data`, a bounded piece at a time. */
export function* dataPieces(data: SnapshotData, pieceBytes = SNAPSHOT_IO_BYTES): Generator<Uint8Array> {
  for (let at = 0; at < data.byteLength; at += pieceBytes) yield data.subarray(at, Math.min(data.byteLength, at + pieceBytes));
}

/** All of `data` in one buffer: only for snapshots known to be small (tests, the session table). */
export function wholeData(data: SnapshotData): Uint8Array {
  return data.subarray(0, data.byteLength);
}
