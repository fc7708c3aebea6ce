// The snapshot file: a header (magic, CRC-32, index, term, length) and the state machine's bytes,
// written piece by piece to a temp file (fsync, rename, directory fsync) and read back a range at a
// time, so neither side holds the snapshot in one buffer. "DFSRSNP2" files (written now) differ
// from the "DFSRSNP1" ones written before (still read) only in the CRC's order: the data's, then
// the header fields' (the length is known only at the end), instead of the fields', then the data's.
// "DFSRSNP3" files add a trailer after the data: the configuration in effect at the snapshot's
// index as JSON (null for none), then its byte length (4 bytes); the CRC covers data, trailer JSON
// and header fields, in that order.
import { closeSync, openSync, readSync } from 'node:fs';
import { open, rename, rm } from 'node:fs/promises';
import { crc32 } from 'node:zlib';
import { dataPieces, SNAPSHOT_IO_BYTES } from './snapshot-data.js';
import { validConf } from './conf-change.js';
import { EMPTY_SNAPSHOT, type Snapshot, type SnapshotData, type SnapshotMeta } from './types.js';

const MAGIC_V1 = Buffer.from('DFSRSNP1', 'ascii');
const MAGIC_V2 = Buffer.from('DFSRSNP2', 'ascii');
const SNAPSHOT_MAGIC = Buffer.from('DFSRSNP3', 'ascii');
/** A configuration trailer is small (ids of at most MAX_MEMBERS members); anything bigger is corruption. */
const MAX_TRAILER_BYTES = 64 * 1024;
const HEADER_BYTES = SNAPSHOT_MAGIC.byteLength + 4 + 24;

/** Closes a snapshot file's descriptor once nothing reads it any more (a stream to a follower may outlive a newer snapshot). */
const closeWhenUnreachable = new FinalizationRegistry<number>((fd) => closeSync(fd));

/** A snapshot file's data, read with pread when asked: memory stays at the range read. */
class FileSnapshotData implements SnapshotData {
  constructor(
    private readonly fd: number,
    readonly byteLength: number,
  ) {
    closeWhenUnreachable.register(this, fd);
  }

  subarray(start: number, end: number): Uint8Array {
    const from = Math.max(0, start);
    const to = Math.min(end, this.byteLength);
    if (to <= from) return new Uint8Array(0);
    const out = Buffer.allocUnsafe(to - from);
    for (let read = 0; read < out.byteLength; ) {
      const n = readSync(this.fd, out, read, out.byteLength - read, HEADER_BYTES + from + read);
      if (n === 0) throw new Error('raft snapshot file ended early');
      read += n;
    }
    return out;
  }
}

/**
 * Writes a snapshot from its pieces (awaiting each write, so the event loop runs between them) to
 * `tmpPath`, then renames it to `path` durably. Returns the file's data, read from the file.
 */
export async function writeSnapshotFile(path: string, tmpPath: string, meta: SnapshotMeta, pieces: Iterator<Uint8Array>): Promise<Snapshot> {
  const tmp = await open(tmpPath, 'w');
  let length = 0;
  let checksum = 0;
  try {
    await tmp.write(Buffer.alloc(HEADER_BYTES), 0, HEADER_BYTES, 0);
    for (let next = pieces.next(); next.done !== true; next = pieces.next()) {
      checksum = crc32(next.value, checksum);
      await tmp.write(next.value, 0, next.value.byteLength, HEADER_BYTES + length);
      length += next.value.byteLength;
    }
    const conf = Buffer.from(JSON.stringify(meta.conf ?? null), 'utf8');
    const trailer = Buffer.alloc(conf.byteLength + 4);
    conf.copy(trailer, 0);
    trailer.writeUInt32LE(conf.byteLength, conf.byteLength);
    await tmp.write(trailer, 0, trailer.byteLength, HEADER_BYTES + length);
    checksum = crc32(conf, checksum);
    const header = headerOf(meta, length);
    header.writeUInt32LE(crc32(header.subarray(12), checksum), 8);
    await tmp.write(header, 0, HEADER_BYTES, 0);
    await tmp.sync();
  } catch (error) {
    await tmp.close();
    await rm(tmpPath, { force: true });
    throw error;
  } finally {
    await tmp.close().catch(() => undefined);
  }
  await rename(tmpPath, path);
  return { meta, data: new FileSnapshotData(openSync(path, 'r'), length) };
}

/** Writes a snapshot held as SnapshotData (one received from the leader). */
export function writeSnapshotData(path: string, tmpPath: string, snapshot: Snapshot): Promise<Snapshot> {
  return writeSnapshotFile(path, tmpPath, snapshot.meta, dataPieces(snapshot.data));
}

function headerOf(meta: SnapshotMeta, length: number): Buffer {
  const header = Buffer.alloc(HEADER_BYTES);
  SNAPSHOT_MAGIC.copy(header, 0);
  header.writeBigUInt64LE(BigInt(meta.index), 12);
  header.writeBigUInt64LE(BigInt(meta.term), 20);
  header.writeBigUInt64LE(BigInt(length), 28);
  return header;
}

/** Reads and checks the snapshot file at `path` (EMPTY_SNAPSHOT when there is none), a piece at a time. */
export async function readSnapshotFile(path: string): Promise<Snapshot> {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return EMPTY_SNAPSHOT;
    throw error;
  }
  // The file was renamed into place only after an fsync, so any damage is real corruption:
  // refuse to start rather than serve a state machine that silently lost data.
  const header = Buffer.alloc(HEADER_BYTES);
  const magic = header.subarray(0, SNAPSHOT_MAGIC.byteLength);
  if (readSync(fd, header, 0, HEADER_BYTES, 0) < HEADER_BYTES || !(magic.equals(SNAPSHOT_MAGIC) || magic.equals(MAGIC_V2) || magic.equals(MAGIC_V1))) {
    closeSync(fd);
    throw new Error(`raft snapshot ${path} is corrupt (bad header)`);
  }
  const data = new FileSnapshotData(fd, Number(header.readBigUInt64LE(28)));
  const fields = header.subarray(12, HEADER_BYTES);
  const v1 = magic.equals(MAGIC_V1);
  let checksum = v1 ? crc32(fields) : 0;
  try {
    for (const piece of dataPieces(data, SNAPSHOT_IO_BYTES)) checksum = crc32(piece, checksum);
  } catch {
    throw new Error(`raft snapshot ${path} is corrupt (shorter than its header says)`);
  }
  const { size } = await open(path, 'r').then(async (h) => {
    try {
      return await h.stat();
    } finally {
      await h.close();
    }
  });
  let trailerBytes = 0;
  let conf: SnapshotMeta['conf'];
  if (magic.equals(SNAPSHOT_MAGIC)) {
    const confBytes = readTrailer(fd, HEADER_BYTES + data.byteLength, size, path);
    checksum = crc32(confBytes, checksum);
    trailerBytes = confBytes.byteLength + 4;
    conf = parseConf(confBytes, path);
  }
  if (!v1) checksum = crc32(fields, checksum);
  if (size !== HEADER_BYTES + data.byteLength + trailerBytes || checksum !== header.readUInt32LE(8)) throw new Error(`raft snapshot ${path} is corrupt (checksum mismatch)`);
  const meta: SnapshotMeta = { index: Number(header.readBigUInt64LE(12)), term: Number(header.readBigUInt64LE(20)) };
  return { meta: conf === undefined ? meta : { ...meta, conf }, data };
}

/** The configuration trailer's JSON bytes (DFSRSNP3), read from its length at the file's end. */
function readTrailer(fd: number, at: number, size: number, path: string): Buffer {
  const length = Buffer.alloc(4);
  if (size < at + 4 || readSync(fd, length, 0, 4, size - 4) < 4) throw new Error(`raft snapshot ${path} is corrupt (no configuration trailer)`);
  const bytes = length.readUInt32LE(0);
  if (bytes > MAX_TRAILER_BYTES || size !== at + bytes + 4) throw new Error(`raft snapshot ${path} is corrupt (bad configuration trailer)`);
  const out = Buffer.alloc(bytes);
  if (readSync(fd, out, 0, bytes, at) < bytes) throw new Error(`raft snapshot ${path} is corrupt (short configuration trailer)`);
  return out;
}

function parseConf(bytes: Buffer, path: string): SnapshotMeta['conf'] {
  let value: unknown;
  try {
    value = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw new Error(`raft snapshot ${path} is corrupt (configuration is not JSON)`);
  }
  if (value === null) return undefined;
  const conf = validConf(value);
  if (conf === null) throw new Error(`raft snapshot ${path} is corrupt (bad configuration)`);
  return conf;
}
