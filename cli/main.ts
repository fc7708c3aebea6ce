#!/usr/bin/env node
// The one `dfs` binary: file commands for users, and the server roles as subcommands
// (`dfs master`, `dfs chunkserver`, `dfs cluster`), as `hdfs` and `weed` do. The roles are
// loaded only when their subcommand runs.
import { readFileSync } from 'node:fs';
import yargs, { type Argv } from 'yargs';
import { hideBin } from 'yargs/helpers';
import { DfsError } from '../common/errors.js';
import { runFsCommand, fsCommands, STDIO, UsageError } from './fs-commands.js';
import { hdfsCommands } from './hdfs-commands.js';
import { serverCommands } from './server-commands.js';
import { findArgv, toolCommands } from './tool-commands.js';
import { tokenCommands } from './token-commands.js';
import { trashCommands } from './trash-commands.js'; // trash-quota
import { appendCommands } from './append-commands.js';
import { configureCliTls } from '../common/tls.js';
import { newRequestId, setCallTracer, setProcessRequestId, type CallTrace } from '../common/request-id.js';

/** The package's version: package.json sits two folders above this file, in a clone (dist/cli/) and in an install alike. */
function packageVersion(): string {
  return (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
}

/** Exit codes: 0 done, 1 the operation failed, 2 the command line (or a server's config) is wrong (usage). */
const USAGE = 2;
const SERVER_ROLES = new Set(['master', 'chunkserver', 's3', 'cluster']);
const START_UP_REFUSALS = new Set<string>(['INVALID_PATH', 'INVALID_CONFIG', 'MEMBERSHIP_MISMATCH', 'WRONG_CLUSTER']);

/** A failed call's message with the id the server served it under, to grep the servers' logs for. */
function withRequestId(err: unknown, message: string): string {
  const id = err instanceof DfsError ? err.requestId : undefined;
  return id ? `${message} (request ${id})` : message;
}

/** `--verbose`: one line on stderr per call made (common/request-id.ts traces them). */
function printCall(t: CallTrace): void {
  const target = t.target.length > 200 ? `${t.target.slice(0, 200)}…` : t.target;
  process.stderr.write(`dfs: ${t.method} ${target} ${t.status || 'failed'} ${t.ms.toFixed(1)}ms request=${t.requestId}\n`);
}

/**
 * Before a command runs: TLS, `--verbose`, and the command's request id. A user command is one
 * operation: every call it makes carries one id (docs/ARCHITECTURE.md, "Following a request").
 * A server role makes none: its calls carry the ids of the requests they serve, or fresh ones.
 */
function beforeCommand(a: { _: (string | number)[]; verbose?: boolean; [k: string]: unknown }): void {
  if (a.verbose) setCallTracer(printCall);
  if (!SERVER_ROLES.has(String(a._[0]))) setProcessRequestId(newRequestId());
}

/** Prints one line, whatever the message holds, and exits. */
function fail(message: string, code = 1): never {
  process.stderr.write(`dfs: ${message.replace(/\s*\n\s*/g, ' ').trim()}\n`);
  process.exit(code);
}

/** A malformed dfs path or option value is a usage error, like an unknown flag; the rest failed at run time. */
function exitCode(err: unknown): number {
  // A server role started with a wrong flag value is a usage error too (systemd: do not restart).
  if (err instanceof DfsError && err.code === 'INVALID_ARGUMENT' && SERVER_ROLES.has(String(process.argv[2]))) return USAGE;
  // A server's config or data folder that disagrees with itself is fixed by a person, not by a
  // restart: 2 tells systemd so (RestartPreventExitStatus=2).
  return err instanceof UsageError || (err instanceof DfsError && START_UP_REFUSALS.has(err.code)) ? USAGE : 1;
}

const SHELLS = ['bash', 'zsh'];

/**
 * `dfs completion bash|zsh`: yargs writes the script for the shell named in $SHELL, so the shell
 * named on the command line is put there (and taken off the arguments).
 */
function completionArgv(argv: string[]): string[] {
  if (argv[0] !== 'completion' || argv.length < 2 || argv[1]!.startsWith('-')) return argv;
  if (!SHELLS.includes(argv[1]!)) fail(`completion: unknown shell ${JSON.stringify(argv[1]).slice(0, 40)}; give one of ${SHELLS.join(', ')}`, USAGE);
  process.env.SHELL = `/bin/${argv[1]}`;
  return [argv[0], ...argv.slice(2)];
}

/**
 * yargs renders the whole help text after it starts any command, in case the command later asks
 * to show it (its command.js: cacheHelpMessage). dfs never does (fail() prints one line), and the
 * rendering, every option's width measured for wrapping, cost 60-150 ms of CPU on every start of
 * dfs, a server's too (measured in a master's profile). --help still renders it when asked.
 */
function skipHelpCache(cli: Argv): void {
  const internal = cli as unknown as { getInternalMethods?: () => { getUsageInstance?: () => { cacheHelpMessage?: () => void } } };
  const usage = internal.getInternalMethods?.().getUsageInstance?.();
  if (usage && typeof usage.cacheHelpMessage === 'function') usage.cacheHelpMessage = () => undefined;
}

process.on('unhandledRejection', (err) => fail(`internal error: ${(err as Error)?.message ?? String(err)}`));

async function main(): Promise<void> {
  // yargs turns a lone '-' into an empty string; carry it through as a marker instead.
  const argv = completionArgv(findArgv(hideBin(process.argv).map((a) => (a === '-' ? STDIO : a))));
  let cli: Argv = yargs(argv)
    .scriptName('dfs')
    // dfs speaks English; yargs's translations are files beside yargs, which the bundled binary
    // (scripts/bundle.mjs) has not: without this, the two builds would answer differently.
    .detectLocale(false)
    .usage('$0 <command> [options]\n\nA small GFS-like distributed file system. Docs: README.md and docs/.')
    .option('masters', { type: 'string', describe: 'comma-separated master host:port list (default: $DFS_MASTERS, else the local cluster)', global: true })
    .option('token-file', { type: 'string', describe: 'file holding the client token (default: $DFS_TOKEN, $DFS_TOKEN_FILE, ~/.config/dfs/token)', global: true })
    .option('json', { type: 'boolean', default: false, describe: 'print machine-readable JSON', global: true })
    .option('tls-ca', { type: 'string', describe: 'CA certificate to trust: talk TLS to the cluster (default: $DFS_TLS_CA; https:// master addresses also turn TLS on)', global: true })
    .option('verbose', { type: 'boolean', default: false, describe: 'print each call (method, address and path, status, time, request id) to stderr', global: true })
    .middleware((a) => configureCliTls(a))
    .middleware((a) => beforeCommand(a))
    .strict()
    .demandCommand(1, 'name a command')
    .recommendCommands()
    .help()
    .version('version', 'print the version of dfs', packageVersion())
    .wrap(Math.min(110, process.stdout.columns || 100))
    .fail((msg, err) => {
      // yargs gives a message when it rejects the command line (an unknown command or flag, a
      // missing argument, a failed check); a command that failed while running gives only err.
      if (msg) fail(`${msg} (see dfs --help)`, USAGE);
      fail(err ? withRequestId(err, err.message) : 'failed', exitCode(err));
    });
  cli = fsCommands(cli, runFsCommand);
  cli = hdfsCommands(cli);
  cli = trashCommands(cli); // trash-quota
  cli = appendCommands(cli);
  cli = toolCommands(cli);
  cli = tokenCommands(cli); // credentials: dfs token ...
  cli = serverCommands(cli);
  cli = cli.completion('completion', 'print a shell completion script: dfs completion bash >> ~/.bashrc (or zsh >> ~/.zshrc)');
  skipHelpCache(cli);
  await cli.parseAsync();
}

main().catch((err: unknown) => {
  if (err instanceof DfsError) fail(withRequestId(err, err.message), exitCode(err));
  fail(`internal error: ${(err as Error)?.message ?? String(err)}`);
});
