// A TCP proxy that a test puts in front of a server to make its links hostile where the kernel
// cannot (this machine has no netem): delay with jitter, a bandwidth cap, dropped (reset)
// connections, and a pause that holds every byte as a cut cable would, without closing anything.
// The test changes the faults at any time; they apply to bytes from then on, both ways.
import { createServer, connect, type AddressInfo, type Server, type Socket } from 'node:net';

export interface LinkFaults {
  /** Added to every piece of data, each way, in ms. */
  delayMs: number;
  /** Up to this much more, drawn per piece (order is kept: a piece never overtakes the one before). */
  jitterMs: number;
  /** Bytes a second each way for all connections together; 0: no cap. */
  rateBytesPerSec: number;
  /** Hold every byte (and new connections) until resumed: a silent cut, nothing is closed. */
  paused: boolean;
  /** Refuse new connections by resetting them at once. */
  refuse: boolean;
}

const NO_FAULTS: LinkFaults = { delayMs: 0, jitterMs: 0, rateBytesPerSec: 0, paused: false, refuse: false };

/** At most this many connections through one proxy; more are reset. */
const MAX_CONNECTIONS = 256;
/** Bytes a direction may hold while paused or slowed before it stops reading (TCP then slows the sender). */
const MAX_HELD_BYTES = 8 * 1024 * 1024;

/** One direction of one connection: a queue of pieces released in order once each is due. */
class Pipe {
  private readonly queue: { due: number; data: Buffer }[] = [];
  private held = 0;
  private timer: NodeJS.Timeout | undefined;
  private lastDue = 0;

  constructor(private readonly proxy: FaultProxy, private readonly from: Socket, private readonly to: Socket) {
    from.on('data', (data: Buffer) => this.push(data));
    from.on('end', () => this.push(Buffer.alloc(0)));
  }

  private push(data: Buffer): void {
    const f = this.proxy.faults;
    const due = Math.max(this.lastDue, performance.now() + f.delayMs + Math.random() * f.jitterMs);
    this.lastDue = due;
    this.queue.push({ due, data });
    this.held += data.length;
    if (this.held > MAX_HELD_BYTES) this.from.pause();
    this.pump();
  }

  /** Sends what is due, at the rate the cap allows, unless paused; called again when the faults change. */
  pump(): void {
    if (this.timer) return;
    while (this.queue.length > 0) {
      const f = this.proxy.faults;
      if (f.paused) return;
      const head = this.queue[0]!;
      const wait = Math.max(head.due, this.proxy.rateGate(head.data.length)) - performance.now();
      if (wait > 0) {
        this.timer = setTimeout(() => {
          this.timer = undefined;
          this.pump();
        }, wait);
        return;
      }
      this.queue.shift();
      this.proxy.spend(head.data.length);
      this.held -= head.data.length;
      if (head.data.length === 0) this.to.end();
      else this.to.write(head.data);
      if (this.held <= MAX_HELD_BYTES) this.from.resume();
    }
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }
}

export class FaultProxy {
  faults: LinkFaults = { ...NO_FAULTS };
  /** Connections accepted, and reset on purpose (refused or dropped). */
  readonly counts = { accepted: 0, reset: 0 };
  private readonly server: Server;
  private readonly conns = new Set<{ client: Socket; upstream: Socket; pipes: Pipe[] }>();
  private readonly waiting: Socket[] = [];
  /** When the rate cap lets the next byte go (performance.now() ms). */
  private nextFreeAt = 0;

  private constructor(private readonly target: { host: string; port: number }, server: Server) {
    this.server = server;
    server.on('connection', (client) => this.accept(client));
  }

  /** Listens on `listenHost` (port 0 unless given) and forwards to `target` ("host:port"). */
  static async start(target: string, listenHost = '127.0.0.1', listenPort = 0): Promise<FaultProxy> {
    const i = target.lastIndexOf(':');
    const server = createServer({ pauseOnConnect: true });
    const proxy = new FaultProxy({ host: target.slice(0, i), port: Number(target.slice(i + 1)) }, server);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(listenPort, listenHost, () => resolve());
    });
    return proxy;
  }

  /** host:port to connect to. */
  get address(): string {
    const a = this.server.address() as AddressInfo;
    return `${a.address}:${a.port}`;
  }

  /** Changes the faults; bytes held by a pause or a delay go on under the new ones. */
  set(faults: Partial<LinkFaults>): void {
    this.faults = { ...this.faults, ...faults };
    for (const c of this.conns) for (const p of c.pipes) {
      p.stop();
      p.pump();
    }
    if (!this.faults.paused) for (const s of this.waiting.splice(0)) this.accept(s);
  }

  /** Back to a clean link. */
  heal(): void {
    this.set(NO_FAULTS);
  }

  /** Resets every open connection now (a peer that crashed, or a middlebox that dropped state). */
  dropAll(): void {
    for (const c of this.conns) this.reset(c);
  }

  /** The time the rate cap lets `bytes` more go (0 when there is no cap). */
  rateGate(bytes: number): number {
    if (this.faults.rateBytesPerSec <= 0 || bytes === 0) return 0;
    return this.nextFreeAt;
  }

  spend(bytes: number): void {
    if (this.faults.rateBytesPerSec <= 0) return;
    this.nextFreeAt = Math.max(this.nextFreeAt, performance.now()) + (bytes / this.faults.rateBytesPerSec) * 1000;
  }

  private accept(client: Socket): void {
    if (this.faults.refuse || this.conns.size >= MAX_CONNECTIONS) {
      this.counts.reset++;
      client.resetAndDestroy();
      return;
    }
    if (this.faults.paused) {
      // A silent cut: the connection is accepted by the kernel but nothing ever comes back.
      if (this.waiting.length < MAX_CONNECTIONS) this.waiting.push(client);
      else client.resetAndDestroy();
      return;
    }
    this.counts.accepted++;
    const upstream = connect(this.target.port, this.target.host);
    const conn = { client, upstream, pipes: [] as Pipe[] };
    conn.pipes.push(new Pipe(this, client, upstream), new Pipe(this, upstream, client));
    this.conns.add(conn);
    const close = () => {
      this.conns.delete(conn);
      for (const p of conn.pipes) p.stop();
      client.destroy();
      upstream.destroy();
    };
    client.on('error', close).on('close', close);
    upstream.on('error', close).on('close', close);
    client.setNoDelay(true);
    upstream.setNoDelay(true);
    client.resume();
  }

  private reset(c: { client: Socket; upstream: Socket }): void {
    this.counts.reset++;
    c.client.resetAndDestroy();
    c.upstream.resetAndDestroy();
  }

  async close(): Promise<void> {
    this.dropAll();
    for (const s of this.waiting.splice(0)) s.destroy();
    await new Promise((r) => this.server.close(r));
  }
}
