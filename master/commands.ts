// The commands of the master's replicated state machine: plain serialisable data. Each carries
// everything apply() needs (the leader's clock reading, generated ids), so applying the same
// log on any master gives the same state.

export type Command =
  | { op: 'mkdir'; path: string; parents: boolean; nowMs: number }
  | {
    op: 'create'; path: string; overwrite: boolean; parents?: boolean; replication: number; chunkSizeBytes: number; writeId: string; leaseMs: number; nowMs: number;
    /** Make a complete empty file in this one command (no write follows). */
    empty?: boolean;
    /** The size the writer announced: the write counts for it in quotas from the start (master/quotas.ts). */
    expectedBytes?: number;
    /** The whole file, kept in the state (common/inline.ts): complete in this one command; the leader checked the checksum. */
    inline?: import('../common/inline.js').InlineBody;
  }
  | { op: 'allocate'; writeId: string; index: number; nowMs: number }
  | {
    op: 'complete'; writeId: string; length: number; chunks: { handle: number; length: number; checksum: string }[]; nowMs: number;
    /** An append's filled last chunk (master/state/append.ts): its new length and checksum, at the version the open reserved. */
    last?: { handle: number; length: number; checksum: string };
  }
  | { op: 'abandon'; writeId: string }
  | { op: 'renew'; writeIds: string[]; nowMs: number }
  | { op: 'delete'; path: string; recursive: boolean; nowMs: number; type?: 'file' | 'dir' }
  | {
    op: 'rename'; src: string; dst: string; nowMs: number;
    /** `dst` was named with a trailing '/': it must be an existing directory to move into. */
    into?: boolean;
  }
  | { op: 'expireLeases'; nowMs: number }
  | { op: 'setReplication'; path: string; replication: number; recursive: boolean }
  | { op: 'decommission'; server: string; cancel: boolean }
  /** Names this namespace, once (the first leader draws the id); later proposals get the first id back. */
  | { op: 'initNamespace'; namespaceId: string }

  /** Opens an append to a complete file (master/state/append.ts): a write holding the file's lease; the file stays as it is until complete. */
  | { op: 'append'; path: string; writeId: string; leaseMs: number; nowMs: number; expectedBytes?: number
    /** A record append (master/state/record-append.ts): the framed record's length; the open picks its offset. */
    record?: number }

  /** Copies a file or tree whose files share the originals' chunks (master/state/tree-snapshot.ts). */
  | { op: 'snapshot'; src: string; dst: string; nowMs: number }

  /** Joins complete files into one (as HDFS's concat): the target's chunks are the sources' in order; the sources go. */
  | { op: 'concat'; sources: string[]; target: string; overwrite: boolean; nowMs: number }
  /** Client credentials: a signing key added or dropped, a token recorded or revoked (master/credentials/state.ts). */
  | { op: 'credentials'; action: import('./credentials/state.js').CredentialAction; nowMs: number }
  /** trash-quota: the trash and directory quotas (master/trash-quota-commands.ts). */
  | import('./trash-quota-commands.js').TrashQuotaCommand;

export type CommandResult =
  | { ok: true; value?: unknown }
  | { ok: false; code: import('../common/errors.js').ErrorCode; message: string };
