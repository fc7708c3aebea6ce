// Deterministic simulation of 3- and 5-node clusters of real RaftNode drivers under message loss,
// delay, reordering, duplication, partitions, crash-restarts (random and triggered by the
// cluster's state) and calm phases, with safety and availability checked after every event and
// client histories checked for linearizability. SEED=<n> replays one seed; SEEDS=<n> sets the
// count; FIRST_SEED=<n> the first.
import t from 'tap';
import { runSeed, type SimOptions } from './sim.js';
import type { PlantedBug } from './planted-bugs.js';

const single = process.env.SEED;
const count = Number(process.env.SEEDS ?? 450);
/** Seeds with membership changes (MEMBERSHIP_SEEDS=n); SEED=n with MEMBERSHIP=1 replays one. */
const membershipCount = Number(process.env.MEMBERSHIP_SEEDS ?? 150);
const membershipOnly = process.env.MEMBERSHIP === '1';
const firstSeed = Number(process.env.FIRST_SEED ?? 1);

function replayCommand(seed: number): string {
  return `SEED=${seed} npx tap test/master/raft/sim.test.ts`;
}

t.test('membership changes racing with crashes and partitions keep every safety check, and the group converges', async (t) => {
  const seeds = single !== undefined ? (membershipOnly ? [Number(single)] : []) : Array.from({ length: membershipCount }, (_, i) => firstSeed + i);
  const started = Date.now();
  const failures: string[] = [];
  const totals = { events: 0, elections: 0, crashes: 0, partitions: 0, confChangesCommitted: 0, transfers: 0, removedStopped: 0, snapshotsInstalled: 0, opsCompleted: 0 };
  for (const seed of seeds) {
    try {
      const stats = await runSeed(seed, { membership: true });
      for (const key of Object.keys(totals) as (keyof typeof totals)[]) totals[key] += stats[key];
    } catch (error) {
      failures.push(`seed ${seed}: ${(error as Error).message}\n  replay: MEMBERSHIP=1 ${replayCommand(seed)}`);
      if (failures.length >= 5) break;
    }
  }
  t.comment(`${seeds.length} membership seeds in ${Date.now() - started} ms: ${JSON.stringify(totals)}`);
  t.same(failures, [], failures.join('\n'));
  if (single === undefined) {
    t.ok(totals.confChangesCommitted > seeds.length, 'membership changes committed');
    t.ok(totals.removedStopped > seeds.length / 4, 'removed nodes stopped on their own');
    t.ok(totals.crashes > seeds.length / 10, 'crashes happened');
  }
});

t.test('every seed keeps Raft safety and availability, converges after healing, and yields a linearizable history', async (t) => {
  if (membershipOnly) return;
  const seeds = single !== undefined ? [Number(single)] : Array.from({ length: count }, (_, i) => firstSeed + i);
  const started = Date.now();
  const failures: string[] = [];
  const totals = {
    events: 0, elections: 0, crashes: 0, oldTermMajorityCrashes: 0, minorityEntryCrashes: 0, ackCrashes: 0, settledCalmPhases: 0,
    snapshotsInstalled: 0, opsCompleted: 0, opsUnknown: 0, readsCompleted: 0,
  };
  for (const seed of seeds) {
    try {
      const stats = await runSeed(seed);
      for (const key of Object.keys(totals) as (keyof typeof totals)[]) totals[key] += stats[key];
    } catch (error) {
      failures.push(`seed ${seed}: ${(error as Error).message}\n  replay: ${replayCommand(seed)}`);
      if (failures.length >= 5) break;
    }
  }
  t.comment(`${seeds.length} seeds in ${Date.now() - started} ms: ${JSON.stringify(totals)}`);
  t.same(failures, [], failures.join('\n'));
  if (single === undefined) {
    // Guard against a simulator that silently stopped exercising anything.
    t.ok(totals.crashes > seeds.length / 10, 'crashes happened');
    t.ok(totals.oldTermMajorityCrashes > seeds.length / 20, 'leaders crashed right after an old-term entry reached a majority');
    t.ok(totals.snapshotsInstalled > seeds.length / 10, 'snapshots were installed');
    t.ok(totals.settledCalmPhases > seeds.length, 'calm phases settled on a leader');
    t.ok(totals.opsCompleted > seeds.length * 10, 'clients made progress');
  }
});

t.test('the test client records each operation once, even when replies land just before its timeout', async (t) => {
  // With a timeout as short as a reply, many replies land just before it; a client that let the
  // timeout retry an operation it had completed recorded it twice (seen at seed 1619 with 10 s
  // fault phases; with 40 ms timeouts at 3 seeds of 40).
  const failures: string[] = [];
  for (let seed = 1; seed <= 20; seed++) {
    try {
      await runSeed(seed, { clientTimeoutMs: 40 });
    } catch (error) {
      failures.push(`seed ${seed}: ${(error as Error).message}`);
    }
  }
  t.same(failures, []);
});

/** Runs seeds with a planted bug; returns the first seed the checks catch, and why. */
async function firstCaught(plant: PlantedBug, maxSeeds: number, overrides: Partial<SimOptions> = {}): Promise<{ seed: number; why: string } | undefined> {
  for (let seed = 1; seed <= maxSeeds; seed++) {
    try {
      await runSeed(seed, { plant, ...overrides });
    } catch (error) {
      return { seed, why: (error as Error).message };
    }
  }
  return undefined;
}

// Each planted bug must be caught within its bound; the comment says at which seed it was when
// the bound was set (FIRST_SEED does not move these).
const SAFETY = /commit quorum|election safety|log matching|leader completeness|committed a different entry|state machine safety|linearizability|restarted at term|voted for/;
const plantedBugs: { plant: PlantedBug; maxSeeds: number; overrides?: Partial<SimOptions>; what: string; why: RegExp }[] = [
  // Seed 1: the first vote request leaves before its term is on disk.
  { plant: 'sendBeforeFsync', maxSeeds: 20, what: 'a driver that sends a Ready\'s messages before its fsync completes', why: /on its disk/ },
  // Seed 1: a leader counted acknowledgements of entries not yet on the followers' disks (commit
  // quorum); before that check, seed 28: a follower crashed between its acknowledgement and its
  // fsync, and a leader missed the entry.
  { plant: 'sendBeforeFsync', maxSeeds: 200, overrides: { checkDurableBeforeSend: false }, what: 'the same driver, by what it breaks after crashes alone', why: SAFETY },
  // Seed 3: leader completeness fails once the Figure 8 chain has run.
  { plant: 'commitByCounting', maxSeeds: 200, what: 'a leader that commits an entry of an earlier term by counting replicas (§5.4.2)', why: SAFETY },
  // Seed 2: a node cut off from a majority climbs two terms.
  { plant: 'preVoteRaisesTerm', maxSeeds: 200, what: 'a pre-vote that raises the term', why: /pre-vote|availability/ },
  // Seed 5: a leader partitioned alone keeps leading.
  { plant: 'noCheckQuorum', maxSeeds: 200, what: 'check-quorum configured on but never done', why: /check-quorum/ },
  // Seed 1: a restarted node is behind the term it had sent.
  { plant: 'loseHardState', maxSeeds: 20, what: 'a storage that loses the persisted term and vote on a crash', why: SAFETY },
  // Seed 28: a leader's second change while its first was uncommitted.
  { plant: 'twoConfChanges', maxSeeds: 100, overrides: { membership: true }, what: 'a leader that starts a membership change before the previous one commits', why: /membership:/ },
  // Seed 1: a commit held by the leader and a learner only.
  { plant: 'learnerInQuorum', maxSeeds: 50, overrides: { membership: true }, what: 'a leader that counts a learner towards the commit quorum', why: /commit quorum|election safety|leader completeness|committed a different entry/ },
];

for (const { plant, maxSeeds, overrides, what, why } of plantedBugs) {
  t.test(`the simulator catches ${what}`, async (t) => {
    const caught = await firstCaught(plant, maxSeeds, overrides);
    t.ok(caught !== undefined, `caught within ${maxSeeds} seeds`);
    if (caught === undefined) return;
    t.match(caught.why, why, 'by the check that guards against it');
    t.comment(`${plant}: caught at seed ${caught.seed}: ${caught.why.slice(0, 160)}`);
  });
}
