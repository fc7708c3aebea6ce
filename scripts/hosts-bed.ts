// The namespace bed for people (test/hosts/bed.ts): build a network of hosts on this machine,
// follow docs/DEPLOY.md inside it, take it down. As root:
//
//   node dist/scripts/hosts-bed.js up                 # 3 masters, 6 chunkservers, a client: two racks
//   node dist/scripts/hosts-bed.js status             # the hosts, their addresses, what runs on each
//   node dist/scripts/hosts-bed.js run m1 -- dfs master --config /tmp/bed/etc/master-m1.json
//   node dist/scripts/hosts-bed.js run cl -- dfs status
//   node dist/scripts/hosts-bed.js fault isolate m1 | rejoin m1 | cut-racks | join-racks
//   node dist/scripts/hosts-bed.js fault slow cs4 40000 | unslow cs4 | drop m3 m1 | undrop m3 m1
//   node dist/scripts/hosts-bed.js down               # kills what runs in it, deletes every name it made
import { spawn } from 'node:child_process';
import { resolve } from 'node:path';
import { BedError, layout, leftovers, NamespaceBed, namespacesUnavailable } from '../test/hosts/bed.js';

const DFS = resolve(import.meta.dirname, '..', 'cli', 'main.js');

const USAGE = `usage: hosts-bed.js up | status | down | run <host> -- <command...> | fault <isolate|rejoin|cut-racks|join-racks|slow|unslow|drop|undrop> [args]
  run: "dfs" as the command runs this checkout's dfs (${DFS})`;

function fail(msg: string, code = 1): never {
  process.stderr.write(`hosts-bed: ${msg}\n`);
  process.exit(code);
}

function opened(): NamespaceBed {
  return NamespaceBed.open() ?? fail('no bed is up: run `hosts-bed.js up` first');
}

function up(): void {
  const why = namespacesUnavailable();
  if (why) fail(`cannot make network namespaces here: ${why}`);
  const bed = NamespaceBed.create({ hosts: layout(3, 6), persistent: true });
  process.stdout.write(`bed ${bed.tag} is up; files may go in ${bed.dir}\n`);
  status(bed);
}

function status(bed = opened()): void {
  for (const h of bed.hosts.values()) {
    process.stdout.write(`${h.name.padEnd(4)} rack ${h.rack}  ${h.addr.padEnd(13)} namespace ${h.ns}\n`);
  }
  process.stdout.write(`racks: 198.18.1.0/24 (gateway .1) and 198.18.2.0/24 (gateway .1), joined by one routed link\n`);
}

function run(args: string[]): void {
  const [host, dash, ...cmd] = args;
  if (!host || dash !== '--' || cmd.length === 0) fail(USAGE, 2);
  const bed = opened();
  const argv = cmd[0] === 'dfs' ? [process.execPath, DFS, ...cmd.slice(1)] : cmd;
  let child;
  try {
    child = bed.spawn(host, argv, { stdio: 'inherit' });
  } catch (err) {
    fail((err as Error).message);
  }
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => child.kill(sig));
  child.on('exit', (code, signal) => process.exit(code ?? (signal ? 128 : 1)));
}

function fault(args: string[]): void {
  const bed = opened();
  const [what, a, b] = args;
  const need = (x: string | undefined) => x ?? fail(USAGE, 2);
  switch (what) {
    case 'isolate': return bed.isolate(need(a), true);
    case 'rejoin': return bed.isolate(need(a), false);
    case 'cut-racks': return bed.cutRacks(true);
    case 'join-racks': return bed.cutRacks(false);
    case 'slow': return bed.capRate(need(a), Number(need(b)));
    case 'unslow': return bed.capRate(need(a), undefined);
    case 'drop': return bed.dropOneWay(need(a), need(b), true);
    case 'undrop': return bed.dropOneWay(need(a), need(b), false);
    default: fail(USAGE, 2);
  }
}

function down(): void {
  const removed = NamespaceBed.downAll();
  process.stdout.write(removed.length > 0 ? `removed ${removed.join(', ')}\n` : 'nothing to remove\n');
  const still = leftovers();
  if (still.length > 0) fail(`could not remove ${still.map((s) => s.names.join(', ')).join('; ')}`);
}

const [command, ...rest] = process.argv.slice(2);
try {
  switch (command) {
    case 'up': up(); break;
    case 'status': status(); break;
    case 'run': run(rest); break;
    case 'fault': fault(rest); break;
    case 'down': down(); break;
    default: fail(USAGE, 2);
  }
} catch (err) {
  if (err instanceof BedError) fail(err.message);
  throw err;
}

