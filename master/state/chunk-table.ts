// The chunk table: handle → version, length and checksum, kept in typed-array columns.

/**
 * One chunk of the chunk table, as the table takes and gives it (a copy: the table keeps columns).
 * Version stays 1 while chunks are write-once; appends will bump it.
 */
export interface ChunkRecord { handle: number; version: number; length: number; checksum: string }

/** A checksum as chunkservers and clients compute it: xxHash64 in 16 hex digits (common/checksum.ts). */
const HEX64 = /^[0-9a-f]{16}$/;
const INITIAL_ROWS = 1024;
/** A row's handle while the row is free (handles start at 1). */
const FREE_ROW = -1;
/** Deleted rows below which compact() does not bother. */
const COMPACT_MIN_ROWS = 4096;

/**
 * A capture of the table for a snapshot written in the background: rows are written in order, and
 * a row the writer has not reached yet keeps its old record (null: free) on its first change.
 */
export interface CapturedChunks { records(): Generator<ChunkRecord>; release(): void }
interface RowCapture { readonly rows: number; cursor: number; readonly kept: Map<number, ChunkRecord | null> }

function grown<T extends Uint32Array | Float64Array>(column: T, rows: number): T {
  const wider = new (column.constructor as new (n: number) => T)(rows);
  wider.set(column);
  return wider;
}

/** Versions are kept in 32 bits: a chunk would need four billion appends to outgrow them. */
function checkVersion(handle: number, version: number): void {
  if (!Number.isInteger(version) || version < 0 || version > 0xffffffff) throw new RangeError(`chunk ${handle}: version ${version} is not a 32-bit unsigned integer`);
}

/**
 * The chunk table: handle → version, length, checksum. A master holds a row per chunk, so the rows
 * are typed-array columns (20 bytes a chunk, where a record object and its hex string took 88),
 * and a Map gives each handle its row. The Map keeps handles in the order they were added, the
 * order snapshots list them in. A checksum is kept as two 32-bit halves; a string that is not 16
 * hex digits (a chunk not yet complete has '') is kept aside, as it is.
 */
export class ChunkTable {
  private readonly rows = new Map<number, number>();
  /**
   * Rows are handed out in order and never reused, so row order is the order handles were added
   * (the Map's, which snapshots keep); deleted rows are reclaimed by compact() instead.
   */
  private rowsUsed = 0;
  private deletedRows = 0;
  private version = new Uint32Array(INITIAL_ROWS);
  private length = new Float64Array(INITIAL_ROWS);
  private checksumHigh = new Uint32Array(INITIAL_ROWS);
  private checksumLow = new Uint32Array(INITIAL_ROWS);
  /** Each row's handle (FREE_ROW once deleted), so that a capture can walk the rows in order. */
  private handleOf = new Float64Array(INITIAL_ROWS);
  private readonly captures = new Set<RowCapture>();
  private readonly otherChecksums = new Map<number, string>();
  /**
   * References beyond the first, of chunks that several files share since a snapshot
   * (master/state/snapshot-copy.ts). Derived from the tree and the writes, so a snapshot of the
   * state does not carry it: restore counts it again (countReferences).
   */
  private readonly extraRefs = new Map<number, number>();

  get size(): number {
    return this.rows.size;
  }

  has(handle: number): boolean {
    return this.rows.has(handle);
  }

  /** Handles in the order they were added. */
  keys(): IterableIterator<number> {
    return this.rows.keys();
  }

  versionOf(handle: number): number | undefined {
    const row = this.rows.get(handle);
    return row === undefined ? undefined : this.version[row];
  }

  lengthOf(handle: number): number | undefined {
    const row = this.rows.get(handle);
    return row === undefined ? undefined : this.length[row];
  }

  /** How many files and writes reference the chunk (0: not in the table). */
  refsOf(handle: number): number {
    return this.rows.has(handle) ? 1 + (this.extraRefs.get(handle) ?? 0) : 0;
  }

  /** How many chunks are referenced more than once. */
  get sharedCount(): number {
    return this.extraRefs.size;
  }

  /** Chunks referenced more than once, with their reference counts, in no particular order. */
  shared(): IterableIterator<[number, number]> {
    return [...this.extraRefs].map(([h, extra]): [number, number] => [h, extra + 1])[Symbol.iterator]();
  }

  /** One more file references the chunk (a snapshot's copy). */
  share(handle: number): void {
    this.rowOf(handle);
    this.extraRefs.set(handle, (this.extraRefs.get(handle) ?? 0) + 1);
  }

  /** One reference fewer; the chunk goes (becomes garbage) with its last one. True when it went. */
  release(handle: number): boolean {
    const extra = this.extraRefs.get(handle);
    if (extra === undefined) return this.delete(handle);
    if (extra === 1) this.extraRefs.delete(handle);
    else this.extraRefs.set(handle, extra - 1);
    return false;
  }

  get(handle: number): ChunkRecord | undefined {
    const row = this.rows.get(handle);
    return row === undefined ? undefined : this.record(handle, row);
  }

  /** Every chunk, in the order of keys(). */
  *records(): Generator<ChunkRecord> {
    for (const [handle, row] of this.rows) yield this.record(handle, row);
  }

  /** Adds a chunk, or replaces what the table has for its handle. */
  set(c: ChunkRecord): void {
    checkVersion(c.handle, c.version);
    if (!this.rows.has(c.handle)) {
      const row = this.newRow();
      this.beforeRowChange(row);
      this.handleOf[row] = c.handle;
      this.rows.set(c.handle, row);
    }
    this.setVersion(c.handle, c.version);
    this.setContent(c.handle, c.length, c.checksum);
  }

  /** Records what a write stored in the chunk. */
  setContent(handle: number, length: number, checksum: string): void {
    const row = this.rowOf(handle);
    this.beforeRowChange(row);
    this.length[row] = length;
    if (HEX64.test(checksum)) {
      this.checksumHigh[row] = parseInt(checksum.slice(0, 8), 16);
      this.checksumLow[row] = parseInt(checksum.slice(8), 16);
      this.otherChecksums.delete(handle);
    } else this.otherChecksums.set(handle, checksum);
  }

  setVersion(handle: number, version: number): void {
    checkVersion(handle, version);
    const row = this.rowOf(handle);
    this.beforeRowChange(row);
    this.version[row] = version;
  }

  delete(handle: number): boolean {
    const row = this.rows.get(handle);
    if (row === undefined) return false;
    this.beforeRowChange(row);
    this.handleOf[row] = FREE_ROW;
    this.rows.delete(handle);
    this.otherChecksums.delete(handle);
    this.extraRefs.delete(handle);
    this.deletedRows++;
    if (this.deletedRows > COMPACT_MIN_ROWS && this.deletedRows * 2 > this.rowsUsed && this.captures.size === 0) this.compact();
    return true;
  }

  /**
   * Every chunk as it is now, yielded later, row by row, while the table goes on changing: what a
   * snapshot written in the background needs. Capturing costs nothing; each change to a row not
   * yet yielded keeps its old record until then. Call release() when done (or abandoned).
   */
  capture(): CapturedChunks {
    const capture: RowCapture = { rows: this.rowsUsed, cursor: 0, kept: new Map() };
    this.captures.add(capture);
    return { records: () => this.capturedRecords(capture), release: () => this.captures.delete(capture) };
  }

  private *capturedRecords(capture: RowCapture): Generator<ChunkRecord> {
    for (; capture.cursor < capture.rows; capture.cursor++) {
      const row = capture.cursor;
      const kept = capture.kept.get(row);
      if (kept !== undefined) {
        capture.kept.delete(row);
        if (kept !== null) yield kept;
      } else if (this.handleOf[row] !== FREE_ROW) yield this.record(this.handleOf[row]!, row);
    }
    this.captures.delete(capture);
  }

  private beforeRowChange(row: number): void {
    for (const c of this.captures) {
      if (row >= c.cursor && row < c.rows && !c.kept.has(row)) {
        c.kept.set(row, this.handleOf[row] === FREE_ROW ? null : this.record(this.handleOf[row]!, row));
      }
    }
  }

  private rowOf(handle: number): number {
    const row = this.rows.get(handle);
    if (row === undefined) throw new Error(`chunk ${handle} is not in the chunk table`);
    return row;
  }

  private record(handle: number, row: number): ChunkRecord {
    const checksum = this.otherChecksums.get(handle)
      ?? this.checksumHigh[row]!.toString(16).padStart(8, '0') + this.checksumLow[row]!.toString(16).padStart(8, '0');
    return { handle, version: this.version[row]!, length: this.length[row]!, checksum };
  }

  /** Moves the rows together, in their order, when half of them were deleted (never under a capture). */
  private compact(): void {
    let to = 0;
    for (let from = 0; from < this.rowsUsed; from++) {
      const handle = this.handleOf[from]!;
      if (handle === FREE_ROW) continue;
      this.version[to] = this.version[from]!;
      this.length[to] = this.length[from]!;
      this.checksumHigh[to] = this.checksumHigh[from]!;
      this.checksumLow[to] = this.checksumLow[from]!;
      this.handleOf[to] = handle;
      this.rows.set(handle, to++);
    }
    this.rowsUsed = to;
    this.deletedRows = 0;
  }

  private newRow(): number {
    if (this.rowsUsed === this.version.length) {
      const rows = Math.ceil(this.version.length * 1.5);
      this.version = grown(this.version, rows);
      this.length = grown(this.length, rows);
      this.checksumHigh = grown(this.checksumHigh, rows);
      this.checksumLow = grown(this.checksumLow, rows);
      this.handleOf = grown(this.handleOf, rows);
    }
    return this.rowsUsed++;
  }
}
