// `dfs token create|list|revoke|whoami|bootstrap` and `dfs admin keys|rotate-keys|drop-old-keys`
// (docs/SECURITY.md, "Client credentials"). All but bootstrap are calls to the leader with the
// caller's token; bootstrap signs an admin token offline with the bootstrap key, for whoever holds
// the cluster secret (a host set up by hand, as DEPLOY.md does).
import { writeFileSync } from 'node:fs';
import type { Argv } from 'yargs';
import { loadSecret } from '../common/auth.js';
import { AUTH, type KeyInfo, type TokenInfo } from '../common/contract/index.js';
import { bootstrapKey, newTokenId, parseTtl, signClientToken } from '../common/credentials.js';
import { normalizePath } from '../common/paths.js';
import type { DfsClient } from './client.js';
import { localTime } from './format.js';
import { UsageError, withClient, type FsArgs } from './fs-commands.js';

function out(args: FsArgs, value: unknown, text: string): void {
  process.stdout.write(`${args.json ? JSON.stringify(value, null, 2) : text}\n`);
}

function scope(t: Pick<TokenInfo, 'admin' | 'readOnly' | 'prefix'>): string {
  return t.admin ? 'admin' : `${t.readOnly ? 'read-only' : 'read-write'} ${t.prefix}`;
}

function formatKeys(keys: KeyInfo[]): string {
  return keys.map((k) => `${k.id.padEnd(6)} ${k.signing ? 'signing  ' : 'verifying'} ${k.createdAtMs === null ? '(bootstrap: derived from the cluster secret)' : `since ${localTime(k.createdAtMs)}`}`).join('\n');
}

/** Writes a token to a file only its owner may read, or prints it. */
function emit(args: FsArgs, token: string, info: unknown, extra?: Record<string, unknown>): void {
  if (typeof args.out === 'string') {
    writeFileSync(args.out, `${token}\n`, { mode: 0o600, flag: 'wx' });
    out(args, extra ? { info, ...extra } : info, `token written to ${args.out}`);
  } else out(args, { token, info, ...extra }, token);
}

const handlers: Record<string, (client: DfsClient, args: FsArgs) => Promise<void>> = {
  async create(client, args) {
    const body = {
      ...(args.name !== undefined ? { name: String(args.name) } : {}), readOnly: args['read-only'] === true, admin: args.admin === true,
      ...(args.prefix !== undefined ? { prefix: normalizePath(String(args.prefix)) } : {}),
      ...(args.ttl !== undefined ? { ttlMs: parseTtl(String(args.ttl)) } : {}),
    };
    const r = await client.mutate(AUTH.createToken, body);
    const file = args['s3-credentials'];
    if (typeof file !== 'string') return emit(args, r.token, r.info);
    // An S3 access key bound to the new token, in the gateway's credentials file (s3/scope.ts).
    const { addKey } = await import('../s3/credentials.js');
    const key = await addKey(file, r.token);
    emit(args, r.token, r.info, { s3: { accessKeyId: key.accessKeyId, secretAccessKey: key.secretAccessKey, file } });
    if (!args.json) process.stderr.write(`S3 access key ${key.accessKeyId}, secret ${key.secretAccessKey}: added to ${file}, with this token's scope (a gateway reading that file takes it within a second)\n`);
  },
  async list(client, args) {
    const { tokens } = await client.read(AUTH.listTokens, {});
    const rows = tokens.map((t) => `${t.id.padEnd(17)} ${t.name.padEnd(16)} ${scope(t).padEnd(24)} ${t.expiresAtMs === undefined ? 'never expires' : `expires ${localTime(t.expiresAtMs)}`}${t.revoked ? '  REVOKED' : ''}`);
    out(args, tokens, rows.length ? rows.join('\n') : 'no tokens made with dfs token create (the admin token of dfs cluster or dfs token bootstrap is not listed)');
  },
  async revoke(client, args) {
    const r = await client.mutate(AUTH.revokeToken, { id: String(args.id) });
    out(args, r, `revoked ${r.id}${r.known ? '' : ' (not a token of dfs token list: an admin token, or a typo)'}; every master refuses it`);
  },
  async whoami(client, args) {
    const p = await client.read(AUTH.whoami, {});
    out(args, p, `token ${p.id} (${p.name}): ${scope(p)}, signed with ${p.keyId}${p.expiresAtMs === undefined ? '' : `, expires ${localTime(p.expiresAtMs)}`}`);
  },
  async keys(client, args) {
    const { keys } = await client.read(AUTH.keys, {});
    out(args, keys, formatKeys(keys));
  },
  async 'rotate-keys'(client, args) {
    const { keys } = await client.mutate(AUTH.rotateKeys, {});
    out(args, keys, `${formatKeys(keys)}\nnew tokens are signed with ${keys.find((k) => k.signing)?.id}; old ones still verify until dfs admin drop-old-keys`);
  },
  async 'drop-old-keys'(client, args) {
    const { keys } = await client.mutate(AUTH.dropOldKeys, {});
    out(args, keys, `${formatKeys(keys)}\ntokens signed with any other key are refused from now on`);
  },
};

function bootstrap(args: FsArgs): void {
  const secretFile = args['secret-file'];
  if (typeof secretFile !== 'string') throw new UsageError('--secret-file is required');
  const grant = { id: newTokenId(), name: 'admin', admin: true, readOnly: false, prefix: '/', issuedAtMs: Date.now() };
  emit(args, signClientToken(bootstrapKey(loadSecret(secretFile)), grant), grant);
}

const run = (name: string) => (args: unknown) => withClient(args as FsArgs, (client) => handlers[name]!(client, args as FsArgs));
const outFile = { out: { type: 'string', describe: 'write the token to this new file (mode 0600) instead of printing it' } } as const;

export function tokenCommands(cli: Argv): Argv {
  return cli.command('token', 'client credentials: make, list and revoke tokens (docs/SECURITY.md)', (y) => y
    .command('create', 'make a token (admin only) and print it', (z) => z
      .option('read-only', { type: 'boolean', default: false, describe: 'the token can change nothing' })
      .option('prefix', { type: 'string', describe: 'the token sees and touches nothing outside this path' })
      .option('ttl', { type: 'string', describe: 'lifetime: 30m, 24h, 7d (default: until revoked)' })
      .option('name', { type: 'string', describe: 'a name to recognise it by in dfs token list' })
      .option('admin', { type: 'boolean', default: false, describe: 'an admin token (may make tokens and run admin commands)' })
      .option('s3-credentials', { type: 'string', describe: 'also add an S3 access key bound to this token to this gateway credentials file (data/s3-credentials.json for dfs cluster)' })
      .options(outFile)
      .check((a) => {
        if (a.admin && (a['read-only'] || a.prefix !== undefined)) throw new Error('an --admin token is neither --read-only nor limited by --prefix');
        if (a.ttl !== undefined) parseTtl(String(a.ttl));
        return true;
      }), run('create'))
    .command('list', 'the tokens made with dfs token create, and whether each is revoked (admin only)', (z) => z, run('list'))
    .command('revoke [id]', 'refuse a token from now on, on every master (admin only); an id starting with - goes after --', (z) => z
      .positional('id', { type: 'string', describe: 'the id dfs token list shows' })
      // An id is text: "-000001" after -- must not become -1.
      .parserConfiguration({ 'parse-positional-numbers': false })
      .check((a) => {
        // yargs reads "-9esB..." as options; after "--" it is left in _ (token, revoke, id).
        const rest = a._.slice(2).map(String);
        const ids = a.id === undefined ? rest : [String(a.id), ...rest];
        if (ids.length !== 1 || ids[0] === '') throw new Error('name one token id (dfs token list shows them; one starting with - goes after --, options before it: dfs token revoke -- -AbC...)');
        a.id = ids[0];
        return true;
      }), run('revoke'))
    .command('whoami', 'the token this command sends: its id, name and scope', (z) => z, run('whoami'))
    .command('bootstrap', 'sign an admin token offline with the cluster secret (for clusters set up by hand)', (z) => z
      .option('secret-file', { type: 'string', demandOption: true, describe: 'the cluster secret the masters use' })
      .options(outFile), (a) => bootstrap(a as unknown as FsArgs))
    .demandCommand(1, 'name a token command'));
}

/** `dfs admin keys|rotate-keys|drop-old-keys`, added to the admin command of cli/tool-commands.ts. */
export function adminKeyCommands(y: Argv): Argv {
  return y
    .command('keys', 'the client token signing keys: which signs, which only verify (admin only)', (z) => z, run('keys'))
    .command('rotate-keys', 'add a new signing key; tokens of the old keys still verify until drop-old-keys (admin only)', (z) => z, run('rotate-keys'))
    .command('drop-old-keys', 'every key but the newest stops verifying: tokens signed with them are refused (admin only)', (z) => z, run('drop-old-keys'));
}
