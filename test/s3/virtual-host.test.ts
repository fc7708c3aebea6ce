// Virtual-host addressing: a gateway started with `--domain s3.local` takes `Host:
// <bucket>.s3.local` as naming the bucket. The AWS SDK v3 with forcePathStyle: false and the
// endpoint http://s3.local:<port> (names resolved to 127.0.0.1 by its HTTP agent, as /etc/hosts
// or a wildcard DNS record would) creates, writes, lists, reads and deletes; path style keeps
// working beside it; a bad --domain is refused at start.
import { Agent } from 'node:http';
import type { LookupAddress } from 'node:dns';
import {
  CreateBucketCommand, DeleteBucketCommand, DeleteObjectCommand, GetObjectCommand, HeadBucketCommand, ListBucketsCommand, ListObjectsV2Command, PutObjectCommand,
} from '@aws-sdk/client-s3';
import t from 'tap';
import { runDfs } from '../helpers/cluster.js';
import { startGateway } from './gateway.js';
import { sdkClient } from './sdk.js';

/** An HTTP agent that resolves every name to 127.0.0.1. */
function loopbackAgent(): Agent {
  type Callback = (err: Error | null, address: string | LookupAddress[], family?: number) => void;
  const lookup = (_host: string, opts: { all?: boolean }, cb: Callback) => (opts.all ? cb(null, [{ address: '127.0.0.1', family: 4 }]) : cb(null, '127.0.0.1', 4));
  return new Agent({ lookup: lookup as never });
}

t.test('virtual-host style with --domain s3.local', async (t) => {
  const gw = await startGateway({}, ['--domain', 's3.local']);
  const agent = loopbackAgent();
  t.teardown(async () => {
    agent.destroy();
    await gw.stop();
  });
  const port = new URL(gw.endpoint).port;
  const { s3, sent } = sdkClient(gw, { forcePathStyle: false, endpoint: `http://s3.local:${port}`, httpAgent: agent });
  await s3.send(new CreateBucketCommand({ Bucket: 'vhost-bucket' }));
  t.equal(sent.at(-1)!.headers.host, `vhost-bucket.s3.local:${port}`, 'the SDK named the bucket in the Host header');
  t.equal(sent.at(-1)!.path, '/', 'and not in the path');
  t.equal((await gw.cluster.dfs(['stat', '/vhost-bucket'])).code, 0, 'the bucket is a dfs directory');

  await s3.send(new PutObjectCommand({ Bucket: 'vhost-bucket', Key: 'a/b c.txt', Body: 'virtual host' }));
  t.equal(sent.at(-1)!.path, '/a/b%20c.txt');
  t.equal((await gw.cluster.dfs(['cat', '/vhost-bucket/a/b c.txt'])).stdout.toString(), 'virtual host', 'stored under the bucket the Host named');
  const got = await s3.send(new GetObjectCommand({ Bucket: 'vhost-bucket', Key: 'a/b c.txt' }));
  t.equal(await got.Body!.transformToString(), 'virtual host');
  await s3.send(new HeadBucketCommand({ Bucket: 'vhost-bucket' }));
  const listed = await s3.send(new ListObjectsV2Command({ Bucket: 'vhost-bucket', Delimiter: '/' }));
  t.same(listed.CommonPrefixes?.map((p) => p.Prefix), ['a/']);
  const buckets = await s3.send(new ListBucketsCommand({}));
  t.equal(sent.at(-1)!.headers.host, `s3.local:${port}`, 'ListBuckets goes to the bare domain');
  t.ok(buckets.Buckets?.some((b) => b.Name === 'vhost-bucket'));

  const { s3: pathStyle } = sdkClient(gw);
  const viaPath = await pathStyle.send(new GetObjectCommand({ Bucket: 'vhost-bucket', Key: 'a/b c.txt' }));
  t.equal(await viaPath.Body!.transformToString(), 'virtual host', 'path style on the gateway address still works');

  await s3.send(new DeleteObjectCommand({ Bucket: 'vhost-bucket', Key: 'a/b c.txt' }));
  await s3.send(new DeleteBucketCommand({ Bucket: 'vhost-bucket' }));
  t.not((await gw.cluster.dfs(['stat', '/vhost-bucket'])).code, 0, 'DeleteBucket by virtual host removed it');
});

t.test('a --domain that is not a DNS name is refused', async (t) => {
  const r = await runDfs(['s3', '--listen', '127.0.0.1:0', '--masters', '127.0.0.1:1', '--credentials', '/nonexistent', '--domain', 'bad_domain!']);
  t.not(r.code, 0);
  t.match(r.stderr, /--domain "bad_domain!" is not a DNS name/);
  t.equal(r.stderr.trim().split('\n').length, 1, 'one line, no stack trace');
});
