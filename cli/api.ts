// The Node API (issue 17, item 5): `import { connect } from 'dfs'` gives a handle shaped like
// `node:fs/promises` and `fs.createReadStream`, built on DfsClient. Every failure is a DfsError
// with a stable code (common/errors.ts), rejected or emitted as 'error', never thrown past a promise.
import { constants as bufferConstants } from 'node:buffer';
import { Readable, Writable } from 'node:stream';
import { z } from 'zod';
import { DfsClient, type ClientOptions } from './client.js';
import { DfsReadStream, DfsWriteStream, type ReadStreamOptions, type WriteStreamOptions } from './api-streams.js';
import { MAX_QUEUED_RECORDS } from './record-batch.js';
import { DEFAULT_MASTERS, parseAddrList } from '../common/config.js';
import { DfsError, toDfsError } from '../common/errors.js';
import { closeHttpAgent } from '../common/http.js';
import type { EntryInfo, FileState, StatReply } from '../common/protocol.js';
import { MAX_TOKEN_CHARS } from '../common/credentials.js';
import { RACK_PATTERN } from '../common/racks.js';

export { DfsReadStream, DfsWriteStream, type ReadStreamOptions, type WriteStreamOptions };

/** What readFile buffers at most unless told otherwise: beyond it, stream with createReadStream. */
export const READ_FILE_MAX_BYTES = 1024 * 1024 * 1024;

export interface ConnectOptions extends ClientOptions {
  /** readFile refuses larger files (BODY_TOO_LARGE): it holds the whole file in memory. Default 1 GiB. */
  readFileMaxBytes?: number;
}

export interface ReadFileOptions {
  /** Overrides the handle's readFileMaxBytes for this call. */
  maxBytes?: number;
}

export interface WriteFileOptions {
  overwrite?: boolean;
  replication?: number;
  parents?: boolean;
  /** For string data (default utf8). */
  encoding?: BufferEncoding;
}

export interface MkdirOptions {
  /** Create missing parents; an existing directory is then no error (as `fs.mkdir`). */
  recursive?: boolean;
}

export interface RmOptions {
  /** Remove a directory that is not empty, with everything below it. */
  recursive?: boolean;
  /** A path that does not exist is no error. */
  force?: boolean;
}

/** A file or directory, as stat and `readdir(path, { withFileTypes: true })` give it. */
export class DfsEntry implements EntryInfo {
  readonly path: string;
  readonly name: string;
  readonly type: 'file' | 'dir';
  readonly size: number;
  readonly mtimeMs: number;
  readonly replication: number;
  readonly state: FileState;
  readonly chunkCount: number;

  constructor(info: EntryInfo) {
    this.path = info.path;
    this.name = info.name;
    this.type = info.type;
    this.size = info.size;
    this.mtimeMs = info.mtimeMs;
    this.replication = info.replication;
    this.state = info.state;
    this.chunkCount = info.chunkCount;
  }

  isFile(): boolean {
    return this.type === 'file';
  }
  isDirectory(): boolean {
    return this.type === 'dir';
  }
  get mtime(): Date {
    return new Date(this.mtimeMs);
  }
}

/** What stat gives: an entry and the chunk size its file was written with. */
export class DfsStats extends DfsEntry {
  readonly chunkSizeBytes: number;

  constructor(info: StatReply) {
    super(info);
    this.chunkSizeBytes = info.chunkSizeBytes;
  }
}

/** Calls `work` so that a synchronous throw (a bad path) rejects instead, as a DfsError. */
async function settle<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    throw toDfsError(err);
  }
}

/** A connection to one dfs cluster: see docs/CLIENT.md. */
export class DfsHandle {
  /** The client underneath, for what the handle does not cover (du, fsck, setReplication, concat, status). */
  readonly client: DfsClient;
  private readonly readFileMaxBytes: number;
  /** Streams not yet closed: close() stops them, so that nothing holds a connection after it. */
  private readonly open = new Set<Readable | Writable>();

  constructor(masters: string[], opts: ConnectOptions = {}) {
    this.client = new DfsClient(masters, opts);
    this.readFileMaxBytes = opts.readFileMaxBytes ?? READ_FILE_MAX_BYTES;
  }

  private track<S extends Readable | Writable>(stream: S): S {
    this.open.add(stream);
    stream.once('close', () => this.open.delete(stream));
    return stream;
  }

  createReadStream(path: string, opts: ReadStreamOptions = {}): DfsReadStream {
    return this.track(new DfsReadStream(this.client, path, opts));
  }

  createWriteStream(path: string, opts: WriteStreamOptions = {}): DfsWriteStream {
    return this.track(new DfsWriteStream(this.client, path, opts));
  }

  /** The whole file in one Buffer; BODY_TOO_LARGE above the limit (stream such files instead). */
  readFile(path: string, opts: ReadFileOptions = {}): Promise<Buffer> {
    return settle(async () => {
      const file = await this.client.stat(path, true);
      if (file.type === 'dir') throw new DfsError('IS_A_DIRECTORY', `${file.path} is a directory`);
      const maxBytes = opts.maxBytes ?? this.readFileMaxBytes;
      if (file.size > maxBytes) {
        throw new DfsError('BODY_TOO_LARGE', `${file.path} is ${file.size} bytes, over readFile's limit of ${maxBytes}; read it with createReadStream, or raise maxBytes`);
      }
      const out = Buffer.allocUnsafe(file.size);
      let filled = 0;
      const sink = new Writable({
        write(piece: Buffer, _encoding, done) {
          if (filled + piece.length > out.length) return done(new DfsError('INTERNAL', `${file.path} sent more bytes than its ${file.size}`));
          filled += piece.copy(out, filled);
          done();
        },
      });
      await this.client.getRange(file.path, sink, 0, file.size, file);
      if (filled !== file.size) throw new DfsError('INTERNAL', `read ${filled} of ${file.size} bytes of ${file.path}`);
      return out;
    });
  }

  /** A new file with `data` as its bytes; complete once this resolves. */
  writeFile(path: string, data: Uint8Array | string, opts: WriteFileOptions = {}): Promise<EntryInfo> {
    return settle(async () => {
      const bytes = typeof data === 'string' ? Buffer.from(data, opts.encoding ?? 'utf8') : data;
      return this.client.put(bytes, path, { overwrite: opts.overwrite, replication: opts.replication, parents: opts.parents });
    });
  }

  /**
   * Adds `data` (bytes, a string, or a stream) to the end of the complete file at `path`, as
   * fs.appendFile; readers see all of it once this resolves, and none of it if it rejects.
   */
  appendFile(path: string, data: Uint8Array | string | Readable, opts: { encoding?: BufferEncoding } = {}): Promise<EntryInfo> {
    return settle(async () => {
      return this.client.append(typeof data === 'string' ? Buffer.from(data, opts.encoding ?? 'utf8') : data, path);
    });
  }

  stat(path: string): Promise<DfsStats> {
    return settle(async () => new DfsStats(await this.client.stat(path)));
  }

  /** The names in a directory (sorted as the master lists them); NOT_A_DIRECTORY for a file. */
  readdir(path: string, opts?: { withFileTypes?: false }): Promise<string[]>;
  readdir(path: string, opts: { withFileTypes: true }): Promise<DfsEntry[]>;
  readdir(path: string, opts: { withFileTypes?: boolean } = {}): Promise<string[] | DfsEntry[]> {
    return settle(async () => {
      const listed = await this.client.list(path);
      // The master lists a file as itself; fs.readdir of a file is ENOTDIR.
      const only = listed.entries.length === 1 ? listed.entries[0]! : undefined;
      if (only?.type === 'file' && only.path === listed.path) throw new DfsError('NOT_A_DIRECTORY', `${listed.path} is a file, not a directory`);
      return opts.withFileTypes ? listed.entries.map((e) => new DfsEntry(e)) : listed.entries.map((e) => e.name);
    });
  }

  mkdir(path: string, opts: MkdirOptions = {}): Promise<void> {
    return settle(async () => {
      await this.client.mkdir(path, opts.recursive ?? false);
    });
  }

  /** Removes a file or an empty directory; `recursive` for one that is not empty; `force` ignores NOT_FOUND. */
  rm(path: string, opts: RmOptions = {}): Promise<void> {
    return settle(async () => {
      try {
        await this.client.remove(path, opts.recursive ?? false);
      } catch (err) {
        if (!(opts.force && err instanceof DfsError && err.code === 'NOT_FOUND')) throw err;
      }
    });
  }

  /** Moves `src` to `dst`; a `dst` ending in '/' moves into that directory. EXISTS if `dst` is taken. */
  rename(src: string, dst: string): Promise<void> {
    return settle(async () => {
      await this.client.rename(src, dst);
    });
  }

  /**
   * Stops the streams still open (a write not finished is abandoned), then closes the keep-alive
   * connections, so that the process can exit. The connections are shared by every handle and
   * DfsClient in the process; a call after close opens new ones.
   */
  async close(): Promise<void> {
    await Promise.all([...this.open].map((s) => new Promise<void>((resolve) => {
      s.once('close', () => resolve());
      s.destroy();
    })));
    await closeHttpAgent();
  }
}

/**
 * A handle on the cluster whose masters are `masters` (a list, or "host:port,host:port"); by
 * default $DFS_MASTERS, else the local cluster's (127.0.0.1:9400-9402). Nothing is contacted yet.
 */
export function connect(masters?: string | string[], opts: ConnectOptions = {}): DfsHandle {
  // Called from JavaScript too: what the types promise is checked here, with a DfsError that says
  // which argument, never a TypeError from deep inside (connect({masters}) once said
  // "raw.split is not a function").
  if (masters !== undefined && typeof masters !== 'string' && !(Array.isArray(masters) && masters.every((m) => typeof m === 'string'))) {
    throw new DfsError('INVALID_ARGUMENT', `connect(masters, options): masters must be "host:port,host:port" or an array of "host:port" strings, not ${describe(masters)}${masters !== null && typeof masters === 'object' && !Array.isArray(masters) ? ' (options go second)' : ''}`);
  }
  const raw = masters ?? (process.env.DFS_MASTERS || undefined);
  const list = raw === undefined ? DEFAULT_MASTERS : parseAddrList(Array.isArray(raw) ? raw.join(',') : raw, 'masters');
  return new DfsHandle(list, connectOptions(opts));
}

/** Limits on connect's options: a chunk is tried at most this many times, and given at most a day. */
export const CONNECT_LIMITS = { maxChunkAttempts: 100, chunkTimeoutMs: 24 * 3600_000, recordBatch: MAX_QUEUED_RECORDS } as const;

// Keys it does not know are left out, as node:fs ignores options it does not know (a caller may
// pass a wider object of its own).
const CONNECT_OPTIONS = z.object({
  maxChunkAttempts: z.number().int().min(1).max(CONNECT_LIMITS.maxChunkAttempts).optional(),
  chunkTimeoutMs: z.number().min(1).max(CONNECT_LIMITS.chunkTimeoutMs).optional(),
  recordBatch: z.number().int().min(1).max(CONNECT_LIMITS.recordBatch).optional(),
  rack: z.string().regex(RACK_PATTERN, 'a rack name of 1-64 letters, digits, \'.\', \'_\' or \'-\'').optional(),
  token: z.string().min(1).max(MAX_TOKEN_CHARS).optional(),
  // Infinity and any large number mean no limit of its own: a Buffer holds no more than MAX_LENGTH.
  readFileMaxBytes: z.preprocess((v) => (v === Number.POSITIVE_INFINITY ? bufferConstants.MAX_LENGTH : v),
    z.number().min(0).transform((n) => Math.min(n, bufferConstants.MAX_LENGTH))).optional(),
});

/** connect's options, checked: an ill-typed or out-of-range one is refused rather than used. */
function connectOptions(opts: unknown): ConnectOptions {
  const result = CONNECT_OPTIONS.safeParse(opts ?? {});
  if (result.success) return result.data;
  const issue = result.error.issues[0]!;
  throw new DfsError('INVALID_ARGUMENT', `connect(masters, options): ${issue.path.join('.') || 'options'}: ${issue.message}`);
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array with a non-string entry';
  return typeof v === 'object' ? 'an object' : `a ${typeof v}`;
}
