// The public surface of master/raft: what the master imports. Everything else is internal.
export { RaftNode, NODE_DEFAULTS, type RaftNodeOptions, type RaftNodeObserver, type RaftStatus, type LeaderChange, type StartTicker, type Transport } from './node.js';
export type { SnapshotCapture, StateMachine } from './state-machine.js';
export { ChunkedSnapshotData, dataFrom, dataPieces, wholeData } from './snapshot-data.js';
export type { Storage, LogStorage, PersistBatch } from './storage.js';
export { FileStorage, type FileStorageOptions, type OpenReport, type StorageObserver } from './file-storage.js';
export { MemoryStorage } from './memory-storage.js';
export {
  StreamTransport,
  STREAM_TRANSPORT_DEFAULTS,
  RAFT_STREAM_PATH,
  RAFT_STREAM_PROTOCOL,
  acceptRaftStreams,
  type StreamTransportOptions,
  type MessageSink,
  type RaftStreamServer,
  type RaftStreamServerOptions,
} from './stream-transport.js';
export { decodeMessage, decodeMessageBatch, encodeMessageBatch, CODEC_LIMITS } from './codec.js';
export {
  SessionStateMachine,
  encodeCommand,
  encodeRaw,
  encodeRegister,
  unwrapSessionResult,
  type SessionOptions,
  type SessionResult,
} from './session.js';
export { NotLeaderError, RaftError, type RaftErrorCode } from './errors.js';
export { RAFT_DEFAULTS, type RaftConfig } from './config.js';
export type { Message, NodeId, Role, SnapshotData } from './types.js';
