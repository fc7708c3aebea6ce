// How status and fsck show racks (cli/format-racks.ts): servers under their racks, the failure
// tolerance in words, misplaced chunks.
import t from 'tap';
import type { ChunkserverStatus, FsckReply } from '../../common/protocol.js';
import { formatMisplaced, formatTolerance, groupByRack } from '../../cli/format-racks.js';

const cs = (id: string, rack: string | undefined, alive = true) => ({ id, rack, alive } as ChunkserverStatus);

t.test('groupByRack: headings per rack in name order, live counts; one rack: the plain list', async (t) => {
  const line = (c: ChunkserverStatus) => `  ${c.id}`;
  t.same(groupByRack([cs('cs1', 'b'), cs('cs2', 'a', false), cs('cs3', 'b')], line), ['  rack a: 0 live of 1', '    cs2', '  rack b: 2 live of 2', '    cs1', '    cs3']);
  t.same(groupByRack([cs('cs1', 'default'), cs('cs2', undefined)], line), ['  cs1', '  cs2'], 'a master from before racks (no rack) is the default rack');
  t.same(groupByRack([], line), []);
});

t.test('formatTolerance: servers and racks in words', async (t) => {
  t.equal(formatTolerance({ servers: null, racksSafe: ['a'], racksAtRisk: [] }), 'failure tolerance: no data stored yet');
  t.equal(formatTolerance({ servers: 2, racksSafe: ['a', 'b'], racksAtRisk: [] }), 'failure tolerance: any 2 servers can be lost without losing data; any one rack of 2 can be lost (a, b)');
  t.equal(formatTolerance({ servers: 1, racksSafe: [], racksAtRisk: [{ rack: 'default', chunks: 9 }] }), 'failure tolerance: any 1 server can be lost without losing data; one live rack (default): losing it loses everything');
  t.equal(formatTolerance({ servers: 0, racksSafe: ['c'], racksAtRisk: [{ rack: 'a', chunks: 1 }, { rack: 'b', chunks: 3 }] }),
    'failure tolerance: no server can be lost without losing data; only rack c can be lost (a holds every replica of 1 chunk; b holds every replica of 3 chunks)');
  t.equal(formatTolerance({ servers: 1, racksSafe: [], racksAtRisk: [{ rack: 'a', chunks: 2 }, { rack: 'b', chunks: 1 }] }),
    'failure tolerance: any 1 server can be lost without losing data; no rack can be lost (a holds every replica of 2 chunks; b holds every replica of 1 chunk)');
});

t.test('formatMisplaced: each listed chunk, what was left out, the count; nothing when none', async (t) => {
  const r = { misplaced: 3, misplacedChunks: [{ path: '/f', index: 2, handle: 9, racks: ['a', 'a', 'a'] }] } as FsckReply;
  t.same(formatMisplaced(r), [
    '/f: chunk #2 (handle 9) MISPLACED: replicas in racks a, a, a',
    '... and 2 more misplaced chunks',
    'racks: 3 misplaced chunks (too many replicas in one rack; repair moves them)',
  ]);
  t.same(formatMisplaced({ misplaced: 0, misplacedChunks: [] } as unknown as FsckReply), []);
  t.same(formatMisplaced({} as FsckReply), [], 'a master from before racks sends no count');
});
