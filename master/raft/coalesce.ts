// Fewer, fuller messages: what one Ready sends to a peer, merged where delivering the merged
// message is the same as delivering the originals back to back.
import { entryBytes, type AppendRequest, type AppendResponse, type Entry, type Message } from './types.js';

export interface CoalesceLimits {
  /** A merged append stays within the limits a single append has. */
  readonly maxEntriesPerMsg: number;
  readonly maxSizePerMsgBytes: number;
}

/**
 * Merges messages that follow each other in one peer's queue (the transport keeps each peer's
 * messages in order):
 *
 * - an append whose entries continue the previous append to the same follower (its prevLogIndex
 *   and prevLogTerm are that one's last entry, same term) joins it, with the later commit index.
 *   A follower handling the merged append ends with the same log and commit index as after the
 *   two. A leader under load otherwise sends one append per acknowledgement it handles, most of
 *   them empty (they only carry the new commit index), and each costs the follower a step and an
 *   answer;
 * - two successful append responses to the same leader in the same term become one with the
 *   higher index: the leader only ever keeps the highest match. Rejections are never merged.
 *
 * Nothing else is touched, and nothing moves ahead of a message to the same peer.
 */
export function coalesceMessages(msgs: readonly Message[], limits: CoalesceLimits): Message[] {
  if (msgs.length < 2) return msgs as Message[];
  const out: Message[] = [];
  /** Index in `out` of the last message to each peer. */
  const lastTo = new Map<string, number>();
  /**
   * Appends this function made by merging (their entry arrays are its own), with their entry
   * bytes: a long run of merges extends one array and one sum instead of copying both each time.
   */
  const mergedBytes = new Map<AppendRequest, number>();
  for (const m of msgs) {
    const at = lastTo.get(m.to);
    const prev = at === undefined ? undefined : out[at]!;
    if (prev !== undefined && prev.term === m.term) {
      if (prev.type === 'append' && m.type === 'append') {
        const merged = mergeAppends(prev, m, limits, mergedBytes.get(prev));
        if (merged) {
          out[at!] = merged.append;
          if (merged.ownEntries) mergedBytes.set(merged.append, merged.bytes);
          continue;
        }
      } else if (prev.type === 'appendResp' && m.type === 'appendResp' && !prev.reject && !m.reject) {
        if (m.index > prev.index) out[at!] = { ...prev, index: m.index } satisfies AppendResponse;
        continue;
      }
    }
    lastTo.set(m.to, out.length);
    out.push(m);
  }
  return out;
}

function sumBytes(a: AppendRequest): number {
  let bytes = 0;
  for (const e of a.entries) bytes += entryBytes(e);
  return bytes;
}

/**
 * `a` and `b` as one append, with its entry bytes and whether its entries array is a new one of
 * ours; undefined when `b` does not continue `a` or the two would not fit in one append.
 * `ownBytes` is given when `a`'s entries array is ours already.
 */
function mergeAppends(a: AppendRequest, b: AppendRequest, limits: CoalesceLimits, ownBytes: number | undefined): { append: AppendRequest; bytes: number; ownEntries: boolean } | undefined {
  const aLast = a.entries.at(-1);
  const aEndIndex = aLast?.index ?? a.prevLogIndex;
  const aEndTerm = aLast?.term ?? a.prevLogTerm;
  if (b.prevLogIndex !== aEndIndex || b.prevLogTerm !== aEndTerm) return undefined;
  const aBytes = ownBytes ?? sumBytes(a);
  if (b.entries.length === 0) return { append: { ...a, commit: Math.max(a.commit, b.commit) }, bytes: aBytes, ownEntries: ownBytes !== undefined };
  if (a.entries.length + b.entries.length > limits.maxEntriesPerMsg) return undefined;
  const bytes = aBytes + sumBytes(b);
  if (bytes > limits.maxSizePerMsgBytes) return undefined;
  // An array of our own (from an earlier merge) grows in place; a sender's is never touched.
  const entries = ownBytes === undefined ? [...a.entries] : (a.entries as Entry[]);
  entries.push(...b.entries);
  return { append: { ...a, entries, commit: Math.max(a.commit, b.commit) }, bytes, ownEntries: true };
}
