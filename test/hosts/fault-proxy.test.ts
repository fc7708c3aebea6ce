// The fault proxy against real sockets: bytes pass whole and in order, a delay and a rate cap
// hold them back at least as long as they say (lower bounds only: a slow machine may add to
// them, never take away), a pause holds every byte without closing anything until resumed,
// refuse and dropAll reset connections.
import t from 'tap';
import { createServer, connect, type AddressInfo, type Server, type Socket } from 'node:net';
import { randomBytesSeeded } from '../helpers/cluster.js';
import { FaultProxy } from './fault-proxy.js';

/** An echo server on 127.0.0.1. */
async function echo(t: { teardown(f: () => unknown): void }): Promise<string> {
  const server: Server = createServer((s) => s.on('error', () => undefined).pipe(s));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise((r) => server.close(r)));
  return `127.0.0.1:${(server.address() as AddressInfo).port}`;
}

function dial(addr: string): Socket {
  const i = addr.lastIndexOf(':');
  // Resets are what some tests make: they look at 'close', not at the error.
  return connect(Number(addr.slice(i + 1)), addr.slice(0, i)).on('error', () => undefined);
}

/** Sends `data` and resolves with the first `data.length` bytes echoed back and the time it took. */
function roundTrip(s: Socket, data: Buffer): Promise<{ back: Buffer; ms: number }> {
  const began = performance.now();
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    let n = 0;
    const onData = (b: Buffer) => {
      parts.push(b);
      n += b.length;
      if (n >= data.length) {
        s.off('data', onData);
        resolve({ back: Buffer.concat(parts), ms: performance.now() - began });
      }
    };
    s.on('data', onData);
    s.once('close', () => reject(new Error('closed before the echo came back')));
    s.write(data);
  });
}

t.test('bytes pass whole and in order, with delay and jitter', async (t) => {
  const proxy = await FaultProxy.start(await echo(t));
  t.teardown(() => proxy.close());
  const s = dial(proxy.address);
  t.teardown(() => s.destroy());
  const plain = randomBytesSeeded(256 * 1024, 1);
  t.ok((await roundTrip(s, plain)).back.equals(plain), 'unchanged without faults');
  proxy.set({ delayMs: 100, jitterMs: 50 });
  const pieces = randomBytesSeeded(64 * 1024, 2);
  const r = await roundTrip(s, pieces);
  t.ok(r.back.equals(pieces), 'in order under jitter');
  t.ok(r.ms >= 200, `a round trip takes at least the delay both ways (${r.ms.toFixed(0)} ms >= 200)`);
});

t.test('a rate cap holds bytes back at least as long as the rate says', async (t) => {
  const proxy = await FaultProxy.start(await echo(t));
  t.teardown(() => proxy.close());
  const s = dial(proxy.address);
  t.teardown(() => s.destroy());
  proxy.set({ rateBytesPerSec: 1024 * 1024 });
  const data = randomBytesSeeded(512 * 1024, 3);
  const r = await roundTrip(s, data);
  t.ok(r.back.equals(data), 'whole');
  // 512 KiB each way through one shared 1 MiB/s budget: at least about a second, less a first piece sent at once.
  t.ok(r.ms >= 900, `capped (${r.ms.toFixed(0)} ms for 1 MiB through 1 MiB/s)`);
});

t.test('a pause holds every byte, closes nothing, and lets them through in order when lifted', async (t) => {
  const proxy = await FaultProxy.start(await echo(t));
  t.teardown(() => proxy.close());
  const s = dial(proxy.address);
  t.teardown(() => s.destroy());
  await roundTrip(s, Buffer.from('warm'));
  proxy.set({ paused: true });
  let got = 0;
  s.on('data', (b: Buffer) => (got += b.length));
  s.write(Buffer.from('held'));
  const late = dial(proxy.address);
  t.teardown(() => late.destroy());
  let lateGot = '';
  late.on('data', (b: Buffer) => (lateGot += b));
  late.write('new');
  await new Promise((r) => setTimeout(r, 500));
  t.equal(got, 0, 'nothing came back while paused');
  t.equal(lateGot, '', 'a connection made while paused is not served either');
  t.notOk(s.destroyed, 'and nothing was closed');
  proxy.heal();
  await new Promise((r) => setTimeout(r, 300));
  t.equal(got, 4, 'the held bytes arrive once resumed');
  t.equal(lateGot, 'new', 'and the held connection is served');
});

t.test('refuse resets new connections; dropAll resets the open ones', async (t) => {
  const proxy = await FaultProxy.start(await echo(t));
  t.teardown(() => proxy.close());
  const open = dial(proxy.address);
  await roundTrip(open, Buffer.from('x'));
  const closed = new Promise<string>((r) => open.once('error', (e: NodeJS.ErrnoException) => r(e.code ?? 'error')).once('close', () => r('closed')));
  proxy.dropAll();
  t.match(await closed, /ECONNRESET|closed/, 'the open connection was reset');
  proxy.set({ refuse: true });
  const refused = dial(proxy.address);
  const r = await new Promise<string>((res) => refused.once('error', (e: NodeJS.ErrnoException) => res(e.code ?? 'error')).once('close', () => res('closed')));
  t.match(r, /ECONNRESET|closed/, 'a new one is reset');
  t.equal(proxy.counts.reset, 2, 'both counted');
});
