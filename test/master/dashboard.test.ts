// The dashboard's failure tolerance in words, from a chunk matrix and the masters' reachability,
// decided without servers; and the page's files, which the built master serves from master/ui/.
import t from 'tap';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { ChunkMatrix } from '../../common/dashboard.js';
import type { MasterStatus } from '../../common/protocol.js';
import { failureTolerance, rackTolerance } from '../../master/dashboard.js';

const ROOT = resolve(import.meta.dirname, '..', '..');

const matrix = (cells: [number, number, number][], over: Partial<ChunkMatrix> = {}): ChunkMatrix => ({
  cells: cells.map(([replication, live, chunks]) => ({ replication, live, chunks })),
  chunks: cells.reduce((a, c) => a + c[2], 0), bytes: 0, underReplicated: 0, overReplicated: 0, missing: 0, corrupt: 0, ...over,
});
const masters = (up: number, of: number): MasterStatus[] =>
  Array.from({ length: of }, (_, i) => ({ id: `m${i + 1}`, addr: `h:${i}`, role: i === 0 ? 'leader' : 'follower', reachable: i < up }));

t.test('chunkservers: the fewest live replicas of any chunk, less one, may be lost at once', async (t) => {
  const healthy = failureTolerance(matrix([[3, 3, 10]]), masters(3, 3));
  t.equal(healthy.chunkserversLosable, 2);
  t.equal(healthy.chunkservers, 'can lose any 2 chunkservers at once without losing data');

  const degraded = failureTolerance(matrix([[3, 2, 4], [3, 3, 6]], { underReplicated: 4 }), masters(3, 3));
  t.equal(degraded.chunkserversLosable, 1);
  t.equal(degraded.chunkservers, 'can lose any 1 chunkserver at once without losing data; 4 chunks waiting for copies');

  const single = failureTolerance(matrix([[1, 1, 1], [3, 3, 5]]), masters(3, 3));
  t.equal(single.chunkserversLosable, 0);
  t.equal(single.chunkservers, 'cannot lose any chunkserver without losing data: 1 chunk has a single replica');

  const lost = failureTolerance(matrix([[3, 0, 2], [3, 3, 5]], { missing: 1, corrupt: 1 }), masters(3, 3));
  t.equal(lost.chunkserversLosable, null);
  t.match(lost.chunkservers, /^2 chunks have no good replica/);

  const empty = failureTolerance(matrix([]), masters(1, 1));
  t.equal(empty.chunkserversLosable, null);
  t.equal(empty.chunkservers, 'no data stored yet');
});

t.test('masters: a majority must stay up', async (t) => {
  t.equal(failureTolerance(matrix([]), masters(3, 3)).masters, '2 of 3 masters needed, 3 up: can lose any 1 master');
  t.equal(failureTolerance(matrix([]), masters(5, 5)).masters, '3 of 5 masters needed, 5 up: can lose any 2 masters');
  const two = failureTolerance(matrix([]), masters(2, 3));
  t.equal(two.mastersLosable, 0);
  t.equal(two.masters, '2 of 3 masters needed, 2 up: losing one more stops the cluster until a majority is back');
  t.equal(failureTolerance(matrix([]), masters(1, 1)).masters, '1 of 1 masters needed, 1 up: losing it stops the cluster until it is back');
});

t.test('racks: whether a whole rack can be lost, in words', async (t) => {
  t.equal(rackTolerance(undefined), 'racks: no data stored yet', 'a master from before racks');
  t.equal(rackTolerance({ servers: 2, racksSafe: ['r1', 'r2'], racksAtRisk: [] }), 'a whole rack can be lost: any one of 2 racks (r1, r2)');
  t.equal(rackTolerance({ servers: 2, racksSafe: ['default'], racksAtRisk: [] }), 'one rack (default) holds every live replica: losing it loses data');
  t.equal(rackTolerance({ servers: 1, racksSafe: ['r2'], racksAtRisk: [{ rack: 'r1', chunks: 3 }] }), 'only rack r2 can be lost whole (rack r1 holds every live replica of 3 chunks)');
  t.equal(rackTolerance({ servers: 0, racksSafe: [], racksAtRisk: [{ rack: 'r1', chunks: 1 }, { rack: 'r2', chunks: 2 }] }),
    'no whole rack can be lost (rack r1 holds every live replica of 1 chunk; rack r2 holds every live replica of 2 chunks)');
});

t.test('the page loads only its own files: no CDN, no framework', async (t) => {
  const html = readFileSync(join(ROOT, 'master', 'ui', 'index.html'), 'utf8');
  const refs = [...html.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]);
  t.same(refs.sort(), ['dashboard.css', 'dashboard.js', 'data:,'], 'the html refers to its css and script only');
  for (const name of ['dashboard.js', 'dashboard.css']) t.notMatch(readFileSync(join(ROOT, 'master', 'ui', name), 'utf8'), /https?:\/\/(?!\$\{|www\.w3\.org\/2000\/svg')/, `${name} fetches nothing from elsewhere (only masters' and chunkservers' addresses)`);
});
