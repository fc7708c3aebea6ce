import { DfsError } from './errors.js';

/** The local cluster's base port: masters on 9400, 9401, 9402; chunkservers from 9500. */
export const DEFAULT_BASE_PORT = 9400;
/** The local cluster's three masters (dfs cluster with its defaults). */
export const DEFAULT_MASTERS = [0, 1, 2].map((i) => `127.0.0.1:${DEFAULT_BASE_PORT + i}`);

/** Parses "host:port,host:port" into a validated list. */
export function parseAddrList(raw: string, what = 'address list'): string[] {
  const list = raw.split(',').map((s) => s.trim()).filter((s) => s.length > 0);
  if (list.length === 0) throw new DfsError('INVALID_ARGUMENT', `${what} is empty`);
  for (const a of list) parseAddr(a, what);
  return list;
}

/** host:port; `allowAnyPort` admits port 0 (listen on whatever port the kernel picks). */
export function parseAddr(a: string, what = 'address', allowAnyPort = false): { host: string; port: number } {
  const m = /^([A-Za-z0-9.-]{1,253}):(\d{1,5})$/.exec(a);
  const port = m ? Number(m[2]) : NaN;
  if (!m || port < (allowAnyPort ? 0 : 1) || port > 65535) throw new DfsError('INVALID_ARGUMENT', `${what}: '${a}' is not host:port`);
  return { host: m[1]!, port };
}

/** Byte sizes like 1048576, 64MiB, 64M, 1GiB, 4k. */
export function parseSize(raw: string | number, what = 'size'): number {
  if (typeof raw === 'number') {
    if (!Number.isSafeInteger(raw) || raw < 0) throw new DfsError('INVALID_ARGUMENT', `${what} must be a non-negative whole number of bytes`);
    return raw;
  }
  const m = /^(\d+)\s*(b|k|kb|kib|m|mb|mib|g|gb|gib|t|tb|tib)?$/i.exec(raw.trim());
  if (!m) throw new DfsError('INVALID_ARGUMENT', `${what}: '${raw}' is not a size (e.g. 1048576, 64MiB, 1GiB)`);
  const unit = (m[2] ?? 'b').toLowerCase()[0]!;
  const mult = { b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 }[unit]!;
  const n = Number(m[1]) * mult;
  if (!Number.isSafeInteger(n)) throw new DfsError('INVALID_ARGUMENT', `${what}: '${raw}' is too large`);
  return n;
}

export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let v = n;
  let i = 0;
  // Round first, then pick the unit: 1048575 bytes is "1.0 MiB", not "1024 KiB".
  const shown = (x: number) => Number(x.toFixed(x >= 100 ? 0 : 1));
  while (shown(v) >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  if (i === 0) return `${n} B`;
  return `${v >= 99.95 ? Math.round(v) : v.toFixed(1)} ${units[i]}`;
}
