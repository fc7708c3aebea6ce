// What a chunkserver's long-lived connection to the leader says about it. A process that dies
// (kill -9, a crash) has its connection closed by the kernel at once, long before its heartbeats
// are missed: the leader then holds the server *suspect* (no new pipelines) and declares it dead
// once the grace passed without a new connection, so a restart within the grace costs no copies.
// A paused process (SIGSTOP) or a host whose link hangs keeps its connection open: the heartbeat
// timeout catches those, as before. Times come from the caller (the leader core's clock).

/** Stream numbers and times of one server's connection news. */
interface ServerLink {
  /** The number of the stream now open, or of the last one that dropped. */
  stream: number;
  /** When that stream dropped; undefined while it is open. */
  droppedAtMs?: number;
  /** Reported dead once (a scan is asked for then): not again until a new drop. */
  expiredNoted: boolean;
}

export class ConnectionLiveness {
  private readonly links = new Map<string, ServerLink>();
  /** Servers a client could not reach and the leader's own probe could not either: suspect until then. */
  private readonly probedDownUntil = new Map<string, number>();

  /** `graceMs`: how long a server whose connection dropped may take to connect again before it is dead. */
  constructor(private readonly graceMs: number) {}

  /** A stream from the server opened (a newer one replaces an older: that one's close is stale news). */
  opened(id: string, stream: number): void {
    this.links.set(id, { stream, expiredNoted: false });
  }

  /** The server's stream `stream` closed; a stream other than its latest is ignored. */
  dropped(id: string, stream: number, nowMs: number): boolean {
    const link = this.links.get(id);
    if (!link || link.stream !== stream || link.droppedAtMs !== undefined) return false;
    link.droppedAtMs = nowMs;
    return true;
  }

  /** A full report is a fresh life: whatever a dropped stream said about the one before is void. */
  registered(id: string): void {
    const link = this.links.get(id);
    if (link && link.droppedAtMs !== undefined) this.links.delete(id);
  }

  /** The leader's probe could not reach the server either: keep it out of new pipelines until `untilMs`. */
  probeFailed(id: string, untilMs: number): void {
    this.probedDownUntil.set(id, untilMs);
  }

  probeSucceeded(id: string): void {
    this.probedDownUntil.delete(id);
  }

  /** Dead by its connection: dropped, and not back within the grace. */
  expired(id: string, nowMs: number): boolean {
    const at = this.links.get(id)?.droppedAtMs;
    return at !== undefined && nowMs - at > this.graceMs;
  }

  /** Suspect: its connection dropped (within the grace), or a failed probe holds it out. */
  suspect(id: string, nowMs: number): boolean {
    if (this.links.get(id)?.droppedAtMs !== undefined) return true;
    const until = this.probedDownUntil.get(id);
    return until !== undefined && nowMs < until;
  }

  /** Servers whose grace ran out since the last call, each once (the core asks for a scan then). */
  takeExpired(nowMs: number): string[] {
    const out: string[] = [];
    for (const [id, link] of this.links) {
      if (!link.expiredNoted && this.expired(id, nowMs)) {
        link.expiredNoted = true;
        out.push(id);
      }
    }
    return out;
  }

  forget(id: string): void {
    this.links.delete(id);
    this.probedDownUntil.delete(id);
  }

  clear(): void {
    this.links.clear();
    this.probedDownUntil.clear();
  }
}
