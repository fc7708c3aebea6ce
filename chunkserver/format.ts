import { BLOCK_SIZE_BYTES, chunkChecksum } from '../common/checksum.js';
import { hashBlock } from '../common/checksum.js';

/**
 * On-disk chunk file: the data bytes from offset 0, then a trailer with one xxHash64 per 64 KiB
 * block and a fixed 64-byte footer. Data first means bytes are written exactly as they arrive
 * and a chunk offset is a file offset; the footer is written last, so a file without a valid
 * footer was never completed.
 *
 *   [data: length bytes][block hashes: 8 × nBlocks][footer: 64 bytes]
 *   footer: magic 'DFSCHNK1' | handle u64 | version u32 | blockSize u32 | length u64 |
 *           nBlocks u32 | 0 u32 | chunkChecksum u64 | 0 u64 | trailerChecksum u64
 *   trailerChecksum = xxHash64(block hashes ‖ footer[0..56))
 */
export const FOOTER_BYTES = 64;
const MAGIC = Buffer.from('DFSCHNK1');

export interface ChunkMeta {
  handle: number;
  version: number;
  length: number;
  blockSizeBytes: number;
  blockHashes: BigUint64Array;
  checksum: string;
}

export function trailerBytes(nBlocks: number): number {
  return nBlocks * 8 + FOOTER_BYTES;
}

export function encodeTrailer(meta: Omit<ChunkMeta, 'checksum' | 'blockSizeBytes'>): { bytes: Buffer; checksum: string } {
  const n = meta.blockHashes.length;
  const buf = Buffer.alloc(trailerBytes(n));
  for (let i = 0; i < n; i++) buf.writeBigUInt64LE(meta.blockHashes[i]!, i * 8);
  const f = n * 8;
  MAGIC.copy(buf, f);
  buf.writeBigUInt64LE(BigInt(meta.handle), f + 8);
  buf.writeUInt32LE(meta.version, f + 16);
  buf.writeUInt32LE(BLOCK_SIZE_BYTES, f + 20);
  buf.writeBigUInt64LE(BigInt(meta.length), f + 24);
  buf.writeUInt32LE(n, f + 32);
  const checksum = chunkChecksum(meta.blockHashes);
  buf.writeBigUInt64LE(BigInt('0x' + checksum), f + 40);
  buf.writeBigUInt64LE(hashBlock(buf.subarray(0, f + 56)), f + 56);
  return { bytes: buf, checksum };
}

/** Reads the footer's fixed part; throws when it is not a complete, intact chunk file. */
export function decodeFooter(footer: Buffer, fileSize: number): { nBlocks: number; length: number; handle: number; version: number } {
  if (footer.length !== FOOTER_BYTES || !footer.subarray(0, 8).equals(MAGIC)) throw new Error('chunk file has no valid footer');
  const length = Number(footer.readBigUInt64LE(24));
  const nBlocks = footer.readUInt32LE(32);
  if (footer.readUInt32LE(20) !== BLOCK_SIZE_BYTES) throw new Error('chunk file uses another block size');
  if (nBlocks !== Math.ceil(length / BLOCK_SIZE_BYTES) || length + trailerBytes(nBlocks) !== fileSize) throw new Error('chunk file size does not match its footer');
  return { nBlocks, length, handle: Number(footer.readBigUInt64LE(8)), version: footer.readUInt32LE(16) };
}

/** Verifies the trailer (block hashes + footer) and returns the chunk's metadata. */
export function decodeTrailer(trailer: Buffer): ChunkMeta {
  const f = trailer.length - FOOTER_BYTES;
  const want = trailer.readBigUInt64LE(f + 56);
  if (hashBlock(trailer.subarray(0, f + 56)) !== want) throw new Error('chunk trailer checksum mismatch');
  const n = trailer.readUInt32LE(f + 32);
  const blockHashes = new BigUint64Array(n);
  for (let i = 0; i < n; i++) blockHashes[i] = trailer.readBigUInt64LE(i * 8);
  return {
    handle: Number(trailer.readBigUInt64LE(f + 8)),
    version: trailer.readUInt32LE(f + 16),
    length: Number(trailer.readBigUInt64LE(f + 24)),
    blockSizeBytes: trailer.readUInt32LE(f + 20),
    blockHashes,
    checksum: trailer.readBigUInt64LE(f + 40).toString(16).padStart(16, '0'),
  };
}
