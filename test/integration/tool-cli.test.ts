// cp, head, tail [-f], getmerge, find, df, admin report, completion, and put/get of several
// sources and of trees (issue 18, item 4), against a real cluster, error cases included.
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import t from 'tap';
import { DFS, randomBytesSeeded, runDfs, TestCluster } from '../helpers/cluster.js';

t.test('everyday commands', async (t) => {
  const c = await TestCluster.start({ chunkservers: 2, replication: 2, chunkSizeBytes: 256 * 1024 });
  t.teardown(() => c.stop());
  const local = mkdtempSync(join(tmpdir(), 'dfs-tools-'));
  t.teardown(() => rmSync(local, { recursive: true, force: true }));
  const data = randomBytesSeeded(700 * 1024, 7); // three chunks, the last one short
  const small = Buffer.from('hello, world\n');
  t.equal((await c.dfs(['put', '-', '/src/big.bin'], { input: data })).code, 0);
  t.equal((await c.dfs(['put', '-', '/src/sub/small.txt'], { input: small })).code, 0);
  const text = async (args: string[]) => {
    const r = await c.dfs(args);
    t.equal(r.code, 0, `dfs ${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  };

  t.test('cp: a file, into a directory, a tree with -r; never into itself', async (t) => {
    await text(['cp', '/src/big.bin', '/copy.bin']);
    t.ok((await c.dfs(['cat', '/copy.bin'])).stdout.equals(data), 'the copy has the same bytes');
    await text(['mkdir', '/into']);
    await text(['cp', '/src/big.bin', '/src/sub/small.txt', '/into']);
    t.ok((await c.dfs(['cat', '/into/small.txt'])).stdout.equals(small), 'several sources go into the directory');
    const dir = await c.dfs(['cp', '/src', '/tree']);
    t.equal(dir.code, 1, 'a directory without -r fails');
    t.match(dir.stderr, /is a directory \(cp -r copies trees\)/);
    await text(['cp', '-r', '/src', '/tree']);
    t.ok((await c.dfs(['cat', '/tree/sub/small.txt'])).stdout.equals(small), 'the tree is copied below the new name');
    t.ok((await c.dfs(['cat', '/tree/big.bin'])).stdout.equals(data));
    const self = await c.dfs(['cp', '-r', '/src', '/src/sub']);
    t.equal(self.code, 1, 'a tree into itself fails');
    t.match(self.stderr, /cannot copy \/src into itself/);
    const exists = await c.dfs(['cp', '/src/big.bin', '/copy.bin']);
    t.equal(exists.code, 1, 'an existing target without -f fails');
    await text(['cp', '-f', '/src/sub/small.txt', '/copy.bin']);
    t.ok((await c.dfs(['cat', '/copy.bin'])).stdout.equals(small), 'with -f it is replaced');
    const many = await c.dfs(['cp', '/src/big.bin', '/src/sub/small.txt', '/nodir']);
    t.equal(many.code, 1, 'several sources into a missing directory fail');
    t.notMatch(many.stderr, /^\s+at /m, 'one line, no stack trace');
  });

  t.test('head and tail: 1 KiB by default, -c bytes, across chunk boundaries', async (t) => {
    t.ok((await text(['head', '/src/big.bin'])).equals(data.subarray(0, 1024)));
    t.ok((await text(['tail', '/src/big.bin'])).equals(data.subarray(data.length - 1024)));
    const across = 256 * 1024 + 5000;
    t.ok((await text(['head', '-c', String(across), '/src/big.bin'])).equals(data.subarray(0, across)), 'head across a chunk boundary');
    t.ok((await text(['tail', '-c', String(across), '/src/big.bin'])).equals(data.subarray(data.length - across)), 'tail across a chunk boundary');
    t.ok((await text(['tail', '-c', '100000', '/src/sub/small.txt'])).equals(small), 'more than the file: the whole file');
    t.equal((await c.dfs(['head', '-c', '-1', '/src/big.bin'])).code, 2, 'a negative count is a usage error');
    t.equal((await c.dfs(['head', '/src'])).code, 1, 'a directory fails');
    t.equal((await c.dfs(['tail', '/nope'])).code, 1, 'a missing file fails');
  });

  t.test('tail -f prints what is added', async (t) => {
    const first = Buffer.from('line 1\n');
    t.equal((await c.dfs(['put', '-f', '-', '/log.txt'], { input: first })).code, 0);
    const child = spawn(process.execPath, [DFS, 'tail', '-f', '--count', '6', '/log.txt'], { env: { ...process.env, DFS_MASTERS: c.masters } });
    const out: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    const exited = new Promise<number>((r) => child.on('close', (code) => r(code ?? -1)));
    const deadline = Date.now() + 10_000;
    while (Buffer.concat(out).length < first.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    // The file grows: the same first line, then one more (as an append will make it).
    const grown = Buffer.concat([first, Buffer.from('line 2\n')]);
    t.equal((await c.dfs(['put', '-f', '-', '/log.txt'], { input: grown })).code, 0);
    t.equal(await exited, 0, 'tail -f stops after its checks');
    t.equal(Buffer.concat(out).toString(), 'line 1\nline 2\n', 'the added line is printed once');
  });

  t.test('getmerge: a directory\'s files in name order into one local file', async (t) => {
    await text(['mkdir', '/parts']);
    for (const [i, s] of ['c', 'a', 'b'].entries()) t.equal((await c.dfs(['put', '-', `/parts/${s}`], { input: `${s}${i}` })).code, 0);
    const dst = join(local, 'merged');
    await text(['getmerge', '/parts', dst]);
    t.equal(readFileSync(dst, 'utf8'), 'a1b2c0');
    await text(['getmerge', '--nl', '/parts', `${dst}2`]);
    t.equal(readFileSync(`${dst}2`, 'utf8'), 'a1\nb2\nc0\n');
    const bad = await c.dfs(['getmerge', '/parts', join(local, 'no', 'such', 'dir', 'f')]);
    t.equal(bad.code, 1, 'a local file that cannot be created fails');
    t.match(bad.stderr, /cannot create local file/);
  });

  t.test('find: -name glob and -type', async (t) => {
    const all = (await text(['find', '/src'])).toString().trim().split('\n');
    t.same(all, ['/src', '/src/big.bin', '/src/sub', '/src/sub/small.txt']);
    t.same((await text(['find', '/', '-name', '*.txt', '-type', 'f'])).toString().trim().split('\n').sort(), ['/into/small.txt', '/log.txt', '/src/sub/small.txt', '/tree/sub/small.txt']);
    t.same((await text(['find', '/src', '-type', 'd'])).toString().trim().split('\n'), ['/src', '/src/sub']);
    t.same((await text(['find', '/src', '-name', 'b?g.[a-c]in'])).toString().trim().split('\n'), ['/src/big.bin']);
    t.equal((await text(['find', '/src', '-name', 'zzz*'])).length, 0, 'nothing found prints nothing');
    t.equal((await c.dfs(['find', '/src', '-type', 'x'])).code, 2, 'a wrong type is a usage error');
    t.equal((await c.dfs(['find', '/nope'])).code, 1, 'a missing path fails');
  });

  t.test('df and admin report', async (t) => {
    const df = JSON.parse((await text(['df', '--json'])).toString());
    t.ok(df.capacityBytes > 0 && df.usedBytes > 0 && df.freeBytes > 0, 'capacity, used and free');
    t.equal(df.racks.default.length, 2, 'both chunkservers in the default rack');
    t.match((await text(['df', '-h'])).toString(), /^Filesystem\s+Size\s+Used\s+Available\s+Use%\ndfs\s+.*iB.*\nrack default/);
    const report = (await text(['admin', 'report'])).toString();
    t.match(report, /Configured Capacity: \d+/);
    t.match(report, /Live chunkservers \(2\):/);
    t.match(report, /Dead chunkservers \(0\):/);
    t.match(report, new RegExp(`Name: ${c.chunkservers[0]!.addr.replace(/\./g, '\\.')}`));
    t.equal((await c.dfs(['admin'])).code, 2, 'admin without a command is a usage error');
  });

  t.test('put and get: several sources, trees with -R', async (t) => {
    const tree = join(local, 'tree');
    mkdirSync(join(tree, 'a', 'b'), { recursive: true });
    writeFileSync(join(tree, 'top.txt'), 'top');
    writeFileSync(join(tree, 'a', 'b', 'deep.bin'), data.subarray(0, 300 * 1024));
    mkdirSync(join(tree, 'empty'));
    const noR = await c.dfs(['put', tree, '/up']);
    t.equal(noR.code, 1, 'a local directory without -R fails');
    t.match(noR.stderr, /put -R uploads trees/);
    await text(['put', '-R', tree, '/up']);
    t.ok((await c.dfs(['cat', '/up/a/b/deep.bin'])).stdout.equals(data.subarray(0, 300 * 1024)));
    t.equal((await c.dfs(['test', '-d', '/up/empty'])).code, 0, 'empty folders come along');
    await text(['put', join(tree, 'top.txt'), join(tree, 'a', 'b', 'deep.bin'), '/into']);
    t.equal((await c.dfs(['cat', '/into/top.txt'])).stdout.toString(), 'top', 'several files into a directory');
    const missing = await c.dfs(['put', join(tree, 'top.txt'), join(tree, 'top.txt'), '/missing-dir']);
    t.equal(missing.code, 1, 'several sources need an existing directory');
    const down = join(local, 'down');
    mkdirSync(down);
    await text(['get', '-R', '/up', down]);
    t.same(readdirSync(join(down, 'up')).sort(), ['a', 'empty', 'top.txt']);
    t.ok(readFileSync(join(down, 'up', 'a', 'b', 'deep.bin')).equals(data.subarray(0, 300 * 1024)), 'a tree downloads whole');
    await text(['get', '/src/big.bin', '/src/sub/small.txt', down]);
    t.ok(readFileSync(join(down, 'small.txt')).equals(small), 'several files into a local directory');
    const toFile = await c.dfs(['get', '/src/big.bin', '/src/sub/small.txt', join(down, 'nope')]);
    t.equal(toFile.code, 1, 'several sources need an existing local directory');
    const dirNoR = await c.dfs(['get', '/up', join(local, 'x')]);
    t.equal(dirNoR.code, 1);
    t.match(dirNoR.stderr, /get -R downloads trees/);
    t.notOk(existsSync(join(local, 'x')), 'and nothing was written');
    const json = JSON.parse((await text(['put', '--json', join(tree, 'top.txt'), '/one.txt'])).toString());
    t.equal(json.path, '/one.txt', 'a single put still prints one object');
  });

  t.test('completion scripts for bash and zsh', async (t) => {
    t.match((await runDfs(['completion', 'bash'])).stdout.toString(), /complete -o bashdefault -o default -F _dfs_yargs_completions dfs/);
    t.match((await runDfs(['completion', 'zsh'])).stdout.toString(), /#compdef dfs/);
    const fish = await runDfs(['completion', 'fish']);
    t.equal(fish.code, 2, 'an unknown shell is a usage error');
    t.match(fish.stderr, /^dfs: completion: unknown shell "fish"/);
    const words = (await runDfs(['--get-yargs-completions', 'getm'])).stdout.toString().split('\n');
    t.ok(words.includes('getmerge'), 'the script completes command names');
  });
});
