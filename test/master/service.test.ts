// MasterService as the leader core's driver, on a ManualClock and an in-memory replicator: a
// heartbeat answers without running a scan, the driver's tick runs it, and its orders ride on
// the next reply.
import t from 'tap';
import { ManualClock } from '../../common/clock.js';
import type { Logger } from '../../common/log.js';
import type { HeartbeatRequest, RegisterRequest } from '../../common/protocol.js';
import type { Command, CommandResult } from '../../master/commands.js';
import type { Replicator } from '../../master/replicator.js';
import { MasterService, type MasterConfig } from '../../master/service/index.js';
import { MasterState } from '../../master/state/index.js';

/** A group of one that applies at once: what the driver needs of Raft, no more. */
class InstantReplicator implements Replicator {
  readBarriers = 0;
  private leader = false;
  private listeners: ((isLeader: boolean) => void)[] = [];
  constructor(readonly state: MasterState) {}
  async propose(cmd: Command): Promise<CommandResult> {
    return this.state.apply(cmd);
  }
  async registerSession(): Promise<string> {
    return 's1';
  }
  async readBarrier(): Promise<void> {
    this.readBarriers++;
  }
  isLeader(): boolean {
    return this.leader;
  }
  leaderAddr(): string | undefined {
    return undefined;
  }
  onLeaderChange(fn: (isLeader: boolean) => void): void {
    this.listeners.push(fn);
  }
  elect(): void {
    this.leader = true;
    for (const fn of this.listeners) fn(true);
  }
  status() {
    return { role: 'leader' as const, term: 1, commitIndex: 0, appliedIndex: 0, leaderId: 'm1', snapshotIndex: 0, snapshotsReceived: 0 };
  }
  async close(): Promise<void> {}
}

const quiet = { info() {}, warn() {}, error() {}, debug() {} } as unknown as Logger;
const DEAD = 1000;
const config: MasterConfig = {
  id: 'm1', addr: 'm1:1', clusterId: 'c', chunkSizeBytes: 4, defaultReplication: 2, writeLeaseMs: 60_000, deadTimeoutMs: DEAD,
  writeTokenTtlMs: 60_000, readTokenTtlMs: 60_000, secret: Buffer.from('s'), peers: { m1: 'm1:1' }, safeModeMs: 0, gcGraceMs: 60_000, repair: { balanceThreshold: 0 },
};

const stats = (id: string) => ({ id, addr: `${id}:1`, capacityBytes: 1000, freeBytes: 900, usedBytes: 100, activeWrites: 0, activeReads: 0, copyRateBytesPerSec: 0 });
const beat = (id: string, added: number[] = []): HeartbeatRequest => ({ ...stats(id), added: added.map((handle) => ({ handle, version: 1, length: 3 })), removed: [], copyFailed: [] });
const register = (id: string, handles: number[]): RegisterRequest => ({ ...stats(id), chunks: handles.map((handle) => ({ handle, version: 1, length: 3 })) });
const settle = async () => {
  for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
};

t.test('a heartbeat never waits for a scan; the tick runs it and its copies ride on the next reply', async (t) => {
  const state = new MasterState();
  state.apply({ op: 'create', path: '/f', overwrite: false, replication: 2, chunkSizeBytes: 4, writeId: 'w', leaseMs: 60_000, nowMs: 0 });
  state.apply({ op: 'allocate', writeId: 'w', index: 0, nowMs: 0 });
  state.apply({ op: 'complete', writeId: 'w', length: 3, chunks: [{ handle: 1, length: 3, checksum: 'x' }], nowMs: 0 });
  const clock = new ManualClock(1_000_000);
  const repl = new InstantReplicator(state);
  const svc = new MasterService({ config, getState: () => state, replicator: repl, log: quiet, clock, random: () => 0.5 });
  repl.elect();
  await svc.chunkservers.register(register('a', [1]));
  await svc.chunkservers.register(register('b', [1]));
  await svc.chunkservers.register(register('c', []));
  // b goes silent past the dead timeout: chunk 1 has one good replica of two.
  clock.advance(DEAD + 1);
  await svc.chunkservers.heartbeat(beat('a'));
  t.same((await svc.chunkservers.heartbeat(beat('c'))).copies, [], 'no scan has run: nothing ordered yet');
  // c and a hold links to the leader (a fake response that keeps what is written down it).
  const written = new Map<string, string[]>();
  for (const id of ['a', 'c']) {
    const lines: string[] = [];
    written.set(id, lines);
    let closed = (): void => undefined;
    const res = { writeHead() {}, write: (s: string) => lines.push(s), end: () => closed(), once: (_e: 'close', fn: () => void) => (closed = fn) };
    svc.links.accept({ query: { id }, socket: { destroyed: false } } as never, res as never);
  }
  svc.tick();
  await settle();
  t.same(written.get('c')!.slice(1), ['{"beat":true}\n'], 'the scan asked the target of its copy, down its link, to beat now');
  t.same(written.get('a')!.slice(1), [], 'and no other server');
  const reply = await svc.chunkservers.heartbeat(beat('c'));
  t.same(reply.copies.map((o) => [o.handle, o.source]), [[1, 'a:1']], 'the scan the tick ran ordered the copy, collected by the target');

  // The copy is reported done: the reply comes back at once, and the scan it asks for waits for the tick.
  clock.advance(200);
  const before = svc.repair.copiesDone;
  const done = await svc.chunkservers.heartbeat(beat('c', [1]));
  t.same(done, { reregister: false, deletes: [], copies: [], namespaceId: state.namespaceId, chunkKeys: done.chunkKeys });
  t.type(done.chunkKeys, 'string', 'the reply carries the sealed chunk keys');
  t.match(state.namespaceId, /^[0-9a-f]{16}$/, 'the first registration named the namespace');
  t.equal(svc.repair.copiesDone, before, 'the heartbeat did not scan');
  t.ok(svc.core.scanDue(clock.nowMs()), 'it asked for a scan soon (before the periodic one is due)');
  svc.tick();
  await settle();
  t.equal(svc.repair.copiesDone, before + 1, 'the tick\'s scan settled the copy');
  svc.stop();
});

t.test('the tick proposes expireLeases once a lease has run out', async (t) => {
  const state = new MasterState();
  state.apply({ op: 'create', path: '/g', overwrite: false, replication: 1, chunkSizeBytes: 4, writeId: 'w', leaseMs: 1000, nowMs: 1_000_000 });
  const clock = new ManualClock(1_000_000);
  const repl = new InstantReplicator(state);
  const svc = new MasterService({ config, getState: () => state, replicator: repl, log: quiet, clock, random: () => 0.5 });
  repl.elect();
  svc.tick();
  await settle();
  t.ok(state.writes.has('w'), 'the lease still runs');
  // Leases are checked every quarter of the configured lease (15 s here), not on every tick.
  clock.advance(15_000);
  svc.tick();
  await settle();
  t.notOk(state.writes.has('w'), 'the expired write was abandoned');
  t.equal(state.lookup('/g'), undefined);
});
