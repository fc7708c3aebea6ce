// A listing page's ETags come from one stat-many call to the master (s3/meta.ts,
// readMetaRecords): the object records the gateway keeps are small, so the master holds them
// inline and hands a whole page of them back at once, where the gateway used to read each
// record on its own (two calls per key). Real gateway, cluster and AWS SDK: every listed ETag is
// the one PutObject answered and HeadObject gives, a replaced object's stale record and a
// record-less object get the derived ETag, and the master's request counter shows one stat-many
// and no stat per key.
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { HeadObjectCommand, ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import t from 'tap';
import { DfsClient } from '../../cli/client.js';
import { startGateway } from './gateway.js';
import { sdkClient } from './sdk.js';

/** The master's request count for `op`, from its metrics. */
async function opCount(addr: string, op: string): Promise<number> {
  const text = await (await fetch(`http://${addr}/metrics`)).text();
  const m = new RegExp(`^dfs_master_requests_total\\{[^}]*\\bop="${op}"[^}]*\\} (\\d+)`, 'm').exec(text);
  return m ? Number(m[1]) : 0; // a label not counted yet (the stat-many delta below shows the pattern matches)
}

t.test('a listing page\'s ETags: the objects\' own, from one stat-many; derived for a stale or missing record', async (t) => {
  const gw = await startGateway({ chunkservers: 1, replication: 1, inlineMaxBytes: 4096 });
  t.teardown(() => gw.stop());
  const { s3 } = sdkClient(gw);
  const client = new DfsClient(gw.cluster.masters.split(','));
  await client.mkdir('/tags');
  const keys = Array.from({ length: 40 }, (_, i) => `${i % 2 ? 'odd' : 'even'}/k${String(i).padStart(2, '0')}`);
  const put = new Map<string, string>();
  for (const key of keys) {
    const body = `object ${key}`;
    const r = await s3.send(new PutObjectCommand({ Bucket: 'tags', Key: key, Body: body, Metadata: { note: 'x'.repeat(500) } }));
    t.equal(r.ETag, `"${createHash('md5').update(body).digest('hex')}"`);
    put.set(key, r.ETag!);
  }
  // Replaced behind the gateway's back (its record is now stale), and one that never had a record.
  await client.put(Readable.from([Buffer.from('replaced by dfs put')]), '/tags/even/k04', { overwrite: true });
  await client.put(Readable.from([Buffer.from('no record')]), '/tags/plain');

  const { proc } = await gw.cluster.leader();
  const [statsBefore, manyBefore] = [await opCount(proc.addr, 'stat'), await opCount(proc.addr, 'statMany')];
  const listed = await s3.send(new ListObjectsV2Command({ Bucket: 'tags' }));
  const [statsAfter, manyAfter] = [await opCount(proc.addr, 'stat'), await opCount(proc.addr, 'statMany')];
  t.equal(manyAfter - manyBefore, 1, 'one stat-many call for the page');
  t.ok(statsAfter - statsBefore <= 1, `one stat at most, the bucket's (${statsAfter - statsBefore}), and none per record: the gateway read each record on its own before (${keys.length} stats and as many reads)`);

  const etags = new Map((listed.Contents ?? []).map((o) => [o.Key!, o.ETag!]));
  t.equal(etags.size, keys.length + 1, 'every object listed');
  for (const key of keys) {
    if (key === 'even/k04') continue;
    t.equal(etags.get(key), put.get(key), `${key}: the ETag PutObject answered`);
  }
  for (const key of ['even/k04', 'plain']) {
    t.match(etags.get(key), /^"[0-9a-f]{32}-0"$/, `${key}: a derived ETag, never a stale one`);
    t.not(etags.get(key), put.get(key));
  }
  for (const key of ['odd/k01', 'even/k04', 'plain']) {
    const head = await s3.send(new HeadObjectCommand({ Bucket: 'tags', Key: key }));
    t.equal(head.ETag, etags.get(key), `${key}: HeadObject gives the listed ETag`);
  }
});
