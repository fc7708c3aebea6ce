// MasterState's renew command (POST /v1/fs/renew): a live client extends its writes' leases
// however slowly their bytes come; a write the master no longer knows is named, or refused.
import t from 'tap';
import type { Command, CommandResult } from '../../master/commands.js';
import { MasterState } from '../../master/state/index.js';

const LEASE = 1000;
const create = (path: string, writeId: string, nowMs: number): Extract<Command, { op: 'create' }> => ({
  op: 'create', path, overwrite: false, parents: true, replication: 1, chunkSizeBytes: 4, writeId, leaseMs: LEASE, nowMs,
});
const renew = (writeIds: string[], nowMs: number): Command => ({ op: 'renew', writeIds, nowMs });

function ok(s: MasterState, cmd: Command): unknown {
  const r = s.apply(cmd);
  if (!r.ok) throw new Error(`${cmd.op} failed: ${r.message}`);
  return r.value;
}

t.test('renew extends each open write\'s lease and names the unknown ones', async (t) => {
  const s = new MasterState();
  ok(s, create('/a', 'write-aaaa', 0));
  ok(s, create('/b', 'write-bbbb', 0));
  t.same(ok(s, renew(['write-aaaa', 'gone-gone'], 900)), { unknown: ['gone-gone'] });
  t.equal(s.writes.get('write-aaaa')!.leaseExpiresAtMs, 900 + LEASE, 'renewed from the renew time');
  t.equal(s.writes.get('write-bbbb')!.leaseExpiresAtMs, LEASE, 'a write not named is not renewed');
  ok(s, renew(['write-aaaa'], 500));
  t.equal(s.writes.get('write-aaaa')!.leaseExpiresAtMs, 900 + LEASE, 'an older clock reading never shortens a lease');
  t.same(ok(s, { op: 'expireLeases', nowMs: 1500 }), { abandoned: ['/b'] }, 'the renewed write outlives the other');
});

t.test('renew of writes none of which is open: WRITE_NOT_FOUND, nothing changes', async (t) => {
  const s = new MasterState();
  ok(s, create('/a', 'write-aaaa', 0));
  const before = s.snapshot().toString();
  const r = s.apply(renew(['gone-gone'], 10)) as Extract<CommandResult, { ok: false }>;
  t.equal(r.ok, false);
  t.equal(r.code, 'WRITE_NOT_FOUND');
  t.equal(s.snapshot().toString(), before);
});

t.test('a path held by a live write says when its lease runs out', async (t) => {
  const s = new MasterState();
  ok(s, create('/a', 'write-aaaa', 0));
  const r = s.apply({ ...create('/a', 'write-cccc', 200), overwrite: true }) as Extract<CommandResult, { ok: false }>;
  t.equal(r.code, 'FILE_BUSY');
  t.equal(r.message, '/a is being written by another client; if that client is gone, its write lease expires in 1 s (a writer that is still running keeps renewing it); try again then');
});
