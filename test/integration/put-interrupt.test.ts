// Ctrl-C in the middle of a put (issue 13, item 6): the client abandons its write before it
// exits (130 for SIGINT, 143 for SIGTERM, one line on stderr), so the path is free at once rather
// than after the write lease (60 s here, the default); and a path held by a live writer says how
// it clears.
import t from 'tap';
import { TestCluster } from '../helpers/cluster.js';
import { heldPut, QUICK, waitUntilWriting } from '../helpers/held-put.js';

const c = await TestCluster.start({ chunkservers: 1, replication: 1, chunkSizeBytes: 64 * 1024, deadTimeoutMs: 30_000 });
t.teardown(() => c.stop());

for (const [signal, code] of [['SIGINT', 130], ['SIGTERM', 143]] as const) {
  t.test(`${signal} during put abandons the write: put -f of the path works at once`, async (t) => {
    const path = `/x-${signal}.bin`;
    const put = heldPut(c, ['-', path]);
    put.write(Buffer.alloc(100 * 1024, 7)); // more than a chunk: one chunk stored, the next one open
    await waitUntilWriting(c, path);

    const busy = await c.dfs(['put', '-f', '-', path], { input: 'other', env: QUICK });
    t.equal(busy.code, 1, 'a second writer is refused while the first lives');
    t.match(busy.stderr, new RegExp(`^dfs: ${path} is being written by another client; if that client is gone, its write lease expires in \\d+ s \\(a writer that is still running keeps renewing it\\); try again then( \\(request [0-9a-f]+\\))?\\n$`),
      'the refusal says how the path clears');

    put.child.kill(signal);
    const r = await put.done;
    t.equal(r.code, code, `exit ${code}`);
    t.equal(r.stderr, `dfs: interrupted (${signal}); the upload was stopped and abandoned; nothing was stored\n`, 'one line on stderr');

    const started = Date.now();
    const again = await c.dfs(['put', '-f', '-', path], { input: 'new', env: QUICK });
    t.equal(again.code, 0, `put -f of the same path works at once ${again.stderr}`);
    t.ok(Date.now() - started < 10_000, 'no wait for the lease');
    const cat = await c.dfs(['cat', path], { env: QUICK });
    t.equal(cat.stdout.toString(), 'new', 'the new file');
  });
}
