// The chunkserver protocol: registration reports (paged), heartbeats and corrupt-replica reports,
// each answered with the server's work (copy orders with their tokens, deletes).
import { randomBytes } from 'node:crypto';
import { DfsError } from '../../common/errors.js';
import type { Logger } from '../../common/log.js';
import type { CorruptReport, HeartbeatReply, HeartbeatRequest, RegisterRequest, StoppingNotice } from '../../common/protocol.js';
import { toReply } from '../leader/core.js';
import type { Leadership } from './leadership.js';
import type { ChunkTokens } from './tokens.js';

export class ChunkserverCalls {
  /** The namespace's id, drawn and replicated by the first leader to need it (proposed once at a time). */
  private namespaceReady?: Promise<string>;

  constructor(private readonly lead: Leadership, private readonly tokens: ChunkTokens) {}

  /** A register or heartbeat reply with the server's work; each copy order carries a copy-source token good on its source only. */
  private workReply(serverId: string, namespaceId: string): HeartbeatReply {
    const reply = toReply(this.lead.core.takeWork(serverId, this.lead.now()));
    const source = (addr: string) => [{ id: this.lead.registry.resolve(addr) ?? '', addr }];
    const copies = reply.copies.map((o) => ({ ...o, token: this.tokens.sign(o.handle, o.version, 'copy-source', source(o.source)) }));
    return { ...reply, copies, namespaceId, chunkKeys: this.tokens.sealFor(serverId) };
  }

  // ---- chunkservers ----

  /**
   * A registration report, or one page of it: only the final page's reply carries work (and only
   * after it is the report applied); an earlier page's reply is empty, and `reregister` asks for
   * the report again from its first page.
   */
  async register(req: RegisterRequest, log: Logger = this.lead.log): Promise<HeartbeatReply> {
    this.lead.requireLeader();
    const namespaceId = await this.namespaceOf(req, log);
    this.tokens.noteHeld(req.id, req.chunkKeys);
    const outcome = this.lead.core.registerPage(req, this.lead.now());
    this.lead.flushLog();
    if (outcome.kind === 'busy') throw new DfsError('UNAVAILABLE', 'the master is assembling too many chunk reports; retry shortly');
    if (outcome.kind !== 'complete') return { reregister: outcome.kind === 'restart', deletes: [], copies: [], namespaceId };
    // The read barrier may fail: take the queued work only after it, so a failed reply loses none.
    await this.lead.read();
    return this.workReply(req.id, namespaceId);
  }

  /**
   * This namespace's id; WRONG_CLUSTER for a chunkserver that recorded another one. Such a server
   * is neither registered nor sent deletes: its chunks are another namespace's, or this master's
   * data was lost, and either way they are not this master's to judge.
   */
  private async namespaceOf(req: { id: string; namespaceId?: string }, log: Logger): Promise<string> {
    let ns = this.lead.state.namespaceId;
    if (ns === undefined) {
      this.namespaceReady ??= this.lead.commit({ op: 'initNamespace', namespaceId: randomBytes(8).toString('hex') })
        .then((r) => (r as { namespaceId: string }).namespaceId)
        .finally(() => (this.namespaceReady = undefined));
      ns = await this.namespaceReady;
    }
    if (req.namespaceId !== undefined && req.namespaceId !== ns) {
      log.error({ server: req.id, theirs: req.namespaceId, ours: ns }, 'refused a chunkserver of another namespace');
      throw new DfsError('WRONG_CLUSTER', `chunkserver ${req.id} holds chunks of namespace ${req.namespaceId}, but this master's namespace is ${ns} (another cluster's master, or one whose data was lost); it is not registered here and nothing on it is deleted`);
    }
    return ns;
  }

  /**
   * A heartbeat never waits for a scan: a copy it reports finished or failed makes the core ask
   * for one, which the next tick starts, and the copies it plans ride on later replies.
   */
  async heartbeat(req: HeartbeatRequest, log: Logger = this.lead.log): Promise<HeartbeatReply> {
    this.lead.requireLeader();
    const namespaceId = await this.namespaceOf(req, log);
    this.tokens.noteHeld(req.id, req.chunkKeys);
    if (!this.lead.core.heartbeat(req, this.lead.now())) return { reregister: true, deletes: [], copies: [], namespaceId };
    await this.lead.read();
    return this.workReply(req.id, namespaceId);
  }

  reportCorrupt(req: CorruptReport): void {
    this.lead.requireLeader();
    this.lead.core.reportCorrupt(req, this.lead.now());
    this.lead.flushLog();
  }

  /** The server stops to restart: held, no copies for its absence, for the restart grace. */
  stopping(req: StoppingNotice): { held: boolean; restartGraceMs?: number } {
    this.lead.requireLeader();
    const held = this.lead.core.serverStopping(req.id, this.lead.now());
    this.lead.flushLog();
    return held ? { held, restartGraceMs: this.lead.config.restartGraceMs } : { held };
  }
}
