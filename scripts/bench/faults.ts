// Faults, as a client sees them: kill -9 of the master leader in the middle of a stream of file
// creations (how long the stream stands still), and kill -9 of a chunkserver holding data (how
// long until every chunk has its replicas again). Only processes of the benchmark's own local
// cluster are ever killed, by pid.
import { createReadStream } from 'node:fs';
import { Readable, Writable } from 'node:stream';
import { streamHash } from '../../common/checksum.js';
import type { ClusterStatus } from '../../common/protocol.js';
import type { ClusterContext } from './context.js';
import type { LocalCluster } from './local-cluster.js';
import { addRatios, figureFromRuns, type Figure } from './report.js';
import type { SourceFile } from './source.js';
import { measureFailoverGap, mibPerSec, sleep } from './stats.js';

export interface FaultOptions extends ClusterContext {
  cluster: LocalCluster;
  source: SourceFile;
  /** --files: bounds the length of the workload around the leader kill. */
  files: number;
}

/** Longest wait for re-replication before the benchmark gives up on it (the dead timeout comes first). */
const REPAIR_TIMEOUT_MS = 10 * 60_000;
const POLL_MS = 200;

export async function leaderGap(o: FaultOptions): Promise<Figure> {
  const status = await o.client.status();
  const leader = o.cluster.byAddr(status.leader ?? '');
  if (!leader) throw new Error(`the leader ${status.leader} is not one of this benchmark's masters`);
  // 100 creations before the kill and 300 after, fewer for a small --files.
  const killAt = Math.min(100, o.files);
  const gap = await measureFailoverGap(
    (i) => o.client.put(Readable.from([]), `${o.root}/faults/leader/f${i}`, { parents: true, replication: o.replication }),
    () => o.cluster.kill(leader),
    killAt,
    4 * killAt,
  );
  o.log(`leader ${leader.id} killed: creations stood still for ${gap.gapMs.toFixed(0)} ms`);
  return figureFromRuns('faults.leader-gap', 'kill -9 leader: client-visible gap', 'ms', [gap.gapMs], {
    details: { workload: 'sequential empty-file creations', longestOpMs: gap.longestOpMs, killed: leader.id },
  });
}

/** Hashes a dfs file as it streams by: the repaired data must still be the data. */
async function verify(o: FaultOptions, path: string): Promise<void> {
  const hash = streamHash();
  await o.client.get(path, new Writable({ write: (b: Buffer, _e, done) => { hash.update(b); done(); } }));
  if (hash.digest() !== o.source.hash) throw new Error(`WRONG BYTES: ${path} does not read back as uploaded after re-replication`);
}

interface RepairTimes { detectMs: number; totalMs: number; bytesCopied: number; peakUnder: number }

/** Polls the cluster status until the victim is dead and no chunk is under-replicated. */
async function waitForRepair(o: FaultOptions, victimId: string, killedAt: number, copiedBefore: number): Promise<RepairTimes> {
  let detectMs: number | undefined;
  let peakUnder = 0;
  for (;;) {
    const s: ClusterStatus = await o.client.status();
    const now = performance.now() - killedAt;
    const dead = s.chunkservers.find((c) => c.id === victimId)?.alive === false;
    peakUnder = Math.max(peakUnder, s.underReplicatedChunks);
    if (dead && detectMs === undefined) detectMs = now;
    if (dead && s.underReplicatedChunks === 0 && s.missingChunks === 0) {
      return { detectMs: detectMs!, totalMs: now, bytesCopied: s.repair.bytesCopied - copiedBefore, peakUnder };
    }
    if (s.missingChunks > 0) throw new Error(`${s.missingChunks} chunks lost every replica after one chunkserver died`);
    if (now > REPAIR_TIMEOUT_MS) throw new Error(`re-replication did not finish within ${REPAIR_TIMEOUT_MS / 60_000} minutes (${s.underReplicatedChunks} chunks under-replicated)`);
    await sleep(POLL_MS);
  }
}

export async function chunkserverRepair(o: FaultOptions): Promise<Figure[]> {
  const path = `${o.root}/faults/repair.bin`;
  await o.client.put(createReadStream(o.source.path, { highWaterMark: 1024 * 1024 }), path, { parents: true, replication: o.replication });
  const before = await o.client.status();
  // The server holding the most replicas: the most there is to copy.
  const victimStatus = before.chunkservers.filter((c) => c.alive).sort((a, b) => b.chunkCount - a.chunkCount)[0];
  const victim = victimStatus && o.cluster.byAddr(victimStatus.addr);
  if (!victim) throw new Error('no live chunkserver of this benchmark to kill');
  await o.cluster.kill(victim);
  const killedAt = performance.now();
  const t = await waitForRepair(o, victim.id, killedAt, before.repair.bytesCopied);
  await verify(o, path);
  const repairMs = t.totalMs - t.detectMs;
  o.log(`chunkserver ${victim.id} killed (${victimStatus!.chunkCount} chunks): dead after ${t.detectMs.toFixed(0)} ms, fully replicated after ${t.totalMs.toFixed(0)} ms`);
  const details = { killed: victim.id, chunksHeld: victimStatus!.chunkCount, peakUnderReplicated: t.peakUnder, bytesCopied: t.bytesCopied, detectMs: t.detectMs, fileBytes: o.source.sizeBytes };
  const figures = [figureFromRuns('faults.repair-total', 'kill -9 chunkserver: until fully replicated', 'ms', [t.totalMs], { details })];
  if (t.bytesCopied > 0 && repairMs > 0) {
    const rate = figureFromRuns('faults.repair-rate', 're-replication copy rate, after detection', 'MiB/s', [mibPerSec(t.bytesCopied, repairMs)], { details: { repairMs, bytesCopied: t.bytesCopied } });
    figures.push(addRatios(rate, o.ceilings, ['ceiling.write1']));
  }
  return figures;
}

export async function measureFaults(o: FaultOptions): Promise<Figure[]> {
  const figures: Figure[] = [];
  if (o.cluster.masters.length > 1) figures.push(await leaderGap(o));
  else o.log('one master: no leader to fail over from, skipping the leader kill');
  figures.push(...await chunkserverRepair(o));
  return figures;
}
