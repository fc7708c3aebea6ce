// Who may call a master's peer interfaces, checked before anything else looks at the call:
// `/v1/cs/*` only a chunkserver that signs the request (common/peer-auth.ts), and the Raft
// stream only a master of this group that signs its opening. A Raft stream is then bound to the
// member that opened it (stream-transport.ts refuses any message claiming another sender), and a
// message that would break a Raft invariant is refused and logged here rather than stopping the
// node: once a replayed heartbeat `{"from":"m1","to":"m3","term":4}` made a leader m3 exit on
// "two leaders in term 4" (issue 15).
import type { IncomingMessage } from 'node:http';
import type { Request, RequestHandler, Response, NextFunction } from 'express';
import { CHUNKSERVER_PREFIX, CLUSTER } from '../common/contract/index.js';
import { DfsError } from '../common/errors.js';
import { bodySha256 } from '../common/http-limits.js';
import type { Logger } from '../common/log.js';
import { PEER_AUTH_HEADER, signPeerRequest, type PeerVerifier } from '../common/peer-auth.js';
import { peerCertProblem, type LoadedTls } from '../common/tls.js';
import { CLUSTER_ID_HEADER } from './membership.js';
import type { MessageSink, RaftStatus } from './raft/index.js';
import type { Message } from './raft/types.js';

/** The mount point of the routes only chunkservers call. */
export const CHUNKSERVER_ROUTES = CHUNKSERVER_PREFIX;

function header(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

/** Refuses a call to `/v1/cs/*` that a chunkserver of this cluster did not sign, before its body is parsed. */
export function chunkserverGuard(verifier: PeerVerifier, tls: LoadedTls | undefined): RequestHandler {
  return (req: Request, res: Response, next: NextFunction) => {
    if (req.path !== CHUNKSERVER_ROUTES && !req.path.startsWith(`${CHUNKSERVER_ROUTES}/`)) return next();
    const noCert = peerCertProblem(req, tls);
    if (noCert !== undefined) return next(new DfsError('PEER_CERT_REQUIRED', noCert));
    try {
      verifier.verify('chunkserver', req.headers[PEER_AUTH_HEADER], {
        method: req.method, path: req.originalUrl, bodySha256: bodySha256(req), clusterId: header(req.headers[CLUSTER_ID_HEADER]),
      });
    } catch (err) {
      return next(err);
    }
    next();
  };
}

/** The route a master (a member, one joining, or one removed while down) asks for the group's configuration. */
export const GROUP_ROUTE = CLUSTER.raftGroup.path;

/**
 * Refuses a call to GROUP_ROUTE not signed by a master with this cluster's secret. Membership is
 * not required: a master joining is not a member yet, and one removed while down is one no more.
 */
export function groupRouteGuard(verifier: PeerVerifier, tls: LoadedTls | undefined): RequestHandler {
  return (req: Request, _res: Response, next: NextFunction) => {
    if (req.path !== GROUP_ROUTE) return next();
    const noCert = peerCertProblem(req, tls);
    if (noCert !== undefined) return next(new DfsError('PEER_CERT_REQUIRED', noCert));
    try {
      verifier.verify('raft', req.headers[PEER_AUTH_HEADER], { method: req.method, path: req.originalUrl, clusterId: header(req.headers[CLUSTER_ID_HEADER]) });
    } catch (err) {
      return next(err);
    }
    next();
  };
}

/** What a master signs its GROUP_ROUTE calls with (callJson's `sign`); clusterId '' while it has none yet (joining). */
export function groupCallSigner(secret: Buffer, id: string, clusterId: string) {
  return (method: string, path: string): Record<string, string> => ({
    [PEER_AUTH_HEADER]: signPeerRequest(secret, 'raft', id, { method, path, clusterId }),
    ...(clusterId ? { [CLUSTER_ID_HEADER]: clusterId } : {}),
  });
}

export interface RaftGuardOptions {
  verifier: PeerVerifier;
  tls: LoadedTls | undefined;
  selfId: string;
  /** The group (id → address) and cluster id, once known; undefined while the master starts. */
  group: () => { peers: Record<string, string>; clusterId: string } | undefined;
  log: Logger;
}

/** `authorize` for acceptRaftStreams: a signed opening by another member of this group and cluster. */
export function raftStreamAuthorizer(o: RaftGuardOptions) {
  return (req: IncomingMessage): { refused: string; code: string } | { member: string } => {
    const noCert = peerCertProblem(req, o.tls);
    if (noCert !== undefined) return { refused: noCert, code: 'PEER_CERT_REQUIRED' };
    const theirs = header(req.headers[CLUSTER_ID_HEADER]);
    let member: string;
    try {
      member = o.verifier.verify('raft', req.headers[PEER_AUTH_HEADER], { method: req.method ?? 'GET', path: req.url ?? '', clusterId: theirs });
    } catch (err) {
      const e = err as DfsError;
      o.log.warn({ code: e.code, from: req.socket.remoteAddress }, 'refused a raft stream');
      return { refused: e.message, code: e.code };
    }
    const group = o.group();
    if (group === undefined) return { refused: 'master is starting', code: 'UNAVAILABLE' };
    // A master of another cluster that shares the secret must not vote or append here.
    if (theirs !== group.clusterId) {
      o.log.warn({ theirs, ours: group.clusterId }, 'refused a raft stream from a master of another cluster');
      return { refused: `this master belongs to cluster ${group.clusterId}, not ${String(theirs)}`, code: 'WRONG_CLUSTER' };
    }
    if (member === o.selfId || group.peers[member] === undefined) {
      o.log.warn({ member }, 'refused a raft stream from a master outside the group');
      return { refused: `${member} is not another member of this group`, code: 'PEER_AUTH_INVALID' };
    }
    return { member };
  };
}

/** What a master signs its Raft stream openings with (StreamTransport's `headers`). */
export function raftStreamSigner(secret: Buffer, id: string, clusterId: string) {
  return (path: string): Record<string, string> => ({
    [PEER_AUTH_HEADER]: signPeerRequest(secret, 'raft', id, { method: 'GET', path, clusterId }),
    [CLUSTER_ID_HEADER]: clusterId,
  });
}

const LEADER_MESSAGES = new Set<Message['type']>(['append', 'heartbeat', 'snapshot']);

/**
 * Wraps the node's inbound side: a leader's message for the term this node leads is impossible
 * in a correct group (one leader per term), so it is refused and logged instead of reaching the
 * core, whose invariant check would stop the node.
 */
export function guardedSink(node: MessageSink & { status(): Pick<RaftStatus, 'role' | 'term' | 'id'> }, log: Logger): MessageSink {
  let refused = 0;
  return {
    receive(m: Message): void {
      const s = node.status();
      if (s.role === 'leader' && m.term === s.term && LEADER_MESSAGES.has(m.type)) {
        // Logged the first time and then every 1000th: a flood must not flood the log.
        if (refused++ % 1000 === 0) log.error({ from: m.from, term: m.term, type: m.type, refused }, 'refused a leader\'s message for the term this master leads (a replay or a bug)');
        return;
      }
      node.receive(m);
    },
  };
}
