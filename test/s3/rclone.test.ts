// Debian's rclone against a real cluster and gateway, configured only by environment variables
// as a person scripting it would: mkdir, sync both ways with --checksum (the 12 MiB file goes
// multipart: the upload cutoff is lowered to 5 MiB), check, ls/lsjson with hashes, copyto both
// ways, a second sync that sends only what changed and deletes what went, delete, purge. Empty
// directories (folder objects in listings) are skipped by rclone 1.60: no file is made of one.
import { createHash } from 'node:crypto';
import { readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { aws, EMPTY_DIRS, emptyDirsAt, gatewayWithWorkdir, makeEmptyDirs, requireClients, requireProgram, run, tree, TREE_FILES, writeTree, type Gateway } from './gateway.js';

requireClients();
requireProgram('rclone', ['version'], 'rclone');

const FILES: Record<string, number> = { ...TREE_FILES, 'big/twelve.bin': 12 * 1024 * 1024 + 4321 };

const md5 = (b: Buffer) => createHash('md5').update(b).digest('hex');

/** `rclone <args>` with a remote named `dfs` that points at the gateway; no config file is read. */
function rclone(gw: Gateway, args: string[]) {
  return run('rclone', [...args, '--s3-upload-cutoff', '5M', '--s3-chunk-size', '5M', '--retries', '1', '--low-level-retries', '1'], {
    RCLONE_CONFIG: join(gw.cluster.dir, 'no-rclone.conf'),
    RCLONE_CONFIG_DFS_TYPE: 's3',
    RCLONE_CONFIG_DFS_PROVIDER: 'Other',
    RCLONE_CONFIG_DFS_ENDPOINT: gw.endpoint,
    RCLONE_CONFIG_DFS_ACCESS_KEY_ID: gw.env.AWS_ACCESS_KEY_ID!,
    RCLONE_CONFIG_DFS_SECRET_ACCESS_KEY: gw.env.AWS_SECRET_ACCESS_KEY!,
    RCLONE_CONFIG_DFS_REGION: 'us-east-1',
    RCLONE_CONFIG_DFS_FORCE_PATH_STYLE: 'true',
    // rclone's AWS SDK fails on a CA bundle it cannot add to its transport (some machines set one for https proxies); the gateway is plain http.
    AWS_CA_BUNDLE: '',
  });
}

t.test('rclone sync both ways, check, ls, copyto, delete, purge', async (t) => {
  const { gw, work } = await gatewayWithWorkdir(t, 'rclone');
  const src = join(work, 'src');
  writeTree(src, FILES, 100);
  const mk = await rclone(gw, ['mkdir', 'dfs:rc-bucket']);
  t.equal(mk.code, 0, `mkdir: ${mk.stderr}`);
  const up = await rclone(gw, ['sync', '--checksum', src, 'dfs:rc-bucket/tree']);
  t.equal(up.code, 0, `sync up: ${up.stderr}`);
  await makeEmptyDirs(gw, 'rc-bucket', 'tree/');

  const check = await rclone(gw, ['check', src, 'dfs:rc-bucket/tree']);
  t.equal(check.code, 0, `rclone check finds the trees equal: ${check.stderr}`);
  const lsjson = await rclone(gw, ['lsjson', '-R', '--files-only', '--hash', 'dfs:rc-bucket/tree']);
  t.equal(lsjson.code, 0, lsjson.stderr);
  const listed = new Map((JSON.parse(lsjson.stdout) as { Path: string; Size: number; Hashes?: { md5?: string } }[]).map((e) => [e.Path, e]));
  t.same([...listed.keys()].sort(), Object.keys(FILES).sort(), 'lsjson lists every file by its key');
  const local = tree(src);
  for (const [name, size] of Object.entries(FILES)) {
    t.equal(listed.get(name)?.Size, size, `${name}: its size`);
    t.equal(listed.get(name)?.Hashes?.md5, local.get(name), `${name}: the MD5 rclone sees is the file's`);
  }
  const head = await aws(gw, ['s3api', 'head-object', '--bucket', 'rc-bucket', '--key', 'tree/big/twelve.bin']);
  t.match((JSON.parse(head.stdout) as { ETag: string }).ETag, /^"[0-9a-f]{32}-3"$/, 'the 12 MiB file went multipart in three 5 MiB parts');

  const down = join(work, 'down');
  const syncDown = await rclone(gw, ['sync', '--checksum', 'dfs:rc-bucket/tree', down]);
  t.equal(syncDown.code, 0, `sync down: ${syncDown.stderr}`);
  t.same(tree(down), local, 'the tree comes back byte-identical');
  t.notOk(Object.values(emptyDirsAt(down)).includes('file'), `no file is made of an empty directory: ${JSON.stringify(emptyDirsAt(down))}`);

  const again = await rclone(gw, ['sync', '--checksum', '-v', src, 'dfs:rc-bucket/tree']);
  t.equal(again.code, 0, again.stderr);
  t.notMatch(again.stderr, /Copied/, 'a second sync copies nothing');

  // Change one file, remove one, add one: the next sync sends and deletes exactly those.
  writeFileSync(join(src, 'one.bin'), 'changed');
  unlinkSync(join(src, 'odd/deep/er/file.txt'));
  writeFileSync(join(src, 'odd/new file.txt'), 'new');
  const delta = await rclone(gw, ['sync', '--checksum', '-v', src, 'dfs:rc-bucket/tree']);
  t.equal(delta.code, 0, delta.stderr);
  t.equal((delta.stderr.match(/Copied \(/g) ?? []).length, 2, `two files sent: ${delta.stderr}`);
  t.match(delta.stderr, /odd\/deep\/er\/file\.txt: Deleted/);
  t.equal((await rclone(gw, ['check', src, 'dfs:rc-bucket/tree'])).code, 0, 'equal again after the second sync');
  t.equal((await gw.cluster.dfs(['ls', '/rc-bucket/tree/odd'])).stdout.toString().includes('deep'), false, 'the emptied "directory" is gone from dfs');

  const one = join(work, 'copied.bin');
  t.equal((await rclone(gw, ['copyto', 'dfs:rc-bucket/tree/five plus one.bin', one])).code, 0);
  t.equal(md5(readFileSync(one)), local.get('five plus one.bin'), 'copyto down: the same bytes');
  t.equal((await rclone(gw, ['copyto', one, 'dfs:rc-bucket/copies/again.bin'])).code, 0);
  const cat = await rclone(gw, ['cat', 'dfs:rc-bucket/copies/again.bin', '--offset', '1000', '--count', '10']);
  t.same(cat.stdoutBytes, readFileSync(one).subarray(1000, 1010), 'cat --offset --count reads a range');

  const del = await rclone(gw, ['delete', 'dfs:rc-bucket/tree', '--include', '*.txt']);
  t.equal(del.code, 0, del.stderr);
  const ls = await rclone(gw, ['ls', 'dfs:rc-bucket']);
  t.notMatch(ls.stdout, /\.txt/, 'delete --include *.txt removed every .txt');
  t.match(ls.stdout, /\b12587233 tree\/big\/twelve\.bin\n/, 'and left the rest');
  // rclone 1.60 skips folder objects, so its purge leaves them and the bucket is not empty (as against S3: rclone issue 4779, fixed in 1.64): they go first.
  for (const d of EMPTY_DIRS) t.equal((await aws(gw, ['s3', 'rm', `s3://rc-bucket/tree/${d}/`])).code, 0, `rm of the folder object ${d}/`);
  const purge = await rclone(gw, ['purge', 'dfs:rc-bucket']);
  t.equal(purge.code, 0, purge.stderr);
  const buckets = await aws(gw, ['s3api', 'list-buckets']);
  t.notMatch(buckets.stdout, /rc-bucket/, 'purge removed the bucket');
});
