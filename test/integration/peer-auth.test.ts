// Peers that cannot be impersonated or replayed (issue 15), against real masters and
// chunkservers: a captured chunkserver request and a captured Raft stream opening are refused
// when replayed; a chunkserver of another secret never registers; a message on an authenticated
// Raft stream that claims another sender is refused and the stream closed; the fuzz's replayed
// heartbeat `{"from":"m1","to":"m3","term":4}` to a leader is refused and the leader stays up.
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import type { Socket } from 'node:net';
import { join } from 'node:path';
import t from 'tap';
import { request } from 'undici';
import { chunkserverSigner, PEER_AUTH_HEADER, signPeerRequest } from '../../dist/common/peer-auth.js';
import { encodeBinaryBatch } from '../../dist/master/raft/codec.js';
import { RAFT_STREAM_PATH, RAFT_STREAM_PROTOCOL } from '../../dist/master/raft/stream-transport.js';
import type { Message } from '../../dist/master/raft/types.js';
import { ADMIN_TOKEN, DFS, TestCluster, waitFor } from '../helpers/cluster.js';

const SECRET = Buffer.from('test-secret-0123456789abcdef');
const OTHER = Buffer.from('another-secret-0123456789abcdef');

interface RaftStatus { id: string; clusterId: string; role: string; term: number; leader: string | null }

async function raftStatus(addr: string): Promise<RaftStatus> {
  const res = await request(`http://${addr}/v1/raft/status`);
  return (await res.body.json()) as RaftStatus;
}

async function heartbeat(addr: string, body: Buffer, header: string): Promise<{ status: number; code?: string }> {
  const res = await request(`http://${addr}/v1/cs/heartbeat`, { method: 'POST', headers: { 'content-type': 'application/json', [PEER_AUTH_HEADER]: header }, body });
  const reply = (await res.body.json()) as { error?: { code: string } };
  return { status: res.statusCode, code: reply.error?.code };
}

/** Opens a Raft stream with these headers: the socket on 101, or the status and body of the refusal. */
function openStream(addr: string, headers: Record<string, string>): Promise<{ socket?: Socket; status?: number; body?: string }> {
  const [host, port] = addr.split(':') as [string, string];
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host, port: Number(port), path: RAFT_STREAM_PATH, agent: false, headers: { connection: 'Upgrade', upgrade: RAFT_STREAM_PROTOCOL, ...headers } });
    req.on('upgrade', (_res, socket) => resolve({ socket: socket as Socket }));
    req.on('response', (r) => {
      let body = '';
      r.on('data', (b: Buffer) => (body += b));
      r.on('end', () => resolve({ status: r.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** A frame of `messages` in the stream's protocol (dfs-raft/2: binary). */
function frame(messages: Message[]): Buffer {
  const out = encodeBinaryBatch(messages, 4);
  out.writeUInt32BE(out.byteLength - 4, 0);
  return out;
}

function closed(socket: Socket): Promise<void> {
  return new Promise((resolve) => (socket.destroyed ? resolve() : socket.once('close', () => resolve())));
}

t.test('replayed, forged and foreign peer traffic is refused; the masters stay up', async (t) => {
  const c = await TestCluster.start({ masters: 3, chunkservers: 1 });
  t.teardown(() => c.stop());
  const { proc: leader, index } = await c.leader();
  const st = await raftStatus(leader.addr);
  t.equal(st.role, 'leader');

  // A chunkserver's call, captured and replayed.
  const body = Buffer.from(JSON.stringify({ id: 'cs-captured', addr: '127.0.0.1:9', capacityBytes: 1, freeBytes: 1, usedBytes: 0, activeWrites: 0, activeReads: 0 }));
  const captured = chunkserverSigner(SECRET, 'cs-captured')('POST', '/v1/cs/heartbeat', body)[PEER_AUTH_HEADER]!;
  const first = await heartbeat(leader.addr, body, captured);
  t.not(first.status, 401, `the signed call itself is accepted (${first.status} ${first.code ?? ''})`);
  const replay = await heartbeat(leader.addr, body, captured);
  t.same(replay, { status: 401, code: 'PEER_AUTH_REPLAYED' }, 'the same call replayed is refused');
  const otherBody = Buffer.from(body.toString().replace('cs-captured', 'cs-impostor'));
  const swapped = await heartbeat(leader.addr, otherBody, chunkserverSigner(SECRET, 'cs-captured')('POST', '/v1/cs/heartbeat', body)[PEER_AUTH_HEADER]!);
  t.same(swapped, { status: 401, code: 'PEER_AUTH_INVALID' }, 'a fresh signature on another body is refused');
  const foreign = await heartbeat(leader.addr, body, chunkserverSigner(OTHER, 'cs-captured')('POST', '/v1/cs/heartbeat', body)[PEER_AUTH_HEADER]!);
  t.same(foreign, { status: 401, code: 'PEER_AUTH_INVALID' }, 'another secret is refused');

  // A Raft stream opening, captured and replayed; then a forged sender on a real stream.
  const follower = c.masterProcs.find((_, i) => i !== index)!;
  const followerId = (await raftStatus(follower.addr)).id;
  const signed = (secret: Buffer, id: string) => ({
    [PEER_AUTH_HEADER]: signPeerRequest(secret, 'raft', id, { method: 'GET', path: RAFT_STREAM_PATH, clusterId: st.clusterId }), 'x-dfs-cluster-id': st.clusterId,
  });
  const opening = signed(SECRET, followerId);
  const ok = await openStream(leader.addr, opening);
  t.ok(ok.socket, 'a signed opening by a member is accepted');
  const again = await openStream(leader.addr, opening);
  t.equal(again.status, 401, 'the captured opening replayed is refused');
  t.match(JSON.parse(again.body ?? '{}'), { error: { code: 'PEER_AUTH_REPLAYED' } });
  const otherSecret = await openStream(leader.addr, signed(OTHER, followerId));
  t.match({ status: otherSecret.status, body: JSON.parse(otherSecret.body ?? '{}') }, { status: 401, body: { error: { code: 'PEER_AUTH_INVALID' } } }, 'a master with another secret cannot open a stream (nor vote)');
  const stranger = await openStream(leader.addr, signed(SECRET, 'm9'));
  t.equal(stranger.status, 401, 'a signed opening by a non-member is refused');

  // The fuzz's message: a leader's heartbeat for the term this master leads, from a follower.
  ok.socket!.write(frame([{ type: 'heartbeat', from: followerId, to: st.id, term: st.term, commit: 0, context: '' }]));
  // A message whose sender is not the stream's member closes the stream.
  const forgedFrom = c.masterProcs.map((p) => p.id).find((id) => id !== followerId && id !== st.id)!;
  ok.socket!.write(frame([{ type: 'heartbeat', from: forgedFrom, to: st.id, term: st.term + 5, commit: 0, context: '' }]));
  await closed(ok.socket!);
  t.pass('the stream carrying a forged sender was closed');
  await waitFor(() => leader.output.some((l) => l.includes('refused a raft message whose sender')), 10_000, 'the forged sender to be logged');
  t.ok(leader.output.some((l) => l.includes('for the term this master leads')), 'the impossible heartbeat was refused and logged');
  t.equal(leader.child.exitCode, null, 'the leader is still running');
  const after = await raftStatus(leader.addr);
  t.match(after, { role: 'leader', term: st.term }, 'still the leader, in the same term: the forged term never reached Raft');
});

t.test('a chunkserver with another secret cannot register', async (t) => {
  const c = await TestCluster.start({ masters: 1, chunkservers: 0 });
  t.teardown(() => c.stop());
  const dir = join(c.dir, 'stray');
  mkdirSync(dir, { recursive: true });
  const secretFile = join(dir, 'secret');
  writeFileSync(secretFile, OTHER.toString() + '\n');
  const child = spawn(process.execPath, [DFS, 'chunkserver', '--id', 'stray', '--listen', '127.0.0.1:0', '--data', dir, '--secret-file', secretFile, '--masters', c.masters, '--heartbeat-ms', '100'], { stdio: ['ignore', 'pipe', 'pipe'] });
  t.teardown(() => child.kill('SIGKILL'));
  let output = '';
  child.stdout.on('data', (b: Buffer) => (output += b));
  child.stderr.on('data', (b: Buffer) => (output += b));
  await waitFor(() => output.includes('PEER_AUTH_INVALID') || /signature does not match/.test(output), 30_000, 'the stray chunkserver to be refused');
  const status = await request(`http://${c.master.addr}/v1/cluster/status`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
  const s = (await status.body.json()) as { chunkservers: { id: string }[] };
  t.notOk(s.chunkservers.some((cs) => cs.id === 'stray'), 'the master does not know it');
});
