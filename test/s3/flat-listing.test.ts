// One "directory" of many keys through a real cluster and gateway (issue 17: a flat directory of
// more than 100,000 keys lists, paged). The keys are empty files made with the dfs client (one
// master create each, many in flight); the master's paged list is read page by page, then the
// AWS SDK v3 lists the bucket with max-keys 1000 and continuation tokens, and the aws CLI lists
// it paging by itself: every key once, in S3's order, no page over 1000. CI makes
// DFS_FLAT_KEYS=2500 keys (three S3 pages, several master pages); by hand, DFS_FLAT_KEYS=120000
// goes past the 100,000 entries an unpaged master listing refuses. The gateway's peak memory
// (VmHWM) and each listing's per-page latency are printed, for a person to compare across counts.
import { readFileSync } from 'node:fs';
import { Readable } from 'node:stream';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import t from 'tap';
import { DfsClient } from '../../cli/client.js';
import { DfsError } from '../../common/errors.js';
import { compareUtf8 } from '../../common/list-order.js';
import { aws, startGateway } from './gateway.js';
import { sdkClient } from './sdk.js';

const COUNT = Number(process.env.DFS_FLAT_KEYS ?? 2500);
if (!Number.isInteger(COUNT) || COUNT < 10 || COUNT > 1_000_000) throw new Error('DFS_FLAT_KEYS must be 10 to 1,000,000');
/** Creates in flight at once. */
const CREATE_CONCURRENCY = 64;

/** The keys: numbered files, and a few whose order differs by '-' and '/' (a directory sorts as its name and '/'). */
function flatKeys(): string[] {
  const keys = Array.from({ length: COUNT }, (_, i) => `flat/k${String(i).padStart(7, '0')}`);
  keys.push('flat/kd-x', 'flat/kd.y', 'flat/kd/inner', 'flat/kd0', 'flat/k\u{1d11e}', 'flat/k\uff5e');
  return keys.sort(compareUtf8);
}

function peakRssMiB(pid: number): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Math.round(Number(m[1]) / 1024) : NaN;
}

/** Per-page latency for a person to read (never asserted): first, median, 95th percentile, last, most. */
function spread(ms: number[]): string {
  const sorted = [...ms].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!.toFixed(1);
  return `${ms.length} pages, first ${ms[0]!.toFixed(1)} ms, median ${at(0.5)} ms, p95 ${at(0.95)} ms, last ${ms.at(-1)!.toFixed(1)} ms, most ${sorted.at(-1)!.toFixed(1)} ms`;
}

t.test(`a flat directory of ${COUNT} keys lists to the end in pages`, async (t) => {
  t.setTimeout(Math.max(300_000, COUNT * 20));
  const gw = await startGateway({ chunkservers: 1, replication: 1 });
  t.teardown(() => gw.stop());
  const client = new DfsClient(gw.cluster.masters.split(','));
  const keys = flatKeys();
  await client.mkdir('/flat');
  let next = 0;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: CREATE_CONCURRENCY }, async () => {
    while (next < keys.length) await client.put(Readable.from([]), `/flat/${keys[next++]!}`, { parents: true });
  }));
  t.comment(`${keys.length} keys made in ${((performance.now() - t0) / 1000).toFixed(1)} s`);

  // The master's paged list, straight: path order, at most `limit` a page, `next` chaining them.
  const names: string[] = [];
  let pages = 0;
  const masterMs: number[] = [];
  for (let after: string | undefined; ; pages++) {
    const tp = performance.now();
    const page = await client.listPage('/flat/flat', after, 1000);
    masterMs.push(performance.now() - tp);
    t.ok(page.entries.length <= 1000, 'no master page over its limit');
    names.push(...page.entries.map((e) => (e.type === 'dir' ? `${e.name}/` : e.name)));
    if (page.next === undefined) break;
    after = page.next;
  }
  const inFlat = keys.map((k) => k.slice('flat/'.length)).map((k) => (k.includes('/') ? `${k.slice(0, k.indexOf('/'))}/` : k));
  t.same(names, inFlat, `the master's ${pages + 1} pages hold every name once, in path order`);
  t.comment(`master pages of 1000: ${spread(masterMs)}`);
  for (const [limit, after] of [[0, undefined], [5001, undefined], ['x', undefined]] as const) {
    const err = await client.listPage('/flat/flat', after, limit as number).then(() => undefined, (e: unknown) => e);
    t.equal((err as DfsError | undefined)?.code, 'INVALID_ARGUMENT', `limit ${limit} is refused`);
  }

  // The SDK, page by page.
  const { s3 } = sdkClient(gw);
  const listed: string[] = [];
  let token: string | undefined;
  let s3Pages = 0;
  const t1 = performance.now();
  const s3Ms: number[] = [];
  do {
    const tp = performance.now();
    const page = await s3.send(new ListObjectsV2Command({ Bucket: 'flat', MaxKeys: 1000, ContinuationToken: token }));
    s3Pages++;
    s3Ms.push(performance.now() - tp);
    t.ok((page.KeyCount ?? 0) <= 1000 && (page.Contents?.length ?? 0) <= 1000, 'no S3 page over 1000 keys');
    listed.push(...(page.Contents ?? []).map((c) => c.Key!));
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token !== undefined);
  t.comment(`S3 pages of 1000: ${spread(s3Ms)}`);
  t.comment(`SDK: ${s3Pages} pages in ${((performance.now() - t1) / 1000).toFixed(1)} s; gateway peak RSS ${peakRssMiB(gw.child.pid!)} MiB`);
  t.equal(listed.length, keys.length, 'every key listed');
  t.same(listed, keys, 'in S3 key order, each once');
  t.ok(s3Pages >= Math.ceil(keys.length / 1000), `${s3Pages} pages`);

  // The aws CLI pages by itself (max-keys 1000 a request).
  const cli = await aws(gw, ['s3api', 'list-objects-v2', '--bucket', 'flat', '--prefix', 'flat/k', '--page-size', '1000', '--query', 'Contents[].Key', '--output', 'json']);
  t.equal(cli.code, 0, cli.stderr);
  const fromCli = JSON.parse(cli.stdout) as string[];
  t.same(fromCli, keys, 'the aws CLI lists the same keys in the same order');
  t.comment(`gateway peak RSS after both listings: ${peakRssMiB(gw.child.pid!)} MiB`);
});
