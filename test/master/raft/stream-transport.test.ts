// Raft over real sockets: three RaftNodes on FileStorage, each behind a real HTTP server on port 0
// that accepts upgraded raft streams; a group with a master from before dfs-raft/2 in it. Then what
// a stranger or a broken peer can do to a stream, both protocols on the receiving side, and the
// frame reader on its own.
import { createServer, request as httpRequest, type IncomingMessage, type Server } from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import type { AddressInfo, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { FileStorage } from '../../../master/raft/file-storage.js';
import { RaftNode } from '../../../master/raft/node.js';
import { encodeCommand, encodeRegister, SessionStateMachine, unwrapSessionResult } from '../../../master/raft/session.js';
import { decodeMessageBatch, encodeBinaryBatch, encodeMessageBatch } from '../../../master/raft/codec.js';
import {
  acceptRaftStreams, FrameReader, RAFT_STREAM_PATH, RAFT_STREAM_PROTOCOL, RAFT_STREAM_PROTOCOL_JSON, StreamTransport, type MessageSink, type RaftStreamServer,
} from '../../../master/raft/stream-transport.js';
import type { Message } from '../../../master/raft/types.js';
import { waitFor } from './helpers.js';
import { encodeKv, KvStateMachine } from './kv.js';

const ids = ['m1', 'm2', 'm3'];
const SECRET_HEADER = 'x-test-secret';
const SECRET = 'let-me-in';

interface Group {
  nodes: Map<string, RaftNode>;
  kvs: Map<string, KvStateMachine>;
  streams: Map<string, RaftStreamServer>;
  addresses: Record<string, string>;
  badFrames: Error[];
}

/**
 * The receiving side of a master from before dfs-raft/2, as it was: `dfs-raft/1` only (400 to any
 * other token), each frame a JSON batch. `asked` records every token a dial asked for.
 */
function acceptLegacyStreams(server: Server, sink: () => MessageSink | undefined, asked: string[]): RaftStreamServer {
  const sockets = new Set<Socket>();
  server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => {
    socket.on('error', () => undefined);
    asked.push(String(req.headers.upgrade));
    if (req.headers.upgrade !== RAFT_STREAM_PROTOCOL_JSON || req.headers[SECRET_HEADER] !== SECRET) {
      socket.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
      return;
    }
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nconnection: Upgrade\r\nupgrade: ${RAFT_STREAM_PROTOCOL_JSON}\r\n\r\n`);
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    const reader = new FrameReader(64 * 1024);
    const onData = (chunk: Buffer): void => {
      for (const body of reader.push(chunk)) for (const message of decodeMessageBatch(body)) sink()?.receive(message);
    };
    if (head.byteLength > 0) onData(head);
    socket.on('data', onData);
  });
  return {
    get open() {
      return sockets.size;
    },
    close() {
      for (const socket of sockets) socket.destroy();
      sockets.clear();
    },
  };
}

async function startGroup(t: Test, { legacy, asked = [] }: { legacy?: string; asked?: string[] } = {}): Promise<Group> {
  const base = await mkdtemp(join(tmpdir(), 'dfs-raft-stream-'));
  t.teardown(() => rm(base, { recursive: true, force: true }));
  const g: Group = { nodes: new Map(), kvs: new Map(), streams: new Map(), addresses: {}, badFrames: [] };
  const servers: Server[] = [];
  for (const id of ids) {
    const server = createServer((_req, res) => {
      res.statusCode = 404;
      res.end();
    });
    g.streams.set(id, id === legacy ? acceptLegacyStreams(server, () => g.nodes.get(id), asked) : acceptRaftStreams(server, {
      authorize: (req) => (req.headers[SECRET_HEADER] === SECRET ? undefined : 'raft streams need the secret'),
      sink: () => g.nodes.get(id),
      maxFrameBytes: 64 * 1024,
      onBadFrame: (err) => g.badFrames.push(err),
    }));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    servers.push(server);
    g.addresses[id] = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  }
  const transports: StreamTransport[] = [];
  for (const id of ids) {
    const transport = new StreamTransport({
      peers: g.addresses, timeoutMs: 1000, headers: { [SECRET_HEADER]: SECRET }, onUnreachable: (peer) => g.nodes.get(id)?.reportUnreachable(peer),
    });
    transports.push(transport);
    const kv = new KvStateMachine();
    const node = new RaftNode({
      id, peers: ids, storage: await FileStorage.open({ dir: join(base, id) }), transport, stateMachine: new SessionStateMachine(kv), tickIntervalMs: 10,
    });
    g.nodes.set(id, node);
    g.kvs.set(id, kv);
    node.start();
  }
  t.teardown(async () => {
    for (const node of g.nodes.values()) await node.stop();
    for (const transport of transports) await transport.close();
    for (const streams of g.streams.values()) streams.close();
    for (const server of servers) await new Promise((resolve) => server.close(resolve));
  });
  return g;
}

/** Opens an upgrade request by hand; resolves with the 101 socket (and the protocol it names) or the refusal. */
function upgrade(addr: string, headers: Record<string, string>, path = RAFT_STREAM_PATH): Promise<{ socket?: Socket; protocol?: string; status?: number; body?: string }> {
  const [host, port] = addr.split(':') as [string, string];
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host, port: Number(port), path, method: 'GET', agent: false, headers: { connection: 'Upgrade', upgrade: RAFT_STREAM_PROTOCOL, ...headers } });
    req.on('upgrade', (res: IncomingMessage, socket: Socket) => resolve({ socket, protocol: res.headers.upgrade }));
    req.on('response', (res: IncomingMessage) => {
      let body = '';
      res.on('data', (b: Buffer) => (body += b));
      res.on('end', () => resolve({ status: res.statusCode, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

function closed(socket: Socket): Promise<void> {
  return new Promise((resolve) => (socket.destroyed ? resolve() : socket.on('close', () => resolve())));
}

function frameOf(body: string): Buffer {
  const b = Buffer.from(body);
  const head = Buffer.alloc(4);
  head.writeUInt32BE(b.byteLength, 0);
  return Buffer.concat([head, b]);
}

t.test('a group over raft streams elects, replicates, and carries on after its streams are cut', async (t) => {
  const g = await startGroup(t);
  const leader = await waitFor('a leader', () => [...g.nodes.values()].find((n) => n.status().role === 'leader'));
  const clientId = unwrapSessionResult(await leader.propose(encodeRegister())) as string;
  t.same(unwrapSessionResult(await leader.propose(encodeCommand(clientId, 1, encodeKv({ op: 'cas', key: 'x', expected: null, value: '1' })))), true);
  await leader.linearizableRead();
  await waitFor('every member to apply x=1', () => ([...g.kvs.values()].every((kv) => kv.get('x') === '1') ? true : undefined));
  // Followers talk only to the leader, so the leader accepts a stream from each of them.
  t.equal(g.streams.get(leader.id)!.open, 2, 'the leader accepted a stream from each follower');

  // Cut every stream a follower accepted: the leader's appends to it fail, and the transport
  // dials again (with backoff) on the next message.
  const follower = ids.find((id) => id !== leader.id)!;
  g.streams.get(follower)!.close();
  t.equal(g.streams.get(follower)!.open, 0, `${follower}'s streams are cut`);
  t.same(unwrapSessionResult(await leader.propose(encodeCommand(clientId, 2, encodeKv({ op: 'cas', key: 'x', expected: '1', value: '2' })))), true);
  await waitFor(`${follower} to apply x=2 over a new stream`, () => (g.kvs.get(follower)!.get('x') === '2' ? true : undefined));
  t.ok(g.streams.get(follower)!.open >= 1, `the leader dialled ${follower} again`);
  t.same(g.badFrames, [], 'no frame was refused');
});

t.test('a master from before dfs-raft/2 (JSON streams only) takes part: the others fall back to dfs-raft/1 for it', async (t) => {
  const asked: string[] = [];
  const g = await startGroup(t, { legacy: 'm3', asked });
  const leader = await waitFor('a leader', () => [...g.nodes.values()].find((n) => n.status().role === 'leader'));
  const clientId = unwrapSessionResult(await leader.propose(encodeRegister())) as string;
  for (let i = 1; i <= 20; i++) {
    t.same(unwrapSessionResult(await leader.propose(encodeCommand(clientId, i, encodeKv({ op: 'put', key: `k${i}`, value: 'v'.repeat(i * 100) })))), null, `put k${i}`);
  }
  await waitFor('m3 to apply all twenty', () => (g.kvs.get('m3')!.get('k20') === 'v'.repeat(2000) ? true : undefined));
  t.ok(asked.length >= 2, `m3 was dialled (${asked.join(', ')})`);
  // m1 and m2 may both dial m3 at once, so their asks interleave: count rather than pair them.
  t.ok(asked.every((p) => p === RAFT_STREAM_PROTOCOL || p === RAFT_STREAM_PROTOCOL_JSON), 'only the two protocols were asked for');
  t.ok(asked.every((_, i) => asked.slice(0, i + 1).filter((p) => p === RAFT_STREAM_PROTOCOL_JSON).length <= asked.slice(0, i + 1).filter((p) => p === RAFT_STREAM_PROTOCOL).length),
    'every dial asked for dfs-raft/2 first, and asked for dfs-raft/1 only after a refusal');
  t.ok(asked.includes(RAFT_STREAM_PROTOCOL_JSON), 'and fell back to dfs-raft/1');
  t.ok(g.streams.get('m3')!.open >= 1, 'm3 holds a dfs-raft/1 stream');
  t.same(g.badFrames, [], 'no frame was refused on any member');
});

t.test('a receiver takes either protocol and decodes each frame in that protocol\'s encoding', async (t) => {
  const got: Message[] = [];
  const bad: Error[] = [];
  const server = createServer();
  const streams = acceptRaftStreams(server, { authorize: () => undefined, sink: () => ({ receive: (m) => got.push(m) }), onBadFrame: (err) => bad.push(err) });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    streams.close();
    server.close();
  });
  const addr = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  const sample = (n: number): Message => ({ type: 'append', from: 'm1', to: 'm2', term: 2, prevLogIndex: n, prevLogTerm: 2, commit: n, entries: [{ term: 2, index: n + 1, data: Uint8Array.of(n, 0, 255) }] });
  const withLength = (body: Uint8Array) => {
    const head = Buffer.alloc(4);
    head.writeUInt32BE(body.byteLength, 0);
    return Buffer.concat([head, body]);
  };
  const v2 = await upgrade(addr, {});
  t.equal(v2.protocol, RAFT_STREAM_PROTOCOL, 'the 101 names dfs-raft/2 when asked for it');
  v2.socket!.write(withLength(encodeBinaryBatch([sample(1), sample(2)])));
  const v1 = await upgrade(addr, { upgrade: RAFT_STREAM_PROTOCOL_JSON });
  t.equal(v1.protocol, RAFT_STREAM_PROTOCOL_JSON, 'and dfs-raft/1 when asked for that');
  await waitFor('the binary frame', () => (got.length === 2 ? true : undefined));
  v1.socket!.write(withLength(Buffer.from(encodeMessageBatch([sample(3)]))));
  await waitFor('the JSON frame', () => (got.length === 3 ? true : undefined));
  t.same(got, [sample(1), sample(2), sample(3)], 'each message arrives as it was sent');
  v2.socket!.write(withLength(Buffer.from(encodeMessageBatch([sample(4)]))));
  await closed(v2.socket!);
  t.equal(bad.length, 1, 'a JSON frame on a dfs-raft/2 stream closes it');
  t.equal(got.length, 3, 'and nothing of it is delivered');
  v1.socket!.destroy();
});

t.test('a stream is refused without the secret, on another path or protocol, and closed on a bad frame', async (t) => {
  const g = await startGroup(t);
  const addr = g.addresses['m1']!;
  const stranger = await upgrade(addr, { [SECRET_HEADER]: 'guess' });
  t.equal(stranger.status, 401, 'wrong secret');
  t.match(JSON.parse(stranger.body!), { error: { code: 'UNAUTHORIZED' } });
  const elsewhere = await upgrade(addr, { [SECRET_HEADER]: SECRET }, '/v1/raft/other');
  t.equal(elsewhere.status, 404, 'wrong path');
  const oldPeer = await upgrade(addr, { [SECRET_HEADER]: SECRET, upgrade: 'dfs-raft/0' });
  t.equal(oldPeer.status, 400, 'another protocol version');

  const nodeBefore = g.nodes.get('m1')!.status().term;
  const cases: [string, Buffer][] = [
    ['not JSON', frameOf('{"messages":[')],
    ['a message without fields', frameOf('{"messages":[{"type":"vote"}]}')],
    ['a message for a huge term from a stranger id', frameOf(JSON.stringify({ messages: [{ type: 'append', from: 'm9', to: 'm1', term: 1e15, prevLogIndex: 0, prevLogTerm: 0, entries: [{ term: 1, index: 5, data: '' }], commit: 0 }] }))],
    ['a frame over the limit', Buffer.from([0, 0x10, 0, 0])],
  ];
  for (const [what, bytes] of cases) {
    const { socket } = await upgrade(addr, { [SECRET_HEADER]: SECRET });
    t.ok(socket, `${what}: the stream opens`);
    socket!.write(bytes);
    await closed(socket!);
    t.pass(`${what}: the member closed the stream`);
  }
  t.equal(g.badFrames.length, cases.length, 'each bad frame was reported');
  t.ok(g.nodes.get('m1')!.status().term < 1e15, `no bad frame reached the node (term ${nodeBefore} → ${g.nodes.get('m1')!.status().term})`);
  const leader = await waitFor('a leader after the noise', () => [...g.nodes.values()].find((n) => n.status().role === 'leader'));
  const clientId = unwrapSessionResult(await leader.propose(encodeRegister())) as string;
  t.ok(clientId, 'the group still commits');
});

t.test('FrameReader: frames split anywhere, several per chunk, the limit enforced', async (t) => {
  const frames = ['a', '', 'hello raft', 'x'.repeat(1000)].map((s) => frameOf(s));
  const stream = Buffer.concat(frames);
  for (const step of [1, 2, 3, 5, 7, 4096]) {
    const reader = new FrameReader(2000);
    const got: string[] = [];
    for (let i = 0; i < stream.byteLength; i += step) for (const f of reader.push(stream.subarray(i, i + step))) got.push(f.toString());
    t.same(got, ['a', '', 'hello raft', 'x'.repeat(1000)], `fed ${step} bytes at a time`);
  }
  const reader = new FrameReader(10);
  t.throws(() => reader.push(frameOf('x'.repeat(11))), { code: 'RAFT_BAD_MESSAGE' }, 'a frame over the limit throws');
  t.same(new FrameReader(10).push(Buffer.from([0, 0])), [], 'half a header is kept for later');
});
