// master/membership.ts for groups that change at run time: a master joining with --join, and the
// record rewritten when a configuration commits.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { recordMembers, resolveMembership } from '../../master/membership.js';

const secret = Buffer.from('test-secret-0123456789abcdef');
const group = { m1: '127.0.0.1:7001', m2: '127.0.0.1:7002', m4: '127.0.0.1:7004' };

async function folder(t: { teardown(fn: () => unknown): void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'dfs-join-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

t.test('--join records the running group, the cluster id it was given, and the voters it joins as a learner', async (t) => {
  const dataDir = await folder(t);
  const r = await resolveMembership({ dataDir, id: 'm4', listen: '127.0.0.1:7004', peers: group, secret, join: '0123456789abcdef' });
  t.equal(r.source, 'joined');
  t.equal(r.membership.clusterId, '0123456789abcdef');
  t.same(r.membership.joinedVoters, ['m1', 'm2']);
  // A restart reads the record: --join is then ignored.
  const again = await resolveMembership({ dataDir, id: 'm4', listen: '127.0.0.1:7004', peers: undefined, secret, join: '0123456789abcdef' });
  t.equal(again.source, 'stored');
});

t.test('--join refuses a bad cluster id, or --peers without this master, and records nothing', async (t) => {
  const dataDir = await folder(t);
  await t.rejects(resolveMembership({ dataDir, id: 'm4', listen: '127.0.0.1:7004', peers: group, secret, join: 'nope' }), { code: 'INVALID_ARGUMENT' });
  await t.rejects(resolveMembership({ dataDir, id: 'm4', listen: '127.0.0.1:7004', peers: { m1: group.m1, m2: group.m2 }, secret, join: '0123456789abcdef' }), { code: 'INVALID_ARGUMENT' });
  await t.rejects(readFile(join(dataDir, 'membership.json')), { code: 'ENOENT' });
});

t.test('recordMembers rewrites the group and keeps the rest of the record', async (t) => {
  const dataDir = await folder(t);
  const r = await resolveMembership({ dataDir, id: 'm1', listen: '127.0.0.1:7001', peers: { m1: group.m1, m2: group.m2 }, secret });
  await recordMembers(dataDir, group);
  const stored = JSON.parse(await readFile(join(dataDir, 'membership.json'), 'utf8')) as { members: Record<string, string>; clusterId: string };
  t.same(stored.members, group);
  t.equal(stored.clusterId, r.membership.clusterId, 'the cluster id stays');
  const again = await resolveMembership({ dataDir, id: 'm1', listen: '127.0.0.1:7001', peers: undefined, secret });
  t.same(again.membership.members, group, 'a restart takes the recorded group');
});
