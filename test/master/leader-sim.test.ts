// The leader simulator (leader-sim.ts): seeded histories of faults and workload driving the real
// leader core, with safety checked at every order and convergence checked once faults stop.
// LEADER_SIM_SEED=<n> replays one seed; LEADER_SIM_SEEDS=<n> sets the count.
import t from 'tap';
import { runLeaderSeed, type LeaderSimOptions, type LeaderSimStats } from './leader-sim.js';

const single = process.env.LEADER_SIM_SEED;
const count = Number(process.env.LEADER_SIM_SEEDS ?? 2000);
const firstSeed = Number(process.env.LEADER_SIM_FIRST_SEED ?? 1);

function replayCommand(seed: number): string {
  return `LEADER_SIM_SEED=${seed} npx tap test/master/leader-sim.test.ts`;
}

t.test('every seed keeps replicas safe and converges once faults stop', async (t) => {
  const seeds = single !== undefined ? [Number(single)] : Array.from({ length: count }, (_, i) => firstSeed + i);
  const started = Date.now();
  const failures: string[] = [];
  const totals: Record<string, number> = {};
  for (const seed of seeds) {
    try {
      const stats = runLeaderSeed(seed);
      for (const [k, v] of Object.entries(stats) as [keyof LeaderSimStats, number][]) totals[k] = (totals[k] ?? 0) + v;
    } catch (error) {
      failures.push(`seed ${seed}: ${(error as Error).message}\n  replay: ${replayCommand(seed)}`);
      if (failures.length >= 5) break;
    }
  }
  t.comment(`${seeds.length} seeds in ${Date.now() - started} ms: ${JSON.stringify(totals)}`);
  t.same(failures, [], failures.join('\n'));
  if (single === undefined) {
    // Guard against a simulator that silently stopped exercising anything.
    for (const k of ['kills', 'wipes', 'leaderChanges', 'corrupt', 'copiesDone', 'surplusDeletes', 'garbageDeletes', 'decommissions', 'linkDrops', 'cleanStops']) {
      t.ok((totals[k] ?? 0) > seeds.length / 10, `${k} happened (${totals[k]})`);
    }
    t.ok((totals.files ?? 0) > seeds.length * 3, 'files were written');
  }
});

/** Runs seeds with a planted bug and returns the first one the checks catch. */
function firstCaught(overrides: LeaderSimOptions, maxSeeds: number): { seed: number; message: string } | undefined {
  for (let seed = 1; seed <= maxSeeds; seed++) {
    try {
      runLeaderSeed(seed, overrides);
    } catch (error) {
      return { seed, message: (error as Error).message };
    }
  }
  return undefined;
}

t.test('the simulator catches surplus trimming that keeps one replica too few', async (t) => {
  const caught = firstCaught({ unsafeSurplusOffByOne: true }, 200);
  t.ok(caught, `caught${caught ? ` at seed ${caught.seed}` : ''}`);
  t.match(caught?.message ?? '', /below its replication|last good replica/);
});

t.test('the simulator catches garbage deleted before its grace period', async (t) => {
  const caught = firstCaught({ unsafeNoGarbageGrace: true }, 200);
  t.ok(caught, `caught${caught ? ` at seed ${caught.seed}` : ''}`);
  t.match(caught?.message ?? '', /before the \d+ ms grace/);
});

t.test('the simulator catches placement that does not know the servers\' racks', async (t) => {
  const caught = firstCaught({ unsafeRacksUnreported: true }, 50);
  t.ok(caught, `caught${caught ? ` at seed ${caught.seed}` : ''}`);
  t.match(caught?.message ?? '', /every replica in rack|break the rack rule/);
});
