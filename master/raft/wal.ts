// Write-ahead-log record framing: [u32 payload length][u32 crc32(payload)][payload], payload =
// [u8 kind][fields]. A record is valid only if its whole length is present and its checksum
// matches, so a write torn by a crash shows up as a bad tail that start-up truncates.
import { crc32 } from 'node:zlib';
import type { Entry, HardState } from './types.js';

const HEADER_BYTES = 8;
/** Larger than any record we write (entries are bounded by the driver's max proposal size). */
export const MAX_RECORD_BYTES = 256 * 1024 * 1024;
const MAX_VOTE_BYTES = 1024;

export type WalRecord =
  | { readonly kind: 'entry'; readonly entry: Entry }
  | { readonly kind: 'hardState'; readonly hardState: HardState }
  /** The log restarts after (index, term): written first in a rewritten WAL. */
  | { readonly kind: 'base'; readonly index: number; readonly term: number };

const KIND_ENTRY = 1;
const KIND_HARD_STATE = 2;
const KIND_BASE = 3;

/**
 * The records as one buffer, each framed. Written in place: one allocation for the whole batch
 * (a follower's append of 64 inline files is 360 KiB; building each record and then joining them
 * copied every entry three times).
 */
export function encodeRecords(records: readonly WalRecord[]): Buffer {
  const votes = records.map((r) => (r.kind === 'hardState' && r.hardState.vote !== null ? Buffer.from(r.hardState.vote, 'utf8') : undefined));
  let total = 0;
  for (let i = 0; i < records.length; i++) total += HEADER_BYTES + payloadBytes(records[i]!, votes[i]);
  const out = Buffer.allocUnsafe(total);
  let at = 0;
  for (let i = 0; i < records.length; i++) {
    const record = records[i]!;
    const length = payloadBytes(record, votes[i]);
    if (length > MAX_RECORD_BYTES) throw new RangeError(`WAL record of ${length} bytes is too large`);
    const p = at + HEADER_BYTES;
    switch (record.kind) {
      case 'entry':
        out.writeUInt8(KIND_ENTRY, p);
        writeU64(out, record.entry.term, p + 1);
        writeU64(out, record.entry.index, p + 9);
        out.set(record.entry.data, p + 17);
        break;
      case 'hardState': {
        const vote = votes[i];
        out.writeUInt8(KIND_HARD_STATE, p);
        writeU64(out, record.hardState.term, p + 1);
        writeU64(out, record.hardState.commit, p + 9);
        // 0xffff marks "no vote", distinct from an (invalid) empty node id.
        out.writeUInt16LE(vote === undefined ? 0xffff : vote.byteLength, p + 17);
        out.writeUInt8(0, p + 19);
        if (vote !== undefined) out.set(vote, p + 20);
        break;
      }
      case 'base':
        out.writeUInt8(KIND_BASE, p);
        writeU64(out, record.index, p + 1);
        writeU64(out, record.term, p + 9);
        break;
    }
    out.writeUInt32LE(length, at);
    out.writeUInt32LE(crc32(out.subarray(p, p + length)), at + 4);
    at = p + length;
  }
  return out;
}

/** A record's payload length; `vote`: its hard state's vote, as UTF-8. */
function payloadBytes(record: WalRecord, vote: Buffer | undefined): number {
  switch (record.kind) {
    case 'entry':
      return 17 + record.entry.data.byteLength;
    case 'hardState':
      return 20 + (vote?.byteLength ?? 0);
    case 'base':
      return 17;
  }
}

export interface DecodedWal {
  readonly records: WalRecord[];
  /** Bytes of the file made of whole, valid records; anything after is a torn or corrupt tail. */
  readonly validBytes: number;
}

export function decodeRecords(file: Buffer): DecodedWal {
  const records: WalRecord[] = [];
  let offset = 0;
  while (offset + HEADER_BYTES <= file.byteLength) {
    const length = file.readUInt32LE(offset);
    const checksum = file.readUInt32LE(offset + 4);
    const end = offset + HEADER_BYTES + length;
    if (length === 0 || length > MAX_RECORD_BYTES || end > file.byteLength) break;
    const payload = file.subarray(offset + HEADER_BYTES, end);
    if (crc32(payload) !== checksum) break;
    const record = decodePayload(payload);
    if (record === undefined || !hasSafeNumbers(record)) break;
    records.push(record);
    offset = end;
  }
  return { records, validBytes: offset };
}

function decodePayload(payload: Buffer): WalRecord | undefined {
  const kind = payload.readUInt8(0);
  if (kind === KIND_ENTRY && payload.byteLength >= 17) {
    // Copy: the entry outlives the file buffer and must not pin it.
    const data = new Uint8Array(payload.subarray(17));
    return { kind: 'entry', entry: { term: readU64(payload, 1), index: readU64(payload, 9), data } };
  }
  if (kind === KIND_HARD_STATE && payload.byteLength >= 20) {
    const voteLength = payload.readUInt16LE(17);
    const vote = voteLength === 0xffff ? null : payload.subarray(20, 20 + voteLength).toString('utf8');
    if (vote !== null && (voteLength > MAX_VOTE_BYTES || payload.byteLength !== 20 + voteLength)) return undefined;
    return { kind: 'hardState', hardState: { term: readU64(payload, 1), commit: readU64(payload, 9), vote } };
  }
  if (kind === KIND_BASE && payload.byteLength === 17) {
    return { kind: 'base', index: readU64(payload, 1), term: readU64(payload, 9) };
  }
  return undefined;
}

function hasSafeNumbers(record: WalRecord): boolean {
  switch (record.kind) {
    case 'entry':
      return Number.isSafeInteger(record.entry.term) && Number.isSafeInteger(record.entry.index);
    case 'hardState':
      return Number.isSafeInteger(record.hardState.term) && Number.isSafeInteger(record.hardState.commit);
    case 'base':
      return Number.isSafeInteger(record.index) && Number.isSafeInteger(record.term);
  }
}

function writeU64(buffer: Buffer, value: number, offset: number): void {
  buffer.writeBigUInt64LE(BigInt(value), offset);
}

function readU64(buffer: Buffer, offset: number): number {
  const value = buffer.readBigUInt64LE(offset);
  return value > BigInt(Number.MAX_SAFE_INTEGER) ? Number.NaN : Number(value);
}
