// Exactly-once commands (Raft thesis §6.3). A client registers a session (its id is the log index
// of the registration, so ids are unique and agreed by every replica), then tags each command with
// an increasing sequence number. A retried command — after a timeout or a leader change — is
// answered from the session table instead of being applied twice. The table is replicated state:
// it lives inside the state machine and therefore inside its snapshots.
import { RaftError } from './errors.js';
import { dataFrom } from './snapshot-data.js';
import type { SnapshotCapture, StateMachine } from './state-machine.js';
import type { SnapshotData } from './types.js';

const KIND_RAW = 0;
const KIND_REGISTER = 1;
const KIND_COMMAND = 2;
const MAX_CLIENT_ID_BYTES = 64;
const SNAPSHOT_MAGIC = 0x53455331; // "SES1"

export type SessionResult =
  | { readonly status: 'registered'; readonly clientId: string }
  | { readonly status: 'ok'; readonly result: unknown }
  /** Unknown session (never registered, or evicted): the outcome of earlier commands is unknown. */
  | { readonly status: 'sessionExpired' }
  /** The client already moved past this sequence number; this command was not applied. */
  | { readonly status: 'staleSequence' }
  /** Applied once, but its result was too large to keep for retries. */
  | { readonly status: 'resultTooLarge' };

export interface SessionOptions {
  /** Sessions kept; beyond it the least recently used is evicted (memory vs. retry window). */
  readonly maxSessions?: number;
  /** Largest JSON result kept for retries; bounds the session table in memory and snapshots. */
  readonly maxResultBytes?: number;
}

interface Session {
  lastSeq: number;
  /** JSON of the last result, or null when it was too large to keep. */
  lastResult: string | null;
}

export function encodeRegister(): Uint8Array {
  return Uint8Array.of(KIND_REGISTER);
}

/** A command outside any session (applied every time it is committed). */
export function encodeRaw(payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(1 + payload.byteLength);
  out[0] = KIND_RAW;
  out.set(payload, 1);
  return out;
}

export function encodeCommand(clientId: string, seq: number, payload: Uint8Array): Uint8Array {
  const id = Buffer.from(clientId, 'utf8');
  if (id.byteLength === 0 || id.byteLength > MAX_CLIENT_ID_BYTES) throw new RangeError('session client id must be 1..64 bytes');
  if (!Number.isSafeInteger(seq) || seq < 1) throw new RangeError('session sequence numbers start at 1');
  const out = Buffer.allocUnsafe(1 + 1 + id.byteLength + 8 + payload.byteLength);
  out[0] = KIND_COMMAND;
  out[1] = id.byteLength;
  id.copy(out, 2);
  out.writeBigUInt64LE(BigInt(seq), 2 + id.byteLength);
  out.set(payload, 10 + id.byteLength);
  return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
}

/** Turns a non-ok SessionResult into a typed error; returns the command's result otherwise. */
export function unwrapSessionResult(result: unknown): unknown {
  const r = result as SessionResult;
  switch (r.status) {
    case 'ok':
      return r.result;
    case 'registered':
      return r.clientId;
    case 'sessionExpired':
      throw new RaftError('RAFT_SESSION_EXPIRED', 'session expired or unknown: register a new session');
    case 'staleSequence':
      throw new RaftError('RAFT_STALE_SEQUENCE', 'sequence number already superseded by a later command of this session');
    case 'resultTooLarge':
      throw new RaftError('RAFT_RESULT_TOO_LARGE', 'command was applied but its result was too large to keep for a retry');
  }
}

/** Wraps a user state machine with the session table. Results must be JSON-serialisable. */
export class SessionStateMachine implements StateMachine {
  /** Insertion order is recency order: the first key is the least recently used session. */
  private sessions = new Map<string, Session>();
  private readonly maxSessions: number;
  private readonly maxResultBytes: number;

  constructor(
    private readonly inner: StateMachine,
    options: SessionOptions = {},
  ) {
    this.maxSessions = options.maxSessions ?? 10_000;
    this.maxResultBytes = options.maxResultBytes ?? 64 * 1024;
  }

  sessionCount(): number {
    return this.sessions.size;
  }

  apply(data: Uint8Array, index: number): SessionResult | unknown {
    const kind = data[0];
    if (kind === KIND_RAW) return this.inner.apply(data.subarray(1), index);
    if (kind === KIND_REGISTER) {
      const clientId = `c${index}`;
      this.touch(clientId, { lastSeq: 0, lastResult: 'null' });
      return { status: 'registered', clientId } satisfies SessionResult;
    }
    if (kind !== KIND_COMMAND || data.byteLength < 2) throw new RangeError(`unknown command kind ${String(kind)} at index ${index}`);
    const idLength = data[1]!;
    const bytes = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    const clientId = bytes.subarray(2, 2 + idLength).toString('utf8');
    const seq = Number(bytes.readBigUInt64LE(2 + idLength));
    const payload = data.subarray(10 + idLength);
    const session = this.sessions.get(clientId);
    if (session === undefined) return { status: 'sessionExpired' } satisfies SessionResult;
    if (seq < session.lastSeq) return { status: 'staleSequence' } satisfies SessionResult;
    if (seq === session.lastSeq) return this.cachedResult(session);
    const raw = this.inner.apply(payload, index);
    const json = JSON.stringify(raw ?? null);
    const kept = Buffer.byteLength(json) <= this.maxResultBytes ? json : null;
    this.touch(clientId, { lastSeq: seq, lastResult: kept });
    // Return the JSON round trip so a first answer and a retried answer are identical.
    return { status: 'ok', result: JSON.parse(json) as unknown } satisfies SessionResult;
  }

  /**
   * The session table (copied now; bounded by maxSessions), then the inner state machine's
   * snapshot: bytes when the inner one gives bytes, a capture when it gives a capture.
   */
  snapshot(): Uint8Array | SnapshotCapture {
    const table = Buffer.from(JSON.stringify([...this.sessions].map(([id, s]) => [id, s.lastSeq, s.lastResult])), 'utf8');
    const head = Buffer.allocUnsafe(8 + table.byteLength);
    head.writeUInt32LE(SNAPSHOT_MAGIC, 0);
    head.writeUInt32LE(table.byteLength, 4);
    table.copy(head, 8);
    const taken = this.inner.snapshot();
    if (taken instanceof Uint8Array) {
      const out = Buffer.concat([head, taken]);
      return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
    }
    return {
      *pieces() {
        yield head;
        const inner = taken.pieces();
        for (let next = inner.next(); next.done !== true; next = inner.next()) yield next.value;
      },
      release: () => taken.release(),
    };
  }

  restore(data: SnapshotData): void {
    const head = Buffer.from(data.subarray(0, 8));
    if (head.byteLength < 8 || head.readUInt32LE(0) !== SNAPSHOT_MAGIC) throw new Error('session snapshot has a bad header');
    const tableLength = head.readUInt32LE(4);
    const rows = JSON.parse(Buffer.from(data.subarray(8, 8 + tableLength)).toString('utf8')) as [string, number, string | null][];
    this.sessions = new Map(rows.map(([id, lastSeq, lastResult]) => [id, { lastSeq, lastResult }]));
    this.inner.restore(dataFrom(data, 8 + tableLength));
  }

  private cachedResult(session: Session): SessionResult {
    if (session.lastResult === null) return { status: 'resultTooLarge' };
    return { status: 'ok', result: JSON.parse(session.lastResult) as unknown };
  }

  private touch(clientId: string, session: Session): void {
    this.sessions.delete(clientId);
    this.sessions.set(clientId, session);
    // Deterministic LRU by log order: every replica evicts the same sessions at the same index.
    while (this.sessions.size > this.maxSessions) {
      this.sessions.delete(this.sessions.keys().next().value!);
    }
  }
}
