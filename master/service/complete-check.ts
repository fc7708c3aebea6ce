// What the leader checks of a complete before proposing it: that it can apply (a refused command
// costs no Raft log space), and that every chunk's length and checksum is what a chunkserver
// reported storing (its signed write receipt, common/store-receipt.ts), not merely what the client says.
import { DfsError } from '../../common/errors.js';
import type { CompleteRequest } from '../../common/protocol.js';
import { openStoreReceipt } from '../../common/store-receipt.js';
import { checkAppend } from '../state/append.js';
import { Fail } from '../state/failure.js';
import type { MasterState } from '../state/index.js';

/** A chunk of a complete that passed: the servers whose receipts vouch for it. */
export interface VouchedChunk { handle: number; version: number; servers: string[] }

/**
 * The chunks of `req`, each with the servers whose receipts vouch for its length and checksum, or
 * undefined when the write is unknown to this state (finished, abandoned, never made: the caller
 * lets the log say which, or a session answer a retry). Throws what apply would refuse
 * (INVALID_ARGUMENT, WRITE_NOT_FOUND) and COMPLETE_MISMATCH for a chunk no receipt vouches for.
 */
export function checkComplete(state: MasterState, req: CompleteRequest, secret: Buffer): VouchedChunk[] | undefined {
  const w = state.writes.get(req.writeId);
  if (!w) return undefined;
  if (w.append) {
    // An append: the new chunks and the filled last chunk, at the version reserved for it at open.
    const chunks = req.chunks.map(({ handle, length, checksum }) => ({ handle, length, checksum }));
    const last = req.last ? { last: { handle: req.last.handle, length: req.last.length, checksum: req.last.checksum } } : {};
    try {
      checkAppend({ op: 'complete', writeId: req.writeId, length: req.length, chunks, nowMs: 0, ...last }, w, w.append);
    } catch (err) {
      throw err instanceof Fail ? new DfsError(err.code, err.message) : err; // what apply would answer
    }
    const vouched = req.chunks.map((c, i) => vouch(state, c, i, secret));
    return req.last ? [vouch(state, req.last, -1, secret, w.append.fill!.newVersion), ...vouched] : vouched;
  }
  if (req.chunks.length !== w.chunks.length) throw new DfsError('INVALID_ARGUMENT', `write has ${w.chunks.length} chunks allocated, complete names ${req.chunks.length}`);
  let total = 0;
  const vouched = req.chunks.map((c, i) => {
    if (c.handle !== w.chunks[i]) throw new DfsError('INVALID_ARGUMENT', `chunk ${i} is handle ${w.chunks[i]}, not ${c.handle}`);
    const last = i === req.chunks.length - 1;
    if (c.length > w.chunkSizeBytes || (!last && c.length !== w.chunkSizeBytes) || (last && c.length === 0)) {
      throw new DfsError('INVALID_ARGUMENT', `chunk ${i} has length ${c.length}; all but the last must be ${w.chunkSizeBytes} and the last 1..${w.chunkSizeBytes}`);
    }
    total += c.length;
    return vouch(state, c, i, secret);
  });
  if (total !== req.length) throw new DfsError('INVALID_ARGUMENT', `chunk lengths add up to ${total}, not ${req.length}`);
  // Whether the path was removed or replaced meanwhile stays apply's to say: it depends on the log's order.
  return vouched;
}

/** The servers whose receipts vouch for chunk `i` as the client names it; COMPLETE_MISMATCH when none does or one says otherwise. */
function vouch(state: MasterState, c: CompleteRequest['chunks'][number], i: number, secret: Buffer, newVersion?: number): VouchedChunk {
  const version = newVersion ?? state.chunks.versionOf(c.handle);
  const which = i < 0 ? 'the filled last chunk' : `chunk ${i}`; // i < 0: an append's last chunk
  if (version === undefined) throw new DfsError('WRITE_NOT_FOUND', `${which} (handle ${c.handle}) is no longer allocated to this write`);
  const servers = new Set<string>();
  const refuse = (reason: string, message: string): never => {
    throw new DfsError('COMPLETE_MISMATCH', `${which} (handle ${c.handle}): ${message}; the file was not completed`, { index: i, handle: c.handle, reason });
  };
  for (const raw of c.receipts) {
    const r = openStoreReceipt(secret, raw);
    if (!r) refuse('receipt', 'a write receipt is not one a chunkserver of this cluster signed');
    if (r!.handle !== c.handle || r!.version !== version) refuse('receipt', `a write receipt is for chunk ${r!.handle} version ${r!.version}, not version ${version} of this one`);
    if (r!.length !== c.length) refuse('length', `complete says ${c.length} bytes, chunkserver ${r!.server} stored ${r!.length}`);
    if (r!.checksum !== c.checksum) refuse('checksum', `complete's checksum is not the one chunkserver ${r!.server} stored`);
    servers.add(r!.server);
  }
  if (servers.size === 0) refuse('unreported', 'no chunkserver reported storing it (no write receipt); write the chunk again');
  return { handle: c.handle, version, servers: [...servers] };
}
