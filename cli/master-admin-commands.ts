// `dfs admin masters list|add|remove|transfer-leadership`: the master group (docs/API.md, "Master group";
// docs/ARCHITECTURE.md, Raft). Calls to the leader with the caller's admin token.
import type { Argv } from 'yargs';
import { CLUSTER, type MastersReply } from '../common/contract/index.js';
import type { DfsClient } from './client.js';
import { UsageError, withClient, type FsArgs } from './fs-commands.js';


function out(args: FsArgs, value: unknown, text: string): void {
  process.stdout.write(`${args.json ? JSON.stringify(value, null, 2) : text}\n`);
}

function formatMasters(r: MastersReply): string {
  const rows = r.members.map((m) => {
    const role = m.id === r.leader ? 'leader' : m.role;
    const lag = m.match === null ? '' : `  ${r.lastIndex - m.match} entries behind`;
    return `${m.id.padEnd(8)} ${(m.addr ?? '?').padEnd(22)} ${role.padEnd(8)}${m.id === r.leader ? '' : lag}`;
  });
  return `${rows.join('\n')}\nterm ${r.term}, configuration at log index ${r.confIndex}`;
}

/** `m4=127.0.0.1:9403` → [id, addr]; a usage error otherwise. */
function parseMember(raw: unknown): [string, string] {
  const m = /^([A-Za-z0-9_-]{1,64})=([A-Za-z0-9.-]{1,253}:\d{1,5})$/.exec(String(raw));
  if (!m) throw new UsageError(`${String(raw).slice(0, 80)}: give the new master as id=host:port (e.g. m4=127.0.0.1:9403)`);
  return [m[1]!, m[2]!];
}

const handlers: Record<string, (client: DfsClient, args: FsArgs) => Promise<void>> = {
  async add(client, args) {
    const [id, addr] = parseMember(args.member);
    const r = await client.read(CLUSTER.addMaster, { id, addr });
    // Any member's address will do: the new master fetches the cluster id and the group from it.
    const member = Object.entries(r.addresses).find(([m]) => m !== id)?.[1] ?? '<any master>';
    out(args, r, `${id} added as a learner; start it with an empty data folder:\n  dfs master --id ${id} --listen ${addr} --data <empty folder> --secret-file <the cluster secret> --join ${member}\nthe leader promotes it to voter once it has caught up (dfs admin masters list)`);
  },
  async remove(client, args) {
    const r = await client.read(CLUSTER.removeMaster, { id: String(args.id) });
    out(args, r, `${String(args.id)} removed; voters now ${r.voters.join(', ')}${r.learners.length ? `, learners ${r.learners.join(', ')}` : ''} (it stops on its own)`);
  },
  async list(client, args) {
    const r = await client.read(CLUSTER.masters, {});
    out(args, r, formatMasters(r));
  },
  async 'transfer-leadership'(client, args) {
    const body = args.to === undefined ? {} : { to: String(args.to) };
    const r = await client.read(CLUSTER.transferLeadership, body);
    out(args, r, `leadership moved from ${r.from} to ${r.to} in term ${r.term}`);
  },
};

const run = (name: string) => (args: unknown) => withClient(args as FsArgs, (client) => handlers[name]!(client, args as FsArgs));

/** `dfs admin masters ...`, added to the admin command of cli/tool-commands.ts. */
export function adminMasterCommands(y: Argv): Argv {
  return y.command('masters', 'the master group: list, add, remove, hand leadership over (admin only)', (z) => z
    .command('list', 'every master: address, voter or learner, how far behind the leader', (w) => w, run('list'))
    .command('add <member>', 'add a master (id=host:port) as a learner; it is promoted once caught up', (w) => w.positional('member', { type: 'string' }), run('add'))
    .command('remove <id>', 'remove a master from the group (it stops on its own)', (w) => w.positional('id', { type: 'string' }), run('remove'))
    .command('transfer-leadership', 'make another master the leader at once, without an election timeout', (w) => w
      .option('to', { type: 'string', describe: 'the master id to hand over to (default: the most caught-up voter)' }), run('transfer-leadership'))
    .demandCommand(1, 'name a masters command'));
}
