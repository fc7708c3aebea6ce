// ReadIndex bookkeeping on the leader (§6.4 of the Raft thesis): each read records the commit
// index at request time and waits for a heartbeat round acknowledged by a majority, which proves
// no newer leader existed when the read arrived.
import type { NodeId, ReadState } from './types.js';

interface PendingRead {
  readonly index: number;
  readonly acks: Set<NodeId>;
}

export class ReadOnlyQueue {
  private readonly pending = new Map<string, PendingRead>();
  /** Contexts in request order; an ack for one confirms every earlier one too. */
  private readonly order: string[] = [];

  size(): number {
    return this.order.length;
  }

  has(context: string): boolean {
    return this.pending.has(context);
  }

  add(context: string, index: number, self: NodeId): void {
    if (this.pending.has(context)) return;
    this.pending.set(context, { index, acks: new Set([self]) });
    this.order.push(context);
  }

  /** Records an ack and returns how many voters have acknowledged `context` (0 if unknown). */
  recordAck(context: string, from: NodeId): number {
    const read = this.pending.get(context);
    if (read === undefined) return 0;
    read.acks.add(from);
    return read.acks.size;
  }

  /** Removes and returns every read up to and including `context`, oldest first. */
  release(context: string): ReadState[] {
    const at = this.order.indexOf(context);
    if (at < 0) return [];
    const released = this.order.splice(0, at + 1);
    return released.map((ctx) => {
      const read = this.pending.get(ctx)!;
      this.pending.delete(ctx);
      return { index: read.index, context: ctx };
    });
  }

  lastContext(): string {
    return this.order.at(-1) ?? '';
  }

  clear(): void {
    this.pending.clear();
    this.order.length = 0;
  }
}
