// The seam between consensus and the replicated service (the master's namespace and chunk table).
import type { SnapshotData } from './types.js';

/**
 * A snapshot taken quickly at the last applied index and written later (hashicorp/raft's
 * FSMSnapshot): its pieces describe the state as it was at the capture even while apply() goes on.
 */
export interface SnapshotCapture {
  /** The snapshot's bytes, a bounded piece per step; the driver writes each before asking the next. */
  pieces(): Iterator<Uint8Array>;
  /** Drops the capture (called when writing it fails or is abandoned before its end). */
  release(): void;
}

export interface StateMachine {
  /** Applies a committed command. Must be deterministic; returns the command's result. */
  apply(data: Uint8Array, index: number): unknown;
  /**
   * The full state at the last applied index: its bytes, or (for a large state) a capture that
   * costs little now and yields the bytes in pieces later.
   */
  snapshot(): Uint8Array | SnapshotCapture;
  /** Replaces the full state with a snapshot's (read it a piece at a time when it may be large). */
  restore(data: SnapshotData): void;
}

/** The pieces of what snapshot() returned. */
export function capturePieces(s: Uint8Array | SnapshotCapture): { pieces: Iterator<Uint8Array>; release(): void } {
  if (s instanceof Uint8Array) return { pieces: [s][Symbol.iterator](), release: () => undefined };
  return { pieces: s.pieces(), release: () => s.release() };
}
