// Runs scale-worker.js in a fresh node with --expose-gc (so the heap can be read after a full
// collection, and nothing this process holds is counted) and turns its answer into figures.
import { join } from 'node:path';
import { spawnTracked } from './cleanup.js';
import { figureFromRuns, type Figure } from './report.js';
import type { RepairTiming, ScaleReply } from './scale-worker.js';

const SCALE_TIMEOUT_MS = 10 * 60_000;
/** Room for 1,000,000 files and their JSON snapshot, with a wide margin; the machine has 24 GiB. */
const HEAP_LIMIT_MIB = 8192;

function runWorker(files: number): Promise<ScaleReply> {
  const script = join(import.meta.dirname, 'scale-worker.js');
  const child = spawnTracked(process.execPath, ['--expose-gc', `--max-old-space-size=${HEAP_LIMIT_MIB}`, script, String(files)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout!.on('data', (b: Buffer) => (out += b.toString()));
  child.stderr!.on('data', (b: Buffer) => (err += b.toString()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`the scale run of ${files} files did not finish within ${SCALE_TIMEOUT_MS / 60_000} minutes`));
    }, SCALE_TIMEOUT_MS);
    child.once('close', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve(JSON.parse(out) as ScaleReply);
      else reject(new Error(`the scale run failed (${code}): ${err.trim().split('\n').slice(-3).join(' ')}`));
    });
  });
}

export async function measureScale(files: number, log: (line: string) => void): Promise<Figure[]> {
  const r = await runWorker(files);
  const how = 'MasterState built in-process by applying create/allocate/complete per file; V8 used heap plus ArrayBuffer bytes (typed arrays) after global.gc(), minus those before';
  log(`scale: ${files} files, ${(r.stateBytes / files).toFixed(0)} bytes/file in the state (${(r.stateArrayBufferBytes / files).toFixed(0)} of them in typed arrays), ${(r.locationsBytes / files).toFixed(0)} more for locations (${(r.locationsArrayBufferBytes / files).toFixed(0)} in typed arrays)`);
  const repair = (what: string, t: RepairTiming) => `${what}: one pass ${t.onePassMs.toFixed(0)} ms; in slices ${t.slicedMs.toFixed(0)} ms in all, longest stall ${t.longestSliceMs.toFixed(1)} ms (${t.slices} slices)`;
  log(`repair scan at ${files} files, ${repair('all 4 servers alive', r.repair)}; ${repair('one dead', r.repairOneDead)}`);
  const snap = r.snapshot;
  log(`snapshot at ${files} files: ${(r.snapshotBytes / 1e6).toFixed(0)} MB; capture ${snap.captureMs.toFixed(1)} ms, longest piece ${snap.longestPieceMs.toFixed(1)} ms (${snap.pieces} pieces, ${r.snapshotMs.toFixed(0)} ms in all with the restore); restore ${snap.restoreMs.toFixed(0)} ms`);
  const details = { files, chunksPerFile: 1 };
  const scanHow = 'RepairScheduler.scan (one synchronous pass) and scanInSlices (pausing with setImmediate every ~5 ms) over the state above and a Registry of 4 chunkservers holding 3 replicas each; each slice timed with performance.now()';
  return [
    figureFromRuns('scale.state-heap', `master state memory per file (${files} files)`, 'bytes/file', [r.stateBytes / files], { details: { ...details, bytes: r.stateBytes, arrayBufferBytes: r.stateArrayBufferBytes, measured: how } }),
    figureFromRuns('scale.locations-heap', 'chunk locations memory per file (3 replicas)', 'bytes/file', [r.locationsBytes / files], {
      details: { ...details, bytes: r.locationsBytes, arrayBufferBytes: r.locationsArrayBufferBytes, measured: 'master Registry loaded with 4 chunkservers\' full reports, 3 replicas per chunk; V8 used heap plus ArrayBuffer bytes after global.gc()' },
    }),
    figureFromRuns('scale.snapshot', 'Raft snapshot size per file', 'bytes/file', [r.snapshotBytes / files], { details: { ...details, snapshotBytes: r.snapshotBytes, snapshotMs: r.snapshotMs, measured: 'bytes of MasterState.capture() written by snapshot-file.ts' } }),
    figureFromRuns('scale.snapshot-stall', 'longest event-loop stall of a snapshot (capture, or one piece of the background write)', 'ms', [Math.max(snap.captureMs, snap.longestPieceMs)], {
      details: { ...details, captureMs: snap.captureMs, longestPieceMs: snap.longestPieceMs, pieces: snap.pieces, restoreMs: snap.restoreMs, measured: 'MasterState.capture() timed, then each pieces().next() timed while writeSnapshotFile awaits each write; restore = readSnapshotFile + MasterState.restore' },
    }),
    figureFromRuns('scale.apply-rate', 'state machine apply rate (no log, no fsync)', 'ops/s', [r.commandsPerSec], { details: { ...details, buildMs: r.buildMs, commands: 3 * files } }),
    figureFromRuns('scale.repair-scan', `repair scan in slices (${files} files)`, 'ms', [r.repair.slicedMs], {
      details: { ...details, onePassMs: r.repair.onePassMs, slices: r.repair.slices, oneDeadMs: r.repairOneDead.slicedMs, oneDeadOnePassMs: r.repairOneDead.onePassMs, measured: scanHow },
    }),
    figureFromRuns('scale.repair-stall', 'longest event-loop stall of a sliced repair scan', 'ms', [Math.max(r.repair.longestSliceMs, r.repairOneDead.longestSliceMs)], {
      details: { ...details, allAliveMs: r.repair.longestSliceMs, oneDeadMs: r.repairOneDead.longestSliceMs, measured: scanHow },
    }),
  ];
}
