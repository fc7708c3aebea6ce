// removeDir (s3/objects.ts): a typed delete of an empty directory, and against a master from
// before typed deletes (INVALID_ARGUMENT naming `type`, as its strict schema answers), a stat and
// a plain delete, which still never removes a file.
import t from 'tap';
import { DfsError } from '../../common/errors.js';
import type { Gateway } from '../../s3/context.js';
import { removeDir } from '../../s3/objects.js';

/** A client as the gateway uses it, over a map of paths to types; `old`: refuses a typed delete as an old master does. */
function fakeGateway(paths: Map<string, 'file' | 'dir'>, old: boolean) {
  const calls: string[] = [];
  const client = {
    async remove(path: string, _recursive = false, type?: 'file' | 'dir') {
      calls.push(`remove ${path}${type ? ` ${type}` : ''}`);
      if (type && old) throw new DfsError('INVALID_ARGUMENT', 'Unrecognized key: "type"');
      const have = paths.get(path);
      if (!have) throw new DfsError('NOT_FOUND', `${path} does not exist`);
      if (type && have !== type) throw new DfsError(type === 'dir' ? 'NOT_A_DIRECTORY' : 'IS_A_DIRECTORY', 'other type');
      paths.delete(path);
      return { files: have === 'file' ? 1 : 0 };
    },
    async stat(path: string) {
      calls.push(`stat ${path}`);
      const have = paths.get(path);
      if (!have) throw new DfsError('NOT_FOUND', `${path} does not exist`);
      return { path, type: have };
    },
  };
  return { gw: { client } as unknown as Gateway, calls };
}

for (const old of [false, true]) {
  t.test(old ? 'a master from before typed deletes' : 'a master that knows typed deletes', async (t) => {
    const paths = new Map<string, 'file' | 'dir'>([['/b/d', 'dir'], ['/b/f', 'file']]);
    const { gw, calls } = fakeGateway(paths, old);
    t.same(await removeDir(gw, '/b/d'), { files: 0 }, 'the directory goes');
    await t.rejects(removeDir(gw, '/b/f'), { code: 'NOT_A_DIRECTORY' }, 'a file is refused');
    t.equal(paths.get('/b/f'), 'file', 'and stays');
    await t.rejects(removeDir(gw, '/b/none'), { code: 'NOT_FOUND' });
    t.same(calls.filter((c) => c.startsWith('stat')).length > 0, old, old ? 'it stats first' : 'no stat: the master checks the type');
  });
}
