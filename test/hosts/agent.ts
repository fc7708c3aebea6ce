// A client that runs on a host of the bed (inside its network namespace, where the test process
// cannot open sockets) and does what the test asks, one JSON line in, one JSON line out, many
// at once. Run as: node --import tsx test/hosts/agent.ts <master,master,...>
import { createInterface } from 'node:readline';
import { request } from 'undici';
import { Readable } from 'node:stream';
import { DfsClient } from '../../dist/cli/client.js';

export interface AgentRequest {
  id: number;
  op: 'setrep' | 'stat' | 'pinnedStat' | 'raftStatus' | 'status' | 'touch';
  path?: string;
  value?: number;
  /** A master's address, for the ops that ask one master only. */
  addr?: string;
}

export interface AgentReply { id: number; ok: boolean; value?: unknown; code?: string; message?: string }

const masters = (process.argv[2] ?? '').split(',').filter(Boolean);
const client = new DfsClient(masters);

/** GET from one master, never following a leader hint; a reply that is not 200 is an error with its code. */
async function askOne(addr: string, path: string, timeoutMs: number): Promise<unknown> {
  // The token the cluster gave this agent (DFS_TOKEN), as the DfsClient above sends it.
  const headers = process.env.DFS_TOKEN ? { authorization: `Bearer ${process.env.DFS_TOKEN}` } : {};
  const res = await request(`http://${addr}${path}`, { headersTimeout: timeoutMs, bodyTimeout: timeoutMs, headers });
  const body = (await res.body.json()) as { error?: { code: string; message: string } };
  if (res.statusCode !== 200) throw Object.assign(new Error(body.error?.message ?? `HTTP ${res.statusCode}`), { code: body.error?.code ?? `HTTP_${res.statusCode}` });
  return body;
}

async function handle(req: AgentRequest): Promise<unknown> {
  switch (req.op) {
    case 'setrep':
      return client.setReplication(req.path!, req.value!);
    case 'stat':
      return (await client.stat(req.path!)).replication;
    case 'pinnedStat':
      return ((await askOne(req.addr!, `/v1/fs/stat?path=${encodeURIComponent(req.path!)}`, 3000)) as { replication: number }).replication;
    case 'raftStatus':
      return askOne(req.addr!, '/v1/raft/status', 1000);
    case 'status':
      return client.status();
    case 'touch':
      return client.put(Readable.from([]), req.path!, { parents: true, overwrite: true });
  }
}

createInterface({ input: process.stdin }).on('line', (line) => {
  const req = JSON.parse(line) as AgentRequest;
  handle(req).then(
    (value) => process.stdout.write(`${JSON.stringify({ id: req.id, ok: true, value } satisfies AgentReply)}\n`),
    (err: Error & { code?: string }) => process.stdout.write(`${JSON.stringify({ id: req.id, ok: false, code: err.code ?? 'ERROR', message: err.message } satisfies AgentReply)}\n`),
  );
}).on('close', () => process.exit(0));
process.stdout.write(`${JSON.stringify({ id: 0, ok: true, value: 'ready' })}\n`);
