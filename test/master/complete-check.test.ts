// master/service/complete-check.ts: what the leader checks of a complete before proposing it,
// here for an append, whose filled last chunk is vouched for at the version reserved at open.
import t from 'tap';
import { DfsError } from '../../common/errors.js';
import { signStoreReceipt } from '../../common/store-receipt.js';
import { checkComplete } from '../../master/service/complete-check.js';
import { MasterState } from '../../master/state/index.js';

const SECRET = Buffer.alloc(32, 7);
const CHUNK = 8;

function apply(s: MasterState, cmd: Parameters<MasterState['apply']>[0]): unknown {
  const r = s.apply(cmd);
  if (!r.ok) throw new Error(`${cmd.op}: ${r.code} ${r.message}`);
  return r.value;
}

/** A file of 5 bytes in one chunk, and an append opened on it: the last chunk has room. */
function opened() {
  const s = new MasterState();
  apply(s, { op: 'create', path: '/f', writeId: 'w1', nowMs: 1, overwrite: false, parents: false, replication: 2, chunkSizeBytes: CHUNK, leaseMs: 1000 });
  const { handle } = apply(s, { op: 'allocate', writeId: 'w1', index: 0, nowMs: 1 }) as { handle: number };
  apply(s, { op: 'complete', writeId: 'w1', length: 5, chunks: [{ handle, length: 5, checksum: 'c5' }], nowMs: 1 });
  const open = apply(s, { op: 'append', path: '/f', writeId: 'a1', leaseMs: 1000, nowMs: 2 }) as { fill: { handle: number; version: number; newVersion: number } };
  return { s, handle, fill: open.fill };
}

const receipt = (server: string, handle: number, version: number, length: number, checksum: string) => signStoreReceipt(SECRET, { server, handle, version, length, checksum });
const code = (fn: () => unknown): string => {
  try {
    fn();
    return 'OK';
  } catch (err) {
    return err instanceof DfsError ? `${err.code}${err.details.reason ? `:${String(err.details.reason)}` : ''}` : String(err);
  }
};

t.test('an append\'s filled last chunk is checked against receipts at its new version', async (t) => {
  const { s, handle, fill } = opened();
  t.equal(fill.handle, handle);
  t.ok(fill.newVersion > fill.version, 'a new version is reserved at open');
  const req = (receipts: string[], length = 8, checksum = 'c8') => ({ writeId: 'a1', length, chunks: [], last: { handle, length, checksum, replicas: [], receipts } });
  const good = checkComplete(s, req([receipt('cs1', handle, fill.newVersion, 8, 'c8'), receipt('cs2', handle, fill.newVersion, 8, 'c8')]), SECRET);
  t.same(good, [{ handle, version: fill.newVersion, servers: ['cs1', 'cs2'] }], 'vouched by both servers at the new version');
  t.equal(code(() => checkComplete(s, req([receipt('cs1', handle, fill.version, 8, 'c8')]), SECRET)), 'COMPLETE_MISMATCH:receipt', 'a receipt at the old version is not one for this append');
  t.equal(code(() => checkComplete(s, req([receipt('cs1', handle, fill.newVersion, 8, 'other')]), SECRET)), 'COMPLETE_MISMATCH:checksum', 'a checksum no replica stored');
  t.equal(code(() => checkComplete(s, req([receipt('cs1', handle, fill.newVersion, 7, 'c8')]), SECRET)), 'COMPLETE_MISMATCH:length', 'a length no replica stored');
  t.equal(code(() => checkComplete(s, req([]), SECRET)), 'COMPLETE_MISMATCH:unreported', 'no receipt at all');
  t.equal(code(() => checkComplete(s, req([receipt('cs1', handle, fill.newVersion, 8, 'c8')], 8, 'c8'), Buffer.alloc(32, 9))), 'COMPLETE_MISMATCH:receipt', 'a receipt signed with another secret');
  t.equal(code(() => checkComplete(s, req([receipt('cs1', handle, fill.newVersion, 5, 'c5')], 5, 'c5'), SECRET)), 'INVALID_ARGUMENT', 'a "filled" chunk no longer than before is refused as apply would');
  t.equal(checkComplete(s, { writeId: 'nope', length: 0, chunks: [] }, SECRET), undefined, 'an unknown write is left to the log');
});
