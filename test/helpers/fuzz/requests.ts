// One request of the route fuzz (test/helpers/fuzz/route-fuzz.ts), built from a contract entry
// (common/contract/), a credential class and a kind of abuse. The method, path, body limit and
// request schema all come from the entry, so a route added to the contract is fuzzed as it is.
import { CHUNK_TOKEN_HEADER } from '../../../common/auth.js';
import { routeFor } from '../../../common/contract/index.js';
import type { Route } from '../../../common/contract/route.js';
import { parseIntParam } from '../../../common/server.js';
import { chunkTokenFor, type ChunkTokens, type Credential, type Credentials } from './credentials.js';
import { deepJson, fieldsOf, malformedJson, manyKeys, mutateObject, mutatePath, pick, sample, wrongValue, type Pools, type Rng } from './inputs.js';
import type { RawRequest } from './wire.js';

export const KINDS = [
  'valid', 'mutated', 'unknown-field', 'malformed-json', 'deep-json', 'many-keys', 'oversized', 'declared-huge', 'wrong-method', 'unknown-query',
  'content-type', 'path-variant', 'bad-headers',
] as const;
export type Kind = (typeof KINDS)[number];

/** What a request is built from besides its route and credential: real values of the cluster. */
export interface Env {
  pools: Pools;
  chunkTokens: ChunkTokens;
  /** A chunk's current version, by handle. */
  versions: Map<number, number>;
  clusterId: string;
  chunkSizeBytes: number;
  creds: Credentials;
  /** An address of the fuzz's own that no chunkserver may ever dial (SSRF). */
  trapAddr: string;
}

export interface Built {
  req: RawRequest;
  /** The chunk handle a chunk route was called for. */
  handle?: number;
  /** The request in one line, for a finding. */
  summary: string;
}

const JSON_TYPE = { 'content-type': 'application/json' };
const OTHER_METHODS = ['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'HEAD', 'TRACE', 'FOO', 'CONNECT'];

/** A query value as it goes on the wire: encoded as a client would, or written raw (`..`, `%2e` left as they are). */
function encodeValue(v: unknown, rng: Rng): string {
  const s = typeof v === 'boolean' ? (v ? pick(rng, ['1', 'true']) : pick(rng, ['0', 'false'])) : typeof v === 'string' ? v : JSON.stringify(v);
  return rng() < 0.7 ? pct(s, /[^A-Za-z0-9_.~-]/) : pct(s, /[^\x21-\x7e]|[#&+%]/).replace(/%25(?=[0-9a-fA-F]{2})/g, '%');
}

/** Percent-encodes the UTF-8 bytes of `s` that `unsafe` matches (a lone surrogate goes as U+FFFD: encodeURIComponent throws on it). */
function pct(s: string, unsafe: RegExp): string {
  return [...Buffer.from(s, 'utf8')].map((b) => (b < 0x80 && !unsafe.test(String.fromCharCode(b)) ? String.fromCharCode(b) : `%${b.toString(16).toUpperCase().padStart(2, '0')}`)).join('');
}

function queryString(values: Record<string, unknown>, rng: Rng): string {
  const parts = Object.entries(values).filter(([, v]) => v !== undefined && v !== false).map(([k, v]) => `${k}=${encodeValue(v, rng)}`);
  return parts.length ? `?${parts.join('&')}` : '';
}

/** The chunk a handle as written in a path names to a chunkserver (express decodes it; chunkserver/routes/context.ts parses it as here), if any. */
function servedHandle(written: string): number | undefined {
  try {
    return parseIntParam(decodeURIComponent(written), 'handle', { min: 1 });
  } catch {
    return undefined; // not a handle, or a malformed escape
  }
}

/** The path's parameters: a chunk handle (real or hostile), a dashboard asset (or a traversal). */
function fillParams(route: Route, rng: Rng, env: Env, kind: Kind): { path: string; handle?: number } {
  let handle: number | undefined;
  const path = route.path.replace(/:([A-Za-z]+)/g, (_, name: string) => {
    if (name === 'handle') {
      handle = pick(rng, env.pools.handles);
      if (kind !== 'mutated' || rng() < 0.5) return String(handle);
      const hostile = pick(rng, ['0', '-1', '9007199254740993', 'abc', '..%2f..%2f1', '1e3', '00001', '%31', '1%2f..', `${handle}.chunk`, '%201', '1;', '0x10', String(handle)]);
      // Some of these name a real chunk after all ('%31' and '00001' are chunk 1 to the server):
      // the credential is then chosen, and the answer judged, for that chunk. (Seed 383333042
      // sent chunk 1's read token, as "another chunk's", to `%31`, and the chunkserver rightly served it.)
      handle = servedHandle(hostile) ?? handle;
      return hostile;
    }
    if (name === 'asset') return pick(rng, ['dashboard.js', 'index.html', 'dashboard.css', '..%2f..%2fpackage.json', '%2e%2e%2f%2e%2e%2fsecret', '..%5c..%5csecret', 'nope.js', '.%2e', '%00']);
    return 'x';
  });
  return { path, handle };
}

/** The query of a GET or a chunk PUT: from the route's query schema, values from the pools. */
function queryValues(route: Route, rng: Rng, env: Env, handle: number | undefined): Record<string, unknown> {
  const values: Record<string, unknown> = {};
  for (const [name, field] of Object.entries(fieldsOf(route.request))) {
    const v = sample(field, name, rng, env.pools);
    if (v !== undefined) values[name] = v;
  }
  if (handle !== undefined && 'version' in fieldsOf(route.request)) values.version = env.versions.get(handle) ?? 1;
  if ('next' in values) values.next = pick(rng, [env.trapAddr, env.chunkTokens.write.addrs.slice(1).join(','), `${env.trapAddr},${env.trapAddr}`, env.pools.addrs.join(',')]);
  return values;
}

function mutatedQuery(values: Record<string, unknown>, rng: Rng): Record<string, unknown> {
  const out = { ...values };
  const keys = Object.keys(out);
  const k = keys.length ? pick(rng, keys) : 'path';
  out[k] = typeof out[k] === 'string' && rng() < 0.6 ? mutatePath(out[k], rng) : wrongValue(rng);
  if (typeof out[k] === 'string' && (out[k] as string).length > 6000) out[k] = (out[k] as string).slice(0, 6000);
  return out;
}

/** The credential's headers for this route: a client token or peer signature to a master, a chunk token to a chunkserver. */
function credentialHeaders(route: Route, cls: Credential, rng: Rng, env: Env, method: string, handle: number | undefined): Record<string, string> {
  if (route.server === 'chunkserver') {
    const token = chunkTokenFor(cls.name, method, handle ?? 1, env.versions.get(handle ?? 1) ?? 1, env.chunkTokens, rng);
    return { ...(cls.name === 'peer-replayed' ? env.creds.peerHeaders(rng, env.clusterId) : cls.headers(rng)), ...(token !== undefined ? { [CHUNK_TOKEN_HEADER]: token } : {}) };
  }
  if (cls.name === 'peer-replayed' && (route.caller === 'chunkserver' || rng() < 0.3)) return env.creds.peerHeaders(rng, env.clusterId);
  return cls.headers(rng);
}

/** A JSON body for a POST of this kind. */
function jsonBody(route: Route, kind: Kind, rng: Rng, env: Env): Buffer {
  const valid = sample(route.request, '', rng, env.pools);
  switch (kind) {
    case 'mutated': return Buffer.from(JSON.stringify(mutateObject(valid, rng)) ?? 'null');
    case 'unknown-field': return Buffer.from(JSON.stringify({ ...(valid as object), zzUnknown: wrongValue(rng) }));
    case 'malformed-json': return malformedJson(rng);
    case 'deep-json': return deepJson(rng);
    case 'many-keys': return manyKeys(rng);
    default: return Buffer.from(JSON.stringify(valid) ?? '{}');
  }
}

/** Headers a hostile caller adds: another site's Host or Origin, a session it did not open, an oversized or repeated header. */
function badHeaders(rng: Rng): Record<string, string> {
  return pick<Record<string, string>>(rng, [
    { host: 'evil.example' }, { host: 'evil.example:80' }, { origin: 'http://evil.example' }, { origin: 'null' }, { 'x-dfs-session': 'c1:1' },
    { 'x-dfs-session': 'c1.AAAAAAAAAAAAAAAAAAAAAA:2' }, { 'x-dfs-session': `${'c'.repeat(100)}:99999999999999999` }, { 'x-dfs-request-id': 'x'.repeat(2000) },
    { 'x-big': 'y'.repeat(20_000) }, { 'transfer-encoding': 'chunked' }, { 'content-encoding': 'gzip' }, { expect: '100-continue' }, { 'x-forwarded-for': '10.0.0.1' },
  ]);
}

/** The request for `route`, called with `cls`'s credential, abused as `kind` says. */
export function buildRequest(route: Route, cls: Credential, kind: Kind, rng: Rng, env: Env): Built {
  const { path: basePath, handle } = fillParams(route, rng, env, kind);
  let method: string = route.method;
  if (kind === 'wrong-method') method = pick(rng, OTHER_METHODS.filter((m) => routeFor(m, route.path) === undefined));
  const headers: Record<string, string> = credentialHeaders(route, cls, rng, env, method, handle);
  let path = basePath;
  let body: Buffer | undefined;
  let declaredLength: number | undefined;
  if (route.method === 'POST') {
    body = jsonBody(route, kind, rng, env);
    Object.assign(headers, JSON_TYPE);
  } else {
    const values = queryValues(route, rng, env, handle);
    path += queryString(kind === 'mutated' ? mutatedQuery(values, rng) : values, rng);
    if (route.method === 'PUT') {
      body = Buffer.alloc(Math.floor(rng() * 4096), 0x41);
      headers['content-type'] = 'application/octet-stream';
    }
  }
  if (route.reply === 'stream' && route.caller === 'member') Object.assign(headers, { connection: 'Upgrade', upgrade: pick(rng, ['dfs-raft/2', 'dfs-raft/1']) });
  switch (kind) {
    case 'oversized':
      // Over the entry's limit by one byte: declared (and for small limits sent); a POST's 8 MiB is declared, not sent.
      if (route.method === 'PUT' && rng() < 0.5) {
        body = Buffer.alloc(env.chunkSizeBytes + 1, 0x41); // over the chunkserver's own chunk size, sent whole
        break;
      }
      declaredLength = route.bodyLimit + 1;
      body = Buffer.alloc(Math.min(route.bodyLimit + 1, 64 * 1024), 0x7b);
      break;
    case 'declared-huge': declaredLength = pick(rng, [2 ** 40, 2 ** 53 + 1]); body = Buffer.from('{}'); break;
    case 'unknown-query': path += `${path.includes('?') ? '&' : '?'}${pick(rng, ['zz=1', 'path=/&path=/fz', 'recursive=maybe', 'limit=-1', 'limit=99999999999999999999', '__proto__[admin]=1', 'token=x', 'a[b][c]=d'])}`; break;
    case 'content-type': headers['content-type'] = pick(rng, ['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/json; charset=utf-16', 'application/json; charset=latin1', 'application/vnd.evil+json', '']); break;
    case 'path-variant': path = pick(rng, [`${basePath}/`, basePath.toUpperCase(), `/${basePath}`, `${basePath}%2f`, `${basePath}/.`, `${basePath}/..${basePath}`, basePath.replace(/\//g, '%2f'), `${basePath};x`, `${basePath}%00`]) + path.slice(basePath.length); break;
    case 'bad-headers': Object.assign(headers, badHeaders(rng)); break;
    default: break;
  }
  if (headers['content-type'] === '') delete headers['content-type'];
  const summary = `${method} ${path.length > 200 ? `${path.slice(0, 200)}…` : path} [${kind}, ${cls.name}]${body && route.method === 'POST' ? ` body ${body.subarray(0, 160).toString('latin1')}${body.length > 160 ? `… (${body.length} bytes)` : ''}` : ''}`;
  return { req: { method, path, headers, ...(body ? { body } : {}), ...(declaredLength !== undefined ? { declaredLength } : {}) }, handle, summary };
}
