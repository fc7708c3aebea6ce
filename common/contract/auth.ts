// The credential routes (docs/SECURITY.md): who am I, tokens, signing keys. Served by
// master/credentials/routes.ts; called by cli/token-commands.ts and s3/scope.ts.
import { z } from 'zod';
import { KEY_ID, MAX_PREFIX_BYTES, MAX_TOKEN_TTL_MS } from '../credentials.js';
import { get, post } from './route.js';

const master = 'master' as const;

export const CreateTokenRequest = z.strictObject({
  name: z.string().min(1).max(64).optional(),
  readOnly: z.boolean().default(false),
  prefix: z.string().min(1).max(MAX_PREFIX_BYTES).optional(),
  ttlMs: z.number().int().min(1000).max(MAX_TOKEN_TTL_MS).optional(),
  admin: z.boolean().default(false),
});
export const RevokeTokenRequest = z.strictObject({ id: z.string().min(1).max(64) });

/** What a token grants (common/credentials.ts, ClientGrant), and the key that signed it. */
export const TokenInfo = z.object({
  id: z.string(), name: z.string(), admin: z.boolean(), readOnly: z.boolean(), prefix: z.string(), issuedAtMs: z.number(),
  expiresAtMs: z.number().optional(), keyId: z.string(),
});
/** A signing key as `dfs admin keys` shows it: never its secret. */
export const KeyInfo = z.object({ id: z.string().regex(KEY_ID), createdAtMs: z.number().nullable(), signing: z.boolean() });
const Keys = z.object({ keys: z.array(KeyInfo) });

export type TokenInfo = z.infer<typeof TokenInfo>;
export type KeyInfo = z.infer<typeof KeyInfo>;

export const AUTH = {
  whoami: get({ server: master, path: '/v1/auth/whoami', reply: TokenInfo, caller: 'token' }),
  createToken: post({ server: master, path: '/v1/auth/tokens', request: CreateTokenRequest, reply: z.object({ token: z.string(), info: TokenInfo }), caller: 'admin' }),
  listTokens: get({ server: master, path: '/v1/auth/tokens', reply: z.object({ tokens: z.array(TokenInfo.extend({ revoked: z.boolean().optional() })) }), caller: 'admin' }),
  revokeToken: post({ server: master, path: '/v1/auth/tokens/revoke', request: RevokeTokenRequest, reply: z.object({ id: z.string(), known: z.boolean() }), caller: 'admin' }),
  keys: get({ server: master, path: '/v1/auth/keys', reply: Keys, caller: 'admin' }),
  rotateKeys: post({ server: master, path: '/v1/auth/keys/rotate', reply: Keys, caller: 'admin' }),
  dropOldKeys: post({ server: master, path: '/v1/auth/keys/drop-old', reply: Keys, caller: 'admin' }),
};
