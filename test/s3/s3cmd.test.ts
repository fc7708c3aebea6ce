// Debian's s3cmd against a real cluster and gateway, from a config file as its users write one:
// mb, put (one 12 MiB file multipart in 5 MiB parts), get, ls, la, info, sync both ways, a second
// sync that sends only what changed (--delete-removed), del, rb. Empty directories (folder objects
// in listings) come down as empty directories, never as files.
import { createHash } from 'node:crypto';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { randomBytesSeeded } from '../helpers/cluster.js';
import { aws, emptyDirsAt, gatewayWithWorkdir, makeEmptyDirs, requireClients, requireProgram, run, tree, TREE_FILES, writeTree, type Gateway } from './gateway.js';

requireClients();
requireProgram('s3cmd', ['--version'], 's3cmd');

const FILES = TREE_FILES;

function s3cmd(gw: Gateway, args: string[]) {
  const host = gw.endpoint.replace(/^http:\/\//, '');
  const config = join(gw.cluster.dir, 's3cmd.cfg');
  writeFileSync(config, [
    '[default]', `access_key = ${gw.env.AWS_ACCESS_KEY_ID}`, `secret_key = ${gw.env.AWS_SECRET_ACCESS_KEY}`,
    `host_base = ${host}`, `host_bucket = ${host}`, 'use_https = False', 'signature_v2 = False', 'bucket_location = us-east-1',
    'multipart_chunk_size_mb = 5', '',
  ].join('\n'));
  return run('s3cmd', ['-c', config, '--no-progress', ...args], {});
}

t.test('s3cmd mb, put, get, ls, info, sync both ways, del, rb', async (t) => {
  const { gw, work } = await gatewayWithWorkdir(t, 's3cmd');
  const mb = await s3cmd(gw, ['mb', 's3://cmd-bucket']);
  t.equal(mb.code, 0, `mb: ${mb.stderr}`);

  const big = join(work, 'big.bin');
  const bigBytes = randomBytesSeeded(12 * 1024 * 1024 + 17, 7);
  writeFileSync(big, bigBytes);
  const put = await s3cmd(gw, ['put', big, 's3://cmd-bucket/single/big.bin']);
  t.equal(put.code, 0, `put: ${put.stderr}`);
  const head = await aws(gw, ['s3api', 'head-object', '--bucket', 'cmd-bucket', '--key', 'single/big.bin']);
  t.match((JSON.parse(head.stdout) as { ETag: string }).ETag, /^"[0-9a-f]{32}-3"$/, `the 12 MiB file went up in three parts: ${head.stdout}`);
  const info = await s3cmd(gw, ['info', 's3://cmd-bucket/single/big.bin']);
  t.equal(info.code, 0, info.stderr);
  t.match(info.stdout, /File size:\s+12582929/);
  t.match(info.stdout, new RegExp(`MD5 sum:\\s+${createHash('md5').update(bigBytes).digest('hex')}\\b`), 'info shows the MD5 s3cmd kept in its metadata (x-amz-meta-s3cmd-attrs)');
  const got = join(work, 'big-back.bin');
  const get = await s3cmd(gw, ['get', 's3://cmd-bucket/single/big.bin', got]);
  t.equal(get.code, 0, `get: ${get.stderr}`);
  t.ok(readFileSync(got).equals(bigBytes), 'get brings back the same bytes');

  const src = join(work, 'src');
  writeTree(src, FILES, 200);
  const up = await s3cmd(gw, ['sync', `${src}/`, 's3://cmd-bucket/tree/']);
  t.equal(up.code, 0, `sync up: ${up.stderr}`);
  const ls = await s3cmd(gw, ['ls', 's3://cmd-bucket/tree/']);
  t.match(ls.stdout, /DIR\s+s3:\/\/cmd-bucket\/tree\/odd\/\n/, 'ls shows "directories" as common prefixes');
  t.match(ls.stdout, /\s5242881\s+s3:\/\/cmd-bucket\/tree\/five plus one\.bin\n/);
  const la = await s3cmd(gw, ['ls', '--recursive', 's3://cmd-bucket']);
  t.equal(la.stdout.trim().split('\n').length, Object.keys(FILES).length + 1, `ls --recursive lists every object once:\n${la.stdout}`);

  await makeEmptyDirs(gw, 'cmd-bucket', 'tree/');
  const down = join(work, 'down');
  const syncDown = await s3cmd(gw, ['sync', 's3://cmd-bucket/tree/', `${down}/`]);
  t.equal(syncDown.code, 0, `sync down: ${syncDown.stderr}`);
  t.same(tree(down), tree(src), 'the tree comes back byte-identical');
  t.same(emptyDirsAt(down), { hollow: 'dir', 'odd/made-by-dfs': 'dir' }, 's3cmd makes an empty directory of a folder object');

  writeFileSync(join(src, 'one.bin'), 'changed');
  rmSync(join(src, 'odd/deep'), { recursive: true });
  const delta = await s3cmd(gw, ['sync', '--delete-removed', `${src}/`, 's3://cmd-bucket/tree/']);
  t.equal(delta.code, 0, delta.stderr);
  t.equal((delta.stdout.match(/^upload: /gm) ?? []).length, 1, `one file sent:\n${delta.stdout}`);
  t.match(delta.stdout, /delete: 's3:\/\/cmd-bucket\/tree\/odd\/deep\/er\/file\.txt'/);
  const oneBack = await s3cmd(gw, ['get', '--force', 's3://cmd-bucket/tree/one.bin', join(work, 'one.bin')]);
  t.equal(oneBack.code, 0, oneBack.stderr);
  t.equal(readFileSync(join(work, 'one.bin'), 'utf8'), 'changed');

  const rbFull = await s3cmd(gw, ['rb', 's3://cmd-bucket']);
  t.not(rbFull.code, 0, 'rb of a bucket with objects fails');
  t.match(rbFull.stderr, /BucketNotEmpty/);
  const del = await s3cmd(gw, ['del', '--recursive', '--force', 's3://cmd-bucket/']);
  t.equal(del.code, 0, del.stderr);
  t.equal((await s3cmd(gw, ['ls', '--recursive', 's3://cmd-bucket'])).stdout.trim(), '', 'nothing left after del --recursive');
  const rb = await s3cmd(gw, ['rb', 's3://cmd-bucket']);
  t.equal(rb.code, 0, rb.stderr);
  t.notMatch((await s3cmd(gw, ['ls'])).stdout, /cmd-bucket/, 'the bucket is gone');
});
