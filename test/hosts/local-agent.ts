// The bed's client agent (agent.ts), in this process: the same operations for a cluster on
// 127.0.0.1, so the metadata load and its linearizability check (workload.ts) run against
// TestCluster too. A pinned read asks one master only and never follows a leader hint.
import { Readable } from 'node:stream';
import { request } from 'undici';
import { DfsClient } from '../../cli/client.js';
import type { AgentReply, AgentRequest } from './agent.js';

export function localAgent(masters: string[], token: string): { call(req: Omit<AgentRequest, 'id'>): Promise<AgentReply> } {
  const client = new DfsClient(masters, { token });
  const askOne = async (addr: string, path: string, timeoutMs: number): Promise<unknown> => {
    const res = await request(`http://${addr}${path}`, { headersTimeout: timeoutMs, bodyTimeout: timeoutMs, headers: { authorization: `Bearer ${token}` } });
    const body = (await res.body.json()) as { error?: { code: string; message: string } };
    if (res.statusCode !== 200) throw Object.assign(new Error(body.error?.message ?? `HTTP ${res.statusCode}`), { code: body.error?.code ?? `HTTP_${res.statusCode}` });
    return body;
  };
  const handle = async (req: Omit<AgentRequest, 'id'>): Promise<unknown> => {
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
  };
  return {
    call: (req) => handle(req).then(
      (value) => ({ id: 0, ok: true, value }),
      (err: Error & { code?: string }) => ({ id: 0, ok: false, code: err.code ?? 'ERROR', message: err.message }),
    ),
  };
}
