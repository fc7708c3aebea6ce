// Clients' reports of a chunkserver they could not reach (as HDFS clients report bad datanodes).
// A report is a hint, never a verdict: the leader probes the server itself, and only when that
// probe fails too is the server suspect (kept out of new pipelines for a while); it is never
// declared dead on a report, so a hostile or confused client costs at most one probe a server
// per PROBE_MIN_INTERVAL_MS, and no copies. Death stays the heartbeat timeout's and the
// connection grace's call.
import { call } from '../../common/contract/call.js';
import { CLUSTER } from '../../common/contract/index.js';
import { MAX_CHUNKSERVER_LINKS, PROBE_MIN_INTERVAL_MS, PROBE_TIMEOUT_MS } from '../../common/limits.js';
import type { UnreachableReply } from '../../common/protocol.js';
import type { Leadership } from './leadership.js';

export class UnreachableProbes {
  /** server id → when it was last probed (bounded: at most one entry per known server). */
  private readonly lastProbeMs = new Map<string, number>();

  constructor(private readonly lead: Leadership) {}

  /** Checks a server a client could not reach; answers what the leader found. */
  async report(addr: string): Promise<UnreachableReply> {
    this.lead.requireLeader();
    const id = this.lead.registry.resolve(addr);
    if (id === undefined) return { server: null, verdict: 'unknown' };
    const now = this.lead.now();
    const last = this.lastProbeMs.get(id);
    if (last !== undefined && now - last < PROBE_MIN_INTERVAL_MS) return { server: id, verdict: 'checked-recently' };
    if (this.lastProbeMs.size >= MAX_CHUNKSERVER_LINKS) this.lastProbeMs.clear();
    this.lastProbeMs.set(id, now);
    const serverAddr = this.lead.registry.addrOf(id)!;
    const reached = await call(serverAddr, CLUSTER.health, {}, { timeoutMs: PROBE_TIMEOUT_MS }).then(() => true, () => false);
    if (!this.lead.replicator.isLeader()) return { server: id, verdict: reached ? 'reachable' : 'unreachable' };
    this.lead.core.probeResult(id, reached, this.lead.now(), this.lead.config.deadTimeoutMs);
    this.lead.flushLog();
    return { server: id, verdict: reached ? 'reachable' : 'unreachable' };
  }
}
