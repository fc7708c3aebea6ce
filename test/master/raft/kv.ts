// A small key-value state machine for the simulator: put, compare-and-set and get on string keys.
import { wholeData } from '../../../master/raft/snapshot-data.js';
import type { StateMachine } from '../../../master/raft/state-machine.js';
import type { SnapshotData } from '../../../master/raft/types.js';

export type KvCommand =
  | { readonly op: 'put'; readonly key: string; readonly value: string }
  | { readonly op: 'cas'; readonly key: string; readonly expected: string | null; readonly value: string };

export function encodeKv(command: KvCommand): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(command));
}

export class KvStateMachine implements StateMachine {
  private data = new Map<string, string>();
  /** Number of commands applied (to detect double application in tests). */
  applyCount = 0;

  get(key: string): string | null {
    return this.data.get(key) ?? null;
  }

  apply(bytes: Uint8Array): unknown {
    this.applyCount++;
    const command = JSON.parse(new TextDecoder().decode(bytes)) as KvCommand;
    if (command.op === 'put') {
      this.data.set(command.key, command.value);
      return null;
    }
    const current = this.data.get(command.key) ?? null;
    if (current !== command.expected) return false;
    this.data.set(command.key, command.value);
    return true;
  }

  snapshot(): Uint8Array {
    return new TextEncoder().encode(JSON.stringify([...this.data].sort(([a], [b]) => (a < b ? -1 : 1))));
  }

  restore(data: SnapshotData): void {
    this.data = new Map(JSON.parse(new TextDecoder().decode(wholeData(data))) as [string, string][]);
  }
}
