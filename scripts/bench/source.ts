// The bytes every transfer uses: one file of random bytes, written once, with the xxHash64 of the
// whole and of each client's slice, so every download can be checked against what was sent.
import { execFileSync } from 'node:child_process';
import { randomFillSync } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { streamHash } from '../../common/checksum.js';
import { MiB } from './stats.js';

/** `hash`: xxHash64 of the slice's bytes (common/checksum.ts streamHash), hex. */
export interface Slice { offsetBytes: number; lengthBytes: number; hash: string }

export interface SourceFile {
  path: string;
  sizeBytes: number;
  hash: string;
  /** The file cut into `clients` consecutive slices: what each of N concurrent clients uploads. */
  slices: Slice[];
}

/** Slice i of n: [floor(i·size/n), floor((i+1)·size/n)). */
export function sliceBounds(sizeBytes: number, n: number): { offsetBytes: number; lengthBytes: number }[] {
  return Array.from({ length: n }, (_, i) => {
    const start = Math.floor((i * sizeBytes) / n);
    return { offsetBytes: start, lengthBytes: Math.floor(((i + 1) * sizeBytes) / n) - start };
  });
}

export async function writeSourceFile(path: string, sizeBytes: number, clients: number): Promise<SourceFile> {
  const bounds = sliceBounds(sizeBytes, clients);
  const whole = streamHash();
  const sliceHashes = bounds.map(() => streamHash());
  const buf = Buffer.allocUnsafe(MiB);
  const fh = await open(path, 'w');
  try {
    let slice = 0;
    for (let pos = 0; pos < sizeBytes;) {
      const piece = buf.subarray(0, Math.min(MiB, sizeBytes - pos));
      randomFillSync(piece);
      whole.update(piece);
      // A piece may straddle slice boundaries: each part goes to its own slice's hash.
      for (let at = 0; at < piece.length;) {
        const sliceEnd = bounds[slice]!.offsetBytes + bounds[slice]!.lengthBytes;
        const take = Math.min(piece.length - at, sliceEnd - (pos + at));
        sliceHashes[slice]!.update(piece.subarray(at, at + take));
        at += take;
        if (pos + at === sliceEnd && slice < bounds.length - 1) slice++;
      }
      await fh.write(piece, 0, piece.length, pos);
      pos += piece.length;
    }
  } finally {
    await fh.close();
  }
  return {
    path, sizeBytes, hash: whole.digest(),
    slices: bounds.map((b, i) => ({ ...b, hash: sliceHashes[i]!.digest() })),
  };
}

export type CacheState = 'cold' | 'warm';

/**
 * Empties the kernel's page cache so a read comes from the disk: needs root on a real kernel
 * (containers and sandboxes usually refuse). 'warm' says it could not, or was told not to.
 */
export function dropPageCache(allowed: boolean): CacheState {
  if (!allowed) return 'warm';
  try {
    execFileSync('sync');
    writeFileSync('/proc/sys/vm/drop_caches', '3\n');
    return 'cold';
  } catch {
    return 'warm';
  }
}
