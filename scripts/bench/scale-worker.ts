// Master memory at scale, measured on the state machine itself rather than through HTTP: N
// single-chunk files are built in a MasterState by applying the very commands a master applies
// (create, allocate, complete), then the chunk locations a master would learn from 4
// chunkservers are loaded into a Registry (3 replicas per chunk). Memory is read after a full GC
// before and after each step: the V8 heap plus ArrayBuffer memory, which holds the backing
// stores of typed arrays outside the heap. Then the leader's repair scan is timed over the same
// state and locations, in one pass and in slices (how long the event loop waits at most), with
// every server alive and with one of the 4 dead (a quarter of the replicas to replace). Run as
// `node --expose-gc scale-worker.js N`; prints JSON.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { getHeapStatistics } from 'node:v8';
import { readSnapshotFile, writeSnapshotFile } from '../../master/raft/snapshot-file.js';
import type { Command } from '../../master/commands.js';
import { Registry } from '../../master/registry/index.js';
import { scanInSlices } from '../../master/leader/slices.js';
import { REPAIR_DEFAULTS, RepairScheduler } from '../../master/repair/index.js';
import { MasterState } from '../../master/state/index.js';
import type { ReportedChunk } from '../../common/protocol.js';

export interface ScaleReply {
  files: number;
  /** V8 heap and ArrayBuffer bytes together. */
  stateBytes: number;
  locationsBytes: number;
  /** The ArrayBuffer part of the above (typed-array columns). */
  stateArrayBufferBytes: number;
  locationsArrayBufferBytes: number;
  snapshotBytes: number;
  snapshotMs: number;
  snapshot: SnapshotTiming;
  buildMs: number;
  commandsPerSec: number;
  repair: RepairTiming;
  /** The same with one of the servers dead: most chunks short of a replica. */
  repairOneDead: RepairTiming;
}

/** A snapshot taken as a master takes it: captured, then written piece by piece to a file; then restored from it. */
export interface SnapshotTiming {
  /** MasterState.capture(): the stall of the capture itself, on the Raft loop. */
  captureMs: number;
  /** The longest synchronous stretch of the write: making one piece (the writes between pieces are awaited). */
  longestPieceMs: number;
  pieces: number;
  /** Restoring a state from the file, a piece at a time (blocking: done at start or on install). */
  restoreMs: number;
}

export interface RepairTiming {
  /** RepairScheduler.scan: the whole scan in one synchronous stretch, as the master ran it before. */
  onePassMs: number;
  /** scanInSlices, start to end, the other work the pauses let in (here none) included. */
  slicedMs: number;
  /** The longest synchronous stretch of the sliced scan: how long the event loop waited at most. */
  longestSliceMs: number;
  slices: number;
}

const CHUNK_SIZE_BYTES = 64 * 1024 * 1024;
/** Files per directory, as a tidy namespace would have; 1,000,000 files make 1,000 directories. */
const FILES_PER_DIR = 1000;
const CHUNKSERVERS = 4;
const REPLICATION = 3;

/** Memory in use after a full collection: the V8 heap, and ArrayBuffer backing stores (typed arrays keep their elements there, off the heap). */
function memoryAfterGc(): { heap: number; arrayBuffers: number } {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error('run with node --expose-gc: the heap is only meaningful after a full collection');
  gc();
  gc();
  return { heap: getHeapStatistics().used_heap_size, arrayBuffers: process.memoryUsage().arrayBuffers };
}

const total = (m: { heap: number; arrayBuffers: number }): number => m.heap + m.arrayBuffers;

function must(state: MasterState, cmd: Command): unknown {
  const r = state.apply(cmd);
  if (!r.ok) throw new Error(`${cmd.op} failed: ${r.code} ${r.message}`);
  return r.value;
}

/** What a master's log would hold for one upload of a one-chunk file. */
function addFile(state: MasterState, i: number, nowMs: number): void {
  const writeId = `w${String(i).padStart(10, '0')}`;
  const path = `/scale/d${Math.floor(i / FILES_PER_DIR)}/f${i}`;
  must(state, { op: 'create', path, overwrite: false, parents: true, replication: REPLICATION, chunkSizeBytes: CHUNK_SIZE_BYTES, writeId, leaseMs: 60_000, nowMs });
  const { handle } = must(state, { op: 'allocate', writeId, index: 0, nowMs }) as { handle: number };
  const checksum = (BigInt(handle) * 0x9e3779b97f4a7c15n & 0xffffffffffffffffn).toString(16).padStart(16, '0');
  must(state, { op: 'complete', writeId, length: CHUNK_SIZE_BYTES, chunks: [{ handle, length: CHUNK_SIZE_BYTES, checksum }], nowMs });
}

/** What server number `s` reports of itself, registering or heartbeating. */
const serverStats = (s: number) => ({ id: `cs${s + 1}`, addr: `127.0.0.1:${9500 + s}`, capacityBytes: 1e15, freeBytes: 1e15, usedBytes: 0, activeWrites: 0, activeReads: 0, copyRateBytesPerSec: 0 });

/** Each chunk on REPLICATION of the servers, round robin, as each would report when it registers. */
function loadLocations(registry: Registry, table: Iterable<number>): void {
  // Made here, not by the caller: an array the caller's frame still held would count as locations.
  const handles = [...table];
  for (let s = 0; s < CHUNKSERVERS; s++) {
    const chunks: ReportedChunk[] = [];
    handles.forEach((handle, i) => {
      if ((i + s) % CHUNKSERVERS < REPLICATION) chunks.push({ handle, version: 1, length: CHUNK_SIZE_BYTES });
    });
    registry.register({ ...serverStats(s), chunks });
  }
}

/** One scan of each kind, each by a fresh scheduler (so the second does not find the first's copies in flight). */
async function timeRepair(state: MasterState, registry: Registry, now: () => number): Promise<RepairTiming> {
  let t = performance.now();
  new RepairScheduler(registry, REPAIR_DEFAULTS, now).scan(state);
  const onePassMs = performance.now() - t;
  let longestSliceMs = 0;
  let slices = 1;
  t = performance.now();
  let resumed = t;
  const scan = await scanInSlices(new RepairScheduler(registry, REPAIR_DEFAULTS, now), () => state, {
    pause: async () => {
      longestSliceMs = Math.max(longestSliceMs, performance.now() - resumed);
      slices++;
      await new Promise((resolve) => setImmediate(resolve));
      resumed = performance.now();
    },
  });
  const end = performance.now();
  if (!scan) throw new Error('the sliced repair scan did not run to the end');
  return { onePassMs, slicedMs: end - t, longestSliceMs: Math.max(longestSliceMs, end - resumed), slices };
}

/** Times a snapshot through the code a master runs (capture, snapshot-file.ts), in a temp folder. */
async function timeSnapshot(state: MasterState): Promise<{ bytes: number; timing: SnapshotTiming }> {
  const dir = await mkdtemp(join(tmpdir(), 'dfs-scale-snapshot-'));
  try {
    const t0 = performance.now();
    const capture = state.capture();
    const captureMs = performance.now() - t0;
    const made = capture.pieces();
    let longestPieceMs = 0;
    let pieces = 0;
    const timed: Iterator<Uint8Array> = {
      next: () => {
        const started = performance.now();
        const next = made.next();
        longestPieceMs = Math.max(longestPieceMs, performance.now() - started);
        if (next.done !== true) pieces++;
        return next;
      },
    };
    const path = join(dir, 'raft.snapshot');
    await writeSnapshotFile(path, `${path}.tmp`, { index: 1, term: 1 }, timed);
    const t1 = performance.now();
    const read = await readSnapshotFile(path);
    const restored = MasterState.restore(read.data);
    const restoreMs = performance.now() - t1;
    if (restored.chunks.size !== state.chunks.size) throw new Error('the restored state lost chunks');
    return { bytes: read.data.byteLength, timing: { captureMs, longestPieceMs, pieces, restoreMs } };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const files = Number(process.argv[2]);
  if (!Number.isSafeInteger(files) || files < 1) throw new Error('usage: scale-worker.js <files>');
  const base = memoryAfterGc();
  const state = new MasterState();
  const nowMs = Date.UTC(2025, 0, 1);
  const t0 = performance.now();
  for (let i = 0; i < files; i++) addFile(state, i, nowMs);
  const buildMs = performance.now() - t0;
  const withState = memoryAfterGc();

  let clock = nowMs;
  const registry = new Registry(30_000, () => clock, Math.random);
  loadLocations(registry, state.chunks.keys());
  const withLocations = memoryAfterGc();

  const t1 = performance.now();
  const { bytes: snapshotBytes, timing: snapshot } = await timeSnapshot(state);
  const snapshotMs = performance.now() - t1;
  // Keep both alive until here, so the collector cannot have taken them before the readings.
  if (state.chunks.size !== files || registry.liveCount() !== CHUNKSERVERS) throw new Error('the state lost files');

  const repair = await timeRepair(state, registry, () => clock);
  // The first server falls silent past the dead timeout; the others go on heartbeating.
  clock += 30_001;
  for (let s = 1; s < CHUNKSERVERS; s++) registry.heartbeat({ ...serverStats(s), added: [], removed: [], copyFailed: [] });
  const repairOneDead = await timeRepair(state, registry, () => clock);
  const reply: ScaleReply = {
    files, stateBytes: total(withState) - total(base), locationsBytes: total(withLocations) - total(withState),
    stateArrayBufferBytes: withState.arrayBuffers - base.arrayBuffers, locationsArrayBufferBytes: withLocations.arrayBuffers - withState.arrayBuffers,
    snapshotBytes, snapshotMs, snapshot, buildMs, commandsPerSec: (3 * files) / (buildMs / 1000), repair, repairOneDead,
  };
  process.stdout.write(JSON.stringify(reply) + '\n');
}

await main();
