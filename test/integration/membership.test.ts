// A master's group comes from its data folder (master/membership.ts), not from whatever its
// command line says on a restart. Issue 13, item 1: a master killed and restarted by hand without
// --peers became a group of one on its three-master log, elected itself, committed a mkdir the
// others never had, and after a full restart led again and overwrote what they had committed.
import t from 'tap';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { request } from 'undici';
import { DfsClient } from '../../dist/cli/client.js';
import { runDfs, TestCluster, waitFor } from '../helpers/cluster.js';

interface RaftStatus { id: string; role: string; term: number; leader: string | null; commitIndex: number; appliedIndex: number; clusterId?: string }

async function raftStatus(addr: string): Promise<RaftStatus | undefined> {
  try {
    const res = await request(`http://${addr}/v1/raft/status`);
    return (await res.body.json()) as RaftStatus;
  } catch {
    return undefined;
  }
}

t.test('a master restarted by hand without --peers rejoins its group of three and never forks the namespace', async (t) => {
  const c = await TestCluster.start({ masters: 3, chunkservers: 0 });
  t.teardown(() => c.stop());
  const addrs = c.masterAddresses;
  const client = () => new DfsClient(addrs);
  await client().mkdir('/before');

  // kill -9 m1, then commit something on the two that are left (a majority).
  await c.kill(c.masterProcs[0]!);
  await client().mkdir('/after-kill');

  // What `dfs master --help` suggested: the same id, address, data and secret, no --peers.
  const m1 = await c.startMaster(0, { peers: false });
  t.match(m1.output.join('\n'), /"membership":"stored"/, 'm1 took its group from its data folder');
  // m1 must never lead a group of one: watch it for well over an election timeout (1-2 s).
  const seen: string[] = [];
  const until = Date.now() + 4000;
  while (Date.now() < until) {
    const s = await raftStatus(m1.addr);
    if (s) seen.push(`${s.role}@${s.term}:${s.leader ?? '-'}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  t.notOk(seen.some((s) => s.startsWith('leader')), `m1 never led (${seen.slice(-3).join(' ')})`);
  await waitFor(async () => (await raftStatus(m1.addr))?.appliedIndex === (await raftStatus(addrs[1]!))?.commitIndex, 15_000, 'm1 to catch up');

  // The user's mkdir, sent to m1 alone: it reaches the group's leader or is refused; either way it
  // is not a commit of m1's own.
  const viaM1 = await runDfs(['mkdir', '/split-brain-test'], { env: { DFS_MASTERS: m1.addr }, timeoutMs: 30_000 });
  const made = viaM1.code === 0;
  t.comment(`mkdir through m1 alone: exit ${viaM1.code} ${viaM1.stderr.trim()}`);

  // A full restart, m1 first with the right --peers: before the fix its longer, higher-term log
  // won the election and overwrote what m2 and m3 had committed.
  for (const p of c.masterProcs) await c.kill(p!);
  await c.startMaster(0);
  await c.startMaster(1);
  const listing = (await client().list('/')).entries.map((e) => e.path).sort();
  t.ok(listing.includes('/before') && listing.includes('/after-kill'), `every acknowledged mkdir survived (${listing.join(' ')})`);
  t.equal(listing.includes('/split-brain-test'), made, '/split-brain-test exists exactly when its mkdir was acknowledged');
  await c.startMaster(2);

  // Each master in turn leads and answers the same namespace.
  const answers = new Set<string>();
  for (let round = 0; round < 3; round++) {
    const leader = await c.leader();
    answers.add(JSON.stringify((await client().list('/')).entries.map((e) => e.path).sort()));
    await c.kill(leader.proc);
    await c.startMaster(leader.index);
  }
  t.equal(answers.size, 1, `every leader answered the same listing: ${[...answers].join(' | ')}`);
});

t.test('a master refuses --id, --peers or --listen that disagree with its data folder, and another cluster\'s folder', async (t) => {
  const c = await TestCluster.start({ masters: 3, chunkservers: 0 });
  t.teardown(() => c.stop());
  const addrs = c.masterAddresses;
  const status = (await c.dfs(['status', '--json'])).stdout.toString();
  const clusterId = (JSON.parse(status) as { clusterId: string }).clusterId;
  t.match(clusterId, /^[0-9a-f]{16}$/, 'dfs status --json shows the cluster id');
  const record = JSON.parse(readFileSync(join(c.dir, 'm1', 'membership.json'), 'utf8')) as { clusterId: string; members: Record<string, string> };
  t.equal(record.clusterId, clusterId, 'membership.json holds the same cluster id');
  t.same(record.members, { m1: addrs[0], m2: addrs[1], m3: addrs[2] }, 'and the whole group');
  await c.kill(c.masterProcs[0]!);

  const refused = async (args: string[], pattern: RegExp, what: string) => {
    const r = await runDfs(['master', ...args], { timeoutMs: 20_000 });
    t.equal(r.code, 2, `${what}: exit 2 (a restart cannot fix it: systemd stops trying)`);
    t.equal(r.stderr.trim().split('\n').length, 1, `${what}: one line`);
    t.match(r.stderr, pattern, `${what}: says why`);
  };
  const base = c.masterArgs(0, { peers: false });
  const withArg = (name: string, value: string) => {
    const a = [...base];
    a[a.indexOf(name) + 1] = value;
    return a;
  };
  await refused([...base, '--peers', `m1=${addrs[0]}`], /disagrees with the group recorded/, '--peers naming a group of one');
  await refused([...base, '--peers', `m1=${addrs[0]},m2=${addrs[1]},m4=${addrs[2]}`], /disagrees with the group recorded/, '--peers naming another group');
  await refused(withArg('--id', 'm2'), /data folder of master m1/, '--id of another member');
  await refused(withArg('--listen', '127.0.0.1:1'), /recorded at .* but was told to listen on 127\.0\.0\.1:1/, 'another --listen address');
  const other = join(c.dir, 'other-secret');
  writeFileSync(other, 'another-clusters-secret-0123456789\n');
  await refused(withArg('--secret-file', other), /belongs to another cluster/, 'another cluster\'s secret');

  // A folder made by an older dfs (a Raft log, no membership record) needs --peers once.
  rmSync(join(c.dir, 'm1', 'membership.json'));
  await refused(base, /no record of its group/, 'an unrecorded log without --peers');
  await c.startMaster(0); // with --peers: recorded now
  t.ok(JSON.parse(readFileSync(join(c.dir, 'm1', 'membership.json'), 'utf8')).members.m3, 'the group is recorded again');
  await waitFor(async () => (await raftStatus(addrs[0]!))?.leader != null, 15_000, 'm1 to rejoin its group');
  t.equal((await raftStatus(addrs[0]!))?.clusterId, clusterId, 'in the same cluster');
});

t.test('a master alone, restarted without --peers, keeps its own group of one across port changes', async (t) => {
  const c = await TestCluster.start({ masters: 1, chunkservers: 0 });
  t.teardown(() => c.stop());
  await c.dfs(['mkdir', '/kept']);
  await c.restartMaster();
  const r = await c.dfs(['ls', '/']);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout.toString(), /kept/);
});
