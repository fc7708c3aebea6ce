// A master's membership record: which Raft group its data folder belongs to. Written once, when
// a data folder is first used, and read on every start after, so the group a master votes and
// counts majorities in comes from its data, not from whatever its command line says today (etcd
// ignores --initial-cluster once a member has data, for the same reason). Without it a master
// restarted without --peers became a group of one on a three-master log, elected itself, and
// committed entries the others never had: a fork of the namespace.
import { createHmac } from 'node:crypto';
import { mkdir, readFile, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileDurably } from '../common/durable-file.js';
import { DfsError } from '../common/errors.js';

const MEMBERSHIP_FILE = 'membership.json';
/** On a Raft stream's upgrade request: the sender's cluster id. */
export const CLUSTER_ID_HEADER = 'x-dfs-cluster-id';
const FORMAT_VERSION = 1;
/** The record is a few hundred bytes; anything this large is not ours. */
const MAX_RECORD_BYTES = 64 * 1024;

export interface Membership {
  version: 1;
  /** The cluster this data folder belongs to: derived from the secret and the first group. */
  clusterId: string;
  /** This master's id in the group. */
  memberId: string;
  /**
   * Every member of the group, this master included: id → host:port. Rewritten (durably) each
   * time a configuration commits (`dfs admin masters add|remove`).
   */
  members: Record<string, string>;
  /**
   * A master that joined a running group (--join): the voters it was told of then. Its Raft log
   * starts empty, so until the leader's snapshot or log says otherwise these are the voters and it
   * is a learner.
   */
  joinedVoters?: string[];
  /** Proof of which cluster secret created the folder, without storing the secret. */
  secretFingerprint: string;
}

export interface ResolveInput {
  dataDir: string;
  id: string;
  /** The address this master listens on (the bound one: port 0 resolved). */
  listen: string;
  /** `--peers` as given; undefined when the flag was left out. */
  peers: Record<string, string> | undefined;
  secret: Buffer;
  /** `--join <cluster id>`: an empty folder joins that running cluster's group (given by --peers) as a learner. */
  join?: string;
}

export interface Resolved {
  membership: Membership;
  /** How the group was decided, for the start-up log line. */
  source: 'stored' | 'new' | 'adopted' | 'joined';
}

/** Records the group after a configuration committed; the rest of the record stays. */
export async function recordMembers(dataDir: string, members: Record<string, string>): Promise<void> {
  const stored = await readMembership(dataDir);
  if (stored === undefined) throw new DfsError('INTERNAL', `${join(dataDir, MEMBERSHIP_FILE)} vanished`);
  await writeMembership(dataDir, { ...stored, members });
}

function fingerprint(secret: Buffer): string {
  return createHmac('sha256', secret).update('dfs secret fingerprint').digest('hex').slice(0, 16);
}

/** The same on every master of a new group: each computes it from the secret and the group. */
function clusterIdOf(secret: Buffer, members: Record<string, string>): string {
  const group = Object.keys(members).sort().map((id) => `${id}=${members[id]}`).join(',');
  return createHmac('sha256', secret).update(`dfs cluster id\n${group}`).digest('hex').slice(0, 16);
}

function describe(members: Record<string, string>): string {
  return Object.keys(members).sort().map((id) => `${id}=${members[id]}`).join(',');
}

function sameGroup(a: Record<string, string>, b: Record<string, string>): boolean {
  return describe(a) === describe(b);
}

function parseRecord(text: string, file: string): Membership {
  const bad = (why: string) => new DfsError('INVALID_ARGUMENT', `${file} is not a dfs membership record (${why}); is --data the right folder?`);
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw bad('not JSON');
  }
  const r = raw as Partial<Membership>;
  if (typeof r !== 'object' || r === null || r.version !== FORMAT_VERSION) throw bad(`format version ${String(r?.version)}, expected ${FORMAT_VERSION}`);
  if (typeof r.clusterId !== 'string' || typeof r.memberId !== 'string' || typeof r.secretFingerprint !== 'string') throw bad('a field is missing');
  if (typeof r.members !== 'object' || r.members === null || Object.values(r.members).some((v) => typeof v !== 'string')) throw bad('members is malformed');
  if (r.members[r.memberId] === undefined) throw bad('it does not name its own member');
  return r as Membership;
}

async function readMembership(dataDir: string): Promise<Membership | undefined> {
  const file = join(dataDir, MEMBERSHIP_FILE);
  let size: number;
  try {
    size = (await stat(file)).size;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  if (size > MAX_RECORD_BYTES) throw new DfsError('INVALID_ARGUMENT', `${file} is ${size} bytes: not a dfs membership record`);
  return parseRecord(await readFile(file, 'utf8'), file);
}

/** Whether the folder already holds a membership record (a master that ran here before). */
export async function hasMembershipRecord(dataDir: string): Promise<boolean> {
  return (await readMembership(dataDir)) !== undefined;
}

/** temp file, fsync, rename, folder fsync: the record is either the old one or the whole new one. */
async function writeMembership(dataDir: string, m: Membership): Promise<void> {
  await mkdir(dataDir, { recursive: true });
  await writeFileDurably(join(dataDir, MEMBERSHIP_FILE), JSON.stringify(m, null, 2) + '\n', 0o600);
}

/** Whether the folder already holds a Raft log or snapshot (written before membership was recorded). */
async function hasRaftData(dataDir: string): Promise<boolean> {
  // Only a missing folder is an empty one: a folder that cannot be read (EACCES, EIO) might hold a
  // log, and taking it for empty would record a group of one over it.
  const names = await readdir(join(dataDir, 'raft')).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return [] as string[];
    throw new DfsError('IO_ERROR', `cannot read ${join(dataDir, 'raft')} (${err.code ?? err.message}); fix its permissions or disk before starting this master`);
  });
  for (const name of names) {
    if (name.endsWith('.tmp')) continue;
    if ((await stat(join(dataDir, 'raft', name))).size > 0) return true;
  }
  return false;
}

/**
 * Decides the group this master runs in, before Raft reads its log:
 * - a folder with a record: the stored group. `--peers`, when given, must name the same group;
 *   `--id` must be the stored member; the secret must be the one that made the folder.
 * - a new, empty folder: `--peers` (or a group of one without it), recorded before anything else.
 * - a folder with a Raft log but no record (made by an older dfs): only with `--peers`, which is
 *   then recorded; without it the group cannot be known, and guessing "a group of one" is the
 *   bug this module exists to prevent.
 */
export async function resolveMembership(input: ResolveInput): Promise<Resolved> {
  const { dataDir, id, listen, peers, secret } = input;
  const stored = await readMembership(dataDir);
  if (stored) {
    if (stored.secretFingerprint !== fingerprint(secret)) {
      throw new DfsError('WRONG_CLUSTER', `${dataDir} belongs to another cluster (${stored.clusterId}): its secret is not the one in --secret-file; point --data at this cluster's folder or --secret-file at that cluster's secret`);
    }
    if (stored.memberId !== id) {
      throw new DfsError('MEMBERSHIP_MISMATCH', `${dataDir} is the data folder of master ${stored.memberId} of ${describe(stored.members)}, not of ${id}; start it with --id ${stored.memberId}`);
    }
    const groupOfOne = Object.keys(stored.members).length === 1;
    if (peers !== undefined && !sameGroup(peers, stored.members) && !(groupOfOne && Object.keys(peers).length === 1 && peers[id] !== undefined)) {
      throw new DfsError('MEMBERSHIP_MISMATCH', `--peers ${describe(peers)} disagrees with the group recorded in ${join(dataDir, MEMBERSHIP_FILE)}: ${describe(stored.members)}; leave --peers out (the recorded group is used) or pass exactly that group`);
    }
    if (groupOfOne) {
      // No one else dials a group of one: its address may change from start to start (port 0).
      if (stored.members[id] !== listen) {
        const moved: Membership = { ...stored, members: { [id]: listen } };
        await writeMembership(dataDir, moved);
        return { membership: moved, source: 'stored' };
      }
    } else if (stored.members[id] !== listen) {
      throw new DfsError('MEMBERSHIP_MISMATCH', `master ${id} is recorded at ${stored.members[id]} in its group (${describe(stored.members)}) but was told to listen on ${listen}; the other masters dial the recorded address: start it with --listen ${stored.members[id]}`);
    }
    return { membership: stored, source: 'stored' };
  }
  const legacy = await hasRaftData(dataDir);
  if (input.join !== undefined) return joinGroup(input, legacy);
  if (legacy && peers === undefined) {
    throw new DfsError('MEMBERSHIP_MISMATCH', `${dataDir} holds a Raft log but no record of its group (it was made by an older dfs); start this master once with --peers naming the whole group it was started with (id=host:port,...; for a lone master, --peers ${id}=${listen}); the group is recorded then`);
  }
  const members = peers ?? { [id]: listen };
  const membership: Membership = {
    version: FORMAT_VERSION, clusterId: clusterIdOf(secret, members), memberId: id, members, secretFingerprint: fingerprint(secret),
  };
  await writeMembership(dataDir, membership);
  return { membership, source: legacy ? 'adopted' : 'new' };
}

/** `--join`: a new, empty folder recorded as a learner of the running group `--peers` names. */
async function joinGroup(input: ResolveInput, legacy: boolean): Promise<Resolved> {
  const { dataDir, id, listen, peers, secret, join: clusterId } = input;
  if (legacy) throw new DfsError('MEMBERSHIP_MISMATCH', `${dataDir} holds a Raft log: --join takes an empty data folder`);
  if (!/^[0-9a-f]{16}$/.test(clusterId ?? '')) throw new DfsError('INVALID_ARGUMENT', '--join takes the cluster id that dfs admin masters add printed (16 hex digits)');
  if (peers === undefined || peers[id] !== listen || Object.keys(peers).length < 2) {
    throw new DfsError('INVALID_ARGUMENT', `--join needs --peers naming the running group and this master (${id}=${listen}), as dfs admin masters add printed`);
  }
  const membership: Membership = {
    version: FORMAT_VERSION, clusterId: clusterId!, memberId: id, members: peers, secretFingerprint: fingerprint(secret),
    joinedVoters: Object.keys(peers).filter((m) => m !== id),
  };
  await writeMembership(dataDir, membership);
  return { membership, source: 'joined' };
}
