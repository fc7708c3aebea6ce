// The write lease from the client's side (issue 13, item 2): a producer slower than the lease
// keeps its upload, because the client renews the lease while it lives; a client that dies stops
// renewing, so its path is freed once the lease runs out; a write the master dropped fails the
// put at once, not when the input finally ends.
import t from 'tap';
import { randomBytesSeeded, TestCluster } from '../helpers/cluster.js';
import { heldPut, QUICK, sleep, waitUntilWriting } from '../helpers/held-put.js';

const LEASE_MS = 2000;

const c = await TestCluster.start({ chunkservers: 1, replication: 1, chunkSizeBytes: 64 * 1024, leaseMs: LEASE_MS, deadTimeoutMs: 30_000 });
t.teardown(() => c.stop());

t.test('a producer that pauses longer than the lease still stores its file', async (t) => {
  const put = heldPut(c, ['-', '/slow.txt']);
  put.write('a\n');
  await waitUntilWriting(c, '/slow.txt');
  await sleep(2.5 * LEASE_MS); // as `(echo a; sleep 75; echo b) | dfs put - /slow.txt` with the default 60 s lease
  put.write('b\n');
  put.end();
  const r = await put.done;
  t.equal(r.code, 0, `put exits 0 ${r.stderr}`);
  t.equal(r.stderr, '', 'nothing on stderr');
  const cat = await c.dfs(['cat', '/slow.txt'], { env: QUICK });
  t.equal(cat.code, 0, `cat exits 0 ${cat.stderr}`);
  t.equal(cat.stdout.toString(), 'a\nb\n', 'every byte, both sides of the pause');
});

t.test('after a pause, more chunks stream as usual: renewals and chunk allocations share the write', async (t) => {
  const tail = randomBytesSeeded(150 * 1024, 3); // three chunks of 64 KiB
  const put = heldPut(c, ['-', '/slow-big.bin']);
  put.write('a\n');
  await waitUntilWriting(c, '/slow-big.bin');
  await sleep(1.5 * LEASE_MS);
  put.write(tail);
  put.end();
  const r = await put.done;
  t.equal(r.code, 0, `put exits 0 ${r.stderr}`);
  const cat = await c.dfs(['cat', '/slow-big.bin'], { env: QUICK });
  t.ok(cat.stdout.equals(Buffer.concat([Buffer.from('a\n'), tail])), 'every byte, in order');
});

t.test('a client killed mid-write stops renewing: its path is freed when the lease expires', async (t) => {
  const put = heldPut(c, ['-', '/killed.txt']);
  put.write('a\n');
  await waitUntilWriting(c, '/killed.txt');
  put.child.kill('SIGKILL');
  const killedAt = Date.now();
  await put.done;
  // The path frees itself: a new put to it works within a lease (and the expiry timer's beat).
  let r = await c.dfs(['put', '-', '/killed.txt'], { input: 'new', env: QUICK });
  while (r.code !== 0 && Date.now() - killedAt < 4 * LEASE_MS) {
    t.match(r.stderr, /being written by another client|an abandoned write/, `refused only while the dead client's lease runs: ${r.stderr}`);
    await sleep(200);
    r = await c.dfs(['put', '-', '/killed.txt'], { input: 'new', env: QUICK });
  }
  t.equal(r.code, 0, `a new put to the path works once the lease expired ${r.stderr}`);
  t.ok(Date.now() - killedAt < 4 * LEASE_MS, 'within a few lease lengths of the kill');
  const cat = await c.dfs(['cat', '/killed.txt'], { env: QUICK });
  t.equal(cat.stdout.toString(), 'new', 'the new file');
});

t.test('a write the master dropped fails the put at once, with a clear message', async (t) => {
  const put = heldPut(c, ['-', '/dropped.txt']);
  put.write('a\n');
  await waitUntilWriting(c, '/dropped.txt');
  const rm = await c.dfs(['rm', '--skip-trash', '/dropped.txt'], { env: QUICK });
  t.equal(rm.code, 0, `rm of the file being written ${rm.stderr}`);
  const removedAt = Date.now();
  // stdin stays open: only a renewal can tell the client its write is gone.
  const r = await Promise.race([put.done, sleep(3 * LEASE_MS).then(() => undefined)]);
  t.ok(r, 'the put fails while its input is still open');
  if (!r) {
    put.child.kill('SIGKILL');
    return;
  }
  t.ok(Date.now() - removedAt < 3 * LEASE_MS, 'within a lease or two');
  t.equal(r.code, 1, 'exit 1');
  t.match(r.stderr, /^dfs: the master dropped this upload \(its write lease expired, or the write was abandoned\); nothing was stored; start the upload again\n$/, 'one line that says what happened');
  put.end();
});
