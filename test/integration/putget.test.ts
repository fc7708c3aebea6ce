import t from 'tap';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytesSeeded, TestCluster } from '../helpers/cluster.js';

const CHUNK = 256 * 1024;
const TRAILER_BYTES_PER_BLOCK = 8;

t.test('put/get round trips on a 4-chunkserver cluster', async (t) => {
  const c = await TestCluster.start({ chunkservers: 4, chunkSizeBytes: CHUNK });
  t.teardown(() => c.stop());

  const sizes = [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 5 * CHUNK + 12345];
  for (const size of sizes) {
    await t.test(`${size} bytes from a file, back to a file`, async (t) => {
      const data = randomBytesSeeded(size, size + 7);
      const local = join(c.dir, `in-${size}`);
      writeFileSync(local, data);
      // As HDFS's put: missing parent directories are created.
      const put2 = await c.dfs(['put', '-q', local, `/f/${size}.bin`]);
      t.equal(put2.code, 0, put2.stderr);
      const out = join(c.dir, `out-${size}`);
      const get = await c.dfs(['get', '-q', `/f/${size}.bin`, out]);
      t.equal(get.code, 0, get.stderr);
      t.ok(readFileSync(out).equals(data), 'downloaded bytes are identical');

      const stat = JSON.parse((await c.dfs(['stat', '--json', `/f/${size}.bin`])).stdout.toString());
      t.equal(stat.size, size);
      t.equal(stat.state, 'complete');
      t.equal(stat.chunks.length, Math.ceil(size / CHUNK));
      for (const chunk of stat.chunks) {
        const ids = chunk.replicas.map((r: { id: string }) => r.id);
        t.equal(new Set(ids).size, 3, `chunk ${chunk.index} has 3 replicas on 3 distinct chunkservers`);
        const copies = ids.map((id: string) => readFileSync(join(c.dir, id, 'chunks', `${chunk.handle}.chunk`)));
        t.ok(copies.every((b: Buffer) => b.equals(copies[0])), `chunk ${chunk.index}'s replicas are identical on disk`);
        const expectBlocks = Math.ceil(chunk.length / (64 * 1024));
        t.equal(copies[0].length, chunk.length + expectBlocks * TRAILER_BYTES_PER_BLOCK + 64, 'chunk file is data plus checksum trailer');
        t.ok(copies[0].subarray(0, chunk.length).equals(data.subarray(chunk.index * CHUNK, chunk.index * CHUNK + chunk.length)), 'chunk file starts with the chunk bytes');
      }
    });
  }

  await t.test('put creates missing parents, but not through a file', async (t) => {
    const put = await c.dfs(['put', '-', '/deep/er/x.bin'], { input: 'abc' });
    t.equal(put.code, 0, put.stderr);
    t.equal((await c.dfs(['stat', '--json', '/deep/er'])).stdout.toString().includes('"type": "dir"'), true, 'the parents are directories');
    const under = await c.dfs(['put', '-', '/deep/er/x.bin/y'], { input: 'abc' });
    t.equal(under.code, 1);
    t.match(under.stderr, /^dfs: \/deep\/er\/x\.bin is a file, not a directory( \(request [\w.:-]+\))?\n$/);
    t.equal((await c.dfs(['cat', '/deep/er/x.bin'])).stdout.toString(), 'abc', 'the file is untouched');
  });

  await t.test('stdin to stdout', async (t) => {
    const data = randomBytesSeeded(3 * CHUNK + 999, 42);
    const put = await c.dfs(['put', '-', '/stdin.bin'], { input: data });
    t.equal(put.code, 0, put.stderr);
    const cat = await c.dfs(['cat', '/stdin.bin']);
    t.equal(cat.code, 0, cat.stderr);
    t.ok(cat.stdout.equals(data), 'cat returns the bytes piped into put');
    const get = await c.dfs(['get', '/stdin.bin', '-']);
    t.ok(get.stdout.equals(data), 'get - writes the file to stdout');
  });

  await t.test('overwrite is explicit and atomic', async (t) => {
    const a = randomBytesSeeded(CHUNK + 5, 1);
    const b = randomBytesSeeded(2 * CHUNK + 9, 2);
    t.equal((await c.dfs(['put', '-', '/ow.bin'], { input: a })).code, 0);
    const again = await c.dfs(['put', '-', '/ow.bin'], { input: b });
    t.equal(again.code, 1);
    t.match(again.stderr, /already exists/);
    t.ok((await c.dfs(['cat', '/ow.bin'])).stdout.equals(a), 'refused overwrite left the old bytes');
    t.equal((await c.dfs(['put', '-f', '-', '/ow.bin'], { input: b })).code, 0);
    t.ok((await c.dfs(['cat', '/ow.bin'])).stdout.equals(b), 'put -f replaced the content');
  });

  await t.test('several clients putting and getting at once', async (t) => {
    const files = Array.from({ length: 6 }, (_, i) => randomBytesSeeded(2 * CHUNK + i * 1000, 100 + i));
    // All into one directory that does not exist yet: each put may be the one to create it.
    const puts = await Promise.all(files.map((d, i) => c.dfs(['put', '-', `/par/${i}`], { input: d })));
    t.same(puts.map((p) => p.code), files.map(() => 0), puts.map((p) => p.stderr).join(''));
    t.same((await c.dfs(['ls', '/par'])).stdout.toString().trim().split('\n'), files.map((_, i) => String(i)));
    const gets = await Promise.all(files.map((_, i) => c.dfs(['cat', `/par/${i}`])));
    gets.forEach((g, i) => t.ok(g.stdout.equals(files[i]!), `file ${i} reads back identical`));
  });
});
