// How a master decides it was removed from the group while it was down (master/group-join.ts,
// mayBeRemoved and removedBy), including the state a full test run once left one in: restarted
// before the leader forgot it, it got the leader's append of its own removal (so it named the
// leader, and its log's latest configuration left it out) but its answer never reached the leader,
// so the removal never committed there; it neither campaigned nor asked, and waited for ever.
import t from 'tap';
import { mayBeRemoved, removedBy, type GroupView } from '../../master/group-join.js';
import type { GroupReply } from '../../master/raft-replicator.js';

const view = (o: Partial<GroupView>): GroupView => ({
  id: 'm2', term: 1, leader: 'm2', leaderAddr: '127.0.0.1:2', confIndex: 10, committed: true, voters: ['m2', 'm3', 'm4'], learners: [], addresses: {}, clusterId: 'c1', ...o,
});
const mine = (o: Partial<GroupReply>): GroupReply => ({
  id: 'm1', term: 1, leader: null, leaderAddr: null, confIndex: 9, committed: true, voters: ['m1', 'm2', 'm3'], learners: ['m4'], addresses: {}, ...o,
});

t.test('when to ask', async (t) => {
  t.equal(mayBeRemoved(mine({ leader: 'm2' }), 'm1'), false, 'a member that hears a leader does not ask');
  t.equal(mayBeRemoved(mine({ leader: null }), 'm1'), true, 'one that knows no leader asks');
  t.equal(mayBeRemoved(mine({ leader: 'm2', confIndex: 10, committed: false, voters: ['m2', 'm3', 'm4'], learners: [] }), 'm1'), true,
    'one whose own log\'s latest configuration leaves it out asks, leader or not (the state a test run was stuck in)');
});

t.test('what an answer says', async (t) => {
  t.equal(removedBy(mine({}), view({}), 'm1', 'c1'), true, 'a newer committed configuration without it');
  t.equal(removedBy(mine({}), view({ voters: ['m1', 'm2', 'm3'] }), 'm1', 'c1'), false, 'one with it');
  t.equal(removedBy(mine({}), view({ committed: false }), 'm1', 'c1'), false, 'one not committed yet');
  t.equal(removedBy(mine({}), view({ clusterId: 'c2' }), 'm1', 'c1'), false, 'another cluster\'s');
  t.equal(removedBy(mine({ confIndex: 12 }), view({}), 'm1', 'c1'), false, 'an older one');
  t.equal(removedBy(mine({ confIndex: 10, committed: false, voters: ['m2', 'm3', 'm4'], learners: [] }), view({}), 'm1', 'c1'), true,
    'the same one as its own uncommitted latest: the other confirms it committed');
  t.equal(removedBy(mine({ confIndex: 10, committed: true, voters: ['m1', 'm2', 'm3'] }), view({}), 'm1', 'c1'), false,
    'the same index as its own committed one: its own applies it');
});
