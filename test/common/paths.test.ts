// common/paths.ts: path validation/normalisation and the small path helpers.
import t, { type Test } from 'tap';
import { DfsError } from '../../common/errors.js';
import { baseName, isWithin, joinPath, MAX_NAME_BYTES, MAX_PATH_BYTES, namesDirectory, normalizePath, parentOf, splitPath } from '../../common/paths.js';

function rejects(t: Test, raw: unknown, why: RegExp, msg: string): void {
  t.throws(() => normalizePath(raw), { name: 'DfsError', code: 'INVALID_PATH', status: 400, message: why }, msg);
}

/** A valid absolute path of exactly `bytes` UTF-8 bytes made of ASCII components of at most 255 bytes. */
function pathOfBytes(bytes: number): string {
  const full = Math.floor((bytes - 2) / 201);
  return ('/' + 'x'.repeat(200)).repeat(full) + '/' + 'y'.repeat(bytes - full * 201 - 1);
}

t.test('constants', async (t) => {
  t.equal(MAX_PATH_BYTES, 4096);
  t.equal(MAX_NAME_BYTES, 255);
});

t.test('valid paths come back normalised', async (t) => {
  const cases: Array<[string, string]> = [
    ['/', '/'],
    ['/a', '/a'],
    ['/a/', '/a'],
    ['/a/b/c', '/a/b/c'],
    ['/a/b/c/', '/a/b/c'],
    ['/.hidden', '/.hidden'],
    ['/a/..b', '/a/..b'],
    ['/a/b..', '/a/b..'],
    ['/...', '/...'],
    ['/a.b/c.d', '/a.b/c.d'],
    ['/with space/x', '/with space/x'],
    ['/back\\slash', '/back\\slash'],
    ['/a:b;c?d#e%f&g', '/a:b;c?d#e%f&g'],
    ['/ünïcödé/日本語/😀', '/ünïcödé/日本語/😀'],
    ['/\u0080\u009f', '/\u0080\u009f'],
  ];
  for (const [raw, want] of cases) t.equal(normalizePath(raw), want, JSON.stringify(raw));
});

t.test('normalisation is idempotent', async (t) => {
  for (const raw of ['/', '/a/', '/a/b/c/', '/日本/語/', '/.x/..y/']) {
    const once = normalizePath(raw);
    t.equal(normalizePath(once), once, JSON.stringify(raw));
  }
});

t.test('non-strings and empty strings are rejected', async (t) => {
  for (const raw of [undefined, null, 0, 1, true, {}, [], ['/a'], new String('/a')]) {
    rejects(t, raw, /non-empty string/, `${typeof raw} ${String(raw)}`);
  }
  rejects(t, '', /non-empty string/, 'empty string');
});

t.test('relative paths are rejected', async (t) => {
  for (const raw of ['a', 'a/b', './a', '../a', '.', '..', ' /a', '\\a', 'C:/a', '~/a']) {
    rejects(t, raw, /absolute/, JSON.stringify(raw));
  }
  const err = (() => {
    try {
      normalizePath('rel/x');
    } catch (e) {
      return e as DfsError;
    }
  })();
  t.ok(err instanceof DfsError);
  t.match(err?.message, /"rel\/x"/, 'message quotes the path');
});

t.test("'.' and '..' components are rejected, not resolved", async (t) => {
  for (const raw of ['/.', '/..', '/./', '/../', '/a/.', '/a/..', '/a/./b', '/a/../b', '/../a', '/./a', '/a/b/..', '/a/b/../']) {
    rejects(t, raw, /'\.' or '\.\.'/, JSON.stringify(raw));
  }
});

t.test('empty components are rejected', async (t) => {
  for (const raw of ['//', '///', '//a', '/a//b', '/a//', '/a/b//', '/a///b']) {
    rejects(t, raw, /empty component/, JSON.stringify(raw));
  }
});

t.test('control characters and NUL bytes are rejected', async (t) => {
  for (const c of ['\u0000', '\u0001', '\t', '\n', '\r', '\u001b', '\u001f', '\u007f']) {
    rejects(t, `/a${c}b`, /control characters/, `contains U+${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
    rejects(t, `/${c}`, /control characters/, `only U+${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  }
  rejects(t, '/a/b\u0000', /control characters/, 'trailing NUL');
  rejects(t, '/a\u0000/', /control characters/, 'NUL before the trailing slash');
});

t.test('component length limit counts UTF-8 bytes', async (t) => {
  t.equal(normalizePath('/' + 'a'.repeat(255)), '/' + 'a'.repeat(255), '255 ASCII bytes');
  rejects(t, '/' + 'a'.repeat(256), /component longer than 255/, '256 ASCII bytes');
  rejects(t, '/ok/' + 'a'.repeat(256) + '/ok', /component longer than 255/, 'long middle component');
  t.equal(normalizePath('/' + 'é'.repeat(127)), '/' + 'é'.repeat(127), '127 × 2-byte chars = 254 bytes');
  rejects(t, '/' + 'é'.repeat(128), /component longer than 255/, '128 × 2-byte chars = 256 bytes (only 128 UTF-16 units)');
  t.equal(normalizePath('/' + '日'.repeat(85)), '/' + '日'.repeat(85), '85 × 3 bytes = 255');
  rejects(t, '/' + '日'.repeat(86), /component longer than 255/, '86 × 3 bytes = 258');
  t.equal(normalizePath('/' + '😀'.repeat(63) + 'abc'), '/' + '😀'.repeat(63) + 'abc', '63 × 4 + 3 = 255');
  rejects(t, '/' + '😀'.repeat(64), /component longer than 255/, '64 × 4 = 256');
  t.equal(normalizePath('/' + 'a'.repeat(255) + '/'), '/' + 'a'.repeat(255), 'trailing slash does not count toward the component');
});

t.test('path length limit counts UTF-8 bytes', async (t) => {
  const max = pathOfBytes(MAX_PATH_BYTES);
  t.equal(Buffer.byteLength(max), MAX_PATH_BYTES);
  t.equal(normalizePath(max), max, 'exactly 4096 bytes is accepted');
  const over = pathOfBytes(MAX_PATH_BYTES + 1);
  t.equal(Buffer.byteLength(over), MAX_PATH_BYTES + 1);
  rejects(t, over, /longer than 4096 bytes/, '4097 bytes');
  // 2048 two-byte characters: 4096 UTF-16 units but 4096 + 1 bytes with the slashes
  const multi = ('/' + 'é'.repeat(100)).repeat(20) + '/' + 'é'.repeat(47); // 20*201 + 95 = 4115 bytes
  t.ok(multi.length < MAX_PATH_BYTES, 'fewer UTF-16 units than the limit');
  rejects(t, multi, /longer than 4096 bytes/, 'multi-byte path over the byte limit');
  rejects(t, '/' + 'a'.repeat(10_000), /longer than 4096|component longer/, 'very long');
});

t.test('a trailing slash never makes an acceptable path unacceptable', async (t) => {
  const max = pathOfBytes(MAX_PATH_BYTES);
  t.equal(normalizePath(max), max);
  let got: unknown;
  try {
    got = normalizePath(max + '/');
  } catch (err) {
    got = err;
  }
  t.equal(got, max, 'a 4096-byte path with a trailing slash normalises to itself');
});

t.test('unicode is kept byte for byte (no normalisation form applied)', async (t) => {
  const nfc = '/caf\u00e9';
  const nfd = '/cafe\u0301';
  t.equal(normalizePath(nfc), nfc);
  t.equal(normalizePath(nfd), nfd);
  t.not(normalizePath(nfc), normalizePath(nfd), 'NFC and NFD spellings are different paths');
});

t.test('splitPath', async (t) => {
  t.same(splitPath('/'), []);
  t.same(splitPath('/a'), ['a']);
  t.same(splitPath('/a/b/c'), ['a', 'b', 'c']);
  t.same(splitPath('/日本/語'), ['日本', '語']);
});

t.test('parentOf and baseName', async (t) => {
  const cases: Array<[string, string, string]> = [
    ['/', '/', ''],
    ['/a', '/', 'a'],
    ['/a/b', '/a', 'b'],
    ['/a/b/c', '/a/b', 'c'],
    ['/.x/..y', '/.x', '..y'],
  ];
  for (const [p, parent, base] of cases) {
    t.equal(parentOf(p), parent, `parentOf(${p})`);
    t.equal(baseName(p), base, `baseName(${p})`);
    if (p !== '/') t.equal(joinPath(parentOf(p), baseName(p)), p, `join(parent, base) rebuilds ${p}`);
  }
});

t.test('joinPath', async (t) => {
  t.equal(joinPath('/', 'a'), '/a');
  t.equal(joinPath('/a', 'b'), '/a/b');
  t.equal(joinPath('/a/b', 'c'), '/a/b/c');
  t.same(splitPath(joinPath('/a/b', 'c')), ['a', 'b', 'c']);
});

t.test('isWithin', async (t) => {
  t.ok(isWithin('/', '/'));
  t.ok(isWithin('/a', '/'));
  t.ok(isWithin('/a/b', '/'));
  t.ok(isWithin('/a', '/a'), 'a path is within itself');
  t.ok(isWithin('/a/b', '/a'));
  t.ok(isWithin('/a/b/c', '/a'));
  t.notOk(isWithin('/ab', '/a'), 'sibling sharing a prefix is not within');
  t.notOk(isWithin('/a', '/a/b'), 'ancestor is not within its descendant');
  t.notOk(isWithin('/b', '/a'));
  t.notOk(isWithin('/', '/a'));
  t.notOk(isWithin('/a-b/c', '/a'));
});

t.test('namesDirectory: a trailing slash, the root aside', async (t) => {
  t.ok(namesDirectory('/a/'));
  t.ok(namesDirectory('/a/b/'));
  t.notOk(namesDirectory('/a'));
  t.notOk(namesDirectory('/'), 'the root is a directory anyway');
  t.equal(normalizePath('/a/'), '/a', 'normalizePath drops the slash: ask first');
});
