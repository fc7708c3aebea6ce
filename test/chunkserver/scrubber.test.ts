// The scrubber (chunkserver/scrubber.ts) over a real ChunkStore in a temporary folder, with a
// hand-driven clock: it finds exactly the damaged replica, quarantines and reports it, leaves the
// rest alone, keeps to its rate, ignores chunks deleted under it, and stops on close().
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import t from 'tap';
import { SCRUB_STATE_SAVE_INTERVAL_MS, Scrubber, type ScrubPass } from '../../chunkserver/scrubber.js';
import { ChunkStore, READ_BATCH_BYTES } from '../../chunkserver/store/index.js';
import { BLOCK_SIZE_BYTES, initChecksums } from '../../common/checksum.js';
import type { Logger } from '../../common/log.js';
import { MiB } from '../../common/rate.js';
import { FakeClock } from '../helpers/clock.js';
import { mulberry32 } from '../helpers/rng.js';

await initChecksums();

const BS = BLOCK_SIZE_BYTES;

interface LogLine { level: string; obj: unknown; msg: unknown }
function captureLogger(lines: LogLine[]): Logger {
  const at = (level: string) => (obj: unknown, msg: unknown) => {
    lines.push({ level, obj, msg });
  };
  return { info: at('info'), warn: at('warn'), error: at('error'), debug: at('debug'), trace: at('trace'), fatal: at('fatal') } as unknown as Logger;
}

interface Setup {
  dir: string;
  store: ChunkStore;
  scrubber: Scrubber;
  clock: FakeClock;
  reported: number[];
  logs: LogLine[];
  metrics: Registry;
  data: Map<number, Buffer>;
}

/** A store holding chunk `h` with `sizes[h - 1]` bytes, and a scrubber over it that quarantines as main.ts does. */
async function setup(tt: { teardown(fn: () => unknown): void }, sizes: number[], opts: { rateMiBps?: number; autoAdvance?: boolean; stateFile?: boolean } = {}): Promise<Setup> {
  const dir = mkdtempSync(join(tmpdir(), 'dfs-scrub-test-'));
  tt.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const logs: LogLine[] = [];
  const log = captureLogger(logs);
  const store = new ChunkStore(dir, log);
  await store.open();
  const data = new Map<number, Buffer>();
  for (const [i, size] of sizes.entries()) {
    const handle = i + 1;
    const next = mulberry32(handle);
    const bytes = Buffer.from(Array.from({ length: size }, () => Math.floor(next() * 256)));
    const w = await store.createWriter(handle, 1, 64 * MiB);
    await w.write(bytes);
    await w.commit(await w.finish());
    data.set(handle, bytes);
  }
  const clock = new FakeClock(opts.autoAdvance ?? true);
  const reported: number[] = [];
  const metrics = new Registry();
  const stateFile = opts.stateFile ? join(dir, 'scrub.json') : undefined;
  const scrubber = new Scrubber(store, { rateMiBps: opts.rateMiBps ?? 4, intervalMs: 60_000, stateFile }, (handle) => {
    reported.push(handle);
    void store.moveToCorrupt(handle);
  }, log, metrics, clock);
  tt.teardown(() => scrubber.close());
  return { dir, store, scrubber, clock, reported, logs, metrics, data };
}

function flipByte(file: string, pos: number): void {
  const b = readFileSync(file);
  b[pos]! ^= 0x5a;
  writeFileSync(file, b);
}

async function readAll(store: ChunkStore, handle: number): Promise<Buffer> {
  const pieces: Buffer[] = [];
  await store.readRange(handle, 0, store.get(handle)!.length, async (b) => {
    pieces.push(Buffer.from(b));
  });
  return Buffer.concat(pieces);
}

async function metric(reg: Registry, name: string): Promise<number> {
  const m = (await reg.getMetricsAsJSON()).find((x) => x.name === name);
  return (m?.values[0]?.value as number | undefined) ?? Number.NaN;
}

/** Lets the moveToCorrupt started by the report finish (a rename and no more). */
async function settle(store: ChunkStore, handle: number): Promise<void> {
  for (let i = 0; i < 100 && existsSync(store.pathOf(handle)); i++) await new Promise((r) => setTimeout(r, 10));
}

t.test('a pass finds exactly the replica with a flipped data byte, quarantines and reports it', async (t) => {
  const sizes = [3 * BS + 17, 40 * BS + 5, 5 * BS, 0, 1];
  const s = await setup(t, sizes);
  const bad = 2;
  flipByte(s.store.pathOf(bad), 21 * BS + 100); // a block in the second read batch
  const pass = await s.scrubber.runPass();
  await settle(s.store, bad);

  t.same(s.reported, [bad], 'only the damaged chunk is reported');
  t.match(pass, { verified: sizes.length - 1, corrupt: 1, skipped: 0 });
  const good = sizes.reduce((n, x) => n + x, 0) - sizes[bad - 1]!;
  t.equal(pass.bytesVerified, good + READ_BATCH_BYTES, "every good chunk's bytes, and the damaged one's read batches before the bad block's");
  t.notOk(existsSync(s.store.pathOf(bad)), 'the damaged file left chunks/');
  const corrupt = readdirSync(join(s.dir, 'corrupt'));
  t.equal(corrupt.length, 1);
  t.match(corrupt[0], new RegExp(`^${bad}\\.\\d+\\.chunk$`), 'and sits in corrupt/');
  t.equal(s.store.get(bad), undefined, 'no longer served');
  t.same(s.store.takeChanges().removed, [bad], 'the next heartbeat reports it gone');
  for (const h of [1, 3, 4, 5]) t.ok((await readAll(s.store, h)).equals(s.data.get(h)!), `chunk ${h} is untouched and reads back`);

  const done = s.logs.filter((l) => l.msg === 'scrub pass done');
  t.equal(done.length, 1, 'one info line for the pass');
  t.match(done[0], { level: 'info', obj: { verified: 4, bytesVerified: pass.bytesVerified, corrupt: 1, skipped: 0, elapsedMs: Number } });
  t.ok(s.logs.some((l) => l.level === 'error' && (l.obj as { handle?: number }).handle === bad), 'the damage is logged as an error');
  t.equal(await metric(s.metrics, 'dfs_chunkserver_scrub_corrupt_total'), 1);
  t.equal(await metric(s.metrics, 'dfs_chunkserver_scrub_chunks_total'), 4);
  t.equal(await metric(s.metrics, 'dfs_chunkserver_scrub_bytes_total'), pass.bytesVerified);
  t.equal(await metric(s.metrics, 'dfs_chunkserver_scrub_passes_total'), 1);
  t.equal(await metric(s.metrics, 'dfs_chunkserver_scrub_pass_remaining_chunks'), 0);

  const again = await s.scrubber.runPass();
  t.match(again, { verified: 4, corrupt: 0, skipped: 0 }, 'the next pass finds the rest clean');
  t.same(s.reported, [bad], 'nothing more reported');
});

t.test('damage to the trailer, or a file cut short, is found too', async (t) => {
  const s = await setup(t, [2 * BS, 2 * BS, 2 * BS]);
  flipByte(s.store.pathOf(1), 2 * BS + 3); // the first block hash
  writeFileSync(s.store.pathOf(3), readFileSync(s.store.pathOf(3)).subarray(0, BS));
  const pass = await s.scrubber.runPass();
  t.same(s.reported, [1, 3]);
  t.match(pass, { verified: 1, corrupt: 2, bytesVerified: 2 * BS });
});

t.test('the pass keeps to its rate: the sleeps add up to the bytes read', async (t) => {
  const sizes = [40 * BS + 5, 3 * BS, 17 * BS + 1];
  const s = await setup(t, sizes, { rateMiBps: 2 });
  const pass = await s.scrubber.runPass();
  const bytes = sizes.reduce((n, x) => n + x, 0);
  t.equal(pass.bytesVerified, bytes);
  const burst = (2 * MiB) / 10;
  const sleptMs = s.clock.sleeps.reduce((n, x) => n + x, 0);
  t.ok(Math.abs(sleptMs - ((bytes - burst) / (2 * MiB)) * 1000) < 1e-6, `slept ${sleptMs} ms for ${bytes} bytes at 2 MiB/s`);
  t.ok(s.clock.sleeps.length >= 4, 'in several sleeps, a batch at a time, not one at the end');
  t.equal(pass.elapsedMs, Math.round(sleptMs), 'elapsed time is measured on the clock');
});

t.test('a chunk deleted while it is read is not reported, even if its bytes were bad', async (t) => {
  // Chunk 2 spans three read batches and is damaged in the second; it is deleted (as a master's
  // delete in a heartbeat reply does) while the scrubber sleeps after the first.
  // At 1 MiB/s the burst is 102.4 KiB: chunk 1 (128 KiB) ends in a sleep, as does each batch after.
  const s = await setup(t, [2 * BS, 40 * BS, BS], { rateMiBps: 1 });
  flipByte(s.store.pathOf(2), 20 * BS);
  t.equal(READ_BATCH_BYTES, 16 * BS, 'the test assumes 1 MiB read batches');
  s.clock.onSleep = async (n) => {
    if (n === 2) await s.store.remove(2, false); // sleep 1 follows chunk 1; sleep 2 follows chunk 2's first batch
  };
  const pass = await s.scrubber.runPass();
  t.same(s.reported, [], 'nothing reported');
  t.match(pass, { verified: 2, corrupt: 0, skipped: 1, bytesVerified: 2 * BS + READ_BATCH_BYTES + BS }, 'chunk 2 was half read when it went');
  t.same(readdirSync(join(s.dir, 'corrupt')), [], 'nothing quarantined');
  t.ok((await readAll(s.store, 3)).equals(s.data.get(3)!), 'the pass went on to chunk 3');
});

t.test('a chunk deleted before its turn is skipped without being opened', async (t) => {
  const s = await setup(t, [BS, BS, BS], { rateMiBps: 0.1 });
  s.clock.onSleep = async (n) => {
    if (n === 1) await s.store.remove(2);
  };
  const pass = await s.scrubber.runPass();
  t.match(pass, { verified: 2, skipped: 1, corrupt: 0, bytesVerified: 2 * BS });
  t.same(s.reported, []);
});

t.test('a chunk quarantined by a client read meanwhile is not reported twice', async (t) => {
  const s = await setup(t, [2 * BS, 40 * BS], { rateMiBps: 1 });
  flipByte(s.store.pathOf(2), 30 * BS);
  s.clock.onSleep = async (n) => {
    if (n === 2) await s.store.moveToCorrupt(2); // what routes.ts's onCorrupt does first
  };
  const pass = await s.scrubber.runPass();
  t.same(s.reported, []);
  t.match(pass, { skipped: 1, corrupt: 0 });
});

t.test('start() runs a pass at once and another an interval after the first began; close() stops it', async (t) => {
  const s = await setup(t, [BS, 20 * BS, BS], { rateMiBps: 1, autoAdvance: false });
  const passes = (): ScrubPass[] => s.logs.filter((l) => l.msg === 'scrub pass done').map((l) => l.obj as ScrubPass);
  s.scrubber.start();
  s.scrubber.start(); // a second start does not start a second loop
  // Drive the clock: wake each sleeper as it comes, until the first pass is done (the pass logs
  // before its interval sleep, so the sleep pending then is that one).
  for (;;) {
    await s.clock.untilSleeping();
    if (passes().length > 0) break;
    s.clock.advance(s.clock.sleeps.at(-1)!);
  }
  t.match(passes()[0], { verified: 3, corrupt: 0 });
  const restMs = s.clock.sleeps.at(-1)!;
  t.ok(Math.abs(restMs - (60_000 - s.clock.now)) < 1e-9, `then it waits out the rest of the interval (${restMs} ms)`);
  t.equal(passes()[0]!.elapsedMs, Math.round(s.clock.now), 'the pass took what the clock says');
  s.clock.advance(restMs - 1);
  await new Promise((r) => setImmediate(r));
  t.equal(s.clock.pending, 1, 'not a moment early');
  s.clock.advance(2);
  // The second pass reads chunk 1, then sleeps after chunk 2's first batch.
  await s.clock.untilSleeping();
  t.equal(await metric(s.metrics, 'dfs_chunkserver_scrub_chunks_total'), 4, 'the second pass began: chunk 1 again');

  // close() cuts that sleep short.
  await s.scrubber.close();
  t.equal(s.clock.pending, 0, 'no sleeper left');
  const verified = await metric(s.metrics, 'dfs_chunkserver_scrub_chunks_total');
  s.clock.advance(3_600_000);
  await new Promise((r) => setTimeout(r, 20));
  t.equal(await metric(s.metrics, 'dfs_chunkserver_scrub_chunks_total'), verified, 'nothing is read after close()');
  t.equal(passes().length, 1, 'the cut-short pass is not logged as done');
  t.same(s.reported, [], 'closing mid-chunk is not damage');
  await s.scrubber.close(); // twice is fine
});

t.test('close() before start() and on an empty store', async (t) => {
  const s = await setup(t, [], { autoAdvance: false });
  await s.scrubber.close();
  const e = await setup(t, [], { autoAdvance: false });
  e.scrubber.start();
  await e.clock.untilSleeping();
  t.match(e.logs.find((l) => l.msg === 'scrub pass done')?.obj, { verified: 0, bytesVerified: 0 });
  t.same(e.clock.sleeps, [60_000], 'an empty pass waits a whole interval');
  await e.scrubber.close();
});

/** Wakes each sleeper as it comes until `done()` holds (checked whenever the scrubber sleeps). */
async function driveUntil(clock: FakeClock, done: () => boolean): Promise<void> {
  for (;;) {
    await clock.untilSleeping();
    if (done()) return;
    clock.advance(clock.sleeps.at(-1)!);
  }
}

function setFileTimes(file: string, atMs: number): void {
  const at = new Date(atMs);
  utimesSync(file, at, at);
}

t.test('a restarted scrubber checks the chunks written since it last saved its place first, then resumes its pass there', async (t) => {
  const s = await setup(t, [BS, BS, BS, BS, BS, BS], { rateMiBps: 1, autoAdvance: false, stateFile: true });
  const stateFile = join(s.dir, 'scrub.json');
  // Its last run was stopped before chunk 4, an hour ago; chunk 2 was rewritten since.
  for (const h of [1, 2, 5]) flipByte(s.store.pathOf(h), 100);
  for (let h = 1; h <= 6; h++) setFileTimes(s.store.pathOf(h), Date.now() - 2 * 3_600_000);
  writeFileSync(stateFile, JSON.stringify({ version: 1, nextHandle: 4 }));
  setFileTimes(stateFile, Date.now() - 3_600_000);
  setFileTimes(s.store.pathOf(2), Date.now());

  const passes = (): ScrubPass[] => s.logs.filter((l) => l.msg === 'scrub pass done').map((l) => l.obj as ScrubPass);
  s.scrubber.start();
  await driveUntil(s.clock, () => passes().length > 0);
  t.same(s.reported, [2, 5], 'the chunk written since came first, then the rest of the interrupted pass (4-6)');
  t.match(passes()[0], { verified: 2, corrupt: 1 }, 'the resumed pass read chunks 4 to 6 only');
  t.ok(s.logs.some((l) => l.msg === 'scrubber: verifying the chunks written since its last run first' && (l.obj as { chunks: number }).chunks === 1), 'and said so');
  t.same(JSON.parse(readFileSync(stateFile, 'utf8')), { version: 1, nextHandle: 0 }, 'a finished pass leaves the next one to start from the beginning');

  await driveUntil(s.clock, () => passes().length > 1);
  t.same(s.reported, [2, 5, 1], 'the next full pass reaches chunk 1');
  await s.scrubber.close();
});

t.test('a pass saves its place as it goes, and an unreadable state file means a full pass', async (t) => {
  const s = await setup(t, Array.from({ length: 8 }, () => 20 * BS), { rateMiBps: 1, autoAdvance: false, stateFile: true });
  const stateFile = join(s.dir, 'scrub.json');
  s.scrubber.start();
  // 1.25 MiB a chunk at 1 MiB/s: a save falls due after the 4th or 5th chunk.
  await driveUntil(s.clock, () => s.clock.now >= SCRUB_STATE_SAVE_INTERVAL_MS + 2_000);
  await s.scrubber.close();
  const saved = JSON.parse(readFileSync(stateFile, 'utf8')) as { nextHandle: number };
  t.ok(saved.nextHandle >= 4 && saved.nextHandle <= 6, `the place was saved mid-pass (next: chunk ${saved.nextHandle})`);

  // A new scrubber on the same store resumes there: its first pass reads only the rest.
  for (let h = 1; h <= 8; h++) setFileTimes(s.store.pathOf(h), Date.now() - 3_600_000);
  const logs: LogLine[] = [];
  const clock = new FakeClock(true);
  const again = new Scrubber(s.store, { rateMiBps: 1, intervalMs: 60_000, stateFile }, () => undefined, captureLogger(logs), new Registry(), clock);
  const first = await new Promise<ScrubPass>((resolve) => {
    clock.onSleep = () => {
      const done = logs.find((l) => l.msg === 'scrub pass done');
      if (done) resolve(done.obj as ScrubPass);
    };
    again.start();
  });
  await again.close();
  t.equal(first.verified, 8 - saved.nextHandle + 1, 'the restarted pass read only the chunks from its saved place on');

  writeFileSync(stateFile, '{"version":1,"nextHa');
  const logs2: LogLine[] = [];
  const clock2 = new FakeClock(true);
  const third = new Scrubber(s.store, { rateMiBps: 1, intervalMs: 60_000, stateFile }, () => undefined, captureLogger(logs2), new Registry(), clock2);
  const full = await new Promise<ScrubPass>((resolve) => {
    clock2.onSleep = () => {
      const done = logs2.find((l) => l.msg === 'scrub pass done');
      if (done) resolve(done.obj as ScrubPass);
    };
    third.start();
  });
  await third.close();
  t.equal(full.verified, 8, 'a torn state file: a full pass');
  t.ok(logs2.some((l) => l.level === 'warn' && l.msg === 'scrubber state unreadable; starting a full pass'), 'with a warning');
});
