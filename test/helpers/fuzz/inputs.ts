// What the route fuzz sends (test/helpers/fuzz/route-fuzz.ts): inputs drawn from a route's
// request schema in the wire contract (common/contract/), with fields named like a path, a write
// id or a chunk handle filled from pools of real values, then mutated: wrong types, huge,
// negative and empty values, unicode look-alikes, `..`, `//`, percent-encoding. Seeded: the same
// seed draws the same inputs.
import type { z } from 'zod';

export type Rng = () => number;

/** Real values a field may be filled with, by what its name says it is. */
export interface Pools {
  paths: string[];
  writeIds: string[];
  handles: number[];
  /** Token ids, chunkserver and master ids. */
  ids: string[];
  addrs: string[];
}

export function pick<T>(rng: Rng, xs: readonly T[]): T {
  return xs[Math.floor(rng() * xs.length)]!;
}

interface Def { type: string; innerType?: z.ZodType; shape?: Record<string, z.ZodType>; element?: z.ZodType; options?: z.ZodType[]; values?: unknown[]; entries?: Record<string, unknown>; in?: z.ZodType }

function defOf(s: z.ZodType): Def {
  return (s as unknown as { def: Def }).def;
}

/** The fields of an object schema (a POST body's, a GET's query's), or none. */
export function fieldsOf(s: z.ZodType): Record<string, z.ZodType> {
  return defOf(s).shape ?? {};
}

const PATH_FIELDS = new Set(['path', 'src', 'dst', 'target', 'prefix', 'dir', 'file', 'after']);

/** A value for a field named `name` from the pools, when its name says what it is. */
function hinted(name: string, rng: Rng, pools: Pools): unknown {
  if (PATH_FIELDS.has(name)) return pick(rng, pools.paths);
  if (name === 'sources') return [pick(rng, pools.paths), pick(rng, pools.paths)];
  if (name === 'writeId') return pick(rng, pools.writeIds);
  if (name === 'writeIds') return [pick(rng, pools.writeIds)];
  if (name === 'handle') return pick(rng, pools.handles);
  if (name === 'id' || name === 'server' || name === 'to') return pick(rng, pools.ids);
  if (name === 'addr') return pick(rng, pools.addrs);
  if (name === 'user') return 'fuzz';
  if (name === 'name') return 'fz';
  return undefined;
}

/** A value that fits `s` (roughly: regexes are not followed), fields filled from the pools by name. */
export function sample(s: z.ZodType, name: string, rng: Rng, pools: Pools, depth = 0): unknown {
  const def = defOf(s);
  const hint = hinted(name, rng, pools);
  if (hint !== undefined && def.type !== 'optional' && def.type !== 'default') return hint;
  switch (def.type) {
    case 'optional': return rng() < 0.4 ? undefined : sample(def.innerType!, name, rng, pools, depth);
    case 'default': return rng() < 0.4 ? undefined : sample(def.innerType!, name, rng, pools, depth);
    case 'nullable': return rng() < 0.2 ? null : sample(def.innerType!, name, rng, pools, depth);
    case 'readonly': return sample(def.innerType!, name, rng, pools, depth);
    case 'pipe': return sample(def.in!, name, rng, pools, depth);
    case 'object': {
      const out: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(def.shape!)) {
        const value = depth > 4 ? undefined : sample(v, k, rng, pools, depth + 1);
        if (value !== undefined) out[k] = value;
      }
      return out;
    }
    case 'array': return Array.from({ length: 1 + Math.floor(rng() * 2) }, () => sample(def.element!, name, rng, pools, depth + 1));
    case 'string': return pick(rng, ['x', 'fz', 'cs1', '0123456789abcdef']);
    case 'number': {
      const min = (s as unknown as { minValue?: number | null }).minValue ?? 0;
      return Math.max(min, Math.floor(rng() * 4));
    }
    case 'boolean': return rng() < 0.5;
    case 'literal': return def.values?.[0];
    case 'enum': return pick(rng, Object.values(def.entries ?? { a: 'a' }));
    case 'union': return sample(pick(rng, def.options!), name, rng, pools, depth);
    case 'record': return {};
    default: return null;
  }
}

/** Paths a hostile caller tries around a real one `p`: traversal, doubled slashes, encodings, look-alikes, control characters, overlong. */
export function mutatePath(p: string, rng: Rng): string {
  const base = p === '/' ? '' : p;
  return pick(rng, [
    `${base}/../../..`, `${base}/..`, `${base}/../x`, `${base}//x`, `/${base}`, `${base}/./x`, `${base}/`, `${base}%2e%2e`, `${base}/%2e%2e/%2e%2e`,
    `${base}/%2F..%2F..`, `${base}\u2215..\u2215x`, `${base}\uff0fx`, `${base.replace(/a/g, '\u0430')}`, `${base.replace(/e/g, 'e\u0301')}`,
    `${base}\u0000`, `${base}\nx`, `${base}\\..\\x`, base.slice(1) || 'x', '', '.', '..', `${base}/${'y'.repeat(300)}`, `/${'z'.repeat(5000)}`,
    `${base}/\u202e`, `${base} `, `${base}%00`, `${base}/*`,
  ]);
}

/** A wrong value of some kind: another type, an extreme number, an empty or strange string. */
export function wrongValue(rng: Rng): unknown {
  return pick<unknown>(rng, [
    null, true, 0, -1, -(2 ** 53), 2 ** 53, 2 ** 63, 1e308, -0, 0.5, NaN, '', ' ', '0', '-1', '1e9', 'true', '\u0000', '\u{1F4A9}', 'x'.repeat(70_000),
    [], [null], [[]], {}, { $gt: '' }, JSON.parse('{"__proto__":{"admin":true}}'), { constructor: { prototype: {} } }, '../../etc/passwd', '%2e%2e%2f', Array(50).fill(1),
  ]);
}

/** `value` with one field changed to a wrong value (or a path field to a hostile path), added or removed. */
export function mutateObject(value: unknown, rng: Rng): unknown {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return wrongValue(rng);
  const out: Record<string, unknown> = { ...(value as Record<string, unknown>) };
  const keys = Object.keys(out);
  const roll = rng();
  if (keys.length === 0 || roll < 0.1) out[pick(rng, ['zzUnknown', '__proto__', 'constructor', 'admin', 'prefix'])] = wrongValue(rng);
  else {
    const k = pick(rng, keys);
    if (roll < 0.2) delete out[k];
    else if (PATH_FIELDS.has(k) && typeof out[k] === 'string' && roll < 0.65) out[k] = mutatePath(out[k] as string, rng);
    else out[k] = wrongValue(rng);
  }
  return out;
}

/** Bodies that are not JSON a parser should take quietly: cut off, wrong encoding, bad escapes, duplicate keys. */
export function malformedJson(rng: Rng): Buffer {
  return pick(rng, [
    Buffer.from('{'), Buffer.from('{"path":'), Buffer.from('nul'), Buffer.from('{"path":"/a",}'), Buffer.from("{'path':'/'}"),
    Buffer.from([0xef, 0xbb, 0xbf, ...Buffer.from('{"path":"/"}')]), Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x3a, 0x31, 0x7d]),
    Buffer.from('{"path":"\\ud800"}'), Buffer.from('{"path":"/","path":"/x"}'), Buffer.from('[]'), Buffer.from('"just a string"'), Buffer.from('1e999999'),
    Buffer.from('{"a":1}garbage'), Buffer.from('\u0000\u0000'), Buffer.from('{"__proto__":{"admin":true},"path":"/"}'), Buffer.from('  '),
  ]);
}

/** JSON nested `levels` deep, in arrays or objects: bounded work or a clear refusal, never a stall. */
export function deepJson(rng: Rng): Buffer {
  const levels = pick(rng, [63, 65, 1_000, 100_000]);
  return rng() < 0.5 ? Buffer.from('['.repeat(levels) + ']'.repeat(levels)) : Buffer.from('{"a":'.repeat(levels) + '1' + '}'.repeat(levels));
}

/** An object with more keys than a server reads (each key echoing nothing back). */
export function manyKeys(rng: Rng): Buffer {
  const n = pick(rng, [1_001, 20_000]);
  return Buffer.from(`{${Array.from({ length: n }, (_, i) => `"k${i}":${i}`).join(',')}}`);
}
