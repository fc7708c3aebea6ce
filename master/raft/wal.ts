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

export function encodeRecords(records: readonly WalRecord[]): Buffer {
  return Buffer.concat(records.map(encodeRecord));
}

function encodeRecord(record: WalRecord): Buffer {
  let payload: Buffer;
  switch (record.kind) {
    case 'entry': {
      const { entry } = record;
      payload = Buffer.allocUnsafe(17 + entry.data.byteLength);
      payload.writeUInt8(KIND_ENTRY, 0);
      writeU64(payload, entry.term, 1);
      writeU64(payload, entry.index, 9);
      payload.set(entry.data, 17);
      break;
    }
    case 'hardState': {
      const vote = Buffer.from(record.hardState.vote ?? '', 'utf8');
      payload = Buffer.allocUnsafe(20 + vote.byteLength);
      payload.writeUInt8(KIND_HARD_STATE, 0);
      writeU64(payload, record.hardState.term, 1);
      writeU64(payload, record.hardState.commit, 9);
      // 0xffff marks "no vote", distinct from an (invalid) empty node id.
      payload.writeUInt16LE(record.hardState.vote === null ? 0xffff : vote.byteLength, 17);
      payload.writeUInt8(0, 19);
      payload.set(vote, 20);
      break;
    }
    case 'base':
      payload = Buffer.allocUnsafe(17);
      payload.writeUInt8(KIND_BASE, 0);
      writeU64(payload, record.index, 1);
      writeU64(payload, record.term, 9);
      break;
  }
  if (payload.byteLength > MAX_RECORD_BYTES) throw new RangeError(`WAL record of ${payload.byteLength} bytes is too large`);
  const header = Buffer.allocUnsafe(HEADER_BYTES);
  header.writeUInt32LE(payload.byteLength, 0);
  header.writeUInt32LE(crc32(payload), 4);
  return Buffer.concat([header, payload]);
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
