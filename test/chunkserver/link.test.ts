// The chunkserver's end of its leader link (chunkserver/link.ts): it reads the link's lines, and a
// `{"beat":true}` line (the leader queued copies for it) asks for a heartbeat now; other lines do
// not; a line past the limit ends the link.
import t from 'tap';
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { LeaderClient } from '../../common/leader.js';
import type { Logger } from '../../common/log.js';
import { LeaderLink, LineReader } from '../../chunkserver/link.js';

const quiet = { info() {}, warn() {}, error() {}, debug() {} } as unknown as Logger;

t.test('LineReader: whole lines across chunks, the partial one kept, an over-long one refused', async (t) => {
  const r = new LineReader(8);
  t.same(r.push(Buffer.from('ab\ncd')), ['ab']);
  t.same(r.push(Buffer.from('e\n\nf')), ['cde', '']);
  t.same(r.push(Buffer.from('g\n')), ['fg']);
  t.throws(() => r.push(Buffer.from('123456789')), /over 8 bytes/, 'a partial line past the limit');
  t.throws(() => new LineReader(8).push(Buffer.from('123456789\n')), /over 8 bytes/, 'a whole line past the limit');
});

t.test('a beat line asks for a heartbeat; the opening line, keepalives and other lines do not', async (t) => {
  let res: ServerResponse | undefined;
  const server = createServer((_req, r) => {
    res = r;
    r.writeHead(200, { 'content-type': 'application/x-ndjson' });
    r.write(`${JSON.stringify({ leader: 'x', keepaliveMs: 1000 })}\n`);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const addr = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  let asked = 0;
  const link = new LeaderLink({ id: 'cs1', masters: new LeaderClient([addr]), sign: () => ({}), log: quiet, onBeatAsked: () => asked++ });
  link.start();
  const until = async (what: () => boolean) => {
    for (let i = 0; i < 500 && !what(); i++) await new Promise((r) => setTimeout(r, 10));
  };
  await until(() => res !== undefined);
  res!.write('\n');
  res!.write('{"beat":false}\n{"beat":"yes"}\nnot json beat\n');
  res!.write('{"be');
  res!.write('at":true}\n');
  await until(() => asked > 0);
  t.equal(asked, 1, 'one beat asked, from a line split across two writes');
  res!.write('{"beat":true}\n{"beat":true}\n');
  await until(() => asked > 1);
  await new Promise((r) => setTimeout(r, 50));
  t.equal(asked, 3, 'each beat line asks once');
  await link.stop();
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});
