// What a chunkserver's long-lived connection to the leader says about it. A process that dies
// (kill -9, a crash) has its connection closed by the kernel at once, long before its heartbeats
// are missed: the leader then holds the server *suspect* (no new pipelines) and declares it dead
// once the grace passed without a new connection, so a restart within the grace costs no copies.
// A paused process (SIGSTOP) or a host whose link hangs keeps its connection open: the heartbeat
// timeout catches those, as before. A server stopped cleanly (SIGTERM: a restart, an upgrade)
// says so first and is held *restarting* instead: out of new pipelines, its replicas still
// counted, neither its dropped connection nor its silent heartbeats making it dead, until its
// full report when it is back or the restart grace's end (MooseFS's temporary maintenance mode,
// which its master enters whenever a chunkserver stops gracefully). Times come from the caller
// (the leader core's clock).

/** Stream numbers and times of one server's connection news. */
interface ServerLink {
  /** The number of the stream now open, or of the last one that dropped. */
  stream: number;
  /** When that stream dropped; undefined while it is open. */
  droppedAtMs?: number;
  /** Reported dead once (a scan is asked for then): not again until a new drop. */
  expiredNoted: boolean;
  /** The server said it stops to restart: held restarting until then (or its next full report). */
  restartUntilMs?: number;
}

export class ConnectionLiveness {
  private readonly links = new Map<string, ServerLink>();
  /** Servers a client could not reach and the leader's own probe could not either: suspect until then. */
  private readonly probedDownUntil = new Map<string, number>();

  /** `graceMs`: how long a server whose connection dropped may take to connect again before it is dead. */
  constructor(private readonly graceMs: number) {}

  /**
   * A stream from the server opened (a newer one replaces an older: that one's close is stale
   * news). A restart hold stays: only the full report ends it, or a server back from a long
   * restart would be dead by its silent heartbeats between its link and its report.
   */
  opened(id: string, stream: number): void {
    this.links.set(id, { stream, expiredNoted: false, restartUntilMs: this.links.get(id)?.restartUntilMs });
  }

  /**
   * The server stops cleanly to restart: held restarting (suspect, not dead) until `untilMs`. One
   * with no link known here is taken as gone now (every close is stale news for it), so the
   * hold's end finds it dead as a dropped link would.
   */
  stopping(id: string, nowMs: number, untilMs: number): void {
    const link = this.links.get(id);
    if (link) {
      link.restartUntilMs = untilMs;
      link.expiredNoted = false;
    } else this.links.set(id, { stream: -1, droppedAtMs: nowMs, expiredNoted: false, restartUntilMs: untilMs });
  }

  /** The end of the server's restart hold while it holds; undefined when it said nothing of a restart, or the hold ended. */
  restartHoldUntil(id: string, nowMs: number): number | undefined {
    return this.restarting(id, nowMs) ? this.links.get(id)!.restartUntilMs : undefined;
  }

  /** Held restarting at `nowMs`: it said it stops, and neither its report nor the hold's end came. */
  restarting(id: string, nowMs: number): boolean {
    const until = this.links.get(id)?.restartUntilMs;
    return until !== undefined && nowMs <= until;
  }

  /** The server's stream `stream` closed; a stream other than its latest is ignored. */
  dropped(id: string, stream: number, nowMs: number): boolean {
    const link = this.links.get(id);
    if (!link || link.stream !== stream || link.droppedAtMs !== undefined) return false;
    link.droppedAtMs = nowMs;
    link.expiredNoted = false;
    return true;
  }

  /** A full report is a fresh life: whatever a dropped stream or a restart said about the one before is void. */
  registered(id: string): void {
    const link = this.links.get(id);
    if (!link) return;
    if (link.droppedAtMs !== undefined) this.links.delete(id);
    else {
      link.restartUntilMs = undefined;
      link.expiredNoted = false;
    }
  }

  /** The leader's probe could not reach the server either: keep it out of new pipelines until `untilMs`. */
  probeFailed(id: string, untilMs: number): void {
    this.probedDownUntil.set(id, untilMs);
  }

  probeSucceeded(id: string): void {
    this.probedDownUntil.delete(id);
  }

  /**
   * Dead by its connection: dropped, and not back within the grace. Never while held restarting;
   * once the hold ends, a server whose link is still down is dead, and one whose link is open
   * (back, its report not in yet; or a notice that came late) is judged by its heartbeats alone.
   */
  expired(id: string, nowMs: number): boolean {
    if (this.restarting(id, nowMs)) return false;
    const at = this.links.get(id)?.droppedAtMs;
    return at !== undefined && nowMs - at > this.graceMs;
  }

  /** Suspect: its connection dropped (within the grace), it is held restarting, or a failed probe holds it out. */
  suspect(id: string, nowMs: number): boolean {
    if (this.links.get(id)?.droppedAtMs !== undefined || this.restarting(id, nowMs)) return true;
    const until = this.probedDownUntil.get(id);
    return until !== undefined && nowMs < until;
  }

  /**
   * Servers whose grace ran out since the last call, each once (the core asks for a scan then);
   * `afterHold`: it had said it would restart, and its hold ended first. An ended hold is cleared.
   */
  takeExpired(nowMs: number): { id: string; afterHold: boolean }[] {
    const out: { id: string; afterHold: boolean }[] = [];
    for (const [id, link] of this.links) {
      const afterHold = link.restartUntilMs !== undefined && nowMs > link.restartUntilMs;
      if (!link.expiredNoted && this.expired(id, nowMs)) {
        link.expiredNoted = true;
        out.push({ id, afterHold });
      }
      if (afterHold) link.restartUntilMs = undefined;
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
