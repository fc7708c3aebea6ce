// A client given one follower's address (issue 13, item 4): the follower names the leader and the
// group, and the client follows, as etcd's, HDFS's and SeaweedFS's clients do.
import t from 'tap';
import { TestCluster } from '../helpers/cluster.js';

const QUICK = { NODE_OPTIONS: '' };

const c = await TestCluster.start({ masters: 3, chunkservers: 1, replication: 1, deadTimeoutMs: 30_000 });
t.teardown(() => c.stop());

t.test('DFS_MASTERS=<one follower> finds the leader at once', async (t) => {
  const { index } = await c.leader();
  const masters = c.masters.split(',');
  const leader = masters[index]!;
  const follower = masters[(index + 1) % masters.length]!;
  const mk = await c.dfs(['--verbose', 'mkdir', '/via-follower'], { env: { ...QUICK, DFS_MASTERS: follower } });
  t.equal(mk.code, 0, `mkdir through a follower's address ${mk.stderr}`);
  const ls = await c.dfs(['--verbose', 'ls', '/'], { env: { ...QUICK, DFS_MASTERS: follower } });
  t.equal(ls.code, 0, `ls through a follower's address ${ls.stderr}`);
  t.equal(ls.stdout.toString(), 'via-follower/\n', 'the leader answered');
  // At once: the follower is asked once and names the leader, and every later call goes to the
  // leader and succeeds (a client that waited for a leader would ask the masters again and again).
  for (const [name, run] of [['mkdir', mk], ['ls', ls]] as const) {
    const calls = run.stderr.toString().split('\n').filter((l) => l.startsWith('dfs: '));
    const toFollower = calls.filter((l) => l.includes(` ${follower}/`));
    const rest = calls.filter((l) => !l.includes(` ${follower}/`));
    t.ok(toFollower.length === 1 && / 421 /.test(toFollower[0]!), `${name}: the follower was asked once and refused with its hint: ${calls.join(' | ')}`);
    t.ok(rest.length > 0 && rest.every((l) => l.includes(` ${leader}/`) && / 200 /.test(l)), `${name}: every other call went to the leader and succeeded: ${calls.join(' | ')}`);
  }
});

t.test('with the leader gone, a follower\'s address still finds the new one', async (t) => {
  const { index, proc } = await c.leader();
  const masters = c.masters.split(',');
  const follower = masters[(index + 1) % masters.length]!;
  await c.kill(proc);
  // The election takes a second or two; the client waits it out and follows the new leader's hint.
  const ls = await c.dfs(['ls', '/'], { env: { ...QUICK, DFS_MASTERS: follower } });
  t.equal(ls.code, 0, `ls through a follower's address ${ls.stderr}`);
  t.equal(ls.stdout.toString(), 'via-follower/\n');
});
