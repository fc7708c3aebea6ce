// Group commit of record appends (cli/record-batch.ts), against a sink that records each append:
// records asked for while one is out share the next append, at consecutive offsets, in order,
// within a quarter chunk and the batch's record count; a failure fails exactly its batch.
import t from 'tap';
import { initChecksums } from '../../common/checksum.js';
import { DfsError } from '../../common/errors.js';
import { RECORD_HEADER_BYTES } from '../../common/record-format.js';
import { framedRecord, type RecordAppendOptions } from '../../cli/client-records.js';
import { MAX_QUEUED_BYTES, MAX_QUEUED_RECORDS, RecordBatchers, type BatchSink } from '../../cli/record-batch.js';
import { BYTES_IN_FLIGHT, LINES_IN_FLIGHT } from '../../cli/record-commands.js';

await initChecksums();

interface Sent { path: string; frames: Buffer[]; ids: string[]; opts: RecordAppendOptions }

/** A file in memory: each append lands at its end; `release` lets the oldest waiting append finish. */
function fakeSink(chunkSize = 64 * 1024): BatchSink & { sent: Sent[]; size: number; failNext?: DfsError; statCalls: number; release: () => void; waiting: number } {
  const gates: (() => void)[] = [];
  const sink = {
    sent: [] as Sent[],
    size: 0,
    statCalls: 0,
    failNext: undefined as DfsError | undefined,
    get waiting() {
      return gates.length;
    },
    release() {
      gates.shift()?.();
    },
    async appendFrames(path: string, frames: Buffer[], ids: string[], opts: RecordAppendOptions) {
      sink.sent.push({ path, frames, ids, opts });
      await new Promise<void>((r) => gates.push(r));
      if (sink.failNext) {
        const e = sink.failNext;
        sink.failNext = undefined;
        throw e;
      }
      const offset = sink.size;
      sink.size += frames.reduce((n, f) => n + f.length, 0);
      return { path, offset, size: sink.size };
    },
    async chunkSizeOf() {
      sink.statCalls++;
      return chunkSize;
    },
  };
  return sink;
}

const tick = () => new Promise((r) => setImmediate(r));
/** Lets every append the sink holds finish, one at a time, until all of `promises` have settled. */
async function drive(sink: { release: () => void }, promises: Promise<unknown>[]): Promise<void> {
  let settled = 0;
  for (const p of promises) void p.then(() => settled++, () => settled++);
  for (let i = 0; i < 10_000 && settled < promises.length; i++) {
    sink.release();
    await tick();
  }
}
function record(n: number, fill: number): { frame: Buffer; id: string } {
  return framedRecord(Buffer.alloc(n, fill));
}

t.test('records asked for while an append is out go together in the next, at consecutive offsets, in order', async (t) => {
  const sink = fakeSink();
  const b = new RecordBatchers(sink);
  const recs = Array.from({ length: 6 }, (_, i) => record(100 + i, i));
  const results = recs.map((r) => b.append('/log', r.frame, r.id));
  await tick();
  t.equal(sink.sent.length, 1, 'the first goes at once, alone');
  t.equal(sink.sent[0]!.frames.length, 1);
  t.equal(sink.statCalls, 0, 'a lone record needs no chunk size');
  sink.release();
  await tick();
  await tick();
  t.equal(sink.sent.length, 2, 'the other five in one append');
  t.same(sink.sent[1]!.ids, recs.slice(1).map((r) => r.id), 'in the order they were asked for');
  t.equal(sink.statCalls, 1, 'the chunk size asked once');
  sink.release();
  const done = await Promise.all(results);
  let at = 0;
  for (const [i, r] of done.entries()) {
    t.equal(r.offset, at, `record ${i} at its own offset`);
    t.equal(r.id, recs[i]!.id);
    t.equal(r.length, 100 + i);
    at += recs[i]!.frame.length;
  }
  t.equal(done[5]!.size, at, 'the size after the batch');
});

t.test('a batch stays within a quarter chunk and the record count; the rest waits for the next', async (t) => {
  const sink = fakeSink(4 * 1024); // a quarter: 1,024 bytes
  const b = new RecordBatchers(sink, 3);
  const recs = Array.from({ length: 9 }, (_, i) => record(300 - RECORD_HEADER_BYTES, i)); // 300-byte frames
  const results = recs.map((r) => b.append('/log', r.frame, r.id));
  await drive(sink, results);
  await Promise.all(results);
  t.same(sink.sent.map((s) => s.frames.length), [1, 3, 3, 2], 'three 300-byte frames fit in 1,024 bytes, and three is the most');
  t.ok(sink.sent.every((s) => s.frames.reduce((n, f) => n + f.length, 0) <= 1024), 'no batch over a quarter chunk');
});

t.test('records of other files, and records with a signal or other attempts, do not share an append', async (t) => {
  const sink = fakeSink();
  const b = new RecordBatchers(sink);
  const [a, c, d, e, f] = Array.from({ length: 5 }, (_, i) => record(50, i));
  const signal = new AbortController().signal;
  const results = [b.append('/a', a!.frame, a!.id), b.append('/b', c!.frame, c!.id), b.append('/a', d!.frame, d!.id, { signal }), b.append('/a', e!.frame, e!.id), b.append('/a', f!.frame, f!.id, { maxAttempts: 2 })];
  await drive(sink, results);
  await Promise.all(results);
  t.same(sink.sent.map((s) => `${s.path}:${s.ids.length}`), ['/a:1', '/b:1', '/a:1', '/a:1', '/a:1'], 'each on its own');
  t.same(sink.sent.find((s) => s.ids[0] === f!.id)!.opts, { maxAttempts: 2 }, 'with its own options');
});

t.test('a failed append fails exactly the records it carried; the next batch goes on', async (t) => {
  const sink = fakeSink();
  const b = new RecordBatchers(sink);
  const recs = Array.from({ length: 4 }, (_, i) => record(64, i));
  const results = recs.map((r) => b.append('/log', r.frame, r.id).then((x) => x.offset, (e: DfsError) => e.code));
  await tick();
  sink.release(); // the first, alone: appended
  await tick();
  await tick();
  sink.failNext = new DfsError('NOT_FOUND', 'gone');
  sink.release(); // the other three: failed together
  t.same(await Promise.all(results), [0, 'NOT_FOUND', 'NOT_FOUND', 'NOT_FOUND']);
  const later = record(10, 9);
  const p = b.append('/log', later.frame, later.id);
  await tick();
  sink.release();
  t.equal((await p).offset, recs[0]!.frame.length, 'a later record goes in a fresh append, after the one that was appended');
});

t.test('limits: the batch size is checked, and a queue past its bound refuses with FILE_BUSY', async (t) => {
  const sink = fakeSink();
  t.throws(() => new RecordBatchers(sink, 0), { code: 'INVALID_ARGUMENT' });
  t.throws(() => new RecordBatchers(sink, 1.5), { code: 'INVALID_ARGUMENT' });
  const b = new RecordBatchers(sink);
  const r = record(8, 1);
  // The first leaves the queue at once, alone, for its append; the queue then holds at most the bound.
  const queued = Array.from({ length: MAX_QUEUED_RECORDS + 2 }, () => b.append('/log', r.frame, r.id).then(() => 'ok', (e: DfsError) => e.code));
  t.equal(await queued[MAX_QUEUED_RECORDS + 1], 'FILE_BUSY', 'one past the bound is refused at once');
  // Quarter-chunk batches of 44-byte frames: a few hundred appends.
  await drive(sink, queued);
  const codes = await Promise.all(queued.slice(0, MAX_QUEUED_RECORDS + 1));
  t.ok(codes.every((c) => c === 'ok'), 'the queued ones are all appended');
});

t.test('limits fit together: dfs append --record --lines keeps within the client\'s queue, so no line is refused for room', async (t) => {
  t.ok(LINES_IN_FLIGHT <= MAX_QUEUED_RECORDS, `${LINES_IN_FLIGHT} lines out at most, ${MAX_QUEUED_RECORDS} records queued`);
  t.ok(BYTES_IN_FLIGHT <= MAX_QUEUED_BYTES, `${BYTES_IN_FLIGHT} bytes of lines out at most, ${MAX_QUEUED_BYTES} queued`);
  t.ok(16 * 1024 * 1024 <= BYTES_IN_FLIGHT, 'a largest record of 64 MiB chunks (a quarter chunk) fits beside others');
  // A record larger than the queue's byte bound (a file of huge chunks) is taken when it comes alone.
  const sink = fakeSink();
  const b = new RecordBatchers(sink);
  const big = record(MAX_QUEUED_BYTES + 1, 3);
  const small = record(10, 4);
  const first = b.append('/big', small.frame, small.id); // out at once: the queue is empty again
  const p = b.append('/big', big.frame, big.id);
  const refused = b.append('/big', small.frame, small.id).then(() => 'ok', (e: DfsError) => e.code);
  t.equal(await refused, 'FILE_BUSY', 'one more beside it is refused');
  await drive(sink, [first, p]);
  t.equal((await p).length, MAX_QUEUED_BYTES + 1, 'the large one alone was appended');
});
