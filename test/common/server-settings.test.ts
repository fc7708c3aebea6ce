// The server settings table (common/server-settings.ts): precedence of flag, environment, file
// and default; one clear INVALID_CONFIG line for every kind of mistake in a config file; and
// docs/DEPLOY.md's table of keys kept equal to the code's.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import t, { type Test } from 'tap';
import { DfsError } from '../../common/errors.js';
import { duplicateKey, resolveSettings, SETTINGS } from '../../common/server-settings.js';

const dir = mkdtempSync(join(tmpdir(), 'dfs-settings-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
function file(content: unknown): string {
  const p = join(dir, `c${n++}.json`);
  writeFileSync(p, typeof content === 'string' ? content : JSON.stringify(content));
  return p;
}

function refused(t: Test, fn: () => unknown, code: string, pattern: RegExp): void {
  try {
    fn();
    t.fail(`accepted, expected ${code}`);
  } catch (err) {
    t.ok(err instanceof DfsError, 'a DfsError');
    t.equal((err as DfsError).code, code);
    t.match((err as Error).message, pattern);
    t.notMatch((err as Error).message, /\n/, 'one line');
  }
}

t.test('defaults, then the file, then the environment, then flags', async (t) => {
  const bare = resolveSettings('master', { data: '/d' }, {});
  t.match(bare, { id: 'm1', listen: '127.0.0.1:9400', data: '/d', chunkSize: 64 * 1024 * 1024, replication: 3, deadTimeoutMs: 30_000, balanceThreshold: 0.1 });
  t.equal(bare.peers, undefined, 'no peers: the data folder decides');
  const f = file({ role: 'master', data: '/var/lib/dfs/m', replication: 2, chunkSize: '1MiB', peers: { m1: '127.0.0.1:9400', m2: '127.0.0.1:9401', m3: '127.0.0.1:9402' } });
  const fromFile = resolveSettings('master', { config: f }, {});
  t.match(fromFile, { data: '/var/lib/dfs/m', replication: 2, chunkSize: 1024 * 1024 });
  t.same(fromFile.peers, { m1: '127.0.0.1:9400', m2: '127.0.0.1:9401', m3: '127.0.0.1:9402' });
  t.equal(resolveSettings('master', { config: f, replication: 5 }, {}).replication, 5, 'a flag overrides the file');

  const cs = file({ role: 'chunkserver', data: '/c', masters: ['10.0.0.1:9400', '10.0.0.2:9400'], scrubRate: 4 });
  t.same(resolveSettings('chunkserver', { config: cs }, {}).masters, ['10.0.0.1:9400', '10.0.0.2:9400']);
  t.same(resolveSettings('chunkserver', { config: cs }, { DFS_MASTERS: '10.0.0.9:9400' }).masters, ['10.0.0.9:9400'], 'DFS_MASTERS overrides the file');
  t.same(resolveSettings('chunkserver', { config: cs, masters: '10.0.0.8:9400' }, { DFS_MASTERS: '10.0.0.9:9400' }).masters, ['10.0.0.8:9400'], 'and --masters overrides both');
  t.match(resolveSettings('chunkserver', { config: cs }, {}), { scrubRate: 4, scrubIntervalMs: 30_000, heartbeatMs: 1000, listen: '127.0.0.1:9500' });
});

t.test('every mistake in a config file is one line naming the file and the key', async (t) => {
  const bad = (content: unknown, pattern: RegExp, role: 'master' | 'chunkserver' = 'master') => {
    const f = file(content);
    refused(t, () => resolveSettings(role as 'master', { config: f }, {}), 'INVALID_CONFIG', new RegExp(`config ${f.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}: ${pattern.source}`));
  };
  bad({ data: '/d', chunk_size: '1MiB' }, /unknown key "chunk_size" \(known keys: .*chunkSize/);
  bad({ data: '/d', heartbeatMs: 500 }, /unknown key "heartbeatMs" \(it is a chunkserver setting, not a master one\)/);
  bad({ data: '/d', rack: 'r1' }, /unknown key "rack" \(it is a chunkserver setting, not a master one\)/);
  bad({ data: '/d', rack: 'rack 1' }, /"rack" must be a rack name of 1-64 letters, digits, '.', '_' or '-' \(no spaces\), not "rack 1"/, 'chunkserver');
  bad({ data: '/d', replication: 'three' }, /"replication" must be a whole number from 1 to 16, not "three"/);
  bad({ data: '/d', replication: 0 }, /"replication" must be a whole number from 1 to 16, not 0/);
  bad({ data: '/d', chunkSize: '12 parsecs' }, /"chunkSize": '12 parsecs' is not a size/);
  bad({ data: 7 }, /"data" must be a non-empty string/);
  bad({ data: '/d', listen: 'localhost' }, /"listen": 'localhost' is not host:port/);
  bad({ data: '/d', peers: { m1: '127.0.0.1:1', m2: '127.0.0.1:1' } }, /"peers" gives two masters the same address/);
  bad('{ "data": "/d", "peers": { "m1": "127.0.0.1:1", "m1": "127.0.0.1:2" } }', /names "m1" twice in one object/);
  bad({ data: '/d', peers: { 'm 1': '127.0.0.1:1' } }, /"peers": a master id must be 1-32 letters/);
  bad({ role: 'chunkserver', data: '/d' }, /"role" is "chunkserver", but this is dfs master/);
  bad({ data: '/d', advertise: '198.18.200.200:9400' }, /"advertise": 198\.18\.200\.200 is not an address of this host/);
  t.equal(resolveSettings('master', { data: '/d', advertise: '127.0.1.5:9400' }, {}).advertise, '127.0.1.5:9400', 'all of 127.0.0.0/8 is this host (loopback)');
  bad({ role: 'chunkserver', data: '/d', masters: ['127.0.0.1:9400', 'nope'] }, /"masters"\[1\]: 'nope' is not host:port/, 'chunkserver');
  bad({ role: 'chunkserver', data: '/d', scrubRate: -1 }, /"scrubRate" must be a number of MiB\/s/, 'chunkserver');
  bad('{ "data": "/d", ', /is not valid JSON/);
  bad('["data"]', /must hold one JSON object of settings/);
  refused(t, () => resolveSettings('master', { config: join(dir, 'missing.json') }, {}), 'INVALID_CONFIG', /cannot be read \(ENOENT\)/);
  refused(t, () => resolveSettings('master', { config: dir }, {}), 'INVALID_CONFIG', /is not a file/);
  refused(t, () => resolveSettings('master', {}, {}), 'INVALID_ARGUMENT', /--data is required/);
  refused(t, () => resolveSettings('master', { data: '/d', replication: Number.NaN }, {}), 'INVALID_ARGUMENT', /--replication must be a whole number from 1 to 16, not NaN/);
});

t.test('duplicateKey finds a repeated key at any depth and nothing else', async (t) => {
  t.equal(duplicateKey('{"a":1,"b":{"c":1,"c":2}}'), 'c');
  t.equal(duplicateKey('{"a":1,"a":2}'), 'a');
  t.equal(duplicateKey('{"a":[{"b":1},{"b":2}],"s":"x\\"a\\":"}'), undefined, 'the same key in two objects, and a key-like string, are fine');
  t.equal(duplicateKey('{"a":"b","b":"a"}'), undefined);
});

t.test('docs/DEPLOY.md lists every setting with its flag, and no others', async (t) => {
  const doc = readFileSync(resolve(import.meta.dirname, '..', '..', 'docs', 'DEPLOY.md'), 'utf8');
  const rows = new Map([...doc.matchAll(/^\| `([a-zA-Z]+)` \| (?:`--([a-z-]+)`|—) \|/gm)].map((m) => [m[1]!, m[2]]));
  for (const s of SETTINGS) t.equal(rows.get(s.key), s.flag, `${s.key} is documented with --${s.flag}`);
  for (const key of rows.keys()) t.ok(key === 'role' || SETTINGS.some((s) => s.key === key), `${key} (documented) is a setting`);
});
