// TLS end to end (issue 15): `dfs cluster --tls` makes a throw-away CA and starts 3 masters and 3
// chunkservers with mutual TLS between them; the CLI puts and gets a file through it with
// DFS_TLS_CA; a plain-HTTP client gets nothing; a peer that signs its calls with the cluster
// secret but has no client certificate is refused, and is accepted with one.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { Agent, request } from 'undici';
import { chunkserverSigner, PEER_AUTH_HEADER, signPeerRequest } from '../../dist/common/peer-auth.js';
import { RAFT_STREAM_PATH, RAFT_STREAM_PROTOCOL } from '../../dist/master/raft/stream-transport.js';
import { DFS, randomBytesSeeded, runDfs } from '../helpers/cluster.js';

interface ClusterFile { masters: string[]; tlsCa: string; secretFile: string; processes: { role: string; addr: string }[] }

/** Starts `dfs cluster --tls` on a base port that is free; resolves once it says it is ready. */
async function startTlsCluster(t: Test, dir: string): Promise<ClusterFile> {
  for (let attempt = 0; attempt < 5; attempt++) {
    // Below the kernel's ephemeral ports (32768 up), which other tests' clients and servers on
    // port 0 take: the cluster's ports run from base to base + 800 at most.
    const base = 20_000 + Math.floor(Math.random() * 120) * 100;
    const child = spawn(process.execPath, [DFS, 'cluster', '--tls', '--data', dir, '--base-port', String(base), '--masters', '3', '--chunkservers', '3', '--s3-port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (b: Buffer) => (out += b));
    child.stderr.on('data', (b: Buffer) => (out += b));
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    const ready = await new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), 120_000);
      child.stdout.on('data', () => out.includes('dfs cluster: ready') && (clearTimeout(timer), resolve(true)));
      void exited.then(() => (clearTimeout(timer), resolve(false)));
    });
    if (ready) {
      t.teardown(async () => {
        child.kill('SIGTERM');
        await exited;
      });
      return JSON.parse(readFileSync(join(dir, 'cluster.json'), 'utf8')) as ClusterFile;
    }
    child.kill('SIGTERM');
    await exited;
    if (!/\bin use\b|taken|EADDRINUSE/i.test(out)) throw new Error(`dfs cluster --tls did not start: ${out}`);
  }
  throw new Error('no free ports for the cluster');
}

t.test('a TLS cluster: round trip, plain HTTP refused, a peer without a certificate refused', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'dfs-tls-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const c = await startTlsCluster(t, join(dir, 'data'));
  t.ok(c.masters.every((m) => m.startsWith('https://')), 'cluster.json names https:// masters');
  // The cluster's own admin token (dfs cluster wrote it), not the test clusters' one in DFS_TOKEN.
  const env = { DFS_MASTERS: c.masters.join(','), DFS_TLS_CA: c.tlsCa, DFS_TOKEN: '', DFS_TOKEN_FILE: join(dir, 'data', 'admin-token') };

  const data = randomBytesSeeded(3 * 1024 * 1024 + 17, 15);
  const src = join(dir, 'in.bin');
  writeFileSync(src, data);
  const put = await runDfs(['put', src, '/tls.bin'], { env, timeoutMs: 120_000 });
  t.equal(put.code, 0, `put over TLS: ${put.stderr}`);
  const got = await runDfs(['cat', '/tls.bin'], { env, timeoutMs: 120_000 });
  t.equal(got.code, 0, `cat over TLS: ${got.stderr}`);
  t.ok(got.stdout.equals(data), 'the same bytes come back');

  const master = c.masters[0]!.replace('https://', '');
  const plain = await runDfs(['ls', '/'], { env: { DFS_MASTERS: master, DFS_TLS_CA: '' }, timeoutMs: 60_000 });
  t.not(plain.code, 0, 'a plain-HTTP client gets nothing');
  t.match(plain.stderr, /TLS cluster needs https/, `and is told why: ${plain.stderr.trim()}`);
  t.equal(plain.stderr.trim().split('\n').length, 1, 'in one line');
  const untrusted = await runDfs(['ls', '/'], { env: { DFS_MASTERS: c.masters[0]!, DFS_TLS_CA: '' }, timeoutMs: 60_000 });
  t.not(untrusted.code, 0, 'a client that does not trust the CA gets nothing');
  t.match(untrusted.stderr, /DFS_TLS_CA/, 'and is told to trust it');

  // A peer call signed with the cluster secret, over TLS, with and without a client certificate.
  const secret = Buffer.from(readFileSync(c.secretFile, 'utf8').trim());
  const ca = readFileSync(c.tlsCa);
  const tlsDir = join(dir, 'data', 'tls');
  const noCert = new Agent({ connect: { ca } });
  const withCert = new Agent({ connect: { ca, cert: readFileSync(join(tlsDir, 'node.pem')), key: readFileSync(join(tlsDir, 'node-key.pem')) } });
  t.teardown(() => Promise.all([noCert.close(), withCert.close()]));
  const body = Buffer.from(JSON.stringify({ id: 'cs-probe', addr: '127.0.0.1:9', capacityBytes: 1, freeBytes: 1, usedBytes: 0, activeWrites: 0, activeReads: 0 }));
  const beat = async (dispatcher: Agent) => {
    const headers = { 'content-type': 'application/json', ...chunkserverSigner(secret, 'cs-probe')('POST', '/v1/cs/heartbeat', body) };
    const res = await request(`https://${master}/v1/cs/heartbeat`, { method: 'POST', headers, body, dispatcher });
    return { status: res.statusCode, code: ((await res.body.json()) as { error?: { code: string } }).error?.code };
  };
  t.same(await beat(noCert), { status: 401, code: 'PEER_CERT_REQUIRED' }, 'a signed chunkserver call without a client certificate is refused');
  const accepted = await beat(withCert);
  t.not(accepted.status, 401, `with the cluster's certificate the same call is accepted (${accepted.status} ${accepted.code ?? ''})`);

  const status = (await (await request(`https://${master}/v1/raft/status`, { dispatcher: noCert })).body.json()) as { clusterId: string; id: string };
  const peerId = status.id === 'm1' ? 'm2' : 'm1';
  const raft = await new Promise<{ status: number; body: string }>((resolve, reject) => {
    const [host, port] = master.split(':') as [string, string];
    const req = httpsRequest({
      host, port: Number(port), path: RAFT_STREAM_PATH, method: 'GET', ca, agent: false,
      headers: {
        connection: 'Upgrade', upgrade: RAFT_STREAM_PROTOCOL, 'x-dfs-cluster-id': status.clusterId,
        [PEER_AUTH_HEADER]: signPeerRequest(secret, 'raft', peerId, { method: 'GET', path: RAFT_STREAM_PATH, clusterId: status.clusterId }),
      },
    });
    req.on('upgrade', (_res, socket) => {
      socket.destroy();
      reject(new Error('a raft stream opened without a client certificate'));
    });
    req.on('response', (r) => {
      let text = '';
      r.on('data', (b: Buffer) => (text += b));
      r.on('end', () => resolve({ status: r.statusCode ?? 0, body: text }));
    });
    req.on('error', reject);
    req.end();
  });
  t.equal(raft.status, 401, 'a signed raft stream without a client certificate is refused');
  t.match(JSON.parse(raft.body), { error: { code: 'PEER_CERT_REQUIRED' } });
  const plainHttp = await request(`http://${master}/v1/health`).then((r) => r.statusCode, (err: Error) => err.message);
  t.not(plainHttp, 200, `plain HTTP to a TLS master is not served (${plainHttp})`);
});
