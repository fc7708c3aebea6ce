// The S3 gateway over HTTPS (`dfs s3 --tls-cert --tls-key`, what `dfs cluster --tls` starts):
// the aws CLI with --ca-bundle and the AWS SDK with the CA round-trip bytes; a client that does
// not trust the CA, and plain HTTP to the TLS port, get nothing.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { Agent } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GetObjectCommand, ListBucketsCommand, S3Client } from '@aws-sdk/client-s3';
import t from 'tap';
import { makeClusterCerts } from '../../common/tls.js';
import { randomBytesSeeded } from '../helpers/cluster.js';
import { ACCESS_KEY, requireClients, run, SECRET_KEY, startGateway } from './gateway.js';

requireClients();

t.test('the gateway over HTTPS', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'dfs-s3tls-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const f = makeClusterCerts(join(dir, 'tls'), ['127.0.0.1', 'localhost']);
  const gw = await startGateway({}, ['--tls-cert', f.cert, '--tls-key', f.key]);
  t.teardown(() => gw.stop());
  const https = gw.endpoint.replace(/^http:/, 'https:');
  const aws = (args: string[]) => run('aws', ['--endpoint-url', https, '--ca-bundle', f.ca, ...args], gw.env);

  const src = join(dir, 'up.bin');
  const data = randomBytesSeeded(3 * 1024 * 1024 + 17, 41);
  writeFileSync(src, data);
  t.equal((await aws(['s3', 'mb', 's3://secure'])).code, 0, 'aws s3 mb over HTTPS');
  const up = await aws(['s3', 'cp', src, 's3://secure/up.bin']);
  t.equal(up.code, 0, up.stderr);

  const client = (endpoint: string, ca?: Buffer) => new S3Client({
    endpoint, forcePathStyle: true, region: 'us-east-1', credentials: { accessKeyId: ACCESS_KEY, secretAccessKey: SECRET_KEY }, maxAttempts: 1,
    requestHandler: { httpsAgent: new Agent(ca ? { ca } : {}) },
  });
  const trusted = client(https, readFileSync(f.ca));
  const got = await trusted.send(new GetObjectCommand({ Bucket: 'secure', Key: 'up.bin' }));
  t.ok(Buffer.from(await got.Body!.transformToByteArray()).equals(data), 'the SDK trusting the CA reads the same bytes');

  await t.rejects(client(https).send(new ListBucketsCommand({})), /self[- ]signed|unable to verify|certificate/i, 'a client that does not trust the CA refuses the gateway');
  await t.rejects(client(gw.endpoint).send(new ListBucketsCommand({})), 'plain HTTP to the TLS port gets no answer');
  const ls = await run('aws', ['--endpoint-url', https, 's3', 'ls'], gw.env);
  t.not(ls.code, 0, 'the aws CLI without --ca-bundle fails');
  t.match(ls.stderr, /SSL|certificate/i, 'and says why');
});
