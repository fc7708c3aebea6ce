// Where a client finds its token (docs/SECURITY.md, "Client credentials"), first found wins:
// --token-file, $DFS_TOKEN, $DFS_TOKEN_FILE, ~/.config/dfs/token ($XDG_CONFIG_HOME/dfs/token),
// and for the CLI aimed at the default local cluster, the admin token `dfs cluster` keeps in
// ./data/admin-token.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { loadSecret } from '../common/auth.js';
import { bootstrapKey, MAX_TOKEN_CHARS, newTokenId, signClientToken } from '../common/credentials.js';
import { DfsError } from '../common/errors.js';

/** The file beside cluster.json that holds the local cluster's admin token. */
export const ADMIN_TOKEN_FILE = 'admin-token';
/** Where `dfs cluster` keeps its data unless told otherwise (cli/server-commands.ts). */
const LOCAL_CLUSTER_DATA = './data';

function readTokenFile(file: string, required: boolean): string | undefined {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if (!required && (err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new DfsError('INVALID_ARGUMENT', `cannot read the token file ${file}: ${(err as Error).message.split(',')[0]}`);
  }
  const token = text.trim();
  if (token.length === 0 || token.length > MAX_TOKEN_CHARS || /\s/.test(token)) throw new DfsError('INVALID_ARGUMENT', `${file} does not hold a dfs token (one line, dfs1.…)`);
  return token;
}

function configTokenFile(): string {
  const base = process.env.XDG_CONFIG_HOME || join(homedir(), '.config');
  return join(base, 'dfs', 'token');
}

/** The token to send, or undefined (anonymous: the masters will say UNAUTHORIZED). */
export function findToken(opts: { tokenFile?: string; localCluster?: boolean } = {}): string | undefined {
  if (opts.tokenFile) return readTokenFile(opts.tokenFile, true);
  if (process.env.DFS_TOKEN) return process.env.DFS_TOKEN.trim();
  if (process.env.DFS_TOKEN_FILE) return readTokenFile(process.env.DFS_TOKEN_FILE, true);
  return readTokenFile(configTokenFile(), false) ?? (opts.localCluster ? readTokenFile(join(LOCAL_CLUSTER_DATA, ADMIN_TOKEN_FILE), false) : undefined);
}

/**
 * The local cluster's admin token, beside cluster.json (mode 0600): made once, signed with the
 * bootstrap key the masters derive from the same secret, so it works before any master runs.
 */
export function ensureAdminToken(dataDir: string, secretFile: string): { file: string; token: string } {
  const file = join(dataDir, ADMIN_TOKEN_FILE);
  if (!existsSync(file)) {
    const grant = { id: newTokenId(), name: 'admin', admin: true, readOnly: false, prefix: '/', issuedAtMs: Date.now() };
    writeFileSync(file, `${signClientToken(bootstrapKey(loadSecret(secretFile)), grant)}\n`, { mode: 0o600 });
  }
  return { file, token: readTokenFile(file, true)! };
}
