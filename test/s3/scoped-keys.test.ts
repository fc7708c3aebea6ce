// S3 access keys bound to dfs tokens, as an admin makes them and a user's S3 client meets them:
// `dfs token create --read-only|--prefix ... --s3-credentials FILE` adds a key to the running
// gateway's file; the AWS SDK with that key can do what the token may and gets AccessDenied
// for the rest; a revoked token's key stops working.
import { join } from 'node:path';
import {
  CopyObjectCommand, CreateBucketCommand, DeleteObjectsCommand, GetObjectCommand, ListBucketsCommand, ListObjectsV2Command,
  PutObjectCommand, S3Client, S3ServiceException,
} from '@aws-sdk/client-s3';
import t from 'tap';
import { waitFor } from '../helpers/cluster.js';
import { startGateway } from './gateway.js';
import { sdkClient } from './sdk.js';

async function outcome(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'OK';
  } catch (err) {
    return err instanceof S3ServiceException ? err.name : String(err);
  }
}

interface Made { token: string; info: { id: string }; s3: { accessKeyId: string; secretAccessKey: string } }

t.test('keys bound to read-only and prefix tokens', async (t) => {
  const gw = await startGateway();
  t.teardown(() => gw.stop());
  const file = join(gw.cluster.dir, 's3-credentials.json');
  const make = async (args: string[]): Promise<S3Client> => {
    const r = await gw.cluster.dfs(['token', 'create', ...args, '--s3-credentials', file, '--json']);
    t.equal(r.code, 0, r.stderr.toString());
    const made = JSON.parse(r.stdout.toString()) as Made;
    keysMade.push(made);
    return new S3Client({ endpoint: gw.endpoint, forcePathStyle: true, region: 'us-east-1', credentials: made.s3, maxAttempts: 1 });
  };
  const keysMade: Made[] = [];
  const { s3: admin } = sdkClient(gw);
  await admin.send(new CreateBucketCommand({ Bucket: 'photos' }));
  await admin.send(new CreateBucketCommand({ Bucket: 'music' }));
  for (const Key of ['alice/a.jpg', 'bob/b.jpg']) await admin.send(new PutObjectCommand({ Bucket: 'photos', Key, Body: `bytes of ${Key}` }));

  const ro = await make(['--read-only', '--name', 'reader']);
  const alice = await make(['--prefix', '/photos/alice', '--name', 'alice']);
  // The gateway reads the file again within a second of the change.
  await waitFor(async () => (await outcome(ro.send(new ListBucketsCommand({})))) === 'OK' && (await outcome(alice.send(new ListBucketsCommand({})))) === 'OK', 15_000, 'the gateway to take the new keys');

  t.test('read-only', async (t) => {
    const got = await ro.send(new GetObjectCommand({ Bucket: 'photos', Key: 'bob/b.jpg' }));
    t.equal(await got.Body!.transformToString(), 'bytes of bob/b.jpg', 'reads');
    t.equal(await outcome(ro.send(new PutObjectCommand({ Bucket: 'photos', Key: 'x', Body: 'x' }))), 'AccessDenied', 'a put is refused');
    t.equal(await outcome(ro.send(new CreateBucketCommand({ Bucket: 'new1' }))), 'AccessDenied', 'so is a new bucket');
    t.equal(await outcome(ro.send(new DeleteObjectsCommand({ Bucket: 'photos', Delete: { Objects: [{ Key: 'bob/b.jpg' }] } }))), 'AccessDenied', 'and DeleteObjects');
    t.equal(await outcome(admin.send(new GetObjectCommand({ Bucket: 'photos', Key: 'bob/b.jpg' }))), 'OK', 'the object is still there');
  });

  t.test('prefix /photos/alice', async (t) => {
    const buckets = await alice.send(new ListBucketsCommand({}));
    t.same(buckets.Buckets?.map((b) => b.Name), ['photos'], 'only the bucket on the way to its prefix is listed');
    t.equal(await outcome(alice.send(new PutObjectCommand({ Bucket: 'photos', Key: 'alice/new.jpg', Body: 'mine' }))), 'OK', 'writes inside');
    t.equal(await outcome(alice.send(new PutObjectCommand({ Bucket: 'photos', Key: 'bob/new.jpg', Body: 'not mine' }))), 'AccessDenied', 'not beside');
    t.equal(await outcome(alice.send(new GetObjectCommand({ Bucket: 'photos', Key: 'bob/b.jpg' }))), 'AccessDenied', 'nor reads beside');
    t.equal(await outcome(alice.send(new PutObjectCommand({ Bucket: 'music', Key: 'alice/x', Body: 'x' }))), 'AccessDenied', 'nor in another bucket');
    const listed = await alice.send(new ListObjectsV2Command({ Bucket: 'photos', Prefix: 'alice/' }));
    t.same(listed.Contents?.map((o) => o.Key), ['alice/a.jpg', 'alice/new.jpg'], 'lists inside its prefix');
    t.equal(await outcome(alice.send(new ListObjectsV2Command({ Bucket: 'photos' }))), 'AccessDenied', 'not the whole bucket');
    t.equal(await outcome(alice.send(new CopyObjectCommand({ Bucket: 'photos', Key: 'alice/stolen.jpg', CopySource: 'photos/bob/b.jpg' }))), 'AccessDenied', 'a copy from outside is refused');
    const del = await alice.send(new DeleteObjectsCommand({ Bucket: 'photos', Delete: { Objects: [{ Key: 'alice/new.jpg' }, { Key: 'bob/b.jpg' }] } }));
    t.same(del.Deleted?.map((d) => d.Key), ['alice/new.jpg'], 'DeleteObjects deletes what is inside');
    t.same(del.Errors?.map((e) => [e.Key, e.Code]), [['bob/b.jpg', 'AccessDenied']], 'and refuses the rest, key by key');
    t.equal(await outcome(admin.send(new GetObjectCommand({ Bucket: 'photos', Key: 'bob/b.jpg' }))), 'OK', 'bob\'s object is still there');
  });

  t.test('a revoked token\'s key stops working', async (t) => {
    const r = await gw.cluster.dfs(['token', 'revoke', keysMade[1]!.info.id]);
    t.equal(r.code, 0, r.stderr.toString());
    await waitFor(async () => (await outcome(alice.send(new GetObjectCommand({ Bucket: 'photos', Key: 'alice/a.jpg' })))) === 'AccessDenied', 20_000, 'the revocation to reach the gateway');
    t.pass('refused after the revocation');
    t.equal(await outcome(ro.send(new GetObjectCommand({ Bucket: 'photos', Key: 'alice/a.jpg' }))), 'OK', 'other keys work on');
  });
});
