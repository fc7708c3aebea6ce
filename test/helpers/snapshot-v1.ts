// The master's snapshot encoder of format v1, as masters wrote it before format v2 (one JSON
// document): kept for tests, to compare states as one readable document and to write old-format
// snapshots that today's reader must restore.
import { quotaList } from '../../master/quotas.js';
import type { MasterState } from '../../master/state/index.js';
import type { Node } from '../../master/state/nodes.js';

export function encodeSnapshotV1(s: MasterState): Buffer {
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
    ...(s.credentials.isEmpty() ? {} : { cred: s.credentials.toJSON() }),
    quotas: quotaList(s),
    ...(s.nextVersion !== 2 ? { nextVersion: s.nextVersion } : {}),
    // Not in a real snapshot (restore counts them again): here so that comparing states compares them too.
    ...(s.chunks.refsOf !== undefined && [...s.chunks.shared()].length > 0 ? { shared: [...s.chunks.shared()].sort((a, b) => a[0] - b[0]) } : {}),
  }));
}
