// The chunkserver protocol. Its calls to the master (register, heartbeat, corrupt, the leader
// link), served by master/routes.ts (mountChunkserverRoutes) and master/service/links.ts, called
// by chunkserver/heartbeat.ts, chunkserver/link.ts and chunkserver/main.ts; and the chunk routes
// every chunkserver serves (chunkserver/routes/), called by clients (common/chunk-put.ts,
// cli/client-download.ts), by a pipeline's hops and by re-replication (chunkserver/copier.ts).
import { z } from 'zod';
import { CorruptReport, HeartbeatRequest, RegisterRequest, StoppingNotice } from '../protocol.js';
import { HeartbeatReply, WriteChunkReply } from '../replies.js';
import { get, post, put, query } from './route.js';

/** Every route a chunkserver calls on the master starts so: master/peer-guard.ts demands its signature there. */
export const CHUNKSERVER_PREFIX = '/v1/cs';
/** The largest chunk any server takes (the top of --chunk-size); each chunkserver refuses more than its own chunk size. */
export const MAX_CHUNK_SIZE_BYTES = 1024 ** 3;

const master = 'master' as const;
const chunkserver = 'chunkserver' as const;
const int = z.number().int().min(0);

export const CS = {
  /** A full report, in pages (common/limits.ts); the reply is a heartbeat's. */
  register: post({ server: master, path: `${CHUNKSERVER_PREFIX}/register`, request: RegisterRequest, reply: HeartbeatReply, caller: 'chunkserver' }),
  heartbeat: post({ server: master, path: `${CHUNKSERVER_PREFIX}/heartbeat`, request: HeartbeatRequest, reply: HeartbeatReply, caller: 'chunkserver' }),
  corrupt: post({ server: master, path: `${CHUNKSERVER_PREFIX}/corrupt`, request: CorruptReport, reply: z.object({ ok: z.literal(true) }), caller: 'chunkserver' }),
  /**
   * The server stops cleanly to restart (its SIGTERM): the leader holds it restarting for its
   * restart grace, no copies for its absence (`held` false: unknown here, decommissioning, or
   * an older leader's rules).
   */
  stopping: post({
    server: master, path: `${CHUNKSERVER_PREFIX}/stopping`, request: StoppingNotice, caller: 'chunkserver',
    reply: z.object({ held: z.boolean(), restartGraceMs: z.number().int().min(0).optional() }),
  }),
  /** The long-lived connection to the leader (liveness): newline-delimited JSON, kept open. */
  link: get({ server: master, path: `${CHUNKSERVER_PREFIX}/link`, request: query({ id: z.string() }), reply: 'stream', caller: 'chunkserver' }),
};

export const CHUNKS = {
  /**
   * A pipelined write of one chunk's bytes (`next`: the later hops; `base`, `offset`, `from`: an
   * append into a stored chunk). The body is the bytes, streamed, never buffered whole.
   */
  write: put({
    server: chunkserver, path: '/v1/chunks/:handle', bodyLimit: MAX_CHUNK_SIZE_BYTES, caller: 'chunk-token', reply: WriteChunkReply,
    request: query({ version: int, next: z.string().optional(), base: int.optional(), offset: int.optional(), from: int.optional() }),
  }),
  /** A range read; every block is verified before a byte of it is sent. */
  read: get({
    server: chunkserver, path: '/v1/chunks/:handle', reply: 'bytes', caller: 'chunk-token',
    request: query({ version: int.optional(), offset: int.optional(), length: int.optional() }),
  }),
};
