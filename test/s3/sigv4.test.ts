// SigV4 as the gateway checks it, against AWS's published S3 examples ("Signature Calculations
// for the Authorization Header", "... in multiple chunks") and against botocore signing live.
import { spawnSync } from 'node:child_process';
import t from 'tap';
import { authenticate, signingKey, type SignedRequest } from '../../s3/sigv4.js';
import { S3Error } from '../../s3/errors.js';

const AWS_EXAMPLE = { accessKeyId: 'AKIAIOSFODNN7EXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY' };
const lookup = (id: string) => (id === AWS_EXAMPLE.accessKeyId ? AWS_EXAMPLE : undefined);
const EXAMPLE_TIME = Date.UTC(2013, 4, 24);

function exampleGet(signature: string): SignedRequest {
  return {
    method: 'GET', path: '/test.txt', query: [],
    headers: {
      host: 'examplebucket.s3.amazonaws.com', range: 'bytes=0-9', 'x-amz-date': '20130524T000000Z',
      'x-amz-content-sha256': 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
      authorization: `AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,Signature=${signature}`,
    },
  };
}

function code(fn: () => unknown): string {
  try {
    fn();
    return 'OK';
  } catch (err) {
    return err instanceof S3Error ? err.code : `not an S3Error: ${String(err)}`;
  }
}

t.test('AWS example: GET Object with a Range header', async (t) => {
  const good = 'f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41';
  const auth = authenticate(exampleGet(good), lookup, EXAMPLE_TIME);
  t.equal(auth.accessKeyId, AWS_EXAMPLE.accessKeyId);
  t.same(auth.payload, { kind: 'sha256', hex: 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855' });
  t.equal(code(() => authenticate(exampleGet(good.replace(/^f/, 'e')), lookup, EXAMPLE_TIME)), 'SignatureDoesNotMatch', 'one digit off');
  const tampered = exampleGet(good);
  tampered.headers.range = 'bytes=0-10';
  t.equal(code(() => authenticate(tampered, lookup, EXAMPLE_TIME)), 'SignatureDoesNotMatch', 'a signed header changed');
  t.equal(code(() => authenticate(exampleGet(good), lookup, EXAMPLE_TIME + 16 * 60_000)), 'RequestTimeTooSkewed', '16 minutes later');
  t.equal(code(() => authenticate(exampleGet(good), () => undefined, EXAMPLE_TIME)), 'InvalidAccessKeyId');
  const anonymous = exampleGet(good);
  delete anonymous.headers.authorization;
  t.equal(code(() => authenticate(anonymous, lookup, EXAMPLE_TIME)), 'AccessDenied', 'no signature at all');
  const noHash = exampleGet(good);
  delete noHash.headers['x-amz-content-sha256'];
  t.equal(code(() => authenticate(noHash, lookup, EXAMPLE_TIME)), 'InvalidRequest', 'x-amz-content-sha256 is required');
});

t.test('AWS example: the signing key and the seed of a chunked PUT', async (t) => {
  const req: SignedRequest = {
    method: 'PUT', path: '/examplebucket/chunkObject.txt', query: [],
    headers: {
      host: 's3.amazonaws.com', 'x-amz-date': '20130524T000000Z', 'x-amz-storage-class': 'REDUCED_REDUNDANCY',
      'x-amz-content-sha256': 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD', 'content-encoding': 'aws-chunked',
      'x-amz-decoded-content-length': '66560', 'content-length': '66824',
      authorization: 'AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,SignedHeaders=content-encoding;content-length;host;x-amz-content-sha256;x-amz-date;x-amz-decoded-content-length;x-amz-storage-class,Signature=4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9',
    },
  };
  const auth = authenticate(req, lookup, EXAMPLE_TIME);
  t.same(auth.payload, { kind: 'streaming-signed', trailer: false });
  t.equal(auth.seedSignature, '4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9');
  t.same(auth.signingKey, signingKey(AWS_EXAMPLE.secretAccessKey, '20130524', 'us-east-1', 's3'));
});

/** Signs with botocore (header auth and a presigned URL) and checks the gateway agrees. */
t.test('requests botocore signs are accepted, and fail when anything signed changes', async (t) => {
  const script = String.raw`
import json, sys
from botocore.auth import S3SigV4Auth, S3SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
creds = Credentials('AKIDBOTO', 'botocore-secret-key')
out = {}
req = AWSRequest(method='PUT', url='http://127.0.0.1:9000/bucket/a%20b/%2B%26%25/%C3%BC.txt?partNumber=3&uploadId=abc', data=b'hello', headers={'x-amz-meta-Colour': '  blue   sky ', 'Content-Type': 'text/plain'})
S3SigV4Auth(creds, 's3', 'eu-west-1').add_auth(req)
out['header'] = {k.lower(): v for k, v in req.headers.items()}
q = AWSRequest(method='GET', url='http://127.0.0.1:9000/bucket/key%20with%20space', headers={})
S3SigV4QueryAuth(creds, 's3', 'us-east-1', expires=300).add_auth(q)
out['presigned'] = q.url
print(json.dumps(out))
`;
  const py = spawnSync('python3', ['-c', script], { encoding: 'utf8' });
  t.equal(py.status, 0, `python3 with botocore is needed (CI installs it): ${py.stderr}`);
  if (py.status !== 0) return;
  const out = JSON.parse(py.stdout) as { header: Record<string, string>; presigned: string };
  const botoKeys = (id: string) => (id === 'AKIDBOTO' ? { accessKeyId: id, secretAccessKey: 'botocore-secret-key' } : undefined);
  const put: SignedRequest = { method: 'PUT', path: '/bucket/a b/+&%/ü.txt', query: [['partNumber', '3'], ['uploadId', 'abc']], headers: { ...out.header, host: '127.0.0.1:9000' } };
  const auth = authenticate(put, botoKeys, Date.now());
  t.equal(auth.payload.kind, 'sha256', 'botocore signed the body\'s SHA-256');
  t.equal(code(() => authenticate({ ...put, query: [['partNumber', '4'], ['uploadId', 'abc']] }, botoKeys, Date.now())), 'SignatureDoesNotMatch', 'another part number');
  t.equal(code(() => authenticate({ ...put, path: '/bucket/a b/+&%/u.txt' }, botoKeys, Date.now())), 'SignatureDoesNotMatch', 'another key');

  const url = new URL(out.presigned);
  const query = [...url.searchParams.entries()];
  const presigned: SignedRequest = { method: 'GET', path: '/bucket/key with space', query, headers: { host: '127.0.0.1:9000' } };
  t.equal(authenticate(presigned, botoKeys, Date.now()).payload.kind, 'unsigned', 'a presigned GET');
  t.equal(code(() => authenticate(presigned, botoKeys, Date.now() + 301_000)), 'AccessDenied', 'after X-Amz-Expires');
  t.equal(code(() => authenticate({ ...presigned, method: 'PUT' }, botoKeys, Date.now())), 'SignatureDoesNotMatch', 'a GET URL used for a PUT');
});
