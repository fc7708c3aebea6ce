// pyarrow's S3FileSystem (C++, the AWS SDK for C++ inside) against a real cluster and gateway, as a
// data tool uses it: a Parquet file written over s3:// (large enough for pyarrow to go multipart)
// and read back whole, one row group and one column of it (ranged GETs), a dataset directory of
// two files counted, listed and one file deleted (pyarrow then puts a folder key for its
// directory); directories pyarrow makes, lists and deletes (create_dir, get_file_info,
// delete_dir: it finds an empty one by its folder key in a listing); and those folder keys
// ("a/b/") as boto3 sees them. .ci/run installs pyarrow with pip.
import t from 'tap';
import { DfsClient } from '../../cli/client.js';
import { boto, requireProgram, run, startGateway, type Gateway } from './gateway.js';

requireProgram('python3', ['-c', 'import pyarrow.fs, pyarrow.parquet, pyarrow.dataset'], 'pyarrow (pip install pyarrow)');

/** Runs a python3 script with pyarrow; the script gets `s3`, an S3FileSystem on the gateway, and `out`, printed as JSON at its end and returned. */
async function pyarrow(gw: Gateway, script: string): Promise<Record<string, unknown>> {
  const prelude = String.raw`
import os, json
import pyarrow as pa, pyarrow.parquet as pq, pyarrow.fs as pafs, pyarrow.dataset as ds
s3 = pafs.S3FileSystem(access_key=os.environ['AWS_ACCESS_KEY_ID'], secret_key=os.environ['AWS_SECRET_ACCESS_KEY'],
                       region='us-east-1', scheme='http', endpoint_override=os.environ['ENDPOINT'],
                       allow_bucket_creation=True, allow_bucket_deletion=True)
out = {}
`;
  const r = await run('python3', ['-c', `${prelude}${script}\nprint(json.dumps(out))\n`], { ...gw.env, ENDPOINT: gw.endpoint.replace(/^http:\/\//, '') }, undefined, 240_000);
  if (r.code !== 0) throw new Error(`python3 failed (${r.code}):\n${r.stderr}\n${r.stdout}`);
  return JSON.parse(r.stdout.trim().split('\n').at(-1)!) as Record<string, unknown>;
}

const SCRIPT = String.raw`
s3.create_dir('pq-bucket')
n = 400_000
table = pa.table({'id': pa.array(range(n), pa.int64()), 'name': pa.array([f'row-{i}' for i in range(n)]),
                  'x': pa.array([i * 0.5 for i in range(n)])})
pq.write_table(table, 'pq-bucket/data/part-0.parquet', filesystem=s3, row_group_size=50_000, compression='none')
out['size'] = s3.get_file_info('pq-bucket/data/part-0.parquet').size
back = pq.read_table('pq-bucket/data/part-0.parquet', filesystem=s3)
out['equal'] = back.equals(table)
f = pq.ParquetFile(s3.open_input_file('pq-bucket/data/part-0.parquet'))
out['rowGroups'] = f.num_row_groups
group = f.read_row_group(3, columns=['name'])
out['group3'] = [group.column('name')[0].as_py(), group.num_rows]
pq.write_table(table.slice(0, 1000), 'pq-bucket/data/part-1.parquet', filesystem=s3)
out['datasetRows'] = ds.dataset('pq-bucket/data', filesystem=s3, format='parquet').count_rows()
selector = pafs.FileSelector('pq-bucket/data', recursive=True)
out['listed'] = sorted(i.path for i in s3.get_file_info(selector))
s3.delete_file('pq-bucket/data/part-1.parquet')
out['afterDelete'] = sorted(i.path for i in s3.get_file_info(selector))
out['missing'] = s3.get_file_info('pq-bucket/data/part-1.parquet').type == pafs.FileType.NotFound
`;

t.test('pyarrow writes and reads Parquet over s3://', async (t) => {
  const gw = await startGateway();
  t.teardown(() => gw.stop());
  const out = await pyarrow(gw, SCRIPT);
  // 400,000 rows of three columns, uncompressed: over 5 MiB, so pyarrow's output stream uploads in parts.
  t.ok((out.size as number) > 5 * 1024 * 1024, `the file is ${String(out.size)} bytes: multipart`);
  t.equal(out.equal, true, 'read back whole, the table is the one written');
  t.equal(out.rowGroups, 8, 'its 8 row groups are there');
  t.same(out.group3, ['row-150000', 50_000], 'one row group, one column: ranged reads');
  t.equal(out.datasetRows, 401_000, 'the dataset of two files counts every row');
  t.same(out.listed, ['pq-bucket/data/part-0.parquet', 'pq-bucket/data/part-1.parquet'], 'listed');
  t.same(out.afterDelete, ['pq-bucket/data/part-0.parquet'], 'one file deleted');
  t.equal(out.missing, true, 'and gone');
});

t.test('pyarrow makes, sees, lists and deletes directories', async (t) => {
  const gw = await startGateway();
  t.teardown(() => gw.stop());
  const out = await pyarrow(gw, String.raw`
kind = lambda p: s3.get_file_info(p).type.name
listing = lambda p, r=True: sorted([i.path, i.type.name] for i in s3.get_file_info(pafs.FileSelector(p, recursive=r)))
s3.create_dir('pq-dirs')
s3.create_dir('pq-dirs/d')
out['created'] = kind('pq-dirs/d')
out['emptyListing'] = listing('pq-dirs/d')
s3.create_dir('pq-dirs/a/b/c')
with s3.open_output_stream('pq-dirs/a/file.txt') as f:
    f.write(b'hi')
out['nested'] = [kind('pq-dirs/a'), kind('pq-dirs/a/b'), kind('pq-dirs/a/b/c')]
out['listed'] = listing('pq-dirs')
out['top'] = listing('pq-dirs', False)
s3.delete_dir('pq-dirs/d')
out['deleted'] = kind('pq-dirs/d')
s3.delete_dir('pq-dirs/a')
out['aDeleted'] = [kind('pq-dirs/a'), kind('pq-dirs/a/b/c'), kind('pq-dirs/a/file.txt')]
s3.create_dir('pq-dirs/keep')
with s3.open_output_stream('pq-dirs/keep/x') as f:
    f.write(b'x')
s3.delete_file('pq-dirs/keep/x')
out['kept'] = [kind('pq-dirs/keep'), kind('pq-dirs/keep/x')]
out['afterAll'] = listing('pq-dirs')
`);
  t.equal(out.created, 'Directory', 'create_dir, then get_file_info: a directory');
  t.same(out.emptyListing, [], 'with nothing in it');
  t.same(out.nested, ['Directory', 'Directory', 'Directory'], 'create_dir makes the directories above it too');
  t.same(out.listed, [['pq-dirs/a', 'Directory'], ['pq-dirs/a/b', 'Directory'], ['pq-dirs/a/b/c', 'Directory'], ['pq-dirs/a/file.txt', 'File'], ['pq-dirs/d', 'Directory']],
    'a recursive FileSelector lists the empty directories and those they imply');
  t.same(out.top, [['pq-dirs/a', 'Directory'], ['pq-dirs/d', 'Directory']], 'one level: both directories');
  t.equal(out.deleted, 'NotFound', 'delete_dir removes an empty directory');
  t.same(out.aDeleted, ['NotFound', 'NotFound', 'NotFound'], 'and a directory with everything below it');
  t.same(out.kept, ['Directory', 'NotFound'], 'deleting the last file of a directory keeps the directory (pyarrow puts its folder key back)');
  t.same(out.afterAll, [['pq-dirs/keep', 'Directory']], 'what is left');
  const inDfs = (await new DfsClient(gw.cluster.masters.split(',')).list('/pq-dirs')).entries.map((e) => [e.name, e.type]);
  t.same(inDfs, [['keep', 'dir']], 'dfs has the kept directory and nothing of what was deleted');
  const listed = await boto(gw, "print(json.dumps([o['Key'] for o in s3.list_objects_v2(Bucket='pq-dirs').get('Contents', [])]))");
  t.same(JSON.parse(listed.stdout), ['keep/'], 'boto3 lists it as its folder key');
});

t.test('folder keys ("a/b/"): the directory they name', async (t) => {
  const gw = await startGateway();
  t.teardown(() => gw.stop());
  const r = await boto(gw, String.raw`
out = {}
s3.create_bucket(Bucket='folders')
p = s3.put_object(Bucket='folders', Key='a/b/', Body=b'')
out['putEtag'] = p['ETag']
h = s3.head_object(Bucket='folders', Key='a/b/')
out['head'] = [h['ContentLength'], h['ETag']]
out['getBody'] = s3.get_object(Bucket='folders', Key='a/b/')['Body'].read() == b''
out['withBytes'] = code(s3.put_object, Bucket='folders', Key='c/', Body=b'x')
out['cHead'] = code(s3.head_object, Bucket='folders', Key='c/')
out['missingHead'] = code(s3.head_object, Bucket='folders', Key='nothing/')
s3.put_object(Bucket='folders', Key='a/b/file.txt', Body=b'kept')
s3.delete_object(Bucket='folders', Key='a/b/')
out['fileKept'] = s3.get_object(Bucket='folders', Key='a/b/file.txt')['Body'].read() == b'kept'
s3.delete_object(Bucket='folders', Key='a/b/file.txt')
s3.put_object(Bucket='folders', Key='d/', Body=b'')
s3.delete_objects(Bucket='folders', Delete={'Objects': [{'Key': 'd/'}]})
out['dGone'] = code(s3.head_object, Bucket='folders', Key='d/')
out['badFolder'] = code(s3.put_object, Bucket='folders', Key='x//', Body=b'')
print(json.dumps(out))
`);
  t.equal(r.code, 0, `python3 exit 0:\n${r.stderr}\n${r.stdout}`);
  if (r.code !== 0) return;
  const out = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as Record<string, unknown>;
  const emptyMd5 = '"d41d8cd98f00b204e9800998ecf8427e"';
  t.equal(out.putEtag, emptyMd5, 'an empty folder object: the MD5 of nothing');
  t.same(out.head, [0, emptyMd5], 'heading it finds the directory, 0 bytes');
  t.equal(out.getBody, true, 'getting it answers no bytes');
  t.equal(out.withBytes, 'InvalidArgument', 'a folder object with bytes is refused');
  t.equal(out.cHead, '404', 'and nothing was made for it');
  t.equal(out.missingHead, '404', 'a folder that is not there is not found');
  t.equal(out.fileKept, true, 'deleting a folder object keeps the keys below it, as in S3');
  t.equal(out.dGone, '404', 'DeleteObjects takes a folder key too');
  t.equal(out.badFolder, 'InvalidArgument', 'a folder key is checked as any key ("x//" is not one)');
});
