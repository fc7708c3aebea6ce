// This chunkserver's long-lived connection to the leader (GET /v1/cs/link, see
// master/service/links.ts). It carries nothing but the fact that this process lives: when the
// process dies its socket closes and the leader holds the server suspect at once, then dead after
// its connection grace unless a new link (a quick restart) opens first. The link goes to the
// master the heartbeats reach (LeaderClient follows the leader), and opens again whenever it
// closes, fails, or the leader falls silent for LINK_SILENCE_MS: at once after a link that lived
// a while, LINK_RETRY_MS later after a failure.
import { routeUrl } from '../common/contract/call.js';
import { CS } from '../common/contract/index.js';
import { request } from 'undici';
import { httpAgent } from '../common/http.js';
import { LINK_MAX_LINE_BYTES, LINK_RETRY_MS, LINK_SILENCE_MS } from '../common/limits.js';
import type { LeaderClient } from '../common/leader.js';
import type { Logger } from '../common/log.js';

export interface LeaderLinkOptions {
  id: string;
  masters: LeaderClient;
  /** Signs each opening with the cluster secret (common/peer-auth.ts): the /v1/cs routes ask for it. */
  sign: (method: string, pathWithQuery: string, body: Buffer | undefined) => Record<string, string>;
  log: Logger;
  /** The leader asked for a heartbeat now (it queued copies for this server): `{"beat":true}`. */
  onBeatAsked?: () => void;
}

export class LeaderLink {
  private stopped = false;
  private abort?: AbortController;
  private running?: Promise<void>;

  constructor(private readonly opts: LeaderLinkOptions) {}

  start(): void {
    this.running ??= this.loop();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.abort?.abort();
    await this.running;
  }

  private async loop(): Promise<void> {
    let failures = 0;
    while (!this.stopped) {
      const leader = this.opts.masters.leader;
      const openedAt = performance.now();
      const held = await this.hold(leader).then(() => true, (err: Error) => {
        if (!this.stopped && failures++ % 25 === 0) this.opts.log.debug({ master: leader, err: err.message }, 'leader link closed');
        return false;
      });
      if (held) failures = 0;
      // A link that lived a while is opened again at once: the leader takes a link closed for
      // longer than its connection grace for a crash. A failing or short-lived one waits first.
      const longLived = performance.now() - openedAt >= LINK_RETRY_MS * 5;
      if (!this.stopped && !longLived) await new Promise((r) => setTimeout(r, LINK_RETRY_MS));
    }
  }

  /** Opens the link to `addr` and reads it until it ends, fails, or falls silent. */
  private async hold(addr: string): Promise<void> {
    const abort = new AbortController();
    this.abort = abort;
    let silence: NodeJS.Timeout | undefined;
    const watch = () => {
      clearTimeout(silence);
      silence = setTimeout(() => abort.abort(new Error('the leader fell silent')), LINK_SILENCE_MS);
    };
    watch();
    try {
      const url = new URL(routeUrl(addr, CS.link, {}, { id: this.opts.id }));
      const headers = this.opts.sign('GET', url.pathname + url.search, undefined);
      const res = await request(url, { method: 'GET', dispatcher: httpAgent(), headers, signal: abort.signal });
      if (res.statusCode !== 200) {
        await res.body.dump();
        throw new Error(`answered ${res.statusCode}`);
      }
      const lines = new LineReader(LINK_MAX_LINE_BYTES);
      for await (const chunk of res.body) {
        watch();
        for (const line of lines.push(chunk as Buffer)) if (isBeatRequest(line)) this.opts.onBeatAsked?.();
      }
    } finally {
      clearTimeout(silence);
    }
  }
}

/** Whether a line of the link asks for a heartbeat now; anything else (the opening, a keepalive) does not. */
function isBeatRequest(line: string): boolean {
  if (!line.includes('beat')) return false;
  try {
    return (JSON.parse(line) as { beat?: unknown }).beat === true;
  } catch {
    return false;
  }
}

/** Splits a byte stream into its lines, none longer than `maxBytes` (a longer one throws). */
export class LineReader {
  private partial = '';

  constructor(private readonly maxBytes: number) {}

  /** The whole lines `chunk` completes, without their newlines. */
  push(chunk: Buffer): string[] {
    const text = this.partial + chunk.toString('utf8');
    const lines = text.split('\n');
    this.partial = lines.pop()!;
    if (this.partial.length > this.maxBytes || lines.some((l) => l.length > this.maxBytes)) throw new Error(`a line of the leader link is over ${this.maxBytes} bytes`);
    return lines;
  }
}
