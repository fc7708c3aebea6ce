// Format v1 of the snapshot codec (read only): the whole state as one JSON document, as masters
// wrote it before format v2 (snapshot.ts). Limited by V8's string length to about 3.8 M files.
import type { FileState } from '../../common/protocol.js';
import { CredentialState } from '../credentials/state.js';
import { restoreQuotas } from '../quotas.js';
import { countReferences } from './tree-snapshot.js';
import { newDir } from './capture.js';
import type { MasterState } from './master-state.js';
import { FileNode, WritingFile, type DirNode, type Node } from './nodes.js';
import type { PendingWrite } from './writes.js';

type Enc = { t: 'd'; m: number; c: [string, Enc][] } | { t: 'f'; m: number; s: number; r: number; z: number; h: number[]; st: FileState; w?: string };

/** Fills `s`, a new and empty state, from a v1 snapshot. */
export function decodeSnapshotV1(s: MasterState, data: Uint8Array): void {
  const raw = JSON.parse(Buffer.from(data).toString('utf8')) as { v: number; nextHandle: number; root: Enc; chunks: [number, number, number, string][]; writes: PendingWrite[]; decommissioning?: string[]; ns?: string; cred?: unknown; quotas?: [string, number | null, number | null][]; nextVersion?: number };
  if (raw.v !== 1) throw new Error(`unknown master snapshot format ${raw.v}`);
  const dec = (e: Enc): Node => {
    if (e.t === 'd') {
      const dir = newDir(e.m);
      for (const [k, v] of e.c) dir.children.set(k, dec(v));
      return dir;
    }
    // A file's state is whether it has a write id: the two must agree.
    if ((e.st === 'writing') !== (e.w !== undefined)) throw new Error(`master snapshot: a ${e.st} file ${e.w === undefined ? 'without' : 'with'} a write id`);
    const fields = { mtimeMs: e.m, size: e.s, replication: e.r, chunkSizeBytes: e.z, chunks: e.h };
    return e.w === undefined ? new FileNode(fields) : new WritingFile(fields, e.w);
  };
  s.nextHandle = raw.nextHandle;
  if (raw.nextVersion !== undefined) s.nextVersion = raw.nextVersion;
  s.root = dec(raw.root) as DirNode;
  for (const [handle, version, length, checksum] of raw.chunks) s.chunks.set({ handle, version, length, checksum });
  for (const w of raw.writes) s.writes.set(w.writeId, w);
  // Snapshots written before decommissioning existed have no such field.
  for (const id of raw.decommissioning ?? []) s.decommissioning.add(id);
  // Snapshots written before namespace ids existed have none: the next leader draws one.
  if (raw.ns !== undefined) s.namespaceId = raw.ns;
  if (raw.cred !== undefined) s.credentials = CredentialState.fromJSON(raw.cred);
  restoreQuotas(s, raw.quotas); // limits from the snapshot, usage counted afresh
  countReferences(s); // shared chunks (none in a state this old, but the same rule as v2)
}
