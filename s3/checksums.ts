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

/**
 * CRC-64/NVME (polynomial 0xad93d23594c93659, reflected, init and xorout all ones), the default
 * checksum of recent AWS SDKs (the C++ one in pyarrow sends it with every part). As two 32-bit
 * halves: V8 has no fast 64-bit integers, and BigInt per byte is some 50× slower.
 */
const CRC64NVME_TABLE = (() => {
  const lo = new Uint32Array(256);
  const hi = new Uint32Array(256);
  // The reflected polynomial 0x9a6c9329ac4bc9b5, in halves.
  const polyHi = 0x9a6c9329;
  const polyLo = 0xac4bc9b5;
  for (let n = 0; n < 256; n++) {
    let cLo = n;
    let cHi = 0;
    for (let k = 0; k < 8; k++) {
      const carry = cLo & 1;
      cLo = ((cLo >>> 1) | (cHi << 31)) >>> 0;
      cHi = cHi >>> 1;
      if (carry) {
        cLo = (cLo ^ polyLo) >>> 0;
        cHi = (cHi ^ polyHi) >>> 0;
      }
    }
    lo[n] = cLo;
    hi[n] = cHi;
  }
  return { lo, hi };
})();

/** A running CRC-64/NVME: its state is the two halves before the final inversion. */
export class Crc64Nvme {
  private lo = 0xffffffff;
  private hi = 0xffffffff;

  update(b: Uint8Array): this {
    const { lo: tLo, hi: tHi } = CRC64NVME_TABLE;
    let lo = this.lo;
    let hi = this.hi;
    for (let i = 0; i < b.length; i++) {
      const idx = (lo ^ b[i]!) & 0xff;
      lo = ((lo >>> 8) | (hi << 24)) ^ tLo[idx]!;
      hi = (hi >>> 8) ^ tHi[idx]!;
    }
    this.lo = lo >>> 0;
    this.hi = hi >>> 0;
    return this;
  }

  /** The 8 bytes of the digest, big-endian, as S3 writes them. */
  digest(): Buffer {
    const out = Buffer.alloc(8);
    out.writeUInt32BE(~this.hi >>> 0, 0);
    out.writeUInt32BE(~this.lo >>> 0, 4);
    return out;
  }
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

export const CHECKSUM_ALGORITHMS = ['crc32', 'crc32c', 'crc64nvme', 'sha1', 'sha256'] as const;
export type ChecksumAlgorithm = (typeof CHECKSUM_ALGORITHMS)[number];

/** A running checksum for `x-amz-checksum-<name>`; any other algorithm is refused, not ignored. */
export function createChecksum(name: string): Checksum {
  switch (name) {
    case 'crc32': return crc((b, p) => crc32(b, p));
    case 'crc32c': return crc(crc32c);
    case 'crc64nvme': {
      const c = new Crc64Nvme();
      return { update: (b) => void c.update(b), digestBase64: () => c.digest().toString('base64') };
    }
    case 'sha1': return hash('sha1');
    case 'sha256': return hash('sha256');
    default: throw new S3Error('InvalidRequest', `checksum algorithm ${JSON.stringify(name)} is not supported (crc32, crc32c, crc64nvme, sha1 and sha256 are); unset it in the client`);
  }
}

/** `x-amz-checksum-crc32` → `crc32`; undefined for other names. */
export function checksumHeaderAlgorithm(header: string): string | undefined {
  const m = /^x-amz-checksum-([a-z0-9]+)$/.exec(header.toLowerCase());
  return m && m[1] !== 'type' && m[1] !== 'algorithm' ? m[1] : undefined;
}
