// Raft messages over one long-lived TCP stream per peer and direction. The sender opens
// `GET /v1/raft/stream` with `Upgrade: dfs-raft/2` on the peer's HTTP port; the peer checks the
// request once (path, protocol, cluster secret), answers 101, and from then on the socket carries
// frames: a 4-byte big-endian length, then a batch of messages in the binary encoding (codec.ts:
// a JSON header, then entry and snapshot bytes raw). Compared
// with a POST per batch this saves header parsing, routing and authentication per batch, sets
// TCP_NODELAY, and keeps messages to a peer in order. Delivery is still best effort: a failed
// or stalled stream drops its queue, reports the peer unreachable and is dialled again with
// backoff; Raft retransmits what was lost (etcd's rafthttp streams work the same way).
//
// Versions: a receiver takes `dfs-raft/1` too (the same frames, each a JSON batch with the bytes
// in base64), which masters before 2026-12-08 speak and accept only. A sender whose `dfs-raft/2`
// dial is refused with 400 (such a master, in a rolling upgrade) dials again at once with
// `dfs-raft/1` and speaks it on that stream; every new stream tries `dfs-raft/2` first.
import { request as httpRequest, type ClientRequest, type IncomingMessage, type Server } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { ConnectionOptions } from 'node:tls';
import type { Duplex } from 'node:stream';
import { decodeBinaryBatch, decodeMessageBatch, encodeBinaryBatch, messageJson } from './codec.js';
import { RaftError } from './errors.js';
import type { Transport } from './node.js';
import type { Entry, Message, NodeId } from './types.js';

/** CLUSTER.raftStream in the wire contract (common/contract/cluster.ts): master/raft imports nothing of the project, so test/common/contract.test.ts holds the two equal. */
export const RAFT_STREAM_PATH = '/v1/raft/stream';
/** The Upgrade protocol token a sender asks for first: frames of the binary encoding. */
export const RAFT_STREAM_PROTOCOL = 'dfs-raft/2';
/** The token of the JSON encoding, all a master before 2026-12-08 speaks; a sender falls back to it on 400. */
export const RAFT_STREAM_PROTOCOL_JSON = 'dfs-raft/1';
/** Every token a receiver accepts; another is refused with 400. */
const ACCEPTED_PROTOCOLS: readonly string[] = [RAFT_STREAM_PROTOCOL, RAFT_STREAM_PROTOCOL_JSON];

export interface StreamTransportOptions {
  /** Peer id → "host:port" of its master HTTP listener (this node may be included; it is skipped). */
  readonly peers: Readonly<Record<NodeId, string>>;
  /** How long a dial may take, and how long a stream may stay unable to take more bytes. */
  readonly timeoutMs?: number;
  /** Messages queued per peer while its stream connects or is full; beyond it the oldest are dropped. */
  readonly maxQueuedMessagesPerPeer?: number;
  /** Target size of one frame; a single larger message is still sent alone. */
  readonly maxFrameBytes?: number;
  /** First and largest wait before dialling a peer again after a failure (doubling in between). */
  readonly minBackoffMs?: number;
  readonly maxBackoffMs?: number;
  /**
   * Extra headers on the upgrade request: the signature the receiving side checks. A function is
   * called for every dial, so each stream opening carries a fresh nonce and timestamp.
   */
  readonly headers?: Readonly<Record<string, string>> | ((path: string) => Record<string, string>);
  /** Dial with TLS (certificate, key, CA: mutual TLS between masters); absent: plain TCP. */
  readonly tls?: ConnectionOptions;
  /** Called when a stream to a peer fails (wire it to RaftNode.reportUnreachable). */
  readonly onUnreachable?: (peer: NodeId) => void;
  /** Metrics hooks: messages written to a peer's stream, and dropped (queue full, stream failed). */
  readonly onSent?: (peer: NodeId, count: number) => void;
  readonly onDropped?: (peer: NodeId, count: number) => void;
}

export const STREAM_TRANSPORT_DEFAULTS = {
  timeoutMs: 5_000,
  maxQueuedMessagesPerPeer: 4_096,
  maxFrameBytes: 4 * 1024 * 1024,
  minBackoffMs: 50,
  maxBackoffMs: 1_000,
} as const;

interface PeerLink {
  readonly peer: NodeId;
  readonly host: string;
  readonly port: number;
  /** Messages not yet written (encoded when written, in the stream's protocol). */
  queue: Message[];
  socket: Duplex | null;
  /** The protocol of the open stream or the dial under way. */
  protocol: string;
  dialing: ClientRequest | null;
  /** Set while the socket's buffer is full (write returned false) until 'drain'. */
  stalled: NodeJS.Timeout | null;
  redial: NodeJS.Timeout | null;
  backoffMs: number;
}

function splitAddress(address: string): { host: string; port: number } {
  const at = address.lastIndexOf(':');
  return { host: address.slice(0, at).replace(/^\[|\]$/g, ''), port: Number(address.slice(at + 1)) };
}

function newLink(peer: NodeId, address: string): PeerLink {
  return { peer, ...splitAddress(address), queue: [], socket: null, protocol: RAFT_STREAM_PROTOCOL, dialing: null, stalled: null, redial: null, backoffMs: 0 };
}

/** One length-prefixed frame holding `messages` in the binary encoding. */
function binaryFrame(messages: readonly Message[]): Buffer {
  const out = encodeBinaryBatch(messages, 4);
  out.writeUInt32BE(out.byteLength - 4, 0);
  return out;
}

/** One length-prefixed frame holding `messages` as a JSON batch (`dfs-raft/1`); `cache` encodes an entry once for every follower. */
function jsonFrame(messages: readonly Message[], cache: Map<Entry, string>): Buffer {
  const body = `{"messages":[${messages.map((m) => messageJson(m, cache)).join(',')}]}`;
  const length = Buffer.byteLength(body);
  const out = Buffer.allocUnsafe(4 + length);
  out.writeUInt32BE(length, 0);
  out.write(body, 4, 'utf8');
  return out;
}

/** About what a message adds to a frame: its bytes, and a little for its fields (base64 adds a third, within the receiver's twice the frame size). */
function messageBytes(message: Message): number {
  switch (message.type) {
    case 'append': {
      let bytes = 160;
      for (const e of message.entries) bytes += 48 + e.data.byteLength;
      return bytes;
    }
    case 'snapshot':
      return 320 + message.data.byteLength;
    default:
      return 160;
  }
}

export class StreamTransport implements Transport {
  private readonly links = new Map<NodeId, PeerLink>();
  private readonly opts: Required<Omit<StreamTransportOptions, 'headers' | 'tls' | 'onUnreachable' | 'onSent' | 'onDropped'>> & StreamTransportOptions;
  private closed = false;
  /** Messages dropped: a full queue, or a stream that failed with them queued (for metrics). */
  droppedMessages = 0;

  constructor(options: StreamTransportOptions) {
    this.opts = { ...STREAM_TRANSPORT_DEFAULTS, ...options };
    for (const [peer, address] of Object.entries(options.peers)) {
      this.links.set(peer, newLink(peer, address));
    }
  }

  /** Starts sending to a member added to the group at run time (a no-op for one already known). */
  addPeer(peer: NodeId, address: string): void {
    if (this.closed || this.links.has(peer)) return;
    this.links.set(peer, newLink(peer, address));
  }

  send(messages: readonly Message[]): void {
    if (this.closed) return;
    const touched = new Set<PeerLink>();
    for (const message of messages) {
      const link = this.links.get(message.to);
      if (link === undefined) continue;
      link.queue.push(message);
      if (link.queue.length > this.opts.maxQueuedMessagesPerPeer) {
        link.queue.shift();
        this.droppedMessages++;
        this.opts.onDropped?.(link.peer, 1);
      }
      touched.add(link);
    }
    // The entries of one Ready, encoded once for every stream that speaks dfs-raft/1 (none but
    // during a rolling upgrade); kept for this call only, so no encoding outlives it.
    const jsonEntries = new Map<Entry, string>();
    for (const link of touched) this.flush(link, jsonEntries);
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const link of this.links.values()) {
      link.dialing?.destroy();
      link.socket?.destroy();
      if (link.stalled) clearTimeout(link.stalled);
      if (link.redial) clearTimeout(link.redial);
      link.queue = [];
    }
  }

  /** Writes queued messages as frames while the socket takes them; dials when there is none. */
  private flush(link: PeerLink, jsonEntries = new Map<Entry, string>()): void {
    if (this.closed) return;
    if (link.socket === null) {
      if (link.dialing === null && link.redial === null) this.dial(link);
      return;
    }
    while (link.stalled === null && link.queue.length > 0) {
      const batch: Message[] = [];
      let bytes = 0;
      while (link.queue.length > 0) {
        const size = messageBytes(link.queue[0]!); // an append's sums its entries: once per message
        if (batch.length > 0 && bytes + size > this.opts.maxFrameBytes) break;
        batch.push(link.queue.shift()!);
        bytes += size;
      }
      this.opts.onSent?.(link.peer, batch.length);
      const frame = link.protocol === RAFT_STREAM_PROTOCOL ? binaryFrame(batch) : jsonFrame(batch, jsonEntries);
      if (!link.socket.write(frame)) {
        // The peer (or the network) is not keeping up: wait for 'drain', but not for ever.
        const socket = link.socket;
        link.stalled = setTimeout(() => socket.destroy(new Error('raft stream stalled')), this.opts.timeoutMs);
      }
    }
  }

  private dial(link: PeerLink, protocol = RAFT_STREAM_PROTOCOL): void {
    link.protocol = protocol;
    const headers = typeof this.opts.headers === 'function' ? this.opts.headers(RAFT_STREAM_PATH) : this.opts.headers;
    const target = {
      host: link.host,
      port: link.port,
      method: 'GET',
      path: RAFT_STREAM_PATH,
      agent: false as const,
      headers: { ...headers, connection: 'Upgrade', upgrade: protocol },
    };
    const req = this.opts.tls ? httpsRequest({ ...target, ...this.opts.tls }) : httpRequest(target);
    link.dialing = req;
    const timer = setTimeout(() => req.destroy(new Error('raft stream dial timed out')), this.opts.timeoutMs);
    const failed = (): void => {
      clearTimeout(timer);
      if (link.dialing === req) this.fail(link);
    };
    req.on('upgrade', (res: IncomingMessage, socket: Duplex, _head: Buffer) => {
      clearTimeout(timer);
      link.dialing = null;
      if (this.closed || res.headers.upgrade !== protocol) {
        // A peer that switched to a protocol other than the one asked for is not a dfs master.
        socket.destroy();
        if (!this.closed) this.fail(link);
        return;
      }
      (socket as Duplex & { setNoDelay?(v: boolean): void }).setNoDelay?.(true);
      link.socket = socket;
      link.backoffMs = 0;
      socket.on('drain', () => {
        if (link.stalled) clearTimeout(link.stalled);
        link.stalled = null;
        this.flush(link);
      });
      // The receiving side never writes; anything it sends is ignored.
      socket.resume();
      socket.on('error', () => undefined);
      socket.on('close', () => {
        if (link.socket === socket) this.fail(link);
      });
      this.flush(link);
    });
    // Anything but 101: the peer is starting, refuses our secret, or is not a master; or, 400 to
    // `dfs-raft/2`, a master from before it, which is dialled again with `dfs-raft/1` at once.
    req.on('response', (res: IncomingMessage) => {
      res.resume();
      if (res.statusCode === 400 && protocol === RAFT_STREAM_PROTOCOL && link.dialing === req && !this.closed) {
        clearTimeout(timer);
        link.dialing = null;
        this.dial(link, RAFT_STREAM_PROTOCOL_JSON);
        return;
      }
      failed();
    });
    req.on('error', failed);
    req.end();
  }

  /** Drops the stream and its queue, tells Raft, and dials again after a growing backoff. */
  private fail(link: PeerLink): void {
    link.dialing?.destroy();
    link.dialing = null;
    link.socket?.destroy();
    link.socket = null;
    if (link.stalled) clearTimeout(link.stalled);
    link.stalled = null;
    this.droppedMessages += link.queue.length;
    if (link.queue.length > 0) this.opts.onDropped?.(link.peer, link.queue.length);
    link.queue = [];
    if (this.closed) return;
    this.opts.onUnreachable?.(link.peer);
    link.backoffMs = Math.min(this.opts.maxBackoffMs, Math.max(this.opts.minBackoffMs, link.backoffMs * 2));
    if (link.redial === null) {
      link.redial = setTimeout(() => {
        link.redial = null;
        // Dial again only when Raft has something to say; its heartbeats make that soon.
        if (link.queue.length > 0) this.flush(link);
      }, link.backoffMs);
    }
  }
}

/** Something that accepts inbound messages: a RaftNode. */
export interface MessageSink {
  receive(message: Message): void;
}

export interface RaftStreamServerOptions {
  /**
   * Checks the upgrade request once. A string, or `{ refused, code }`: why it may not open a
   * stream (401, with that error code or UNAUTHORIZED). `{ member }`:
   * the authenticated sender; the stream is bound to it, and a message whose `from` is another
   * node is refused (`onForged`) and the stream closed. undefined: accepted unbound (tests only).
   */
  readonly authorize: (req: IncomingMessage) => string | { refused: string; code: string } | { member: NodeId } | undefined;
  /** A message on a stream bound to `member` claimed to come from `from`: refused, not delivered. */
  readonly onForged?: (member: NodeId, from: NodeId) => void;
  /** The node to hand messages to; undefined while it is still starting (the dial gets 503). */
  readonly sink: () => MessageSink | undefined;
  /** A frame longer than this closes the stream (must exceed the senders' maxFrameBytes). */
  readonly maxFrameBytes?: number;
  /** A stream closed for a malformed or oversized frame. */
  readonly onBadFrame?: (error: Error) => void;
}

export interface RaftStreamServer {
  /** Streams accepted and still open. */
  readonly open: number;
  /** Closes every accepted stream (call when the HTTP server closes: upgraded sockets are not its). */
  close(): void;
}

function refuse(socket: Duplex, status: number, reason: string, code: string, message: string): void {
  const body = JSON.stringify({ error: { code, message } });
  socket.end(
    `HTTP/1.1 ${status} ${reason}\r\nconnection: close\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
}

/**
 * Accepts Raft streams on an HTTP server's `upgrade` event. Every frame is validated by the
 * codec before its messages reach the node; a malformed or oversized one closes the stream (the
 * sender dials again), so a bad peer cannot feed the node anything.
 */
export function acceptRaftStreams(server: Server, options: RaftStreamServerOptions): RaftStreamServer {
  const maxFrameBytes = options.maxFrameBytes ?? 2 * STREAM_TRANSPORT_DEFAULTS.maxFrameBytes;
  const sockets = new Set<Duplex>();
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', () => undefined);
    const path = (req.url ?? '').split('?')[0];
    if (path !== RAFT_STREAM_PATH) return refuse(socket, 404, 'Not Found', 'NOT_FOUND', 'no such route');
    const protocol = req.headers.upgrade ?? '';
    if (!ACCEPTED_PROTOCOLS.includes(protocol)) {
      return refuse(socket, 400, 'Bad Request', 'INVALID_ARGUMENT', `raft streams speak ${ACCEPTED_PROTOCOLS.join(' or ')}`);
    }
    const decode = protocol === RAFT_STREAM_PROTOCOL ? decodeBinaryBatch : decodeMessageBatch;
    const verdict = options.authorize(req);
    if (typeof verdict === 'string') return refuse(socket, 401, 'Unauthorized', 'UNAUTHORIZED', verdict);
    if (verdict !== undefined && 'refused' in verdict) return refuse(socket, 401, 'Unauthorized', verdict.code, verdict.refused);
    const member = verdict?.member;
    const sink = options.sink();
    if (sink === undefined) return refuse(socket, 503, 'Service Unavailable', 'UNAVAILABLE', 'raft is starting');
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nconnection: Upgrade\r\nupgrade: ${protocol}\r\n\r\n`);
    (socket as Duplex & { setNoDelay?(v: boolean): void }).setNoDelay?.(true);
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    const reader = new FrameReader(maxFrameBytes);
    const onData = (chunk: Buffer): void => {
      try {
        for (const body of reader.push(chunk)) {
          for (const message of decode(body)) {
            if (member !== undefined && message.from !== member) {
              // Only a bug or an impostor does this: refuse it, and the stream with it.
              options.onForged?.(member, message.from);
              socket.destroy();
              return;
            }
            sink.receive(message);
          }
        }
      } catch (error) {
        options.onBadFrame?.(error as Error);
        socket.destroy();
      }
    };
    if (head.byteLength > 0) onData(head);
    socket.on('data', onData);
  });
  return {
    get open() {
      return sockets.size;
    },
    close() {
      for (const socket of sockets) socket.destroy();
      sockets.clear();
    },
  };
}

/** Splits a byte stream into length-prefixed frames; throws on a frame over the limit. */
export class FrameReader {
  private chunks: Buffer[] = [];
  private buffered = 0;

  constructor(private readonly maxFrameBytes: number) {}

  /** The frames completed by `chunk`, each without its length prefix. */
  push(chunk: Buffer): Buffer[] {
    this.chunks.push(chunk);
    this.buffered += chunk.byteLength;
    const frames: Buffer[] = [];
    while (this.buffered >= 4) {
      const first = this.chunks[0]!.byteLength >= 4 ? this.chunks[0]! : this.gather();
      const length = first.readUInt32BE(0);
      if (length > this.maxFrameBytes) throw new RaftError('RAFT_BAD_MESSAGE', `raft frame of ${length} bytes is over ${this.maxFrameBytes}`);
      if (this.buffered < 4 + length) break;
      const all = this.gather();
      frames.push(all.subarray(4, 4 + length));
      const rest = all.subarray(4 + length);
      this.chunks = rest.byteLength > 0 ? [rest] : [];
      this.buffered = rest.byteLength;
    }
    return frames;
  }

  /** Joins the buffered chunks into one (only when a frame is complete or its header is split). */
  private gather(): Buffer {
    if (this.chunks.length > 1) this.chunks = [Buffer.concat(this.chunks)];
    return this.chunks[0]!;
  }
}
