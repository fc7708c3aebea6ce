// The client's batching of namespace calls (common/batch.ts), as a database driver pipelines
// queries: the calls made in one event-loop turn go together, in one POST /v1/fs/batch (a call
// alone in its turn goes alone, to its own route, as before); at most MAX_BATCHES_IN_FLIGHT such
// requests are out, and calls made meanwhile wait and go together when one ends. A client with
// one call out at a time sends each call alone; one with 64 out sends a few batches. Each call
// keeps its own session and sequence number (exactly once), its own reply check and its own error.
import { BATCH_OPS, MAX_BATCH_CALLS, MAX_BATCH_SESSIONS, type BatchCall, type BatchOp, type BatchResult } from '../common/batch.js';
import { checkReply } from '../common/contract/call.js';
import { FS, type JsonRoute, type ReplyOf, type RequestOf } from '../common/contract/index.js';
import { DfsError, errorFromBody } from '../common/errors.js';

/**
 * Requests (single calls or batches) one client has out to the leader before further calls wait
 * to be batched. 2 measured best here (mkdirs from 4 processes with 16 out each, and from one with
 * 64): one batch being answered while the next forms; more makes smaller batches.
 */
export const MAX_BATCHES_IN_FLIGHT = 2;
/** A batch's calls, as JSON, stop at this much (an inline create carries up to 22 KiB); a larger call goes alone. */
export const MAX_BATCH_INPUT_BYTES = 1024 * 1024;
/** Bytes counted for a call besides its input: its op, its session, the JSON around them. */
const CALL_OVERHEAD_BYTES = 128;

/** Errors a single call retries itself (common/leader.ts): a batched call that gets one goes again alone. */
const RETRIED_ALONE = new Set(['NOT_LEADER', 'SAFE_MODE', 'UNAVAILABLE', 'TIMEOUT']);

/**
 * An older master, without the batch route: it answers an admin NOT_FOUND ("no such route") and
 * any other token FORBIDDEN ("this needs an admin token": a route it does not know needs one). A
 * master with the route never says the latter of a batch: every batchable call has its own rule.
 */
function olderMaster(e: DfsError): boolean {
  return (e.code === 'NOT_FOUND' && e.message === 'no such route') || (e.code === 'FORBIDDEN' && e.message.startsWith('this needs an admin token'));
}

/** The batchable routes' ops. */
const OP_OF = new Map<JsonRoute, BatchOp>(BATCH_OPS.map((op) => [FS[op], op]));

interface Waiting {
  call: BatchCall;
  route: JsonRoute;
  bytes: number;
  /** The same call alone (the single route, with its own retries). */
  alone: () => Promise<unknown>;
  resolve: (reply: unknown) => void;
  reject: (err: unknown) => void;
}

export interface BatchTransport {
  /** POST /v1/fs/batch to the leader (following NOT_LEADER and waiting out elections, as any call). */
  batch(calls: BatchCall[]): Promise<{ results: BatchResult[] }>;
  /** The leader's address, for BAD_REPLY messages. */
  leader(): string;
}

/** Batches one client's namespace calls to the leader. */
export class MetaBatcher {
  private readonly waiting: Waiting[] = [];
  private inFlight = 0;
  /** False once a master answered that it has no batch route (an older master): calls then go alone. */
  private supported = true;
  /**
   * False once a batch holding a session's open was refused whole for its input: a master from
   * before sessions opened in batches (a newer one never refuses the empty input a client sends).
   * Sessions then open alone, and the other calls still go in batches.
   */
  private sessionsInBatches = true;
  private flushScheduled = false;

  constructor(private readonly transport: BatchTransport) {}

  /**
   * Sends a call of a batchable route at the end of this turn, with the others made in it, when
   * fewer than MAX_BATCHES_IN_FLIGHT requests are out; else in the batch that goes when one ends.
   * `alone` makes the same call by itself; `session` is its x-dfs-session value (a mutation's).
   */
  submit<R extends JsonRoute>(route: R, input: RequestOf<R>, session: string | undefined, alone: () => Promise<ReplyOf<R>>): Promise<ReplyOf<R>> {
    const op = OP_OF.get(route);
    // Other calls go as they are, uncounted: one may wait on a batchable call (an append's turn
    // waits for another writer's complete), so they must never hold the batchable calls back.
    // A stat with chunks answers every chunk and its token (a large file's is large): alone.
    if (op === undefined || (op === 'stat' && (input as { chunks?: boolean }).chunks === true) || (op === 'session' && !this.sessionsInBatches)) return alone();
    if (!this.supported) return this.track(alone());
    // A call larger than a batch may hold (a complete of a file of many chunks) goes alone.
    const bytes = CALL_OVERHEAD_BYTES + Buffer.byteLength(JSON.stringify(input));
    if (bytes > MAX_BATCH_INPUT_BYTES) return this.track(alone());
    // Sent at the end of this turn: the calls made in the same turn (the callers a batch's answer
    // woke, each making its next call) go together. A call alone in its turn goes alone.
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      queueMicrotask(() => {
        this.flushScheduled = false;
        this.flush();
      });
    }
    return new Promise<ReplyOf<R>>((resolve, reject) => {
      this.waiting.push({
        call: { op, input, ...(session !== undefined ? { session } : {}) }, route, bytes,
        alone, resolve: resolve as (reply: unknown) => void, reject,
      });
    });
  }

  /** Counts a request out until it ends, then sends what waited meanwhile. */
  private track<T>(p: Promise<T>): Promise<T> {
    this.inFlight++;
    const done = () => {
      this.inFlight--;
      this.flush();
    };
    p.then(done, done);
    return p;
  }

  /** Sends the waiting calls, in batches, while fewer than MAX_BATCHES_IN_FLIGHT requests are out. */
  private flush(): void {
    while (this.waiting.length > 0 && this.inFlight < MAX_BATCHES_IN_FLIGHT) {
      const batch: Waiting[] = [];
      let bytes = 0;
      let sessions = 0;
      while (this.waiting.length > 0 && batch.length < MAX_BATCH_CALLS && (batch.length === 0 || bytes + this.waiting[0]!.bytes <= MAX_BATCH_INPUT_BYTES)) {
        if (this.waiting[0]!.call.op === 'session' && sessions === MAX_BATCH_SESSIONS) break;
        const w = this.waiting.shift()!;
        if (w.call.op === 'session') sessions++;
        bytes += w.bytes;
        batch.push(w);
      }
      if (batch.length === 1 || !this.supported) {
        for (const w of batch) this.track(w.alone()).then(w.resolve, w.reject);
        continue;
      }
      void this.track(this.send(batch));
    }
  }

  private async send(batch: Waiting[]): Promise<void> {
    let results: BatchResult[];
    try {
      ({ results } = await this.transport.batch(batch.map((w) => w.call)));
      if (results.length !== batch.length) throw new DfsError('BAD_REPLY', `the batch of ${batch.length} calls got ${results.length} results`);
    } catch (err) {
      this.failed(batch, err);
      return;
    }
    batch.forEach((w, i) => this.answer(w, results[i]!));
  }

  /** One call's result: its reply (checked against its route), its error, or sent again alone. */
  private answer(w: Waiting, result: BatchResult): void {
    if ('reply' in result) {
      try {
        w.resolve(checkReply(w.route, result.reply, this.transport.leader()));
      } catch (err) {
        w.reject(err);
      }
      return;
    }
    const err = errorFromBody(result, 500);
    if (RETRIED_ALONE.has(err.code)) this.track(w.alone()).then(w.resolve, w.reject);
    else w.reject(err);
  }

  /**
   * The whole batch failed: each call goes alone (below), unless no master could be reached.
   * An older master (no batch route) turns batching off for this client.
   */
  private failed(batch: Waiting[], err: unknown): void {
    const e = err instanceof DfsError ? err : new DfsError('INTERNAL', String(err));
    if (olderMaster(e)) this.supported = false;
    if (e.code === 'INVALID_ARGUMENT' && batch.some((w) => w.call.op === 'session')) this.sessionsInBatches = false;
    // No master answered at all: alone, each call would only wait as long again.
    if (e.code === 'UNAVAILABLE' && e.message.startsWith('cannot reach a master')) {
      for (const w of batch) w.reject(e);
      return;
    }
    // Anything else (a refusal, a timeout, no leader found in time): each call alone, with its
    // own session, gets its own answer; one the batch applied answers as applied.
    for (const w of batch) this.track(w.alone()).then(w.resolve, w.reject);
  }
}
