// The real aws CLI against a real cluster and gateway: `aws s3 cp/sync/ls/rm` of a tree with
// 0-byte, 1-byte, 5 MiB+1 and ~20 MiB files (the last goes multipart: aws switches at 8 MiB) and
// keys with spaces, '+', '&', '%' and unicode; every file byte-identical after a round trip. Empty
// directories (folder objects in listings) come down as no file, and `rm --recursive` takes them.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { aws, emptyDirsAt, gatewayWithWorkdir, makeEmptyDirs, requireClients, tree, TREE_FILES, writeTree } from './gateway.js';

requireClients();

const FILES: Record<string, number> = { ...TREE_FILES, 'big/twenty.bin': 20 * 1024 * 1024 + 12345 };

t.test('aws s3 sync up and down, cp, ls, rm: byte-identical trees', async (t) => {
  const { gw, work } = await gatewayWithWorkdir(t, 'aws');
  const src = join(work, 'src');
  writeTree(src, FILES, 1);
  const mb = await aws(gw, ['s3', 'mb', 's3://bucket-one']);
  t.equal(mb.code, 0, `mb: ${mb.stderr}`);
  const up = await aws(gw, ['s3', 'sync', src, 's3://bucket-one/tree/']);
  t.equal(up.code, 0, `sync up: ${up.stderr}`);
  await makeEmptyDirs(gw, 'bucket-one', 'tree/');

  const ls = await aws(gw, ['s3', 'ls', '--recursive', 's3://bucket-one/']);
  t.equal(ls.code, 0, ls.stderr);
  for (const [name, size] of Object.entries(FILES)) t.match(ls.stdout, new RegExp(`\\s${size} tree/${name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\n`), `ls shows ${name} with its size`);
  t.match(ls.stdout, /\s0 tree\/hollow\/\n/, 'and an empty directory as its folder object');
  t.match(ls.stdout, /\s0 tree\/odd\/made-by-dfs\/\n/, 'one a dfs user made too');

  const listed = await aws(gw, ['s3api', 'list-objects-v2', '--bucket', 'bucket-one', '--prefix', 'tree/big/']);
  const twenty = (JSON.parse(listed.stdout) as { Contents: { Key: string; ETag: string }[] }).Contents[0]!;
  t.match(twenty.ETag, /^"[0-9a-f]{32}-\d+"$/, 'the 20 MiB file went multipart: its ETag is md5-of-part-md5s-N');
  const head = await aws(gw, ['s3api', 'head-object', '--bucket', 'bucket-one', '--key', 'tree/big/twenty.bin']);
  t.equal((JSON.parse(head.stdout) as { ETag: string }).ETag, twenty.ETag, 'HEAD and the listing give the same ETag');

  const down = join(work, 'down');
  const sync = await aws(gw, ['s3', 'sync', 's3://bucket-one/tree/', down]);
  t.equal(sync.code, 0, `sync down: ${sync.stderr}`);
  t.same(tree(down), tree(src), 'the tree comes back byte-identical');
  t.same(emptyDirsAt(down), { hollow: 'absent', 'odd/made-by-dfs': 'absent' }, 'the aws CLI skips folder objects (0 bytes, a key ending in "/") when it downloads: no file is made of one');

  const again = await aws(gw, ['s3', 'sync', src, 's3://bucket-one/tree/']);
  t.equal(again.stdout.trim(), '', 'a second sync up finds nothing to send');

  const cpDown = join(work, 'one-copy.bin');
  t.equal((await aws(gw, ['s3', 'cp', 's3://bucket-one/tree/odd/ünïcødé 日本.txt', cpDown])).code, 0);
  t.equal(createHash('md5').update(readFileSync(cpDown)).digest('hex'), tree(src).get('odd/ünïcødé 日本.txt'));

  const rb = await aws(gw, ['s3', 'rb', 's3://bucket-one']);
  t.not(rb.code, 0, 'rb of a bucket with objects fails');
  t.match(rb.stderr, /BucketNotEmpty/);
  const rm = await aws(gw, ['s3', 'rm', '--recursive', 's3://bucket-one/tree/']);
  t.equal(rm.code, 0, rm.stderr);
  const empty = await aws(gw, ['s3', 'ls', '--recursive', 's3://bucket-one/']);
  t.equal(empty.stdout.trim(), '', 'nothing left after rm --recursive (it deletes folder objects too)');
  const gone = await gw.cluster.dfs(['ls', '/bucket-one']);
  t.equal(gone.stdout.toString().trim(), '', 'the emptied "directories" are gone from dfs too');
  t.equal((await aws(gw, ['s3', 'rb', 's3://bucket-one'])).code, 0, 'rb of the emptied bucket');
});
