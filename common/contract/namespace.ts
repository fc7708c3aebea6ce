// The master's namespace routes: sessions, file and directory calls, the trash and quotas.
// Served by master/routes.ts (mountNamespaceRoutes) and master/trash-quota-routes.ts; called by
// cli/client-meta.ts and cli/client-upload.ts. Who may call each: master/credentials/policy.ts
// narrows 'token' by the token's scope.
import { z } from 'zod';
import {
  AbandonRequest, AllocateRequest, AppendRequest, CompleteRequest, ConcatRequest, CreateRequest, DeleteRequest, MkdirRequest, RenameRequest, RenewRequest,
  SetReplicationRequest, SnapshotRequest, StatManyRequest,
} from '../protocol.js';
import { AllocateReply, AppendReply, CreateAnyReply, DuReply, EntryInfo, FsckReply, ListReply, RenewReply, StatManyReply, StatReply } from '../replies.js';
import { QuotaReply, QuotaSetRequest, TrashReply, TrashRequest, TrashRestoreReply, TrashRestoreRequest } from '../trash-quota-protocol.js';
import { BatchReply, BatchRequest } from '../batch.js';
import { get, post, query } from './route.js';

const master = 'master' as const;
/** A query flag: sent as 1 when true, left out when false (the server takes 1, true, 0 or false). */
const flag = z.boolean().optional();
const files = z.object({ files: z.number().int().min(0) });

export const FS = {
  /** Opens a session for exactly-once mutations (its id goes in x-dfs-session with a sequence number). */
  session: post({
    server: master, path: '/v1/session', caller: 'token',
    /** `inlineMaxBytes`: the largest file the leader keeps inline (0: none); a writer sends such a file whole in its create (common/inline.ts). */
    reply: z.object({ sessionId: z.string(), inlineMaxBytes: z.number().int().min(0).optional() }),
  }),
  mkdir: post({ server: master, path: '/v1/fs/mkdir', request: MkdirRequest, reply: EntryInfo, caller: 'token' }),
  create: post({ server: master, path: '/v1/fs/create', request: CreateRequest, reply: CreateAnyReply, caller: 'token' }),
  allocate: post({ server: master, path: '/v1/fs/allocate', request: AllocateRequest, reply: AllocateReply, caller: 'token' }),
  complete: post({ server: master, path: '/v1/fs/complete', request: CompleteRequest, reply: EntryInfo, caller: 'token' }),
  append: post({ server: master, path: '/v1/fs/append', request: AppendRequest, reply: AppendReply, caller: 'token' }),
  snapshot: post({ server: master, path: '/v1/fs/snapshot', request: SnapshotRequest, reply: EntryInfo, caller: 'token' }),
  abandon: post({ server: master, path: '/v1/fs/abandon', request: AbandonRequest, reply: z.object({ ok: z.literal(true) }), caller: 'token' }),
  renew: post({ server: master, path: '/v1/fs/renew', request: RenewRequest, reply: RenewReply, caller: 'token' }),
  delete: post({ server: master, path: '/v1/fs/delete', request: DeleteRequest, reply: files, caller: 'token' }),
  rename: post({ server: master, path: '/v1/fs/rename', request: RenameRequest, reply: EntryInfo, caller: 'token' }),
  setrep: post({ server: master, path: '/v1/fs/setrep', request: SetReplicationRequest, reply: files, caller: 'token' }),
  concat: post({ server: master, path: '/v1/fs/concat', request: ConcatRequest, reply: EntryInfo, caller: 'token' }),
  stat: get({ server: master, path: '/v1/fs/stat', request: query({ path: z.string(), chunks: flag }), reply: StatReply, caller: 'token' }),
  /** Many stats in one call (POST: the paths are a body); see StatManyRequest. */
  statMany: post({ server: master, path: '/v1/fs/stat-many', request: StatManyRequest, reply: StatManyReply, caller: 'token' }),
  /**
   * Up to MAX_BATCH_CALLS namespace calls in one request (common/batch.ts): each checked as its
   * own route would be, the whole batch refused if any is; answers one result per call, in order.
   */
  batch: post({ server: master, path: '/v1/fs/batch', request: BatchRequest, reply: BatchReply, caller: 'token' }),
  list: get({ server: master, path: '/v1/fs/list', request: query({ path: z.string(), recursive: flag, after: z.string().optional(), limit: z.number().int().optional() }), reply: ListReply, caller: 'token' }),
  fsck: get({ server: master, path: '/v1/fs/fsck', request: query({ path: z.string(), files: flag }), reply: FsckReply, caller: 'token' }),
  du: get({ server: master, path: '/v1/fs/du', request: query({ path: z.string(), summary: flag, perFile: flag }), reply: DuReply, caller: 'token' }),
  /** Moves a path into its user's trash; inside /.trash it deletes at once (`trashPath` null). */
  trash: post({
    server: master, path: '/v1/fs/trash', request: TrashRequest, caller: 'token',
    reply: z.union([TrashReply, z.object({ path: z.string(), trashPath: z.null(), files: z.number().int().min(0) })]),
  }),
  trashRestore: post({ server: master, path: '/v1/fs/trash/restore', request: TrashRestoreRequest, reply: TrashRestoreReply, caller: 'token' }),
  quotaSet: post({ server: master, path: '/v1/fs/quota', request: QuotaSetRequest, reply: QuotaReply, caller: 'admin' }),
  quota: get({ server: master, path: '/v1/fs/quota', request: query({ path: z.string() }), reply: QuotaReply, caller: 'token' }),
};
