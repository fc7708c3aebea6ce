// The seam between consensus and the replicated service (the master's namespace and chunk table).

export interface StateMachine {
  /** Applies a committed command. Must be deterministic; returns the command's result. */
  apply(data: Uint8Array, index: number): unknown;
  /** Serialises the full state (taken at the last applied index). */
  snapshot(): Uint8Array;
  /** Replaces the full state with a snapshot's. */
  restore(data: Uint8Array): void;
}
