// A directory's names in path order (master/state/capture.ts ChildMap.pathOrderPage): made at the
// first paged listing and kept in step after it by every set and delete, a name turning from a
// file into a directory included; each page is what one pass over the whole map (selectPage) gives.
import t from 'tap';
import { pathOrderKey, selectPage } from '../../common/list-order.js';
import { ChildMap, newDir } from '../../master/state/capture.js';
import { FileNode, type Node } from '../../master/state/nodes.js';

const file = (): Node => new FileNode({ mtimeMs: 0, size: 0, replication: 1, chunkSizeBytes: 1024, chunks: [] });

function onePass(children: Map<string, Node>, after: string | undefined, limit: number) {
  const { page, more } = selectPage(children.keys(), (n) => pathOrderKey(n, children.get(n)!.type === 'dir'), after, limit);
  return { names: page, more };
}

t.test('pages of a changing directory match a pass over it', async (t) => {
  const dir = newDir(0);
  const children = dir.children as ChildMap;
  const names = ['a', 'a-b', 'a0', 'b', 'b.c', 'c', 'ü', 'z'];
  for (const n of names) children.set(n, file());
  t.same(children.pathOrderPage(undefined, 100), onePass(children, undefined, 100), 'the first page makes the order');
  children.set('a', newDir(0)); // a file a becomes a directory a: it sorts as a/, after a-b
  children.set('b', file()); // replaced, same kind: no move
  children.delete('c');
  children.delete('nothing');
  children.set('y', newDir(0));
  for (let limit = 1; limit <= 4; limit++) {
    const seen: string[] = [];
    for (let after: string | undefined, i = 0; i < 20; i++) {
      const page = children.pathOrderPage(after, limit);
      t.same(page, onePass(children, after, limit), `limit ${limit}, after ${JSON.stringify(after)}`);
      seen.push(...page.names);
      if (!page.more) break;
      const last = page.names.at(-1)!;
      after = pathOrderKey(last, children.get(last)!.type === 'dir');
    }
    t.equal(seen.length, children.size, `limit ${limit}: every name once`);
  }
  children.clear();
  t.same(children.pathOrderPage(undefined, 10), { names: [], more: false }, 'cleared');
});
