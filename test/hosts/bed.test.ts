// The bed itself (bed.ts): it routes between its two racks, its faults bite and heal, it deletes
// exactly the names it recorded (also when its process is killed by a signal), and it refuses to
// start while an earlier run's names exist. Needs root; elsewhere it says why and tests the fault
// proxy's loopback stand-ins (fault-proxy.test.ts) only.
import t from 'tap';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from '../helpers/cluster.js';
import { BedError, existingNamespaces, NamespaceBed, namespacesUnavailable } from './bed.js';

t.setTimeout(600_000);
const why = namespacesUnavailable();

/** Tries a TCP connection from one host to another (a listener started there first); 'ok' or the error code. */
function connectBetween(bed: NamespaceBed, from: string, to: string): Promise<string> {
  const addr = bed.host(to).addr;
  const server = bed.spawn(to, [process.execPath, '-e', `require('net').createServer((s) => s.end('hi')).listen(7000, '${addr}', () => console.log('up'))`], { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve) => {
    server.stdout!.once('data', () => {
      const client = bed.spawn(from, [process.execPath, '-e',
        `const s = require('net').connect(7000, '${addr}'); s.setTimeout(1500, () => { console.log('TIMEOUT'); process.exit(0); }); s.on('data', () => { console.log('ok'); process.exit(0); }); s.on('error', (e) => { console.log(e.code); process.exit(0); });`],
      { stdio: ['ignore', 'pipe', 'inherit'] });
      let out = '';
      client.stdout!.on('data', (b: Buffer) => (out += b));
      client.on('close', () => {
        server.kill('SIGKILL');
        resolve(out.trim());
      });
    });
  });
}

t.test('the bed: routing between racks, faults that bite and heal, and exactly its own names removed', { skip: why && `network namespaces cannot be made here: ${why}` }, async (t) => {
  const stateDir = mkdtempSync(join(tmpdir(), 'dfs-bed-state-'));
  t.teardown(() => rmSync(stateDir, { recursive: true, force: true }));
  // A namespace that is not the bed's, named like one: it must survive the bed's cleanup.
  const bystander = `dfsb-bystander-${process.pid}`;
  spawnSync('ip', ['netns', 'add', bystander]);
  t.teardown(() => void spawnSync('ip', ['netns', 'del', bystander]));

  const bed = NamespaceBed.create({ hosts: [{ name: 'a', rack: 1 }, { name: 'b', rack: 1 }, { name: 'c', rack: 2 }], stateDir });
  t.teardown(() => bed.destroy());
  const record = JSON.parse(readFileSync(join(stateDir, `${bed.tag}.json`), 'utf8')) as { namespaces: string[] };
  t.same(record.namespaces.sort(), [`${bed.tag}-a`, `${bed.tag}-b`, `${bed.tag}-c`, `${bed.tag}-rack1`, `${bed.tag}-rack2`].sort(), 'every namespace is recorded');
  t.ok(record.namespaces.every((n) => existingNamespaces().has(n)), 'and exists');
  t.ok([...bed.hosts.values()].every((h) => /^198\.1[89]\./.test(h.addr)), 'addresses from 198.18.0.0/15');

  t.equal(await connectBetween(bed, 'a', 'b'), 'ok', 'a reaches b (same rack)');
  t.equal(await connectBetween(bed, 'a', 'c'), 'ok', 'a reaches c (the other rack, through the routed link)');
  bed.dropOneWay('a', 'c');
  t.equal(await connectBetween(bed, 'a', 'c'), 'TIMEOUT', 'packets a -> c dropped: the connection hangs (silent, as a hostile network)');
  t.equal(await connectBetween(bed, 'b', 'c'), 'ok', 'b still reaches c');
  bed.dropOneWay('a', 'c', false);
  t.equal(await connectBetween(bed, 'a', 'c'), 'ok', 'healed');
  bed.cutRacks();
  t.equal(await connectBetween(bed, 'a', 'c'), 'TIMEOUT', 'racks cut: rack 1 no longer reaches rack 2, silently');
  t.equal(await connectBetween(bed, 'a', 'b'), 'ok', 'inside a rack all is well');
  bed.cutRacks(false);
  t.equal(await connectBetween(bed, 'a', 'c'), 'ok', 'racks joined again');
  bed.isolate('b');
  t.not(await connectBetween(bed, 'a', 'b'), 'ok', 'b isolated');
  bed.isolate('b', false);
  bed.capRate('c', 8000);
  const qdisc = spawnSync('ip', ['netns', 'exec', bed.host('c').ns, 'tc', 'qdisc', 'show', 'dev', 'eth0'], { encoding: 'utf8' }).stdout;
  t.match(qdisc, /tbf .*rate 8Mbit/, `c's link is capped (${qdisc.trim()})`);
  bed.capRate('c', undefined);

  // An earlier run that died without cleaning up: its recorded names block a new bed, which says what to do.
  const orphan = `dfsb-orphan-${process.pid}`;
  spawnSync('ip', ['netns', 'add', orphan]);
  t.teardown(() => void spawnSync('ip', ['netns', 'del', orphan]));
  writeFileSync(join(stateDir, 'dfsb-orphan.json'), JSON.stringify({ tag: 'dfsb-orphan', ownerPid: 0, namespaces: [orphan], hosts: [], dir: join(stateDir, 'x') }));
  t.throws(() => NamespaceBed.create({ hosts: [{ name: 'z', rack: 1 }], stateDir }), new BedError(`namespaces of an earlier bed still exist (${orphan}): remove them with \`node dist/scripts/hosts-bed.js down\` (as root) and start again`));
  t.same(NamespaceBed.downAll(stateDir), [orphan], '`down` removes exactly the earlier run\'s names');

  const names = [...record.namespaces];
  bed.destroy();
  const after = existingNamespaces();
  t.ok(names.every((n) => !after.has(n)), 'destroy() removed every name it made');
  t.ok(after.has(bystander), 'and nothing else');
  t.same(readdirSync(stateDir), [], 'and its state file');
});

t.test('a bed whose process dies of SIGTERM (Ctrl-C is SIGINT, handled the same) removes its names', { skip: why && `network namespaces cannot be made here: ${why}` }, async (t) => {
  const stateDir = mkdtempSync(join(tmpdir(), 'dfs-bed-state-'));
  t.teardown(() => rmSync(stateDir, { recursive: true, force: true }));
  const child = spawn(process.execPath, ['--import', 'tsx', '-e', `
    const { NamespaceBed } = await import('./test/hosts/bed.ts');
    const bed = NamespaceBed.create({ hosts: [{ name: 'a', rack: 1 }, { name: 'b', rack: 2 }], stateDir: ${JSON.stringify(stateDir)} });
    console.log(JSON.stringify([...bed.hosts.values()].map((h) => h.ns)));
    setInterval(() => {}, 1000);
  `], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, NODE_OPTIONS: '' } });
  const line = await new Promise<string>((resolve) => child.stdout!.once('data', (b: Buffer) => resolve(b.toString())));
  const made = JSON.parse(line) as string[];
  t.ok(made.every((n) => existingNamespaces().has(n)), 'the bed is up');
  const exited = new Promise<NodeJS.Signals | null>((r) => child.on('exit', (_code, sig) => r(sig)));
  child.kill('SIGTERM');
  t.equal(await exited, 'SIGTERM', 'the process still dies of the signal');
  const after = existingNamespaces();
  t.ok(made.every((n) => !after.has(n)), 'and its namespaces are gone');
  t.same(readdirSync(stateDir), [], 'and its state file');
});
