// The snapshot codec: the replicated state as one JSON document (format v1), and back.
import type { FileState } from '../../common/protocol.js';
import { quotaList, restoreQuotas } from '../quotas.js'; // trash-quota
import type { MasterState } from './master-state.js';
import { FileNode, WritingFile, type DirNode, type Node } from './nodes.js';
import type { PendingWrite } from './writes.js';

type Enc = { t: 'd'; m: number; c: [string, Enc][] } | { t: 'f'; m: number; s: number; r: number; z: number; h: number[]; st: FileState; w?: string };

export function encodeSnapshot(s: MasterState): Buffer {
  const enc = (node: Node): unknown =>
    node.type === 'dir'
      ? { t: 'd', m: node.mtimeMs, c: [...node.children].map(([k, v]) => [k, enc(v)]) }
      : { t: 'f', m: node.mtimeMs, s: node.size, r: node.replication, z: node.chunkSizeBytes, h: node.chunks, st: node.state, w: node.writeId };
  return Buffer.from(JSON.stringify({
    v: 1,
    nextHandle: s.nextHandle,
    root: enc(s.root),
    chunks: Array.from(s.chunks.records(), (c) => [c.handle, c.version, c.length, c.checksum]),
    writes: [...s.writes.values()],
    decommissioning: [...s.decommissioning],
    ...(s.namespaceId !== undefined ? { ns: s.namespaceId } : {}),
    quotas: quotaList(s), // trash-quota
  }));
}

/** Fills `s`, a new and empty state, from a snapshot encodeSnapshot wrote. */
export function decodeSnapshotInto(s: MasterState, data: Uint8Array): void {
  const raw = JSON.parse(Buffer.from(data).toString('utf8')) as { v: number; nextHandle: number; root: Enc; chunks: [number, number, number, string][]; writes: PendingWrite[]; decommissioning?: string[]; ns?: string; quotas?: [string, number | null, number | null][] };
  if (raw.v !== 1) throw new Error(`unknown master snapshot format ${raw.v}`);
  const dec = (e: Enc): Node => {
    if (e.t === 'd') return { type: 'dir', mtimeMs: e.m, children: new Map(e.c.map(([k, v]) => [k, dec(v)])) };
    // A file's state is whether it has a write id: the two must agree.
    if ((e.st === 'writing') !== (e.w !== undefined)) throw new Error(`master snapshot: a ${e.st} file ${e.w === undefined ? 'without' : 'with'} a write id`);
    const fields = { mtimeMs: e.m, size: e.s, replication: e.r, chunkSizeBytes: e.z, chunks: e.h };
    return e.w === undefined ? new FileNode(fields) : new WritingFile(fields, e.w);
  };
  s.nextHandle = raw.nextHandle;
  s.root = dec(raw.root) as DirNode;
  for (const [handle, version, length, checksum] of raw.chunks) s.chunks.set({ handle, version, length, checksum });
  for (const w of raw.writes) s.writes.set(w.writeId, w);
  // Snapshots written before decommissioning existed have no such field.
  for (const id of raw.decommissioning ?? []) s.decommissioning.add(id);
  // Snapshots written before namespace ids existed have none: the next leader draws one.
  if (raw.ns !== undefined) s.namespaceId = raw.ns;
  restoreQuotas(s, raw.quotas); // trash-quota: limits from the snapshot, usage counted afresh
}
