// Membership changes, one server at a time (Raft thesis §4.1). A configuration entry in the log
// carries the whole new configuration (voters and learners); it takes effect on a node as soon as
// it is in that node's log, committed or not, and is undone if the entry is truncated. Since any
// two configurations that differ by one voter have overlapping majorities, no two leaders can be
// elected in one term across a change, as long as a change starts only after the previous one
// committed (and after the leader committed an entry of its own term: the fix to the thesis's
// single-server algorithm posted on raft-dev in 2015).
import type { ConfState, NodeId } from './types.js';

/** What an operator asks for: add a learner, promote the learner to voter, or remove a member. */
export interface ConfChange {
  readonly type: 'addLearner' | 'promote' | 'remove';
  readonly node: NodeId;
  /** Every member's address after the change, carried in the entry (opaque to Raft); absent: kept as it was. */
  readonly addresses?: Readonly<Record<NodeId, string>>;
}

/** A group has at most this many members (voters and learners): bounds every quorum scan and message. */
export const MAX_MEMBERS = 16;

// Entries carry opaque commands; a configuration entry is told apart by this prefix, which no
// command may start with (RaftNode.propose refuses one): 0xff is no session kind (session.ts).
const CONF_MAGIC = Buffer.from('\xffDFSCONF1:', 'latin1');

export function encodeConfEntry(conf: ConfState): Uint8Array {
  const body = Buffer.from(JSON.stringify({ voters: conf.voters, learners: conf.learners, ...(conf.addresses ? { addresses: conf.addresses } : {}) }), 'utf8');
  return new Uint8Array(Buffer.concat([CONF_MAGIC, body]));
}

export function isConfEntryData(data: Uint8Array): boolean {
  if (data.byteLength < CONF_MAGIC.byteLength) return false;
  for (let i = 0; i < CONF_MAGIC.byteLength; i++) if (data[i] !== CONF_MAGIC[i]) return false;
  return true;
}

/** The configuration an entry carries, or null for an ordinary command or a no-op. */
export function decodeConfEntry(data: Uint8Array): ConfState | null {
  if (!isConfEntryData(data)) return null;
  const text = Buffer.from(data.buffer, data.byteOffset + CONF_MAGIC.byteLength, data.byteLength - CONF_MAGIC.byteLength).toString('utf8');
  const value = JSON.parse(text) as unknown;
  const conf = validConf(value);
  if (conf === null) throw new Error('raft invariant violated: malformed configuration entry');
  return conf;
}

/** A ConfState from untrusted JSON, or null. */
export function validConf(value: unknown): ConfState | null {
  if (typeof value !== 'object' || value === null) return null;
  const { voters, learners, addresses } = value as { voters?: unknown; learners?: unknown; addresses?: unknown };
  const ids = (xs: unknown): xs is string[] =>
    Array.isArray(xs) && xs.length <= MAX_MEMBERS && xs.every((x) => typeof x === 'string' && x.length > 0 && x.length <= 128);
  if (!ids(voters) || !ids(learners) || voters.length === 0) return null;
  const all = [...voters, ...learners];
  if (new Set(all).size !== all.length || all.length > MAX_MEMBERS) return null;
  if (addresses === undefined) return { voters: [...voters], learners: [...learners] };
  if (typeof addresses !== 'object' || addresses === null || Array.isArray(addresses)) return null;
  const entries = Object.entries(addresses as Record<string, unknown>);
  if (entries.length > MAX_MEMBERS || entries.some(([id, a]) => !all.includes(id) || typeof a !== 'string' || a.length === 0 || a.length > 300)) return null;
  return { voters: [...voters], learners: [...learners], addresses: Object.fromEntries(entries) as Record<string, string> };
}

export function isMember(conf: ConfState, id: NodeId): boolean {
  return conf.voters.includes(id) || conf.learners.includes(id);
}

export function sameConf(a: ConfState, b: ConfState): boolean {
  const same = (x: readonly string[], y: readonly string[]): boolean => x.length === y.length && x.every((v) => y.includes(v));
  return same(a.voters, b.voters) && same(a.learners, b.learners);
}

/** How many servers' voting rights differ between two configurations (a safe change has ≤ 1). */
export function votersChanged(a: ConfState, b: ConfState): number {
  return a.voters.filter((v) => !b.voters.includes(v)).length + b.voters.filter((v) => !a.voters.includes(v)).length;
}

/** The configuration after `change`, or why the change makes no sense for `conf`. */
export function applyConfChange(conf: ConfState, change: ConfChange): ConfState | string {
  const next = applyToMembers(conf, change);
  if (typeof next === 'string') return next;
  const addresses = change.addresses ?? conf.addresses;
  if (addresses === undefined) return next;
  const members = [...next.voters, ...next.learners];
  return { ...next, addresses: Object.fromEntries(Object.entries(addresses).filter(([id]) => members.includes(id))) };
}

function applyToMembers(conf: ConfState, change: ConfChange): ConfState | string {
  const { node } = change;
  switch (change.type) {
    case 'addLearner':
      if (isMember(conf, node)) return `${node} is already a member`;
      if (conf.learners.length > 0) return `${conf.learners[0]} is still a learner: promote or remove it first (one learner at a time)`;
      if (conf.voters.length + conf.learners.length >= MAX_MEMBERS) return `a group has at most ${MAX_MEMBERS} members`;
      return { voters: conf.voters, learners: [...conf.learners, node] };
    case 'promote':
      if (!conf.learners.includes(node)) return `${node} is not a learner`;
      return { voters: [...conf.voters, node], learners: conf.learners.filter((l) => l !== node) };
    case 'remove':
      if (!isMember(conf, node)) return `${node} is not a member`;
      if (conf.voters.length === 1 && conf.voters[0] === node) return `${node} is the last voter`;
      return { voters: conf.voters.filter((v) => v !== node), learners: conf.learners.filter((l) => l !== node) };
  }
}
