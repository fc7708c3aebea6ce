// Raft messages over HTTP: POST http://<peer>/v1/raft/message with a JSON batch. One undici
// Pool per peer with a bounded number of keep-alive connections, a bounded queue per peer (the
// oldest messages are dropped first: Raft retransmits), and a timeout on every request.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Pool } from 'undici';
import { decodeMessageBatch, encodeMessage } from './codec.js';
import { RaftError } from './errors.js';
import type { Transport } from './node.js';
import type { Message, NodeId } from './types.js';

export const RAFT_MESSAGE_PATH = '/v1/raft/message';
/** Not application/json, so a global express.json() leaves the body stream to our handler. */
export const RAFT_CONTENT_TYPE = 'application/vnd.dfs.raft+json';

export interface HttpTransportOptions {
  /** Peer id → "host:port" of its master HTTP listener (this node may be included; it is skipped). */
  readonly peers: Readonly<Record<NodeId, string>>;
  /** Per request; a peer that does not answer in time counts as unreachable. */
  readonly requestTimeoutMs?: number;
  /** Concurrent requests (and keep-alive connections) per peer: pipelining vs. sockets. */
  readonly connectionsPerPeer?: number;
  /** Messages queued per peer; beyond it the oldest are dropped. */
  readonly maxQueuedMessagesPerPeer?: number;
  /** Target body size of one request; a single larger message is still sent alone. */
  readonly maxRequestBytes?: number;
  /** Extra headers on every request (e.g. a cluster secret the receiving route checks). */
  readonly headers?: Readonly<Record<string, string>>;
  /** Called when a request to a peer fails (wire it to RaftNode.reportUnreachable). */
  readonly onUnreachable?: (peer: NodeId) => void;
}

export const HTTP_TRANSPORT_DEFAULTS = {
  requestTimeoutMs: 5_000,
  connectionsPerPeer: 2,
  maxQueuedMessagesPerPeer: 4_096,
  maxRequestBytes: 4 * 1024 * 1024,
} as const;

interface PeerLink {
  readonly pool: Pool;
  /** Encoded messages waiting to be sent. */
  queue: string[];
  inflight: number;
}

export class HttpTransport implements Transport {
  private readonly links = new Map<NodeId, PeerLink>();
  private readonly options: HttpTransportOptions;
  private closed = false;
  /** Messages dropped because a peer's queue was full (for metrics). */
  droppedMessages = 0;

  constructor(options: HttpTransportOptions) {
    this.options = options;
    const connections = options.connectionsPerPeer ?? HTTP_TRANSPORT_DEFAULTS.connectionsPerPeer;
    for (const [peer, address] of Object.entries(options.peers)) {
      this.links.set(peer, { pool: new Pool(`http://${address}`, { connections }), queue: [], inflight: 0 });
    }
  }

  send(messages: readonly Message[]): void {
    if (this.closed) return;
    const maxQueued = this.options.maxQueuedMessagesPerPeer ?? HTTP_TRANSPORT_DEFAULTS.maxQueuedMessagesPerPeer;
    const touched = new Set<NodeId>();
    for (const message of messages) {
      const link = this.links.get(message.to);
      if (link === undefined) continue;
      link.queue.push(JSON.stringify(encodeMessage(message)));
      if (link.queue.length > maxQueued) {
        link.queue.shift();
        this.droppedMessages++;
      }
      touched.add(message.to);
    }
    for (const peer of touched) this.pump(peer);
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all([...this.links.values()].map((link) => link.pool.close()));
  }

  private pump(peer: NodeId): void {
    const link = this.links.get(peer)!;
    const maxConcurrent = this.options.connectionsPerPeer ?? HTTP_TRANSPORT_DEFAULTS.connectionsPerPeer;
    const maxBytes = this.options.maxRequestBytes ?? HTTP_TRANSPORT_DEFAULTS.maxRequestBytes;
    while (!this.closed && link.inflight < maxConcurrent && link.queue.length > 0) {
      const parts: string[] = [];
      let bytes = 0;
      while (link.queue.length > 0 && (parts.length === 0 || bytes + link.queue[0]!.length <= maxBytes)) {
        const part = link.queue.shift()!;
        bytes += part.length + 1;
        parts.push(part);
      }
      link.inflight++;
      void this.post(peer, link, `{"messages":[${parts.join(',')}]}`).finally(() => {
        link.inflight--;
        this.pump(peer);
      });
    }
  }

  private async post(peer: NodeId, link: PeerLink, body: string): Promise<void> {
    const timeoutMs = this.options.requestTimeoutMs ?? HTTP_TRANSPORT_DEFAULTS.requestTimeoutMs;
    try {
      const response = await link.pool.request({
        path: RAFT_MESSAGE_PATH,
        method: 'POST',
        headers: { ...this.options.headers, 'content-type': RAFT_CONTENT_TYPE },
        body,
        signal: AbortSignal.timeout(timeoutMs),
      });
      await response.body.dump();
      if (response.statusCode >= 300) this.options.onUnreachable?.(peer);
    } catch {
      // Connection refused, reset or timed out: the messages are lost and Raft will retry.
      if (!this.closed) this.options.onUnreachable?.(peer);
    }
  }
}

export interface RaftHttpHandlerOptions {
  /** Bodies larger than this are refused with 413 (must exceed the senders' maxRequestBytes). */
  readonly maxBodyBytes?: number;
}

/** Something that accepts inbound messages: a RaftNode. */
export interface MessageSink {
  receive(message: Message): void;
}

/**
 * A Node/express handler for POST /v1/raft/message: reads a size-limited body, validates it and
 * hands each message to the node. 204 on success, 400 on a malformed body, 413 when too large.
 * Mount with `app.post(RAFT_MESSAGE_PATH, raftHttpHandler(node))`.
 */
export function raftHttpHandler(node: MessageSink, options: RaftHttpHandlerOptions = {}): (req: IncomingMessage, res: ServerResponse) => void {
  const maxBodyBytes = options.maxBodyBytes ?? 2 * HTTP_TRANSPORT_DEFAULTS.maxRequestBytes;
  return (req, res) => {
    void readBody(req, maxBodyBytes).then(
      (body) => {
        let messages: Message[];
        try {
          messages = decodeMessageBatch(body);
        } catch (error) {
          sendError(res, 400, 'INVALID_ARGUMENT', (error as Error).message);
          return;
        }
        for (const message of messages) node.receive(message);
        res.statusCode = 204;
        res.end();
      },
      (error: Error) => {
        if (error instanceof RaftError) sendError(res, 413, 'BODY_TOO_LARGE', error.message);
        else sendError(res, 400, 'INVALID_ARGUMENT', `could not read body: ${error.message}`);
      },
    );
  };
}

function readBody(req: IncomingMessage, maxBodyBytes: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > maxBodyBytes) {
      req.resume();
      reject(new RaftError('RAFT_BAD_MESSAGE', `body over ${maxBodyBytes} bytes`));
      return;
    }
    const chunks: Buffer[] = [];
    let received = 0;
    req.on('data', (chunk: Buffer) => {
      received += chunk.byteLength;
      if (received > maxBodyBytes) {
        req.removeAllListeners('data');
        req.resume();
        reject(new RaftError('RAFT_BAD_MESSAGE', `body over ${maxBodyBytes} bytes`));
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function sendError(res: ServerResponse, status: number, code: string, message: string): void {
  if (res.headersSent) return;
  res.statusCode = status;
  res.setHeader('content-type', 'application/json');
  res.end(JSON.stringify({ error: { code, message } }));
}
