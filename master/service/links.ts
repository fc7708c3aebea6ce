// The leader's end of each chunkserver's long-lived connection (GET /v1/cs/link). A chunkserver
// holds one open to the leader; when its process dies the kernel closes the socket and the
// leader hears of it at once (MooseFS notices a dead chunkserver so), instead of waiting out the
// heartbeat timeout. The news goes into the leader core as an event with the time
// (connectionOpened / connectionDropped): the core decides, this file only watches sockets.
//
// Why an HTTP response held open, not an upgraded stream as Raft's transport: nothing is sent
// but liveness, so the route table, the chunkserver auth on /v1/cs, the leader-only gate and
// NOT_LEADER's redirect all apply as they are, with no framing or handshake of its own.
import type { Request, Response } from 'express';
import { DfsError } from '../../common/errors.js';
import { LINK_KEEPALIVE_MS, MAX_CHUNKSERVER_LINKS } from '../../common/limits.js';
import type { Leadership } from './leadership.js';

const ID = /^[A-Za-z0-9._-]{1,64}$/;
const BEAT_LINE = `${JSON.stringify({ beat: true })}\n`;

interface OpenLink { res: Response; stream: number; timer: NodeJS.Timeout }

export class ChunkserverLinks {
  private readonly open = new Map<string, OpenLink>();
  private streams = 0;

  /**
   * Built after the Leadership, so its listener runs after the core's becomeLeader: a master
   * that starts leading (its core's volatile state cleared) re-announces the links it holds. A
   * link accepted between the Raft node taking the lead and the core hearing of it (the route
   * checks the node) would otherwise be forgotten while its socket stays open, and the kill of
   * that server seen only by the heartbeat timeout: under load, 5 s after kill -9 the leader
   * still had no word of it.
   */
  constructor(private readonly lead: Leadership) {
    lead.replicator.onLeaderChange((isLeader) => {
      if (!isLeader) return;
      const now = this.lead.now();
      for (const [id, link] of this.open) this.lead.core.connectionOpened(id, link.stream, now);
      this.lead.flushLog();
    });
  }

  /** Holds the response open until the chunkserver goes away or this master stops leading. */
  accept(req: Request, res: Response): void {
    this.lead.requireLeader();
    const id = req.query.id;
    if (typeof id !== 'string' || !ID.test(id)) throw new DfsError('INVALID_ARGUMENT', 'query parameter id must be a chunkserver id');
    // The route runs after the asynchronous credential check: a chunkserver killed while it
    // redialled may have closed this socket already, and the response's 'close' has then been
    // emitted before anyone listened. A newer link of the server's is left alone; with none, the
    // server is reported connected and dropped at once, so it is suspect now rather than
    // connected until the heartbeat dead timeout.
    if (req.socket.destroyed) {
      if (this.open.has(id)) return;
      const stream = ++this.streams;
      const now = this.lead.now();
      this.lead.core.connectionOpened(id, stream, now);
      this.lead.core.connectionDropped(id, stream, now);
      this.lead.flushLog();
      return;
    }
    this.open.get(id)?.res.end(); // a newer connection replaces the older one
    if (this.open.size >= MAX_CHUNKSERVER_LINKS) throw new DfsError('UNAVAILABLE', `this master holds ${MAX_CHUNKSERVER_LINKS} chunkserver connections already; retry shortly`);
    const stream = ++this.streams;
    res.writeHead(200, { 'content-type': 'application/x-ndjson', 'cache-control': 'no-store' });
    res.write(`${JSON.stringify({ leader: this.lead.config.addr, keepaliveMs: LINK_KEEPALIVE_MS })}\n`);
    // The keepalive lets the chunkserver tell a leader that hangs from one that is quiet, and
    // ends the link once this master is not the leader, so the server finds the new one.
    const timer = setInterval(() => (this.lead.replicator.isLeader() ? res.write('\n') : res.end()), LINK_KEEPALIVE_MS);
    const link: OpenLink = { res, stream, timer };
    this.open.set(id, link);
    this.lead.core.connectionOpened(id, stream, this.lead.now());
    this.lead.flushLog();
    res.once('close', () => {
      clearInterval(timer);
      if (this.open.get(id) === link) this.open.delete(id);
      if (this.lead.replicator.isLeader()) {
        this.lead.core.connectionDropped(id, stream, this.lead.now());
        this.tickAfterGrace();
      }
      this.lead.flushLog();
    });
  }

  /**
   * Asks each of `servers` that holds a link to send its heartbeat now: its reply carries the
   * copies a scan just ordered for it. One line, `{"beat":true}`; a server without a link (or an
   * older one, which reads only that the link lives) collects them at its next beat as before.
   */
  askToBeat(servers: readonly string[]): void {
    for (const id of servers) this.open.get(id)?.res.write(BEAT_LINE);
  }

  /**
   * A tick just past the connection grace, so a server not back by then is dead at once rather
   * than at the next periodic tick (up to 100 ms later): its copies start that much sooner.
   */
  private tickAfterGrace(): void {
    const graceMs = this.lead.config.connectionGraceMs;
    if (graceMs === undefined) return;
    setTimeout(() => {
      if (this.lead.replicator.isLeader()) this.lead.tick();
    }, graceMs + 1).unref();
  }

  /** Ends every link (the master is closing). */
  closeAll(): void {
    for (const link of this.open.values()) link.res.end();
  }
}
