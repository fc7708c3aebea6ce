// The HTTP ceiling's server, run as its own process (as a chunkserver is): PUT /sink reads and
// drops the body, GET /source?bytes=N streams N bytes, GET /ping answers at once. It listens on
// 127.0.0.1 only, prints {"addr": "127.0.0.1:port"}, and exits when its parent closes stdin.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

const PIECE = Buffer.alloc(1024 * 1024, 0x5a);
/** The largest body served; it bounds what a stray request can make this process do. */
const MAX_SOURCE_BYTES = 64 * 1024 ** 3;

const server = createServer((req, res) => {
  const url = new URL(req.url ?? '/', 'http://127.0.0.1');
  if (req.method === 'PUT' && url.pathname === '/sink') {
    let bytes = 0;
    req.on('data', (b: Buffer) => (bytes += b.length));
    req.on('end', () => res.end(JSON.stringify({ bytes })));
    return;
  }
  if (req.method === 'GET' && url.pathname === '/source') {
    const total = Number(url.searchParams.get('bytes'));
    if (!Number.isSafeInteger(total) || total < 0 || total > MAX_SOURCE_BYTES) {
      res.statusCode = 400;
      res.end();
      return;
    }
    res.setHeader('content-length', total);
    let sent = 0;
    // Respect back-pressure: write until the socket buffer is full, continue on 'drain'.
    const pump = () => {
      while (sent < total) {
        const piece = PIECE.subarray(0, Math.min(PIECE.length, total - sent));
        sent += piece.length;
        if (!res.write(piece)) return void res.once('drain', pump);
      }
      res.end();
    };
    pump();
    return;
  }
  if (req.method === 'GET' && url.pathname === '/ping') {
    res.end('{}');
    return;
  }
  res.statusCode = 404;
  res.end();
});

server.listen(0, '127.0.0.1', () => {
  const { port } = server.address() as AddressInfo;
  process.stdout.write(JSON.stringify({ addr: `127.0.0.1:${port}` }) + '\n');
});
process.stdin.resume();
process.stdin.on('end', () => process.exit(0));
