// boto3 (python3) against a real cluster and gateway: presigned URLs, ranged and conditional
// GETs, CopyObject, DeleteObjects, listings (empty directories as folder keys too), multipart
// with explicit parts, the aws-chunked bodies with trailing checksums boto3 sends by default, and
// the errors S3 gives for bad input, with nothing stored by a refused request.
import t from 'tap';
import { boto, requireClients, startGateway, type Gateway } from './gateway.js';

requireClients();

/** Runs a boto3 script that prints one JSON object, and returns it. */
async function pyJson(gw: Gateway, script: string): Promise<Record<string, unknown>> {
  const r = await boto(gw, script);
  if (r.code !== 0) throw new Error(`python3 failed (${r.code}):\n${r.stderr}\n${r.stdout}`);
  return JSON.parse(r.stdout.trim().split('\n').at(-1)!) as Record<string, unknown>;
}

t.test('boto3 against the gateway', async (t) => {
  const gw = await startGateway();
  t.teardown(() => gw.stop());

  t.test('objects: checksummed aws-chunked PUT, metadata, ranges, conditions, copy, presigned URLs', async (t) => {
    const r = await pyJson(gw, String.raw`
import urllib.request, time, datetime
sent = []
s3.meta.events.register('before-send.s3.PutObject', lambda request, **kw: sent.append(dict(request.headers)))
out = {}
s3.create_bucket(Bucket='obj1')
data = bytes(range(256)) * 4000 + b'tail'
p = s3.put_object(Bucket='obj1', Key='dir/obj.bin', Body=data, ContentType='application/x-test', Metadata={'colour': 'blue'})
h = sent[-1]
out['encoding'] = str(h.get('Content-Encoding', b''), 'latin1') if isinstance(h.get('Content-Encoding'), bytes) else h.get('Content-Encoding')
out['sha'] = str(h.get('X-Amz-Content-SHA256'), 'latin1') if isinstance(h.get('X-Amz-Content-SHA256'), bytes) else h.get('X-Amz-Content-SHA256')
out['crcHeader'] = 'x-amz-checksum-crc32' in [k.lower() for k in h.keys()]
out['putEtag'] = p['ETag']
out['md5'] = '"' + hashlib.md5(data).hexdigest() + '"'
for alg in ['CRC32', 'SHA1', 'SHA256']:  # CRC32C needs botocore[crt]; crc32c is checked in checksums.test.ts
    s3.put_object(Bucket='obj1', Key='alg/' + alg, Body=data, ChecksumAlgorithm=alg)
    out['alg' + alg] = s3.get_object(Bucket='obj1', Key='alg/' + alg)['Body'].read() == data
g = s3.get_object(Bucket='obj1', Key='dir/obj.bin')
out['getOk'] = g['Body'].read() == data
out['getEtag'] = g['ETag']
out['ctype'] = g['ContentType']
out['meta'] = g['Metadata']
rg = s3.get_object(Bucket='obj1', Key='dir/obj.bin', Range='bytes=1000-1999')
out['range'] = rg['Body'].read() == data[1000:2000]
out['contentRange'] = rg['ContentRange']
out['suffix'] = s3.get_object(Bucket='obj1', Key='dir/obj.bin', Range='bytes=-4')['Body'].read() == b'tail'
out['badRange'] = code(s3.get_object, Bucket='obj1', Key='dir/obj.bin', Range='bytes=99999999-')
out['ifMatchBad'] = code(s3.get_object, Bucket='obj1', Key='dir/obj.bin', IfMatch='"0123"')
out['ifNoneMatch'] = code(s3.get_object, Bucket='obj1', Key='dir/obj.bin', IfNoneMatch=g['ETag'])
future = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=1)
past = datetime.datetime(2000, 1, 1, tzinfo=datetime.timezone.utc)
out['ifUnmodifiedPast'] = code(s3.get_object, Bucket='obj1', Key='dir/obj.bin', IfUnmodifiedSince=past)
out['ifModifiedFuture'] = code(s3.get_object, Bucket='obj1', Key='dir/obj.bin', IfModifiedSince=future)
out['ifMatchGood'] = code(s3.get_object, Bucket='obj1', Key='dir/obj.bin', IfMatch=g['ETag'])
s3.copy_object(Bucket='obj1', Key='copy/same-meta', CopySource={'Bucket': 'obj1', 'Key': 'dir/obj.bin'})
c = s3.head_object(Bucket='obj1', Key='copy/same-meta')
out['copyMeta'] = c['Metadata']
out['copyEtag'] = c['ETag']
s3.copy_object(Bucket='obj1', Key='copy/replaced', CopySource='obj1/dir/obj.bin', MetadataDirective='REPLACE', Metadata={'shape': 'round'}, ContentType='text/plain')
c2 = s3.head_object(Bucket='obj1', Key='copy/replaced')
out['replacedMeta'] = [c2['Metadata'], c2['ContentType']]
out['copyBytes'] = s3.get_object(Bucket='obj1', Key='copy/replaced')['Body'].read() == data
out['copySelf'] = code(s3.copy_object, Bucket='obj1', Key='dir/obj.bin', CopySource='obj1/dir/obj.bin')
url = s3.generate_presigned_url('get_object', Params={'Bucket': 'obj1', 'Key': 'dir/obj.bin'}, ExpiresIn=60)
out['presignedGet'] = urllib.request.urlopen(url).read() == data
purl = s3.generate_presigned_url('put_object', Params={'Bucket': 'obj1', 'Key': 'presigned/up.txt'}, ExpiresIn=60)
req = urllib.request.Request(purl, data=b'via presigned put', method='PUT')
out['presignedPut'] = urllib.request.urlopen(req).status
out['presignedPutBody'] = s3.get_object(Bucket='obj1', Key='presigned/up.txt')['Body'].read().decode()
short = s3.generate_presigned_url('get_object', Params={'Bucket': 'obj1', 'Key': 'dir/obj.bin'}, ExpiresIn=1)
time.sleep(2.2)
try:
    urllib.request.urlopen(short)
    out['expired'] = 'OK'
except urllib.error.HTTPError as e:
    body = e.read().decode()
    out['expired'] = [e.code, 'AccessDenied' in body, 'expired' in body]
tampered = url.replace('dir/obj.bin', 'copy/replaced')
try:
    urllib.request.urlopen(tampered)
    out['tampered'] = 'OK'
except urllib.error.HTTPError as e:
    out['tampered'] = [e.code, 'SignatureDoesNotMatch' in e.read().decode()]
print(json.dumps(out))
`);
    // Over plain http botocore signs the body's SHA-256 and sends its CRC32 as a header (aws-chunked
    // trailers need https); the gateway checks both. aws-chunked is covered by chunked.test.ts.
    t.equal(r.encoding, null, 'boto3 over http sends a plain body');
    t.match(r.sha, /^[0-9a-f]{64}$/, 'with its SHA-256 signed');
    t.equal(r.crcHeader, true, 'and an x-amz-checksum-crc32 header');
    t.equal(r.putEtag, r.md5, 'the PUT ETag is the MD5 of the object');
    t.equal(r.getEtag, r.md5, 'GET gives the same ETag');
    for (const alg of ['CRC32', 'SHA1', 'SHA256']) t.equal(r[`alg${alg}`], true, `a PUT with a ${alg} checksum round-trips`);
    t.equal(r.getOk, true, 'GET returns the bytes');
    t.equal(r.ctype, 'application/x-test');
    t.same(r.meta, { colour: 'blue' }, 'x-amz-meta-* kept');
    t.equal(r.range, true, 'ranged GET');
    t.equal(r.contentRange, 'bytes 1000-1999/1024004');
    t.equal(r.suffix, true, 'suffix range');
    t.equal(r.badRange, 'InvalidRange');
    t.equal(r.ifMatchBad, 'PreconditionFailed');
    t.equal(r.ifNoneMatch, '304', 'If-None-Match with the ETag: 304');
    t.equal(r.ifUnmodifiedPast, 'PreconditionFailed');
    t.equal(r.ifModifiedFuture, '304');
    t.equal(r.ifMatchGood, 'OK');
    t.same(r.copyMeta, { colour: 'blue' }, 'CopyObject keeps the metadata by default');
    t.equal(r.copyEtag, r.md5, 'a copy has the MD5 ETag');
    t.same(r.replacedMeta, [{ shape: 'round' }, 'text/plain'], 'MetadataDirective REPLACE');
    t.equal(r.copyBytes, true);
    t.equal(r.copySelf, 'InvalidRequest', 'copy onto itself without a change is refused');
    t.equal(r.presignedGet, true, 'presigned GET');
    t.equal(r.presignedPut, 200, 'presigned PUT');
    t.equal(r.presignedPutBody, 'via presigned put');
    t.same(r.expired, [403, true, true], 'an expired presigned URL: 403 AccessDenied, "expired"');
    t.same(r.tampered, [403, true], 'a presigned URL for another key: SignatureDoesNotMatch');
  });

  t.test('listings: delimiter, pages, start-after, url encoding, V1; DeleteObjects', async (t) => {
    const r = await pyJson(gw, String.raw`
s3.create_bucket(Bucket='lst')
keys = ['a/1', 'a/2', 'a/b/3', 'b 1', 'c+d', 'c/x', 'z']
for k in keys:
    s3.put_object(Bucket='lst', Key=k, Body=k.encode())
out = {}
top = s3.list_objects_v2(Bucket='lst', Delimiter='/')
out['top'] = [[o['Key'] for o in top.get('Contents', [])], [p['Prefix'] for p in top.get('CommonPrefixes', [])]]
pages, token = [], None
while True:
    kw = {'Bucket': 'lst', 'MaxKeys': 2}
    if token: kw['ContinuationToken'] = token
    page = s3.list_objects_v2(**kw)
    pages.append([o['Key'] for o in page.get('Contents', [])])
    if not page['IsTruncated']: break
    token = page['NextContinuationToken']
out['pages'] = pages
out['after'] = [o['Key'] for o in s3.list_objects_v2(Bucket='lst', StartAfter='b 1')['Contents']]
out['prefix'] = [o['Key'] for o in s3.list_objects_v2(Bucket='lst', Prefix='a/')['Contents']]
enc = s3.list_objects_v2(Bucket='lst', EncodingType='url', Prefix='c')
out['encoded'] = [o['Key'] for o in enc['Contents']]
v1 = s3.list_objects(Bucket='lst', Delimiter='/', Prefix='a/', MaxKeys=1)
out['v1'] = [[o['Key'] for o in v1.get('Contents', [])], v1['IsTruncated'], v1.get('NextMarker')]
d = s3.delete_objects(Bucket='lst', Delete={'Objects': [{'Key': 'a/1'}, {'Key': 'a/b/3'}, {'Key': 'never'}, {'Key': 'bad//key'}]})
out['deleted'] = sorted(x['Key'] for x in d.get('Deleted', []))
out['deleteErrors'] = [[x['Key'], x['Code']] for x in d.get('Errors', [])]
out['left'] = [o['Key'] for o in s3.list_objects_v2(Bucket='lst')['Contents']]
out['etagInList'] = s3.list_objects_v2(Bucket='lst', Prefix='z')['Contents'][0]['ETag'] == '"' + hashlib.md5(b'z').hexdigest() + '"'
out['noBucket'] = code(s3.list_objects_v2, Bucket='nope-bucket')
out['noKey'] = code(s3.get_object, Bucket='lst', Key='missing')
out['headNoKey'] = code(s3.head_object, Bucket='lst', Key='missing')
out['location'] = s3.get_bucket_location(Bucket='lst').get('LocationConstraint')
out['buckets'] = [b['Name'] for b in s3.list_buckets()['Buckets']]
out['notImpl'] = code(s3.get_bucket_acl, Bucket='lst')
out['notEmpty'] = code(s3.delete_bucket, Bucket='lst')
print(json.dumps(out))
`);
    t.same(r.top, [['b 1', 'c+d', 'z'], ['a/', 'c/']], 'delimiter "/" at the top');
    t.same(r.pages, [['a/1', 'a/2'], ['a/b/3', 'b 1'], ['c+d', 'c/x'], ['z']], 'pages of 2 with continuation tokens');
    t.same(r.after, ['c+d', 'c/x', 'z'], 'start-after');
    t.same(r.prefix, ['a/1', 'a/2', 'a/b/3'], 'prefix');
    t.same(r.encoded, ['c%2Bd', 'c/x'], 'encoding-type=url asked for explicitly: the keys come url-encoded (botocore asks for it itself on every other listing, and decodes)');
    t.same(r.v1, [['a/1'], true, 'a/1'], 'ListObjects V1 with a marker');
    t.same(r.deleted, ['a/1', 'a/b/3', 'never'], 'DeleteObjects deletes, and a missing key counts as deleted');
    t.same(r.deleteErrors, [['bad//key', 'InvalidArgument']], 'a key dfs cannot hold is an error entry');
    t.same(r.left, ['a/2', 'b 1', 'c+d', 'c/x', 'z']);
    t.equal(r.etagInList, true, 'listings carry the MD5 ETag');
    t.equal(r.noBucket, 'NoSuchBucket');
    t.equal(r.noKey, 'NoSuchKey');
    t.equal(r.headNoKey, '404');
    t.equal(r.location, null, 'us-east-1 is the empty location constraint');
    t.ok((r.buckets as string[]).includes('lst') && !(r.buckets as string[]).some((b) => b.startsWith('.')), 'ListBuckets lists buckets, not the gateway\'s folder');
    t.equal(r.notImpl, 'NotImplemented');
    t.equal(r.notEmpty, 'BucketNotEmpty');
  });

  t.test('folder objects: an empty directory lists as its key d/, with every listing rule', async (t) => {
    const r = await pyJson(gw, String.raw`
s3.create_bucket(Bucket='fold')
for k in ['a/a-1', 'a/b-1', 'a/b0', 'a/c/f']:
    s3.put_object(Bucket='fold', Key=k, Body=b'x')
for k in ['a/b/', 'a/d/e/', 'sp ace+/']:
    s3.put_object(Bucket='fold', Key=k, Body=b'')
def v2(**kw):
    r = s3.list_objects_v2(Bucket='fold', **kw)
    return [[o['Key'] for o in r.get('Contents', [])], [p['Prefix'] for p in r.get('CommonPrefixes', [])]]
out = {}
out['deleteFolderOfFile'] = [code(s3.delete_object, Bucket='fold', Key='a/b0/'), s3.delete_objects(Bucket='fold', Delete={'Objects': [{'Key': 'a/a-1/'}]}).get('Errors', [])]
out['all'] = v2()
folder = [o for o in s3.list_objects_v2(Bucket='fold', Prefix='a/b/')['Contents']][0]
out['folder'] = [folder['Size'], folder['ETag'], folder['StorageClass']]
out['headEtag'] = s3.head_object(Bucket='fold', Key='a/b/')['ETag']
out['top'] = v2(Delimiter='/')
out['inA'] = v2(Delimiter='/', Prefix='a/')
out['itself'] = v2(Delimiter='/', Prefix='a/b/')
out['noSlash'] = v2(Prefix='a/b')
out['noSlashGrouped'] = v2(Prefix='a/b', Delimiter='/')
out['afterBefore'] = v2(StartAfter='a/b-1', MaxKeys=1)
out['afterOn'] = v2(StartAfter='a/b/', MaxKeys=1)
pages, token = [], None
while len(pages) < 20:
    kw = {'MaxKeys': 3}
    if token: kw['ContinuationToken'] = token
    r = s3.list_objects_v2(Bucket='fold', **kw)
    pages.append([o['Key'] for o in r.get('Contents', [])])
    if not r['IsTruncated']: break
    token = r['NextContinuationToken']
out['pages'] = pages
enc = s3.list_objects_v2(Bucket='fold', EncodingType='url', Prefix='sp')
out['encoded'] = [o['Key'] for o in enc['Contents']]
out['encodedPrefixes'] = [p['Prefix'] for p in s3.list_objects_v2(Bucket='fold', EncodingType='url', Delimiter='/')['CommonPrefixes']]
v1 = s3.list_objects(Bucket='fold', Prefix='a/', Delimiter='/', MaxKeys=3)
out['v1'] = [[o['Key'] for o in v1.get('Contents', [])], [p['Prefix'] for p in v1.get('CommonPrefixes', [])], v1['IsTruncated'], v1.get('NextMarker')]
v1b = s3.list_objects(Bucket='fold', Prefix='a/', Delimiter='/', Marker=v1['NextMarker'])
out['v1next'] = [[o['Key'] for o in v1b.get('Contents', [])], [p['Prefix'] for p in v1b.get('CommonPrefixes', [])]]
s3.put_object(Bucket='fold', Key='x/y/z/', Body=b'')
s3.delete_object(Bucket='fold', Key='x/y/z/')
out['nestedDeleted'] = v2(Prefix='x')
s3.create_bucket(Bucket='only-dir')
s3.put_object(Bucket='only-dir', Key='d/', Body=b'')
out['onlyDir'] = code(s3.delete_bucket, Bucket='only-dir')
s3.delete_object(Bucket='only-dir', Key='d/')
out['onlyDirListed'] = s3.list_objects_v2(Bucket='only-dir').get('KeyCount')
out['emptied'] = code(s3.delete_bucket, Bucket='only-dir')
print(json.dumps(out))
`);
    const empty = '"d41d8cd98f00b204e9800998ecf8427e"';
    const all = ['a/a-1', 'a/b-1', 'a/b/', 'a/b0', 'a/c/f', 'a/d/e/', 'sp ace+/'];
    t.same(r.deleteFolderOfFile, ['OK', []], 'deleting a/b0/ or a/a-1/ (no folders: files are there) answers as for any missing key...');
    t.same(r.all, [all, []], '...and deletes nothing; no delimiter: folder keys among the keys, in byte order');
    t.same(r.folder, [0, empty, 'STANDARD'], 'a folder object: 0 bytes, the MD5 of nothing');
    t.equal(r.headEtag, empty, 'as HEAD says');
    t.same(r.top, [[], ['a/', 'sp ace+/']], 'delimiter "/": an empty top-level directory is a common prefix');
    t.same(r.inA, [['a/a-1', 'a/b-1', 'a/b0'], ['a/b/', 'a/c/', 'a/d/']], 'prefix a/: the empty a/b and a/d (holding only an empty directory) are common prefixes');
    t.same(r.itself, [['a/b/'], []], 'prefix a/b/: the folder object itself');
    t.same(r.noSlash, [['a/b-1', 'a/b/', 'a/b0'], []], 'prefix a/b');
    t.same(r.noSlashGrouped, [['a/b-1', 'a/b0'], ['a/b/']], 'prefix a/b, delimiter "/"');
    t.same(r.afterBefore, [['a/b/'], []], 'start-after just before it');
    t.same(r.afterOn, [['a/b0'], []], 'start-after on it');
    t.same(r.pages, [all.slice(0, 3), all.slice(3, 6), all.slice(6)], 'pages of 3: one ends on a/b/, the next goes on after it');
    t.same(r.encoded, ['sp%20ace%2B/'], 'encoding-type=url encodes a folder key as any key');
    t.same(r.encodedPrefixes, ['a/', 'sp%20ace%2B/'], 'and its common prefix');
    t.same(r.v1, [['a/a-1', 'a/b-1'], ['a/b/'], true, 'a/b/'], 'V1: a page that ends on the common prefix a/b/');
    t.same(r.v1next, [['a/b0'], ['a/c/', 'a/d/']], 'V1: the next page from that marker');
    t.same(r.nestedDeleted, [[], []], 'deleting the folder object x/y/z/ leaves no x/y/ (nor x/) behind, as in S3');
    t.equal(r.onlyDir, 'BucketNotEmpty', 'a bucket holding only an empty directory is not empty: it lists d/');
    t.equal(r.onlyDirListed, 0, 'deleting d/ empties it');
    t.equal(r.emptied, 'OK', 'and then it can be deleted');
  });

  t.test('multipart with explicit parts, and the errors for wrong ones', async (t) => {
    const r = await pyJson(gw, String.raw`
s3.create_bucket(Bucket='mpu')
MiB = 1024 * 1024
p1 = os.urandom(5 * MiB)
p2 = os.urandom(5 * MiB + 7)
p3 = b'last part'
out = {}
up = s3.create_multipart_upload(Bucket='mpu', Key='big/file', ContentType='video/x-test', Metadata={'k': 'v'})['UploadId']
e1 = s3.upload_part(Bucket='mpu', Key='big/file', UploadId=up, PartNumber=1, Body=p1)['ETag']
e2 = s3.upload_part(Bucket='mpu', Key='big/file', UploadId=up, PartNumber=2, Body=p2)['ETag']
e3 = s3.upload_part(Bucket='mpu', Key='big/file', UploadId=up, PartNumber=3, Body=p3)['ETag']
lp = s3.list_parts(Bucket='mpu', Key='big/file', UploadId=up)
out['parts'] = [[p['PartNumber'], p['Size'], p['ETag']] for p in lp['Parts']]
out['etags'] = [e1, e2, e3]
out['uploads'] = [u['Key'] for u in s3.list_multipart_uploads(Bucket='mpu').get('Uploads', [])]
out['order'] = code(s3.complete_multipart_upload, Bucket='mpu', Key='big/file', UploadId=up, MultipartUpload={'Parts': [{'PartNumber': 2, 'ETag': e2}, {'PartNumber': 1, 'ETag': e1}]})
out['wrongEtag'] = code(s3.complete_multipart_upload, Bucket='mpu', Key='big/file', UploadId=up, MultipartUpload={'Parts': [{'PartNumber': 1, 'ETag': e2}]})
out['small'] = code(s3.complete_multipart_upload, Bucket='mpu', Key='big/file', UploadId=up, MultipartUpload={'Parts': [{'PartNumber': 3, 'ETag': e3}, {'PartNumber': 4, 'ETag': e3}]})
out['smallNotLast'] = code(s3.complete_multipart_upload, Bucket='mpu', Key='other', UploadId=up, MultipartUpload={'Parts': [{'PartNumber': 1, 'ETag': e1}]})
out['badPartNumber'] = code(s3.upload_part, Bucket='mpu', Key='big/file', UploadId=up, PartNumber=10001, Body=b'x')
out['nothingYet'] = code(s3.head_object, Bucket='mpu', Key='big/file')
c = s3.complete_multipart_upload(Bucket='mpu', Key='big/file', UploadId=up, MultipartUpload={'Parts': [{'PartNumber': 1, 'ETag': e1}, {'PartNumber': 2, 'ETag': e2}, {'PartNumber': 3, 'ETag': e3}]})
want = hashlib.md5(b''.join(bytes.fromhex(e.strip('"')) for e in [e1, e2, e3])).hexdigest() + '-3'
out['completeEtag'] = c['ETag'] == '"' + want + '"'
g = s3.get_object(Bucket='mpu', Key='big/file')
whole = p1 + p2 + p3
out['bytes'] = g['Body'].read() == whole
out['getEtag'] = g['ETag'] == c['ETag']
out['meta'] = [g['ContentType'], g['Metadata']]
out['acrossParts'] = s3.get_object(Bucket='mpu', Key='big/file', Range='bytes=%d-%d' % (5 * MiB - 10, 10 * MiB + 10))['Body'].read() == whole[5 * MiB - 10:10 * MiB + 11]
out['afterComplete'] = code(s3.list_parts, Bucket='mpu', Key='big/file', UploadId=up)
up2 = s3.create_multipart_upload(Bucket='mpu', Key='aborted')['UploadId']
s3.upload_part(Bucket='mpu', Key='aborted', UploadId=up2, PartNumber=1, Body=b'abc')
s3.abort_multipart_upload(Bucket='mpu', Key='aborted', UploadId=up2)
out['aborted'] = [code(s3.list_parts, Bucket='mpu', Key='aborted', UploadId=up2), code(s3.head_object, Bucket='mpu', Key='aborted')]
up3 = s3.create_multipart_upload(Bucket='mpu', Key='copied')['UploadId']
cp = s3.upload_part_copy(Bucket='mpu', Key='copied', UploadId=up3, PartNumber=1, CopySource='mpu/big/file', CopySourceRange='bytes=0-%d' % (5 * MiB - 1))
cp2 = s3.upload_part_copy(Bucket='mpu', Key='copied', UploadId=up3, PartNumber=2, CopySource='mpu/big/file', CopySourceRange='bytes=%d-%d' % (10 * MiB, 10 * MiB + 99))
s3.complete_multipart_upload(Bucket='mpu', Key='copied', UploadId=up3, MultipartUpload={'Parts': [{'PartNumber': 1, 'ETag': cp['CopyPartResult']['ETag']}, {'PartNumber': 2, 'ETag': cp2['CopyPartResult']['ETag']}]})
out['partCopy'] = s3.get_object(Bucket='mpu', Key='copied')['Body'].read() == whole[:5 * MiB] + whole[10 * MiB:10 * MiB + 100]
print(json.dumps(out))
`);
    const etags = r.etags as string[];
    t.same(r.parts, [[1, 5 * 1024 * 1024, etags[0]], [2, 5 * 1024 * 1024 + 7, etags[1]], [3, 9, etags[2]]], 'ListParts');
    t.same(r.uploads, ['big/file'], 'ListMultipartUploads');
    t.equal(r.order, 'InvalidPartOrder');
    t.equal(r.wrongEtag, 'InvalidPart');
    t.equal(r.small, 'InvalidPart', 'a part never uploaded');
    t.equal(r.smallNotLast, 'NoSuchUpload', 'an upload id used with another key');
    t.equal(r.badPartNumber, 'InvalidArgument', 'part 10,001');
    t.equal(r.nothingYet, '404', 'refused completes stored nothing');
    t.equal(r.completeEtag, true, 'the ETag is md5-of-part-md5s-3');
    t.equal(r.bytes, true, 'the object is the parts in order');
    t.equal(r.getEtag, true);
    t.same(r.meta, ['video/x-test', { k: 'v' }], 'metadata from CreateMultipartUpload');
    t.equal(r.acrossParts, true, 'a range across part boundaries (chunks shorter than the chunk size)');
    t.equal(r.afterComplete, 'NoSuchUpload', 'the upload is gone once complete');
    t.same(r.aborted, ['NoSuchUpload', '404'], 'an aborted upload is gone and stored nothing');
    t.equal(r.partCopy, true, 'UploadPartCopy with ranges');
  });

  t.test('EntityTooSmall: a part under 5 MiB that is not the last', async (t) => {
    const r = await pyJson(gw, String.raw`
s3.create_bucket(Bucket='small')
up = s3.create_multipart_upload(Bucket='small', Key='k')['UploadId']
e1 = s3.upload_part(Bucket='small', Key='k', UploadId=up, PartNumber=1, Body=b'a' * 1000)['ETag']
e2 = s3.upload_part(Bucket='small', Key='k', UploadId=up, PartNumber=2, Body=b'b')['ETag']
print(json.dumps({'small': code(s3.complete_multipart_upload, Bucket='small', Key='k', UploadId=up, MultipartUpload={'Parts': [{'PartNumber': 1, 'ETag': e1}, {'PartNumber': 2, 'ETag': e2}]}), 'stored': code(s3.head_object, Bucket='small', Key='k')}))
`);
    t.same(r, { small: 'EntityTooSmall', stored: '404' });
  });

  t.test('bad input: wrong secret, long key, keys dfs cannot hold, a body that is not what was signed', async (t) => {
    const r = await pyJson(gw, String.raw`
s3.create_bucket(Bucket='bad')
wrong = boto3.client('s3', endpoint_url=ENDPOINT, aws_access_key_id=os.environ['AWS_ACCESS_KEY_ID'], aws_secret_access_key='not-the-secret', config=Config(s3={'addressing_style': 'path'}, retries={'max_attempts': 1}))
unknown = boto3.client('s3', endpoint_url=ENDPOINT, aws_access_key_id='NOSUCHKEY', aws_secret_access_key='whatever-secret', config=Config(s3={'addressing_style': 'path'}, retries={'max_attempts': 1}))
out = {}
out['wrongSecret'] = code(wrong.put_object, Bucket='bad', Key='x', Body=b'data')
out['unknownKey'] = code(unknown.list_buckets)
out['longKey'] = code(s3.put_object, Bucket='bad', Key='k' * 1025, Body=b'data')
out['dotdot'] = code(s3.put_object, Bucket='bad', Key='a/../b', Body=b'data')
out['trailingSlash'] = code(s3.put_object, Bucket='bad', Key='dir/', Body=b'bytes')
out['doubleSlash'] = code(s3.put_object, Bucket='bad', Key='a//', Body=b'')
out['conflict'] = [code(s3.put_object, Bucket='bad', Key='f', Body=b'1'), code(s3.put_object, Bucket='bad', Key='f/g', Body=b'2')]
out['badMd5'] = code(s3.put_object, Bucket='bad', Key='md5', Body=b'data', ContentMD5='1B2M2Y8AsgTpgAmY7PhCfg==')
# Refused after its directories were made (the body is past what the master keeps inline): they go again, or they would list as folder objects.
out['badMd5Deep'] = code(s3.put_object, Bucket='bad', Key='new/dirs/md5', Body=b'x' * (1 << 20), ContentMD5='1B2M2Y8AsgTpgAmY7PhCfg==')
# Refused into folders a user made: those stay (S3 changes nothing for a refused PUT), the one the PUT made goes.
s3.put_object(Bucket='bad', Key='photos/', Body=b'')
s3.put_object(Bucket='bad', Key='p/q/', Body=b'')
out['intoFolder'] = [code(s3.put_object, Bucket='bad', Key='photos/x.jpg', Body=b'x' * (1 << 20), ContentMD5='1B2M2Y8AsgTpgAmY7PhCfg=='),
                     code(s3.put_object, Bucket='bad', Key='photos/small', Body=b'x', ContentMD5='1B2M2Y8AsgTpgAmY7PhCfg=='),
                     code(s3.put_object, Bucket='bad', Key='p/q/new/big', Body=b'x' * (1 << 20), ContentMD5='1B2M2Y8AsgTpgAmY7PhCfg==')]
out['noBucket'] = code(s3.put_object, Bucket='no-such-bucket', Key='k', Body=b'x')
out['left'] = [o['Key'] for o in s3.list_objects_v2(Bucket='bad').get('Contents', [])]
print(json.dumps(out))
`);
    t.equal(r.wrongSecret, 'SignatureDoesNotMatch');
    t.equal(r.unknownKey, 'InvalidAccessKeyId');
    t.equal(r.longKey, 'KeyTooLongError');
    t.equal(r.dotdot, 'InvalidArgument');
    t.equal(r.trailingSlash, 'InvalidArgument', 'a folder key (its directory) with bytes');
    t.equal(r.doubleSlash, 'InvalidArgument', 'a folder key of a key dfs cannot hold');
    t.same(r.conflict, ['OK', 'KeyConflict'], 'a key below another key');
    t.equal(r.badMd5, 'BadDigest');
    t.equal(r.badMd5Deep, 'BadDigest');
    t.equal(r.noBucket, 'NoSuchBucket');
    t.same(r.intoFolder, ['BadDigest', 'BadDigest', 'BadDigest'], 'refused PUTs into folders a user made');
    t.same(r.left, ['f', 'p/q/', 'photos/'], 'only the accepted PUT is stored, no directory a refused one made, and every folder made before one');
  });
});
