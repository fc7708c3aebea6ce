// The launcher's port check: reading /proc/net/tcp, quoting a command line to copy, and naming
// the holder of a port this process holds.
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { findPortHolder, portIsFree, shellCommand, socketInodes } from '../../cli/ports.js';

const TCP = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:24B8 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 4242 1 0000000000000000 100 0 0 10 0
   1: 0100007F:9C40 0100007F:24B8 01 00000000:00000000 00:00000000 00000000  1000        0 5151 1 0000000000000000 20 4 30 10 -1
   2: 0100007F:24B8 0100007F:9C41 06 00000000:00000000 03:00000F0B 00000000     0        0 0 3 0000000000000000
   3: 00000000:24B9 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 6161 1 0000000000000000 100 0 0 10 0
`;

t.test('socketInodes: the sockets bound to a port, listeners first, none in TIME_WAIT', async (t) => {
  t.same(socketInodes(TCP, 9400), [4242], 'the listener on 9400 (the TIME_WAIT entry has no inode)');
  t.same(socketInodes(TCP, 9401), [6161], 'a listener on 0.0.0.0 counts');
  t.same(socketInodes(TCP, 40000), [5151], 'an outgoing connection\'s local port counts');
  t.same(socketInodes(TCP, 1), [], 'nothing on a port no socket uses');
  t.same(socketInodes('', 9400), [], 'an empty table');
});

t.test('shellCommand: what sh runs is the argv it came from', async (t) => {
  const argv = ['/usr/bin/node', '/a b/main.js', 'master', '--peers', 'm1=127.0.0.1:9400', "it's", '', 'x"y$z'];
  const cmd = shellCommand(argv);
  t.match(cmd, /^\/usr\/bin\/node '\/a b\/main\.js' master --peers m1=127\.0\.0\.1:9400 /, 'plain words stay plain');
  const echoed = execFileSync('sh', ['-c', `${shellCommand(['printf', '%s\\0'])} ${shellCommand(argv.slice(1))}`]).toString();
  t.same(echoed.split('\0').slice(0, -1), argv.slice(1), 'sh splits it back into the same arguments');
});

t.test('findPortHolder names this process for a port it listens on', { skip: !existsSync('/proc/net/tcp') && 'no /proc here' }, async (t) => {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  t.teardown(() => srv.close());
  const port = (srv.address() as AddressInfo).port;
  t.equal(await portIsFree('127.0.0.1', port), false, 'the port is not free');
  const holder = findPortHolder(port);
  t.match(holder, { pid: process.pid, command: String }, 'held by this process');
  t.match(typeof holder === 'string' ? holder : holder.command, process.execPath, 'its command line starts with node');
});
