// Joining and leaving the master group with real processes: a new master started with only
// `--join <address of any member>` fetches the cluster id and the group itself (GET
// /v1/raft/group, signed with the cluster secret) and is promoted; one not added first is refused
// with a line that says to add it; and a master removed while it was down stops on its own, with
// a line that says why, when it comes back (instead of campaigning unheard for ever).
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { request } from 'undici';
import { freePorts, randomBytesSeeded, spawnRole, TestCluster, waitFor, type Proc } from '../helpers/cluster.js';

interface MastersReply { leader: string | null; members: { id: string; role: string }[] }

/** `dfs master` arguments that every master shares (secret, sizes, timeouts), without the per-master ones. */
function sharedArgs(c: TestCluster): string[] {
  const base = c.masterArgs(0);
  const keep: string[] = [];
  for (let i = 0; i < base.length; i++) {
    if (['--id', '--listen', '--data', '--peers'].includes(base[i]!)) i++;
    else keep.push(base[i]!);
  }
  return keep;
}

/** Runs `dfs master` expecting it to exit before it starts; answers its exit code and output. */
async function runToExit(args: string[], c: TestCluster): Promise<{ code: number | null; output: string }> {
  try {
    const p = await spawnRole('master', args, 'master started');
    await c.kill(p);
    return { code: 0, output: `it started: ${p.output.slice(-5).join('\n')}` };
  } catch (err) {
    const m = /exited \((\w+)\)/.exec((err as Error).message);
    return { code: m ? Number(m[1]) : null, output: (err as Error).message };
  }
}

async function raftRole(addr: string): Promise<string | undefined> {
  try {
    return ((await (await request(`http://${addr}/v1/raft/status`)).body.json()) as { role: string }).role;
  } catch {
    return undefined;
  }
}

t.test('dfs master --join <any member> fetches the group; a master removed while down stops when it comes back', async (t) => {
  const c = await TestCluster.start({ masters: 3, chunkservers: 2, replication: 2, chunkSizeBytes: 256 * 1024 });
  t.teardown(() => c.stop());
  const before = randomBytesSeeded(300 * 1024, 21);
  t.equal((await c.dfs(['put', '-', '/before.bin'], { input: before })).code, 0);
  const [port4, port5] = await freePorts(2);
  const addr4 = `127.0.0.1:${port4}`;
  const shared = sharedArgs(c);
  const list = async (): Promise<MastersReply> => JSON.parse((await c.dfs(['admin', 'masters', 'list', '--json'])).stdout.toString()) as MastersReply;

  // The group route is for masters: a call not signed with the cluster secret is refused.
  const unsigned = await request(`http://${c.masterAddresses[0]}/v1/raft/group`);
  t.equal(unsigned.statusCode, 401, 'GET /v1/raft/group without a master\'s signature is refused');
  t.match(await unsigned.body.text(), /PEER_AUTH_INVALID/);

  // Not added first: refused, one clear line, nothing joined.
  const dir5 = join(c.dir, 'm5');
  mkdirSync(dir5, { recursive: true });
  const early = await runToExit(['--id', 'm5', '--listen', `127.0.0.1:${port5}`, '--data', dir5, '--join', c.masterAddresses[1]!, ...shared], c);
  t.not(early.code, 0, 'a master not added first does not start');
  t.match(early.output, /does not list m5 in the group .*dfs admin masters add m5=127\.0\.0\.1:/, 'and says to add it first');
  t.notOk((await list()).members.some((m) => m.id === 'm5'), 'the group is unchanged');

  // Added, then started with the address of a follower only: it fetches the cluster id and the group.
  const added = await c.dfs(['admin', 'masters', 'add', `m4=${addr4}`]);
  t.equal(added.code, 0, added.stderr);
  const printed = /dfs master .*--join (\S+)/.exec(added.stdout.toString());
  t.ok(printed, `add prints a command with --join <a member's address>: ${added.stdout.toString().trim()}`);
  t.ok(c.masterAddresses.includes(printed?.[1] ?? ''), 'the address printed is a member\'s');
  t.notMatch(added.stdout.toString(), /--peers/, 'no group to copy by hand');
  const dir4 = join(c.dir, 'm4');
  mkdirSync(dir4, { recursive: true });
  const m4Args = ['--id', 'm4', '--listen', addr4, '--data', dir4, '--join', printed![1]!, ...shared];
  let m4: Proc = await spawnRole('master', m4Args, 'master started');
  t.teardown(() => c.kill(m4).catch(() => undefined));
  await waitFor(async () => (await list().catch(() => undefined))?.members.find((m) => m.id === 'm4')?.role === 'voter', 30_000, 'm4 promoted to voter');
  t.pass('m4 joined from one address and was promoted');
  // A restart of the joined master with the same command line uses its record, not the address.
  await c.kill(m4, 'SIGTERM');
  m4 = await spawnRole('master', m4Args, 'master started');
  t.ok(m4.output.some((l) => l.includes('"membership":"stored"')), 'restarted from its own record');

  // A follower is stopped, removed while it is down, and started again: it stops, saying why.
  const leader = (await list()).leader;
  const victimIndex = [0, 1, 2].find((i) => `m${i + 1}` !== leader)!;
  const victim = `m${victimIndex + 1}`;
  await c.kill(c.masterProcs[victimIndex]!, 'SIGTERM');
  const removed = await c.dfs(['admin', 'masters', 'remove', victim]);
  t.equal(removed.code, 0, removed.stderr);
  const back = await spawnRole('master', c.masterArgs(victimIndex, { peers: false }), 'master started');
  const code = await new Promise<number | null>((r) => (back.child.exitCode !== null ? r(back.child.exitCode) : back.child.once('exit', (x) => r(x))));
  t.equal(code, 0, 'the master removed while down stopped on its own');
  t.ok(back.output.some((l) => l.includes(`this master (${victim}) was removed from the group while it was down`)), 'with a line that says so');
  t.notOk(await raftRole(c.masterAddresses[victimIndex]!), 'and no longer answers');

  // The group goes on: writes and reads with the remaining three.
  const after = randomBytesSeeded(200 * 1024, 22);
  t.equal((await c.dfs(['put', '-', '/after.bin'], { input: after })).code, 0);
  t.ok((await c.dfs(['cat', '/before.bin'])).stdout.equals(before), 'a file written before reads back');
  t.ok((await c.dfs(['cat', '/after.bin'])).stdout.equals(after), 'a file written after reads back');
  t.same((await list()).members.map((m) => m.id).sort(), ['m1', 'm2', 'm3', 'm4'].filter((id) => id !== victim));
  if (t.passing() === false) t.comment([...c.problems(), ...m4.output.slice(-30)].join('\n'));
});
