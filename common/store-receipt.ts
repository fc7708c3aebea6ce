import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * Write receipts: what a chunkserver says, signed under the cluster secret, when it has stored a
 * chunk durably: its id, the chunk's handle and version, and the length and checksum of the bytes
 * on its disk. Each hop of a write pipeline puts its receipt in its reply; the client passes them
 * on in `complete`, and the master completes a file only with chunks whose length and checksum a
 * receipt vouches for, and counts as locations only the servers whose receipts it checked (the
 * chunkservers' own word, as their heartbeats are). A client cannot make one (it has no secret), so
 * it cannot complete a file with lengths or checksums that no replica has. Carried in the write's
 * reply, a receipt is there when the client calls complete: no race with the heartbeat that
 * reports the chunk too.
 *
 * The signature covers a label before the payload, so a receipt is never taken for a chunk
 * access token (common/auth.ts) nor the other way round.
 */
export interface StoreReceipt { server: string; handle: number; version: number; length: number; checksum: string }

/** Longest receipt accepted. */
export const MAX_RECEIPT_CHARS = 1024;
const LABEL = 'dfs stored chunk\n';

function mac(secret: Buffer, payload: string): string {
  return createHmac('sha256', secret).update(LABEL).update(payload).digest('base64url');
}

export function signStoreReceipt(secret: Buffer, r: StoreReceipt): string {
  const payload = Buffer.from(JSON.stringify({ server: r.server, handle: r.handle, version: r.version, length: r.length, checksum: r.checksum })).toString('base64url');
  return `${payload}.${mac(secret, payload)}`;
}

/** The receipt, if `receipt` is one this cluster signed and well formed; undefined otherwise. */
export function openStoreReceipt(secret: Buffer, receipt: unknown): StoreReceipt | undefined {
  if (typeof receipt !== 'string' || receipt.length > MAX_RECEIPT_CHARS || !/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/.test(receipt)) return undefined;
  const [payload, sig] = receipt.split('.') as [string, string];
  const expected = Buffer.from(mac(secret, payload));
  const got = Buffer.from(sig);
  if (expected.length !== got.length || !timingSafeEqual(expected, got)) return undefined;
  try {
    const r = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as StoreReceipt;
    if (typeof r !== 'object' || r === null || typeof r.server !== 'string' || typeof r.checksum !== 'string') return undefined;
    if (!Number.isSafeInteger(r.handle) || !Number.isSafeInteger(r.version) || !Number.isSafeInteger(r.length)) return undefined;
    return r;
  } catch {
    return undefined;
  }
}
