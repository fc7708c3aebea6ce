// The tests are type-checked as the code is (tsconfig.test.json: the code and test/, no output):
// tap runs them with their types stripped, so a test that calls a changed API wrongly would
// otherwise fail only at run time, or pass while checking the wrong thing.
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import t from 'tap';

const ROOT = join(import.meta.dirname, '..');
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');

t.test('the code and the tests type-check (npm run typecheck)', async (t) => {
  const r = spawnSync(process.execPath, [tsc, '-p', join(ROOT, 'tsconfig.test.json')], { cwd: ROOT, encoding: 'utf8', timeout: 300_000 });
  const errors = r.stdout.split('\n').filter((l) => /error TS\d+/.test(l));
  t.equal(r.status, 0, `tsc -p tsconfig.test.json exits 0${r.error ? ` (${r.error.message})` : ''}`);
  t.same(errors.slice(0, 20), [], `no type errors (${errors.length} in all)`);
});
