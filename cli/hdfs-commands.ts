// The small commands `hdfs dfs` users reach for (issue 18, item 4): test, count, touchz and
// checksum, by their HDFS names and behaviour, each answered from the master alone.
import { Readable } from 'node:stream';
import type { Argv } from 'yargs';
import { chunkChecksum } from '../common/checksum.js';
import { formatBytes } from '../common/config.js';
import { DfsError } from '../common/errors.js';
import { normalizePath } from '../common/paths.js';
import type { StatReply } from '../common/protocol.js';
import { DfsClient } from './client.js';
import { UsageError, withClient, type FsArgs } from './fs-commands.js';

/** `dfs test`: the condition holds (0), does not (1), or could not be found out (this, with a line on stderr). */
export const TEST_UNKNOWN_EXIT = 3;

const TESTS = { e: 'exists', d: 'is a directory', f: 'is a file', z: 'is a file of zero length' } as const;
type TestFlag = keyof typeof TESTS;

/** The path's entry, or undefined when it does not exist. */
async function statOrNone(client: DfsClient, path: string, chunks = false): Promise<StatReply | undefined> {
  return client.stat(path, chunks).catch((e: unknown) => (e instanceof DfsError && e.code === 'NOT_FOUND' ? undefined : Promise.reject(e)));
}

/** Whether the condition of `dfs test -<flag>` holds for an entry (undefined: no such path). */
export function testHolds(flag: TestFlag, st: Pick<StatReply, 'type' | 'size'> | undefined): boolean {
  if (!st) return false;
  if (flag === 'e') return true;
  if (flag === 'd') return st.type === 'dir';
  if (flag === 'f') return st.type === 'file';
  return st.type === 'file' && st.size === 0;
}

/**
 * A file's checksum from its chunks' checksums (xxHash64 over them, in order), read from the
 * master without reading a byte of the file. Like HDFS's MD5-of-MD5s it depends on the chunk
 * size, which its name carries: equal files stored with equal chunk sizes have equal checksums.
 */
export function fileChecksum(st: StatReply): { algorithm: string; checksum: string } {
  const chunks = st.chunks ?? [];
  const hashes = chunks.map((c) => BigInt.asUintN(64, BigInt(`0x${c.checksum || '0'}`)));
  return { algorithm: `XXH64-of-${chunks.length}-chunks-of-${st.chunkSizeBytes}`, checksum: chunkChecksum(hashes) };
}

type Handler = (client: DfsClient, args: FsArgs) => Promise<void>;

function print(args: FsArgs, json: unknown, text: string): void {
  process.stdout.write(args.json ? `${JSON.stringify(json)}\n` : `${text}\n`);
}

const handlers: Record<string, Handler> = {
  async test(client, args) {
    const flag = (Object.keys(TESTS) as TestFlag[]).find((f) => args[f] === true)!;
    try {
      process.exitCode = testHolds(flag, await statOrNone(client, normalizePath(String(args.path)))) ? 0 : 1;
    } catch (err) {
      // Not knowing must not read as "false" to a script.
      if (err instanceof DfsError && err.code === 'INVALID_PATH') throw err;
      process.stderr.write(`dfs: test -${flag}: ${(err as Error).message.replace(/\s*\n\s*/g, ' ')}\n`);
      process.exitCode = TEST_UNKNOWN_EXIT;
    }
  },

  async count(client, args) {
    const rows = [];
    for (const raw of args.paths as string[]) {
      const du = await client.du(normalizePath(String(raw)), true);
      rows.push({ path: du.path, dirs: du.dirs, files: du.files, bytes: du.bytes });
    }
    const size = (n: number) => (args.h ? formatBytes(n) : String(n));
    if (args.json) process.stdout.write(`${JSON.stringify(rows)}\n`);
    else for (const r of rows) process.stdout.write(`${String(r.dirs).padStart(12)} ${String(r.files).padStart(12)} ${size(r.bytes).padStart(18)} ${r.path}\n`);
  },

  async touchz(client, args) {
    for (const raw of args.paths as string[]) {
      const path = normalizePath(String(raw));
      try {
        await client.put(Readable.from([]), path, { parents: false });
      } catch (err) {
        if (!(err instanceof DfsError && err.code === 'EXISTS')) throw err;
        // As HDFS's touchz: an existing empty file is fine, anything else is not.
        const st = await statOrNone(client, path);
        if (st?.type === 'dir') throw new DfsError('IS_A_DIRECTORY', `${path} is a directory`);
        if (st && st.size > 0) throw new DfsError('EXISTS', `${path} exists and is not empty (${formatBytes(st.size)})`);
      }
    }
  },

  async checksum(client, args) {
    const path = normalizePath(String(args.path));
    const st = await client.stat(path, true);
    if (st.type !== 'file') throw new DfsError('IS_A_DIRECTORY', `${path} is a directory; checksum takes a file`);
    if (st.state !== 'complete') throw new DfsError('FILE_NOT_READY', `${path} is still being written`);
    const { algorithm, checksum } = fileChecksum(st);
    print(args, { path, algorithm, checksum, size: st.size }, `${path}\t${algorithm}\t${checksum}`);
  },
};

async function run(name: string, args: FsArgs): Promise<void> {
  await withClient(args, (client) => handlers[name]!(client, args));
}

export function hdfsCommands(cli: Argv): Argv {
  const h = (name: string) => (args: unknown) => run(name, args as FsArgs);
  return cli
    .command('test <path>', `exit 0 if the path passes the test, 1 if not (${TEST_UNKNOWN_EXIT} if the master cannot say); prints nothing`, (y) => {
      for (const [flag, what] of Object.entries(TESTS)) y.option(flag, { type: 'boolean', default: false, describe: `the path ${what}` });
      return y.positional('path', { type: 'string' }).check((a) => {
        if (Object.keys(TESTS).filter((f) => a[f] === true).length !== 1) throw new UsageError('give exactly one of -e, -d, -f, -z');
        return true;
      });
    }, h('test'))
    .command('count <paths..>', 'directories (the path itself included), files and bytes below each path', (y) => y
      .positional('paths', { type: 'string', array: true })
      .option('h', { type: 'boolean', default: false, describe: 'human-readable sizes (KiB, MiB, GiB)' }), h('count'))
    .command('touchz <paths..>', 'create empty files; an existing empty file is left as it is, a non-empty one is an error', (y) => y
      .positional('paths', { type: 'string', array: true }), h('touchz'))
    .command('checksum <path>', 'the file\'s checksum from its chunks\' checksums, without reading its bytes', (y) => y
      .positional('path', { type: 'string' }), h('checksum'));
}
