import { closeSync, fsyncSync, openSync, readFileSync, renameSync, writeSync, existsSync, ftruncateSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import type { Command, CommandResult } from './commands.js';
import type { Replicator } from './replicator.js';
import type { MasterState } from './state.js';

/** Tunables of the single-master log. */
export interface LocalLogOptions {
  /** Compact into a snapshot after this many records: larger means a longer replay at start. */
  snapshotEveryRecords: number;
}

const LOG = 'oplog';
const SNAP = 'snapshot.json';

function recordChecksum(json: string): string {
  return createHash('sha256').update(json).digest('hex').slice(0, 16);
}

/**
 * A single master's durable log: each command is appended as `<checksum> <seq> <json>\n` and fsynced
 * before it is applied and answered (concurrent proposals share one fsync: group commit). At
 * start the snapshot is loaded and the log replayed; a torn or corrupt tail is cut off. Raft
 * replaces this with its own log behind the same Replicator seam.
 */
export class LocalLog implements Replicator {
  private fd: number;
  private queue: { cmd: Command; resolve: (r: CommandResult) => void; reject: (e: unknown) => void }[] = [];
  private flushing = false;
  private records = 0;
  /** Sequence number of the last applied record; the snapshot stores it so replay skips what it holds. */
  private applied = 0;
  private closed = false;

  private constructor(private readonly dir: string, private state: MasterState, private readonly opts: LocalLogOptions) {
    this.fd = openSync(join(dir, LOG), 'a');
  }

  /** Loads `<dir>/snapshot.json` and replays `<dir>/oplog` into a state made by `restore`. */
  static open(dir: string, fresh: () => MasterState, restore: (b: Uint8Array) => MasterState, opts: LocalLogOptions): { log: LocalLog; state: MasterState } {
    const snapPath = join(dir, SNAP);
    let state = fresh();
    let applied = 0;
    if (existsSync(snapPath)) {
      // `<lastSeq>\n<state bytes>`: written whole by temp file + rename, so never torn.
      const bytes = readFileSync(snapPath);
      const nl = bytes.indexOf(10);
      applied = Number(bytes.subarray(0, nl).toString());
      state = restore(bytes.subarray(nl + 1));
    }
    const logPath = join(dir, LOG);
    let replayed = 0;
    if (existsSync(logPath)) {
      const text = readFileSync(logPath, 'utf8');
      let goodBytes = 0;
      for (const line of text.split('\n')) {
        const end = goodBytes + Buffer.byteLength(line) + 1;
        if (end > Buffer.byteLength(text)) break; // no newline: a torn final record
        const m = /^([0-9a-f]{16}) (\d+) (.*)$/.exec(line);
        if (!m || recordChecksum(`${m[2]} ${m[3]}`) !== m[1]) break;
        const seq = Number(m[2]);
        // A crash between the snapshot's rename and the log's truncation leaves records the snapshot holds.
        if (seq > applied) {
          state.apply(JSON.parse(m[3]!) as Command);
          applied = seq;
        }
        replayed++;
        goodBytes = end;
      }
      if (goodBytes < statSync(logPath).size) {
        const fd = openSync(logPath, 'r+');
        ftruncateSync(fd, goodBytes);
        fsyncSync(fd);
        closeSync(fd);
      }
    }
    const log = new LocalLog(dir, state, opts);
    log.records = replayed;
    log.applied = applied;
    return { log, state };
  }

  propose(cmd: Command): Promise<CommandResult> {
    if (this.closed) return Promise.reject(new Error('log is closed'));
    return new Promise((resolve, reject) => {
      this.queue.push({ cmd, resolve, reject });
      if (!this.flushing) setImmediate(() => this.flush());
      this.flushing = true;
    });
  }

  private flush(): void {
    const batch = this.queue;
    this.queue = [];
    try {
      const text = batch.map(({ cmd }, i) => {
        const body = `${this.applied + i + 1} ${JSON.stringify(cmd)}`;
        return `${recordChecksum(body)} ${body}\n`;
      }).join('');
      writeSync(this.fd, text);
      fsyncSync(this.fd);
    } catch (err) {
      for (const p of batch) p.reject(err);
      this.flushing = false;
      return;
    }
    for (const p of batch) {
      try {
        p.resolve(this.state.apply(p.cmd));
      } catch (err) {
        p.reject(err);
      }
    }
    this.records += batch.length;
    this.applied += batch.length;
    if (this.records >= this.opts.snapshotEveryRecords) this.compact();
    if (this.queue.length > 0) setImmediate(() => this.flush());
    else this.flushing = false;
  }

  /** Writes the state to a temporary file, fsyncs, renames over the snapshot, then empties the log. */
  private compact(): void {
    const tmp = join(this.dir, `${SNAP}.tmp`);
    const fd = openSync(tmp, 'w');
    writeSync(fd, `${this.applied}\n`);
    writeSync(fd, this.state.snapshot());
    fsyncSync(fd);
    closeSync(fd);
    renameSync(tmp, join(this.dir, SNAP));
    const dfd = openSync(this.dir, 'r');
    fsyncSync(dfd);
    closeSync(dfd);
    ftruncateSync(this.fd, 0);
    fsyncSync(this.fd);
    this.records = 0;
  }

  readBarrier(): Promise<void> {
    return Promise.resolve();
  }
  isLeader(): boolean {
    return true;
  }
  leaderAddr(): string | undefined {
    return undefined;
  }
  onLeaderChange(fn: (isLeader: boolean) => void): void {
    setImmediate(() => fn(true));
  }
  status() {
    return { role: 'leader' as const, term: 1, commitIndex: this.applied, appliedIndex: this.applied };
  }
  async close(): Promise<void> {
    this.closed = true;
    closeSync(this.fd);
  }
}
