// Installing dfs to run it, not to develop it (issue 13, item 8): the package `npm pack` makes
// ships the built dist/, so `npm install <tarball> --omit=dev` gives a working `dfs` and an
// importable client without TypeScript; a clone with no dist/ and no dev dependencies says what
// to do instead of "tsc: not found"; `dfs --version` prints the package's version.
//
// The tarball is packed with --ignore-scripts: its prepare step is our `tsc` build, which the
// tests' dist/ already is, and building again here would rewrite dist/ under tests running
// beside this one. The install resolves the runtime dependencies through npm's cache first
// (--prefer-offline); it needs the registry only for what the cache lacks.
import t from 'tap';
import { spawn } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DFS, ROOT } from '../helpers/cluster.js';

const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { name: string; version: string; private?: boolean };
// No NODE_OPTIONS: npm and what it starts run as a user's do (test/helpers/untracked-children.mjs keeps tap's tracker out).
const env = { ...process.env, NODE_OPTIONS: '' };

interface Ran { code: number | null; stdout: string; stderr: string }

function run(cmd: string, args: string[], cwd: string, timeoutMs = 60_000): Promise<Ran> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('error', reject);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

const dir = mkdtempSync(join(tmpdir(), 'dfs-package-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

t.test('dfs --version prints the version in package.json', async (t) => {
  const r = await run(process.execPath, [DFS, '--version'], dir);
  t.equal(r.code, 0, 'exits 0');
  t.equal(r.stdout, `${pkg.version}\n`, 'prints the version');
  t.equal(r.stderr, '', 'nothing on stderr');
});

t.test('package.json: never published by mistake under a name that is not ours', async (t) => {
  t.equal(pkg.private, true, 'private');
});

t.test('a clone without dist/ and without dev dependencies: prepare says what to do', async (t) => {
  // The files `npm ci --omit=dev` has in a fresh clone, away from our node_modules (so no TypeScript).
  const clone = join(dir, 'clone');
  mkdirSync(join(clone, 'scripts'), { recursive: true });
  cpSync(join(ROOT, 'package.json'), join(clone, 'package.json'));
  cpSync(join(ROOT, 'scripts', 'prepare.mjs'), join(clone, 'scripts', 'prepare.mjs'));
  const r = await run(process.execPath, ['scripts/prepare.mjs'], clone);
  t.equal(r.code, 1, 'fails');
  t.match(r.stderr, /^dfs: dist\/ is not built and TypeScript, a dev dependency, is not installed.*npm ci.*npm pack[^\n]*\n$/, 'one line that says what to do instead');
  t.notMatch(r.stderr, /tsc: not found|^\s+at /m, 'not "tsc: not found", no stack trace');

  // Built already (an `npm ci --omit=dev` after an `npm ci`): it goes on with that dist/.
  mkdirSync(join(clone, 'dist', 'cli'), { recursive: true });
  writeFileSync(join(clone, 'dist', 'cli', 'main.js'), '');
  const again = await run(process.execPath, ['scripts/prepare.mjs'], clone);
  t.equal(again.code, 0, 'with dist/ built, it succeeds');
  t.match(again.stderr, /using dist\/ as it is/, 'and says the build is not fresh');
});

t.test('npm pack, then npm install <tarball> --omit=dev: dfs runs and the client imports', async (t) => {
  const packed = await run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', dir], ROOT);
  t.equal(packed.code, 0, `npm pack works ${packed.stderr}`);
  const [info] = JSON.parse(packed.stdout) as { filename: string; files: { path: string }[] }[];
  const files = info!.files.map((f) => f.path);
  for (const f of ['package.json', 'dist/cli/main.js', 'dist/cli/index.js', 'dist/cli/client.js', 'dist/master/main.js', 'dist/chunkserver/main.js']) t.ok(files.includes(f), `the package has ${f}`);
  // Type declarations (.d.ts) ship on purpose, for TypeScript programs that import the client.
  t.same(files.filter((f) => (f.endsWith('.ts') && !f.endsWith('.d.ts')) || f.startsWith('test/') || f.startsWith('node_modules/')), [], 'no sources, tests or dependencies');
  t.ok(files.includes('dist/cli/index.d.ts'), 'the client\'s types are in the package');

  const app = join(dir, 'app');
  mkdirSync(app);
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0', private: true, type: 'module' }));
  const installed = await run('npm', ['install', join(dir, info!.filename), '--omit=dev', '--prefer-offline', '--no-audit', '--no-fund'], app, 90_000);
  t.equal(installed.code, 0, `npm install --omit=dev works ${installed.stderr}`);
  t.notOk(existsSync(join(app, 'node_modules', 'typescript')), 'without TypeScript');
  t.notOk(existsSync(join(app, 'node_modules', 'tap')), 'or any other dev dependency');

  const version = await run(join(app, 'node_modules', '.bin', 'dfs'), ['--version'], app);
  t.equal(version.code, 0, `dfs --version runs ${version.stderr}`);
  t.equal(version.stdout, `${pkg.version}\n`, 'and prints the version');

  const imported = await run(process.execPath, ['--input-type=module', '-e', `
    const m = await import(${JSON.stringify(pkg.name)});
    const c = new m.DfsClient(['127.0.0.1:1']);
    console.log(typeof m.DfsClient, typeof c.put, typeof m.DfsError, typeof m.closeHttpAgent);`], app);
  t.equal(imported.code, 0, `import('${pkg.name}') works ${imported.stderr}`);
  t.equal(imported.stdout, 'function function function function\n', 'and gives the client, its errors and a way to close its connections');
});
