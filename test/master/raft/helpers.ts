// Test helpers that drive RaftCore by hand: a node is a core plus the MemoryStorage it persists to,
// and a cluster moves messages between nodes with optional cut links.
import type { RaftConfigInput } from '../../../master/raft/config.js';
import { RaftCore } from '../../../master/raft/core.js';
import { MemoryStorage } from '../../../master/raft/memory-storage.js';
import type { Entry, HardState, Message, ReadState, Ready } from '../../../master/raft/types.js';
import { createRandom } from './sim.js';

export interface TestNode {
  readonly id: string;
  readonly storage: MemoryStorage;
  core: RaftCore;
  readonly applied: Entry[];
  readonly readStates: ReadState[];
  readonly readies: Ready[];
}

export type CoreOptions = Partial<Omit<RaftConfigInput, 'id' | 'peers'>>;

export function entries(...terms: number[]): Entry[] {
  return terms.map((term, i) => ({ term, index: i + 1, data: Uint8Array.of(i + 1) }));
}

/** A storage already holding `log` and `hardState`, as if written before a restart. */
export function storageWith(log: Entry[], hardState: Partial<HardState> = {}): MemoryStorage {
  const storage = new MemoryStorage();
  storage.append(log);
  storage.setHardState({ term: log.at(-1)?.term ?? 0, vote: null, commit: 0, ...hardState });
  return storage;
}

export function newNode(id: string, peers: readonly string[], options: CoreOptions = {}, storage = new MemoryStorage()): TestNode {
  const core = new RaftCore(
    { electionTick: 10, heartbeatTick: 1, random: createRandom(id.charCodeAt(id.length - 1)), preVote: false, checkQuorum: false, ...options, id, peers },
    storage,
  );
  return { id, storage, core, applied: [], readStates: [], readies: [] };
}

/** Persists, "applies" and advances every pending Ready; returns the messages to send. */
export function drain(node: TestNode): Message[] {
  const out: Message[] = [];
  while (node.core.hasReady()) {
    const ready = node.core.ready();
    node.readies.push(ready);
    node.storage.persistSync({ hardState: ready.hardState, entries: ready.entries, snapshot: ready.snapshot });
    out.push(...ready.messages);
    node.applied.push(...ready.committedEntries);
    node.readStates.push(...ready.readStates);
    node.core.advance(ready);
  }
  return out;
}

export class TestCluster {
  readonly nodes = new Map<string, TestNode>();
  private readonly cut = new Set<string>();
  /** Every message delivered, for assertions on traffic. */
  readonly delivered: Message[] = [];

  constructor(count: number, options: CoreOptions = {}) {
    const ids = Array.from({ length: count }, (_, i) => `n${i + 1}`);
    for (const id of ids) this.nodes.set(id, newNode(id, ids, options));
  }

  node(id: string): TestNode {
    return this.nodes.get(id)!;
  }

  /** Cuts both directions between `a` and every node in `others`. */
  isolate(a: string, others: readonly string[] = [...this.nodes.keys()]): void {
    for (const b of others) {
      if (b === a) continue;
      this.cut.add(`${a}>${b}`);
      this.cut.add(`${b}>${a}`);
    }
  }

  heal(): void {
    this.cut.clear();
  }

  /** Delivers messages (and everything they cause) until the network is quiet. */
  stabilize(maxRounds = 1000): void {
    let pending: Message[] = [];
    for (const node of this.nodes.values()) pending.push(...drain(node));
    for (let round = 0; pending.length > 0; round++) {
      if (round > maxRounds) throw new Error('cluster did not stabilize');
      const next: Message[] = [];
      for (const m of pending) {
        if (this.cut.has(`${m.from}>${m.to}`)) continue;
        this.delivered.push(m);
        const to = this.nodes.get(m.to)!;
        to.core.step(m);
        next.push(...drain(to));
      }
      for (const node of this.nodes.values()) next.push(...drain(node));
      pending = next;
    }
  }

  tick(id: string, times = 1): void {
    for (let i = 0; i < times; i++) this.node(id).core.tick();
  }

  /**
   * One heartbeat from leader `id`, delivered: how followers learn a commit index that no later
   * append carried (a commit alone sends nothing; see RaftCore.sendPendingEntries).
   */
  heartbeat(id: string): void {
    this.tick(id, this.node(id).core.config.heartbeatTick);
    this.stabilize();
  }

  /** Ticks `id` until it campaigns (at most two election timeouts), then lets the election finish. */
  elect(id: string): void {
    const core = this.node(id).core;
    const before = core.role;
    for (let i = 0; i < 2 * core.config.electionTick && core.role === before; i++) core.tick();
    this.stabilize();
  }

  leader(): TestNode | undefined {
    return [...this.nodes.values()].find((n) => n.core.role === 'leader');
  }

  propose(id: string, text: string): void {
    const result = this.node(id).core.propose([new TextEncoder().encode(text)]);
    if (!result.ok) throw new Error(`proposal refused: ${result.reason}`);
    this.stabilize();
  }
}

export function text(entry: Entry): string {
  return new TextDecoder().decode(entry.data);
}

/** Polls `probe` every 5 ms until it returns a value; throws after `timeoutMs`. */
export async function waitFor<T>(what: string, probe: () => T | undefined, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}
