import { DfsError } from './errors.js';

export const MAX_PATH_BYTES = 4096;
export const MAX_NAME_BYTES = 255;

/**
 * Validates a dfs path and returns it normalised. Paths are absolute, '/'-separated, with no
 * empty, '.' or '..' parts (a trailing '/' is dropped) and no control characters. We reject
 * rather than resolve '..' so a path names the same file however it reaches the master.
 */
export function normalizePath(raw: unknown): string {
  if (typeof raw !== 'string' || raw.length === 0) throw new DfsError('INVALID_PATH', 'path must be a non-empty string');
  if (!raw.startsWith('/')) throw new DfsError('INVALID_PATH', `path must be absolute (start with '/'): ${JSON.stringify(raw)}`);
  // The limit is on the normalised path: a trailing '/' does not count.
  if (Buffer.byteLength(raw) - (raw.length > 1 && raw.endsWith('/') ? 1 : 0) > MAX_PATH_BYTES) throw new DfsError('INVALID_PATH', `path is longer than ${MAX_PATH_BYTES} bytes`);
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(raw)) throw new DfsError('INVALID_PATH', 'path contains control characters');
  if (raw === '/') return '/';
  const trimmed = raw.endsWith('/') ? raw.slice(0, -1) : raw;
  const parts = trimmed.slice(1).split('/');
  for (const part of parts) {
    if (part === '') throw new DfsError('INVALID_PATH', `path has an empty component: ${JSON.stringify(raw)}`);
    if (part === '.' || part === '..') throw new DfsError('INVALID_PATH', `path may not contain '.' or '..': ${JSON.stringify(raw)}`);
    if (Buffer.byteLength(part) > MAX_NAME_BYTES) throw new DfsError('INVALID_PATH', `path component longer than ${MAX_NAME_BYTES} bytes`);
  }
  return '/' + parts.join('/');
}

/**
 * True when a path as typed ends in '/' (the root aside): it names a directory, which must exist
 * (`put f /d/`, `mv f /d/`), as cp(1) and `hdfs dfs` take it. Ask before normalizePath drops the '/'.
 */
export function namesDirectory(raw: string): boolean {
  return raw.length > 1 && raw.endsWith('/');
}

export function splitPath(path: string): string[] {
  return path === '/' ? [] : path.slice(1).split('/');
}

export function parentOf(path: string): string {
  const i = path.lastIndexOf('/');
  return i <= 0 ? '/' : path.slice(0, i);
}

export function baseName(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}

export function joinPath(dir: string, name: string): string {
  return dir === '/' ? `/${name}` : `${dir}/${name}`;
}

/** True when `path` is `ancestor` or lies below it. */
export function isWithin(path: string, ancestor: string): boolean {
  return ancestor === '/' || path === ancestor || path.startsWith(ancestor + '/');
}
