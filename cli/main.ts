#!/usr/bin/env node
// The one `dfs` binary: file commands for users, and the server roles as subcommands
// (`dfs master`, `dfs chunkserver`, `dfs cluster`), as `hdfs` and `weed` do. The roles are
// loaded only when their subcommand runs.
import yargs, { type Argv } from 'yargs';
import { hideBin } from 'yargs/helpers';
import { DfsError } from '../common/errors.js';
import { runFsCommand, fsCommands, STDIO } from './fs-commands.js';
import { serverCommands } from './server-commands.js';

function fail(message: string, code = 1): never {
  process.stderr.write(`dfs: ${message}\n`);
  process.exit(code);
}

process.on('unhandledRejection', (err) => fail(`internal error: ${(err as Error)?.message ?? String(err)}`));

async function main(): Promise<void> {
  // yargs turns a lone '-' into an empty string; carry it through as a marker instead.
  const argv = hideBin(process.argv).map((a) => (a === '-' ? STDIO : a));
  let cli: Argv = yargs(argv)
    .scriptName('dfs')
    .usage('$0 <command> [options]\n\nA small GFS-like distributed file system. Docs: README.md and docs/.')
    .option('masters', { type: 'string', describe: 'comma-separated master host:port list (default: $DFS_MASTERS, else the local cluster)', global: true })
    .option('json', { type: 'boolean', default: false, describe: 'print machine-readable JSON', global: true })
    .strict()
    .demandCommand(1, 'name a command; dfs --help lists them')
    .recommendCommands()
    .help()
    .version(false)
    .wrap(Math.min(110, process.stdout.columns || 100))
    .fail((msg, err) => {
      if (err instanceof DfsError) fail(err.message);
      if (err) fail(err.message);
      fail(`${msg} (see dfs --help)`, 2);
    });
  cli = fsCommands(cli, runFsCommand);
  cli = serverCommands(cli);
  await cli.parseAsync();
}

main().catch((err: unknown) => {
  if (err instanceof DfsError) fail(err.message);
  fail(`internal error: ${(err as Error)?.message ?? String(err)}`);
});
