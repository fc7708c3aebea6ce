// dfs append: add a local file's (or stdin's) bytes to the end of a complete dfs file; dfs snapshot: copy a file or tree at once.
import { createReadStream, statSync } from 'node:fs';
import type { Argv } from 'yargs';
import { DfsError } from '../common/errors.js';
import { normalizePath } from '../common/paths.js';
import type { DfsClient } from './client.js';
import { STDIO, withClient, type FsArgs } from './fs-commands.js';
import { Progress } from './progress.js';
import { DEFAULT_BATCH_RECORDS, MAX_QUEUED_RECORDS } from './record-batch.js';
import { appendRecords } from './record-commands.js';

/** `dfs append <local|-> <path>`: the file's new size on stdout (JSON with --json); one line on stderr and exit 1 when it fails, the file unchanged. */
async function appendOne(client: DfsClient, args: FsArgs): Promise<void> {
  const srcArg = String(args.src);
  const src = srcArg === STDIO ? '-' : srcArg;
  const dst = normalizePath(String(args.path));
  let total: number | undefined;
  if (src !== '-') {
    let isFile = false;
    try {
      const st = statSync(src);
      isFile = st.isFile();
      total = st.size;
    } catch {
      throw new DfsError('NOT_FOUND', `local file ${src} does not exist`);
    }
    if (!isFile) throw new DfsError('INVALID_ARGUMENT', `local path ${src} is not a regular file`);
  }
  const input = src === '-' ? process.stdin : createReadStream(src, { highWaterMark: 1024 * 1024 });
  const progress = new Progress(`append ${dst}`, total, !args.quiet && !args.json && process.stderr.isTTY === true);
  const before = await client.stat(dst);
  const info = await client.append(input, dst, {
    sizeBytes: total,
    onProgress: (n) => progress.update(n),
    onRetry: (msg) => {
      if (!args.quiet) progress.log(`dfs: ${msg}`);
    },
  });
  progress.done();
  if (args.json) process.stdout.write(JSON.stringify(info, null, 2) + '\n');
  else process.stdout.write(`${info.path}: ${info.size} bytes (${info.size - before.size} appended)\n`);
}

export function appendCommands(cli: Argv): Argv {
  return cli.command('snapshot <path> <snapshot-path>', 'copy a file or a whole tree at once, whatever its size: the copy shares the chunks until either side appends', (y) => y
    .positional('path', { type: 'string', describe: 'a file or directory' })
    .positional('snapshot-path', { type: 'string', describe: 'a new path (its parent must exist)' }),
  (args) => withClient(args as unknown as FsArgs, async (client) => {
    const info = await client.snapshot(String(args.path), String(args['snapshot-path']));
    process.stdout.write((args as unknown as FsArgs).json ? JSON.stringify(info, null, 2) + '\n' : `${info.path}: a snapshot of ${normalizePath(String(args.path))}\n`);
  })).command('append <src> <path>', 'add a local file\'s bytes (- for stdin) to the end of a dfs file; readers see them all once it completes, or none if it fails', (y) => y
    .positional('src', { type: 'string', describe: 'local file, or - for stdin' })
    .positional('path', { type: 'string', describe: 'a complete dfs file' })
    .option('quiet', { alias: 'q', type: 'boolean', default: false, describe: 'no progress bar' })
    .option('record', { type: 'boolean', default: false, describe: 'append the input as one record (a quarter chunk at most), alongside other clients appending to the same file; prints its offset' })
    .option('lines', { type: 'boolean', default: false, describe: 'with --record: each non-empty line of the input is a record of its own' })
    .option('batch-records', { type: 'number', default: DEFAULT_BATCH_RECORDS, describe: `with --record --lines: records one append carries at most (a quarter chunk bounds its bytes), 1 to ${MAX_QUEUED_RECORDS}; 1 appends each record on its own` })
    .check((a) => {
      const n = a['batch-records'];
      if (!Number.isSafeInteger(n) || n < 1 || n > MAX_QUEUED_RECORDS) throw new Error(`--batch-records: a whole number from 1 to ${MAX_QUEUED_RECORDS}${Number.isNaN(n) ? '' : `, not ${n}`}`);
      return true;
    }),
  (args) => withClient(args as unknown as FsArgs, (client) => (args.record ? appendRecords(client, args as unknown as FsArgs) : appendOne(client, args as unknown as FsArgs)),
    { recordBatch: args['batch-records'] }));
}
