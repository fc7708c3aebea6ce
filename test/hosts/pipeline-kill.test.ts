// Scenario (d) of issue 16: kill -9 the middle chunkserver of a pipeline while a put streams
// through it. The client's pipeline fails, the node named as failed is left out, the chunk is
// sent again on a fresh allocation (existing behaviour, cli/client.ts), and the file is whole.
import t from 'tap';
import { createHash } from 'node:crypto';
import { randomBytesSeeded } from '../helpers/cluster.js';
import { HostCluster, until } from './host-cluster.js';

t.setTimeout(600_000);
const MiB = 1024 * 1024;
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

t.test('kill -9 of the middle of a pipeline mid-put: the put succeeds and the file is whole', async (t) => {
  const c = await HostCluster.start({ masters: 3, chunkservers: 6, chunkSize: '8MiB' }, (m) => t.comment(m));
  t.teardown(() => c.stop());
  await until(async () => (await c.liveChunkservers()) === 6, 30_000, 'all 6 chunkservers to register');
  const data = randomBytesSeeded(36 * MiB + 321, 4);
  const put = c.dfsHeld(['put', '-', '/mid-kill.bin']);
  let stderr = '';
  put.stderr!.on('data', (b: Buffer) => (stderr += b));
  put.stdin!.on('error', () => undefined);
  const exited = new Promise<number>((r) => put.on('close', (code) => r(code ?? -1)));
  // Half of the first chunk: its pipeline is open, waiting for more input. The only pipeline, so
  // the chunkserver-to-chunkserver connections are its two hops.
  put.stdin!.write(data.subarray(0, 4 * MiB));
  let chain: string[] = [];
  await until(() => {
    const hops = c.pipelineHops();
    if (hops.length !== 2) return false;
    const [first, second] = hops[0]![1] === hops[1]![0] ? [hops[0]!, hops[1]!] : [hops[1]!, hops[0]!];
    if (first[1] !== second[0]) return false;
    chain = [first[0], first[1], second[1]];
    return true;
  }, 20_000, 'the first chunk\'s pipeline to open (two chunkserver hops)');
  t.comment(`pipeline ${chain.join(' -> ')}: killing ${chain[1]} (kill -9)`);
  await c.signal(chain[1]!, 'SIGKILL');
  put.stdin!.end(data.subarray(4 * MiB));
  const code = await exited;
  if (!t.equal(code, 0, `the put succeeds on new pipelines (stderr: ${stderr.trim()})`)) t.comment(c.problems().join('\n'));
  t.match(stderr, new RegExp(chain[1]!), 'the client says it left the killed server out');
  const get = await c.dfs(['cat', '/mid-kill.bin']);
  t.equal(get.code, 0, get.stderr);
  t.equal(sha(get.stdout), sha(data), 'the file has exactly the bytes sent');
  const stat = await c.dfs(['stat', '--json', '/mid-kill.bin']);
  const chunks = (JSON.parse(stat.stdout.toString()) as { chunks: { replicas: { id: string }[] }[] }).chunks;
  t.ok(chunks.every((ch) => ch.replicas.length === 3 && ch.replicas.every((r) => r.id !== chain[1])), `every chunk has 3 live replicas, none on ${chain[1]}`);
});
