// Appends under faults (issue 19): record appenders that remember every acknowledged record, a
// lease appender that knows the exact length and bytes of its file, and the checks that prove at
// the end that nothing acknowledged was lost, moved or damaged and nothing unacknowledged is half
// there. Used by the record scale test (whose writers are CLI processes) and the chaos tests.
import { Readable, Writable } from 'node:stream';
import type { DfsClient } from '../../cli/client.js';
import { fileBytesFor } from './load.js';

/** Record `i` of writer `w`: 1 to 3 KiB, so a few dozen fill a 64 KiB chunk and some end in padding. */
export function recordOf(w: string, i: number): string {
  return `${w}:${i}:` + 'x'.repeat(1000 + ((i * 7919) % 2000));
}

/** A record its writer was told is appended: where, under which id, and what. */
export interface AckedRecord { offset: number; id: string; writer: string; index: number }

export interface RecordCheck {
  /** Acknowledged records checked. */
  acked: number;
  /** Frames in the file, every copy counted. */
  frames: number;
  duplicates: number;
  paddingBytes: number;
  /** What must be empty: each a line saying what is wrong. */
  problems: string[];
}

const MAX_PROBLEMS = 20;
/** Failed appends the lease appender tries again before it stops (a bound: each may wait out a lease). */
const MAX_APPEND_FAILURES = 20;
const STAT_TRIES = 60;

/**
 * Reads every frame of `path` (each copy of a duplicate too) and checks: every acknowledged record
 * is at its offset with its id and bytes; nothing is damaged or half there (no byte that is no
 * valid frame or padding); every frame is a whole record of a known writer, under the id its
 * writer gave it; a record appears twice only when its writer retried it (`retried` ids), as the
 * at-least-once contract allows; an unacknowledged record is one a writer had in flight when it
 * stopped (`inFlight`: writer → the index it was appending).
 */
export async function checkRecordFile(client: DfsClient, path: string, acked: AckedRecord[], retried: Set<string>, inFlight = new Map<string, number>()): Promise<RecordCheck> {
  const skips = { paddingBytes: 0, corruptBytes: 0, corruptRecords: 0, duplicateRecords: 0 };
  const byOffset = new Map<number, { id: string; data: string }>();
  const copies = new Map<string, number>();
  for await (const r of client.readRecords(path, { skips, dedupWindow: 0 })) {
    byOffset.set(r.offset, { id: r.id, data: r.data.toString() });
    copies.set(r.id, (copies.get(r.id) ?? 0) + 1);
  }
  const problems: string[] = [];
  const note = (p: string): void => void (problems.length < MAX_PROBLEMS && problems.push(p));
  if (skips.corruptBytes > 0) note(`${skips.corruptBytes} bytes in ${skips.corruptRecords} places are neither a valid record nor padding`);
  const idOf = new Map<string, string>();
  for (const a of acked) {
    idOf.set(`${a.writer}:${a.index}`, a.id);
    const got = byOffset.get(a.offset);
    if (!got) note(`record ${a.writer}:${a.index} (${a.id}) is not at its offset ${a.offset}`);
    else if (got.id !== a.id || got.data !== recordOf(a.writer, a.index)) note(`at ${a.offset}, where ${a.writer}:${a.index} was acknowledged, is another record`);
  }
  for (const [offset, r] of byOffset) {
    const m = /^([^:]+):(\d+):/.exec(r.data);
    const [w, i] = m ? [m[1]!, Number(m[2])] : ['', -1];
    if (!m || r.data !== recordOf(w, i)) note(`at ${offset}: a record no writer wrote`);
    else if (idOf.has(`${w}:${i}`) ? idOf.get(`${w}:${i}`) !== r.id : inFlight.get(w) !== i) note(`at ${offset}: ${w}:${i} under id ${r.id}, which its writer never acknowledged nor had in flight`);
  }
  let duplicates = 0;
  for (const [id, n] of copies) {
    if (n === 1) continue;
    duplicates += n - 1;
    if (!retried.has(id)) note(`record ${id} is in the file ${n} times but its writer never retried it`);
  }
  return { acked: acked.length, frames: byOffset.size, duplicates, paddingBytes: skips.paddingBytes, problems };
}

async function readAll(client: DfsClient, path: string): Promise<Buffer> {
  const parts: Buffer[] = [];
  await client.get(path, new Writable({ write: (c: Buffer, _e, done) => { parts.push(c); done(); } }));
  return Buffer.concat(parts);
}

export interface AppendLoadOptions {
  /** The lease appender's file, and the record appenders' file (both made by start). */
  appendPath: string;
  recordPath: string;
  /** Record appenders, each a DfsClient of its own. */
  recordClients: DfsClient[];
  /** Bytes of each plain append. */
  appendBytes: number;
  /** Bounds on the load's size: appends and records per writer. */
  maxAppends: number;
  maxRecords: number;
  pauseMs?: number;
}

/**
 * One lease appender (`dfs append`: it alone appends to its file, so after a failure a stat tells
 * whether that append took effect whole or not at all; anything else is a violation) and record
 * appenders to another file, running until stopped or their bounds.
 */
export class AppendLoad {
  readonly acked: AckedRecord[] = [];
  readonly retried = new Set<string>();
  /** Record appends that failed for good (all attempts), and appends that failed. */
  readonly failures: string[] = [];
  /** Lengths the appended file had that were neither the old nor the whole new one: must stay empty. */
  readonly torn: string[] = [];
  appends = 0;
  private appendedBytes = 0;
  private running = false;
  private loops: Promise<void>[] = [];

  constructor(private readonly client: DfsClient, private readonly o: AppendLoadOptions) {}

  async start(): Promise<void> {
    await this.client.put(Readable.from([]), this.o.appendPath, { parents: true });
    await this.client.put(Readable.from([]), this.o.recordPath, { parents: true });
    this.running = true;
    this.loops = [this.appender(), ...this.o.recordClients.map((c, k) => this.recorder(c, `r${k}`))];
  }

  /**
   * Waits until `n` more records and appends are acknowledged, within `timeoutMs`; a load that
   * reached its bound (maxRecords per record writer, maxAppends) has nothing more to make.
   */
  async progress(n: number, timeoutMs: number): Promise<void> {
    const [records, appends] = [this.acked.length + n, this.appends + n];
    const maxRecords = this.o.maxRecords * this.o.recordClients.length;
    const deadline = performance.now() + timeoutMs;
    while ((this.acked.length < records && this.acked.length < maxRecords) || (this.appends < appends && this.appends < this.o.maxAppends)) {
      if (performance.now() > deadline) throw new Error(`the append load did not make ${n} more acknowledged records and appends within ${timeoutMs} ms (${this.acked.length} records, ${this.appends} appends; ${this.failures.slice(-3).join('; ')})`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.loops);
  }

  private async appender(): Promise<void> {
    let failed = 0;
    while (this.running && this.appends < this.o.maxAppends && failed < MAX_APPEND_FAILURES) {
      const data = fileBytesFor(7, this.appends, this.o.appendBytes);
      try {
        await this.client.append(Readable.from([data]), this.o.appendPath);
        this.appendedBytes += data.length;
        this.appends++;
      } catch (err) {
        failed++;
        this.failures.push(`append ${this.appends}: ${(err as Error).message}`);
        // The only appender: the file holds the append whole (then it counts) or not at all (then it is tried again).
        const size = await this.sizeNow();
        if (size === undefined) {
          this.torn.push(`after append ${this.appends} failed the file's size could not be learnt`);
          return;
        }
        if (size === this.appendedBytes + data.length) {
          this.appendedBytes = size;
          this.appends++;
        } else if (size !== this.appendedBytes) {
          this.torn.push(`after append ${this.appends} failed the file is ${size} bytes, neither ${this.appendedBytes} nor ${this.appendedBytes + data.length}`);
          return;
        }
      }
      await new Promise((r) => setTimeout(r, this.o.pauseMs ?? 20));
    }
  }

  /** The appended file's size, asked until a master answers (at most STAT_TRIES times, half a second apart). */
  private async sizeNow(): Promise<number | undefined> {
    for (let i = 0; i < STAT_TRIES; i++) {
      const size = await this.client.stat(this.o.appendPath).then((s) => s.size, () => undefined);
      if (size !== undefined) return size;
      await new Promise((r) => setTimeout(r, 500));
    }
    return undefined;
  }

  private async recorder(c: DfsClient, w: string): Promise<void> {
    for (let i = 0; this.running && i < this.o.maxRecords; i++) {
      const onRetry = (msg: string): void => {
        const id = /^record ([0-9a-f]{32}):/.exec(msg)?.[1];
        if (id) this.retried.add(id);
      };
      try {
        const r = await c.recordAppend(this.o.recordPath, Buffer.from(recordOf(w, i)), { onRetry });
        this.acked.push({ offset: r.offset, id: r.id, writer: w, index: i });
      } catch (err) {
        // Given up on: it may still be in the file (whole), as a record in flight is.
        this.failures.push(`record ${w}:${i}: ${(err as Error).message}`);
        return;
      }
      await new Promise((r) => setTimeout(r, this.o.pauseMs ?? 20));
    }
  }

  /** The appended file is exactly the acknowledged appends, in order; the record file passes checkRecordFile. */
  async verify(): Promise<{ appendProblems: string[]; records: RecordCheck }> {
    const appendProblems = [...this.torn];
    const got = await readAll(this.client, this.o.appendPath);
    const want = Buffer.concat(Array.from({ length: this.appends }, (_, i) => fileBytesFor(7, i, this.o.appendBytes)));
    if (!got.equals(want)) appendProblems.push(`the appended file is ${got.length} bytes, not the ${want.length} acknowledged, or other bytes`);
    // A recorder that gave up had its record in flight: it may be in the file, whole.
    const inFlight = new Map<string, number>();
    for (const f of this.failures) {
      const m = /^record (r\d+):(\d+):/.exec(f);
      if (m) inFlight.set(m[1]!, Number(m[2]));
    }
    return { appendProblems, records: await checkRecordFile(this.client, this.o.recordPath, this.acked, this.retried, inFlight) };
  }
}
