// Issue 15's "Done when": an independent fuzz of every route of the wire contract, with and
// without credentials, finds no request that reads or changes data without the right credential,
// no 5xx and no crash (test/helpers/fuzz/route-fuzz.ts says what it sends and checks).
// Bounded for CI: 1 master and 3 chunkservers, 1,200 requests. A longer run:
//   DFS_FUZZ_REQUESTS=6000 DFS_FUZZ_MASTERS=3 DFS_FUZZ_SEED=7 npx tap test/integration/route-fuzz.test.ts
// A failure prints its seed; the same seed and count send the same requests again.
import t from 'tap';
import { CLASS_NAMES } from '../helpers/fuzz/credentials.js';
import { describe, fuzzRoutes } from '../helpers/fuzz/route-fuzz.js';
import { closeHttpAgent } from '../../common/http.js';
import { ROUTES } from '../../common/contract/index.js';
import { TestCluster } from '../helpers/cluster.js';

const MAX_REQUESTS = 100_000;
const requests = Math.min(MAX_REQUESTS, Number(process.env.DFS_FUZZ_REQUESTS ?? 1200));
const seed = Number(process.env.DFS_FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 31));
const masters = Number(process.env.DFS_FUZZ_MASTERS ?? 1);
const CHUNK = 64 * 1024;

t.teardown(() => closeHttpAgent());
t.setTimeout(Math.max(600_000, requests * 400));

t.test(`every route × every credential class, seed ${seed}, ${requests} requests, ${masters} master(s)`, async (t) => {
  t.ok(requests >= ROUTES.length * CLASS_NAMES.length, `${requests} requests cover the ${ROUTES.length} routes × ${CLASS_NAMES.length} classes at least once`);
  // Replication 3 on 3 chunkservers: every chunkserver holds every chunk, so any one may be asked
  // for it. A long dead timeout: a chunkserver starved of CPU for a few seconds is not declared
  // dead, which would change replica lists the fingerprint compares.
  const c = await TestCluster.start({ masters, chunkservers: 3, replication: 3, chunkSizeBytes: CHUNK, deadTimeoutMs: 30_000 });
  t.teardown(() => c.stop());
  const report = await fuzzRoutes(c, { seed, requests, chunkSizeBytes: CHUNK }).catch((err: Error) => {
    t.comment(`seed ${seed}: ${err.message}`);
    throw err;
  });
  t.comment(describe(report));
  t.equal(report.sent, requests, 'every planned request was sent');
  t.same(report.uncovered, [], 'every route of the contract was called with every credential class');
  t.same(report.findings.map((f) => `${f.kind} ${f.route} (${f.cls}): ${f.detail.slice(0, 200)} <- ${f.request.slice(0, 200)}`), [], `no findings (seed ${seed})`);
  for (const p of [...c.masterProcs, ...c.chunkservers]) t.equal(p!.child.exitCode ?? p!.child.signalCode, null, `${p!.id} is still running`);
});
