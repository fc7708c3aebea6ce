// Random ids that are names, not secrets: request ids, write ids, temporary chunk file names, S3 request ids.
// They are drawn from a pool of random bytes refilled RANDOM_POOL_BYTES at a time: one randomBytes
// call per id cost about 12 µs on the development machine, 4 % of a busy client's CPU (an id per
// call) and a share of the leader's (a write id per create). Keys, nonces and secrets keep calling
// randomBytes, so that their bytes never sit in a long-lived buffer.
import { randomFillSync } from 'node:crypto';
import { assert } from './limits.js';

/** Bytes drawn from the system's generator at a time. */
export const RANDOM_POOL_BYTES = 4096;
/** The longest id drawn from the pool: many ids per refill. */
export const MAX_RANDOM_ID_BYTES = 64;

const pool = Buffer.alloc(RANDOM_POOL_BYTES);
let next = RANDOM_POOL_BYTES;

/** `bytes` random bytes (each drawn once, never reused) as a string in `encoding`. */
export function randomId(bytes: number, encoding: 'hex' | 'base64url' = 'hex'): string {
  assert(Number.isInteger(bytes) && bytes >= 1 && bytes <= MAX_RANDOM_ID_BYTES, `a random id of ${bytes} bytes`);
  if (next + bytes > RANDOM_POOL_BYTES) {
    randomFillSync(pool);
    next = 0;
  }
  const id = pool.toString(encoding, next, next + bytes);
  next += bytes;
  return id;
}

