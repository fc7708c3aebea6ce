// The additional checksums S3 clients send with a body (x-amz-checksum-<algorithm>, as a header
// or a trailer), computed incrementally as the body streams. Values are base64 of the big-endian
// digest, as S3 writes them.
import { createHash, type Hash } from 'node:crypto';
import { crc32 } from 'node:zlib';
import { S3Error } from './errors.js';

export interface Checksum { update(b: Buffer): void; digestBase64(): string }

const CRC32C_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0x82f63b78 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

/** CRC-32C (Castagnoli), reflected, as S3's CRC32C. */
export function crc32c(b: Buffer, previous = 0): number {
  let c = ~previous >>> 0;
  for (let i = 0; i < b.length; i++) c = CRC32C_TABLE[(c ^ b[i]!) & 0xff]! ^ (c >>> 8);
  return ~c >>> 0;
}

function u32(n: number): string {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b.toString('base64');
}

function crc(fn: (b: Buffer, prev: number) => number): Checksum {
  let v = 0;
  return { update: (b) => void (v = fn(b, v)), digestBase64: () => u32(v) };
}

function hash(name: 'sha1' | 'sha256'): Checksum {
  const h: Hash = createHash(name);
  return { update: (b) => void h.update(b), digestBase64: () => h.digest('base64') };
}

export const CHECKSUM_ALGORITHMS = ['crc32', 'crc32c', 'sha1', 'sha256'] as const;
export type ChecksumAlgorithm = (typeof CHECKSUM_ALGORITHMS)[number];

/** A running checksum for `x-amz-checksum-<name>`; CRC64NVME (and anything else) is refused, not ignored. */
export function createChecksum(name: string): Checksum {
  switch (name) {
    case 'crc32': return crc((b, p) => crc32(b, p));
    case 'crc32c': return crc(crc32c);
    case 'sha1': return hash('sha1');
    case 'sha256': return hash('sha256');
    default: throw new S3Error('InvalidRequest', `checksum algorithm ${JSON.stringify(name)} is not supported (crc32, crc32c, sha1 and sha256 are); unset it in the client`);
  }
}

/** `x-amz-checksum-crc32` → `crc32`; undefined for other names. */
export function checksumHeaderAlgorithm(header: string): string | undefined {
  const m = /^x-amz-checksum-([a-z0-9]+)$/.exec(header.toLowerCase());
  return m && m[1] !== 'type' && m[1] !== 'algorithm' ? m[1] : undefined;
}
