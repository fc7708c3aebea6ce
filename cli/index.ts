// What `import ... from 'dfs'` gives a program: the client library under the `dfs` CLI (metadata
// from the master leader, bytes straight to and from chunkservers), its errors, and the shapes of
// its replies. Nothing else in the package is public; a name added here is a promise to keep it.
export { DfsClient, type ClientOptions, type GetOptions, type PutOptions } from './client.js';
export { DfsError, ErrorCodes, type ErrorCode } from '../common/errors.js';
export { DEFAULT_MASTERS, parseAddrList } from '../common/config.js';
/** Closes the keep-alive connections every client in this process shares, so that it can exit. */
export { closeHttpAgent } from '../common/http.js';
export type {
  ChunkInfo, ChunkserverStatus, ClusterStatus, DuReply, EntryInfo, FsckReply, ListReply, MasterStatus, ReplicaInfo, StatReply,
} from '../common/protocol.js';
/** The Node API (docs/CLIENT.md): `connect()` gives a handle shaped like node:fs, with streams. */
export {
  connect, DfsHandle, DfsEntry, DfsStats, DfsReadStream, DfsWriteStream, READ_FILE_MAX_BYTES,
  type ConnectOptions, type ReadStreamOptions, type WriteStreamOptions, type ReadFileOptions, type WriteFileOptions, type MkdirOptions, type RmOptions,
} from './api.js';
