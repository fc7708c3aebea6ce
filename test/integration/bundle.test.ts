// The one-file `dfs` that `npm run build` makes (scripts/bundle.mjs), built here afresh into a
// folder laid out as the package is (dist/cli/main.js, package.json, master/ui/), so this holds
// whatever dist/ the other tests run: the file needs nothing from node_modules, knows its version,
// and runs the roles, whose files it finds beside it (the master's page) and whose dependencies it
// carries (undici, zod, xxhash-wasm's wasm, express, pino).
import t from 'tap';
import { execFile, spawn } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { isBuiltin } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { bundle } from '../../scripts/bundle.mjs';
import { ROOT, TEST_SECRET, spawnRole, waitFor, type Proc } from '../helpers/cluster.js';

interface Ran { code: number | null; stdout: Buffer; stderr: string }

function run(bin: string, args: string[], env: Record<string, string>, input: Buffer | string = ''): Promise<Ran> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [bin, ...args], { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, ...env } });
    const out: Buffer[] = [];
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout: Buffer.concat(out), stderr });
    });
    child.stdin.end(input);
  });
}

const dir = mkdtempSync(join(tmpdir(), 'dfs-bundle-'));
const pkgDir = join(dir, 'pkg');
const bin = join(pkgDir, 'dist', 'cli', 'main.js');
const procs: Proc[] = [];
t.teardown(() => {
  for (const p of procs) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

t.test('the bundle imports only Node\'s own modules', async (t) => {
  mkdirSync(join(pkgDir, 'master'), { recursive: true });
  cpSync(join(ROOT, 'package.json'), join(pkgDir, 'package.json'));
  symlinkSync(join(ROOT, 'master', 'ui'), join(pkgDir, 'master', 'ui'));
  // As `npm run build` finds it: tsc has written a module of that name first, not executable.
  mkdirSync(join(pkgDir, 'dist', 'cli'), { recursive: true });
  writeFileSync(bin, '// what tsc wrote\n', { mode: 0o644 });
  const meta = await bundle(bin);
  const out = Object.entries(meta.outputs as Record<string, { imports: { path: string; external?: boolean }[] }>);
  t.equal(out.length, 1, 'one file');
  const imports = [...new Set(out[0]![1].imports.map((i) => i.path))];
  t.ok(imports.length > 0, 'it imports Node modules');
  // node:sqlite is newer than Node 20 (undici requires it only when its SQLite cache is asked for).
  t.same(imports.filter((p) => !p.startsWith('node:') && !isBuiltin(p)), [], 'and nothing else: no package, no file of ours');
  // `npx dfs` in a clone runs the bin as a program: npm sets no mode on a build it did not install.
  t.ok((statSync(bin).mode & 0o111) !== 0, 'it is executable');
  const direct = await new Promise<{ code: number | null; out: string }>((res) => execFile(bin, ['--version'], (err, out) => res({ code: err ? (err as { code?: number }).code ?? 1 : 0, out })));
  t.same(direct, { code: 0, out: `${JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).version}\n` }, 'and runs by itself, through its #! line');
  const version = await run(bin, ['--version'], {});
  t.equal(version.stdout.toString(), `${JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).version}\n`, 'dfs --version prints package.json\'s version');
});

t.test('the bundle runs a master and a chunkserver: the page, a put and a cat', async (t) => {
  const secretFile = join(dir, 'secret');
  writeFileSync(secretFile, `${TEST_SECRET}\n`);
  const master = await spawnRole('master', ['--id', 'm1', '--listen', '127.0.0.1:0', '--data', join(dir, 'm1'), '--secret-file', secretFile, '--replication', '1', '--chunk-size', '1MiB'], 'master started', bin);
  procs.push(master);
  procs.push(await spawnRole('chunkserver', ['--id', 'cs1', '--listen', '127.0.0.1:0', '--data', join(dir, 'cs1'), '--masters', master.addr, '--secret-file', secretFile, '--chunk-size', '1MiB', '--heartbeat-ms', '300'], 'chunkserver started', bin));

  const page = await request(`http://${master.addr}/ui/`);
  t.equal(page.statusCode, 200, 'the master serves its page: it found master/ui/ two folders above the bundle');
  t.match(await page.body.text(), /<html/i, 'the page\'s html');

  const env = { DFS_MASTERS: master.addr };
  const live = async () => {
    const s = await run(bin, ['status', '--json'], env);
    return s.code === 0 && (JSON.parse(s.stdout.toString()) as { chunkservers: { alive: boolean }[] }).chunkservers.some((c) => c.alive);
  };
  await waitFor(live, 30_000, 'dfs status through the bundle to show the chunkserver live');
  const bytes = Buffer.from(Array.from({ length: 1_500_000 }, (_, i) => (i * 7) % 251));
  const put = await run(bin, ['put', '-', '/b/f.bin'], env, bytes);
  t.equal(put.code, 0, `dfs put works ${put.stderr}`);
  const cat = await run(bin, ['cat', '/b/f.bin'], env);
  t.equal(cat.code, 0, `dfs cat works ${cat.stderr}`);
  t.ok(cat.stdout.equals(bytes), 'and gives back the bytes put (two chunks), checksums verified: xxhash-wasm works in the bundle');
});
